//! Builds that outgrow Lambda run on AWS CodeBuild: the real function binary hands them to a
//! CodeBuild stand-in on loopback (speaking CodeBuild's JSON protocol) with the source zipped in
//! the S3 server, and finishes them from CodeBuild's `Build State Change` events.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::codebuild_standin::{CodeBuildStandIn, state_change_event};
use crate::dynamo_server::DynamoServer;
use crate::function::{Harness, MINUTE, REPO, builds, sample};

const PROJECT: &str = "pushbuild-overflow";

const GOOD: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"building $STAGE\"\nartifacts:\n  files: ['**/*']\n";
const ASKS: &str = "version: 0.2\nenv:\n  variables:\n    PUSHBUILD_COMPUTE: codebuild\nphases:\n  build:\n    commands:\n      - echo asked for codebuild\n";

/// A CodeBuild stand-in, and the function with CodeBuild set up.
fn start(files: &[(&str, &[u8])], settings: &[(&str, &str)]) -> (CodeBuildStandIn, Harness) {
    let standin = CodeBuildStandIn::start(PROJECT);
    let endpoint = standin.endpoint();
    let mut all = vec![
        ("PUSHBUILD_CODEBUILD_PROJECT", PROJECT),
        ("AWS_ENDPOINT_URL_CODEBUILD", endpoint.as_str()),
        ("PUSHBUILD_CODEBUILD_TIMEOUT_MINUTES", "5"),
    ];
    all.extend_from_slice(settings);
    let h = Harness::start(files, "overflow", &all);
    (standin, h)
}

fn var<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["environmentVariablesOverride"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
        .and_then(|v| v["value"].as_str())
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source.zip");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("unzip")
        .arg("-Z1")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The metric records of one build: its `BillableMinutes` records and its end record.
fn metrics_of(h: &Harness, build_id: &str) -> (usize, Option<Value>) {
    let records: Vec<Value> = h
        .stdout_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["BuildId"] == build_id)
        .collect();
    let minutes = records
        .iter()
        .filter(|r| r.get("BillableMinutes").is_some())
        .count();
    let end = records
        .into_iter()
        .find(|r| r.get("BilledMinutes").is_some());
    (minutes, end)
}

#[test]
fn a_listed_repository_is_handed_to_codebuild_and_its_result_finishes_the_build() {
    let (standin, h) = start(
        &[
            ("ci/buildspec.yml", GOOD.as_bytes()),
            ("src/main.c", b"int main() { return 0; }\n"),
        ],
        &[("PUSHBUILD_CODEBUILD_REPOSITORIES", REPO)],
    );
    let head = h.head();
    let bucket = h.bucket();
    let answer = builds(&h.invoke(sample("codecommit-push.json", &head), MINUTE));
    assert_eq!(answer[0]["status"], "IN_PROGRESS", "{answer:?}");
    let id = answer[0]["buildId"]
        .as_str()
        .expect("a build id")
        .to_string();

    // The StartBuild request: the zip, the buildspec, the environment, pushbuild's layout.
    let started = standin.started();
    assert_eq!(started.len(), 1);
    let (codebuild_id, request) = &started[0];
    assert!(
        answer[0]["reason"]
            .as_str()
            .unwrap()
            .contains(codebuild_id.as_str())
    );
    assert_eq!(request["projectName"], PROJECT);
    assert_eq!(request["sourceTypeOverride"], "S3");
    assert_eq!(
        request["sourceLocationOverride"],
        format!("{bucket}/handover/{REPO}/{id}/source.zip")
    );
    assert_eq!(request["buildspecOverride"], GOOD);
    assert_eq!(var(request, "PUSHBUILD_BUILD_ID"), Some(id.as_str()));
    assert_eq!(var(request, "PUSHBUILD_PROJECT"), Some(REPO));
    assert_eq!(
        var(request, "PUSHBUILD_RESOLVED_SOURCE_VERSION"),
        Some(head.as_str())
    );
    assert_eq!(var(request, "STAGE"), Some("dev"), "the event's override");
    assert_eq!(
        request["artifactsOverride"],
        json!({"type": "S3", "location": bucket, "path": format!("artifacts/{REPO}/{id}"),
               "name": format!("{REPO}.zip"), "namespaceType": "NONE", "packaging": "ZIP"})
    );
    assert_eq!(
        request["logsConfigOverride"]["s3Logs"],
        json!({"status": "ENABLED", "location": format!("{bucket}/builds/{REPO}/{id}/codebuild")})
    );
    assert_eq!(request["computeTypeOverride"], "BUILD_GENERAL1_SMALL");
    assert_eq!(request["timeoutInMinutesOverride"], 5);
    assert_eq!(request["privilegedModeOverride"], true);
    assert_eq!(request["idempotencyToken"], id.as_str());
    assert_eq!(standin.unsigned(), 0, "every call signed for codebuild");
    let zip = h.object(&format!("handover/{REPO}/{id}/source.zip"));
    let names = zip_names(&zip);
    for name in ["ci/buildspec.yml", "src/main.c"] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    let keys = h.keys();
    assert!(
        !keys.contains(&format!("builds/{REPO}/{id}/build.json")),
        "no record before the end"
    );

    // An event for a build pushbuild did not start, and one naming this build with another
    // CodeBuild id, are ignored.
    let foreign = state_change_event(PROJECT, "someone-else:1", "SUCCEEDED", 60, &json!({}));
    assert!(builds(&h.invoke(foreign, MINUTE)).is_empty());
    let forged = state_change_event(
        PROJECT,
        &format!("{PROJECT}:9999"),
        "SUCCEEDED",
        60,
        request,
    );
    assert!(builds(&h.invoke(forged, MINUTE)).is_empty());
    assert!(!h.keys().contains(&format!("builds/{REPO}/{id}/build.json")));

    // CodeBuild says it succeeded after 150 s: 3 minutes at its price.
    let done = builds(&h.invoke(standin.state_change(codebuild_id, "SUCCEEDED", 150), MINUTE));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["status"], "SUCCEEDED", "{done:?}");
    assert_eq!(done[0]["buildId"], id.as_str());
    let record = h.record(&id);
    assert_eq!(record["status"], "SUCCEEDED");
    assert_eq!(record["compute"]["service"], "codebuild");
    assert_eq!(record["compute"]["codebuildId"], codebuild_id.as_str());
    assert_eq!(record["compute"]["computeType"], "BUILD_GENERAL1_SMALL");
    assert_eq!(record["billed_minutes"], 3, "{record}");
    assert_eq!(record["cost"]["cost_usd"], 0.015, "{record}");
    let phases: Vec<&str> = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["DOWNLOAD_SOURCE", "INSTALL", "BUILD", "UPLOAD_ARTIFACTS"]
    );
    let ledger_key = h
        .keys()
        .into_iter()
        .find(|k| k.starts_with("billing/") && k.ends_with(&format!("/{id}.json")))
        .expect("a ledger entry");
    let ledger: Value = serde_json::from_slice(&h.object(&ledger_key)).unwrap();
    assert_eq!(ledger["billed_minutes"], 3, "{ledger}");
    let log = h.log(&id);
    assert!(
        log.contains(&format!("AWS CodeBuild runs the build as {codebuild_id}")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "AWS CodeBuild build {codebuild_id} ended: SUCCEEDED"
        )),
        "{log}"
    );
    assert!(log.contains("Build completed: SUCCEEDED"), "{log}");
    let keys = h.keys();
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with(&format!("handover/{REPO}/{id}/"))),
        "{keys:?}"
    );
    let (minutes, end) = metrics_of(&h, &id);
    assert_eq!(minutes, 3, "one BillableMinutes record per billed minute");
    assert_eq!(end.expect("an end record")["BilledMinutes"], 3);

    // The same event again finds no hand-over: nothing changes.
    let again = builds(&h.invoke(standin.state_change(codebuild_id, "SUCCEEDED", 150), MINUTE));
    assert!(again.is_empty());
}

#[test]
fn a_buildspec_asking_for_codebuild_goes_there_and_a_failure_comes_back_failed() {
    let (standin, h) = start(&[("ci/buildspec.yml", ASKS.as_bytes())], &[]);
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "IN_PROGRESS", "{answer:?}");
    let id = answer[0]["buildId"].as_str().unwrap().to_string();
    let (codebuild_id, request) = standin.started().remove(0);
    assert_eq!(request["buildspecOverride"], ASKS);
    let done = builds(&h.invoke(standin.state_change(&codebuild_id, "FAILED", 30), MINUTE));
    assert_eq!(done[0]["status"], "FAILED");
    let record = h.record(&id);
    assert_eq!(record["status"], "FAILED");
    assert_eq!(record["billed_minutes"], 1);
    let build = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "BUILD")
        .unwrap()
        .clone();
    assert_eq!(build["status"], "FAILED");
    assert_eq!(
        build["message"],
        "COMMAND_EXECUTION_ERROR: Error while executing command: make. Reason: exit status 2"
    );
    assert!(
        record["compute"]["why"]
            .as_str()
            .unwrap()
            .contains("PUSHBUILD_COMPUTE")
    );
}

#[test]
fn without_a_codebuild_project_the_buildspecs_wish_is_noted_and_the_build_runs_here() {
    let h = Harness::start(&[("ci/buildspec.yml", ASKS.as_bytes())], "here", &[]);
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "SUCCEEDED", "{answer:?}");
    let log = h.log(answer[0]["buildId"].as_str().unwrap());
    assert!(log.contains("asked for codebuild"), "{log}");
    assert!(
        log.contains("this deployment has no CodeBuild project"),
        "{log}"
    );
}

#[test]
fn a_budget_that_cannot_hold_codebuilds_timeout_refuses_the_build_before_it_starts() {
    let (standin, h) = start(
        &[("ci/buildspec.yml", GOOD.as_bytes())],
        &[
            ("PUSHBUILD_CODEBUILD_REPOSITORIES", REPO),
            ("PUSHBUILD_REPOSITORY_MINUTES", "pushbuild-demo=3"),
        ],
    );
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "SKIPPED", "{answer:?}");
    let reason = answer[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("cannot hold the build's 5 minutes on AWS CodeBuild"),
        "{reason}"
    );
    assert!(standin.started().is_empty(), "nothing started on CodeBuild");
    let id = answer[0]["buildId"].as_str().unwrap();
    let record = h.record(id);
    assert_eq!(record["billed_minutes"], 0);
}

#[test]
fn a_build_whose_event_never_comes_is_finished_from_batch_get_builds() {
    // 50 ms minutes: the hand-over's entry expires after CodeBuild's queue and timeout,
    // (60 + 5) minutes, and a second of grace.
    let (standin, h) = start(
        &[("ci/buildspec.yml", GOOD.as_bytes())],
        &[
            ("PUSHBUILD_CODEBUILD_REPOSITORIES", REPO),
            ("PUSHBUILD_BILLING_MINUTE_MS", "50"),
            ("PUSHBUILD_UPLOAD_RESERVE_SECONDS", "1"),
        ],
    );
    let head = h.head();
    let answer = builds(&h.invoke(sample("codecommit-push.json", &head), MINUTE));
    assert_eq!(answer[0]["status"], "IN_PROGRESS", "{answer:?}");
    let id = answer[0]["buildId"].as_str().unwrap().to_string();
    let (codebuild_id, _) = standin.started().remove(0);
    standin.set_status(&codebuild_id, "SUCCEEDED");
    let record_key = format!("builds/{REPO}/{id}/build.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Any invocation looks; one that builds nothing (a deleted branch) will do.
    while !h.keys().contains(&record_key) {
        assert!(
            Instant::now() < deadline,
            "the build was never finished from BatchGetBuilds"
        );
        let _ = h.invoke(sample("codecommit-branch-deleted.json", &head), MINUTE);
        std::thread::sleep(Duration::from_millis(200));
    }
    let record = h.record(&id);
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    assert_eq!(record["compute"]["codebuildId"], codebuild_id.as_str());
    assert!(!h.keys().iter().any(|k| k.starts_with("handover/")));
}

/// `pushbuild placement ARGS` against the harness's bucket and index table.
fn placement_cli(h: &Harness, table: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("placement")
        .args(args)
        .args(["--bucket", &h.bucket(), "--table", table])
        .envs(h.s3_env())
        .envs(DynamoServer::shared().env())
        .output()
        .expect("pushbuild runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_build_that_times_out_in_the_function_starts_again_on_codebuild_until_placement_reset() {
    let slow = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 120\n";
    let table = DynamoServer::shared().new_table();
    let (standin, h) = start(
        &[
            ("buildspec.yml", slow.as_bytes()),
            (
                "quick.yml",
                b"version: 0.2\nphases:\n  build:\n    commands:\n      - echo quick\n",
            ),
        ],
        &[
            ("PUSHBUILD_UPLOAD_RESERVE_SECONDS", "3"),
            ("PUSHBUILD_INDEX_TABLE", &table),
        ],
    );
    let head = h.head();
    let event = sample("eventbridge-reference-updated.json", &head);
    let answer = builds(&h.invoke(event, Duration::from_secs(8)));
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0]["status"], "IN_PROGRESS", "{answer:?}");
    let new_id = answer[0]["buildId"].as_str().unwrap().to_string();
    let records: Vec<String> = h
        .keys()
        .into_iter()
        .filter(|k| k.ends_with("/build.json"))
        .collect();
    assert_eq!(
        records.len(),
        1,
        "the timed-out build's record: {records:?}"
    );
    let old: Value = serde_json::from_slice(&h.object(&records[0])).unwrap();
    assert_eq!(old["status"], "TIMED_OUT");
    let old_id = old["build_id"].as_str().unwrap().to_string();
    assert_ne!(old_id, new_id);
    let started = standin.started();
    assert_eq!(started.len(), 1);
    assert_eq!(
        var(&started[0].1, "PUSHBUILD_BUILD_ID"),
        Some(new_id.as_str())
    );
    assert!(
        placement_cli(&h, &table, &["show", REPO]).contains("builds run on codebuild since"),
        "the placement is in the index"
    );

    let done = builds(&h.invoke(
        standin.state_change(&started[0].0, "SUCCEEDED", 200),
        MINUTE,
    ));
    assert_eq!(done[0]["status"], "SUCCEEDED");
    let record = h.record(&new_id);
    assert_eq!(record["compute"]["replaces"], old_id.as_str());
    assert!(
        record["compute"]["why"]
            .as_str()
            .unwrap()
            .contains(&format!("build {old_id} timed out in the function"))
    );

    // The next build goes straight to CodeBuild.
    let next = builds(&h.invoke(json!({"repository": REPO, "sourceVersion": head}), MINUTE));
    assert_eq!(next[0]["status"], "IN_PROGRESS", "{next:?}");
    assert_eq!(standin.started().len(), 2);

    // Reset: builds run in the function again.
    let said = placement_cli(&h, &table, &["reset", REPO]);
    assert_eq!(said.trim(), format!("{REPO}: builds run in the function"));
    let fast = builds(&h.invoke(
        json!({"repository": REPO, "sourceVersion": head, "buildspecOverride": "quick.yml"}),
        MINUTE,
    ));
    assert_eq!(fast[0]["status"], "SUCCEEDED", "{fast:?}");
    assert_eq!(standin.started().len(), 2, "not handed over");
}

#[test]
fn a_project_codebuild_does_not_know_skips_the_build_saying_why() {
    let (standin, h) = start(
        &[("ci/buildspec.yml", GOOD.as_bytes())],
        &[
            ("PUSHBUILD_CODEBUILD_REPOSITORIES", REPO),
            ("PUSHBUILD_CODEBUILD_PROJECT", "no-such-project"),
        ],
    );
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "SKIPPED", "{answer:?}");
    let reason = answer[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("could not start the build on AWS CodeBuild")
            && reason.contains("ResourceNotFoundException")
            && reason.contains("no-such-project"),
        "{reason}"
    );
    assert!(standin.started().is_empty());
    let id = answer[0]["buildId"].as_str().unwrap();
    assert_eq!(h.record(id)["billed_minutes"], 0, "its minutes given back");
    assert!(h.log(id).contains("AWS CodeBuild did not start the build"));
}

const DOCKER: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo building an image\n      - docker build -t app .\n";

#[test]
fn a_build_that_runs_docker_goes_to_codebuild_in_privileged_mode() {
    let (standin, h) = start(&[("ci/buildspec.yml", DOCKER.as_bytes())], &[]);
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "IN_PROGRESS", "{answer:?}");
    let id = answer[0]["buildId"].as_str().unwrap().to_string();
    let (codebuild_id, request) = standin.started().remove(0);
    assert_eq!(request["privilegedModeOverride"], true, "{request}");
    builds(&h.invoke(standin.state_change(&codebuild_id, "SUCCEEDED", 30), MINUTE));
    let record = h.record(&id);
    let why = record["compute"]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("runs Docker (phases.build.commands[1], line 6: `docker build -t app .`)")
            && why.contains("privileged mode"),
        "{why}"
    );
}

#[test]
fn without_a_codebuild_project_a_build_that_runs_docker_fails_before_it_runs_saying_what_would_run_it()
 {
    let h = Harness::start(&[("ci/buildspec.yml", DOCKER.as_bytes())], "here", &[]);
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "FAILED", "{answer:?}");
    let record = h.record(answer[0]["buildId"].as_str().unwrap());
    let phases: Vec<&str> = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(phases, ["DOWNLOAD_SOURCE"], "no command ran");
    let message = record["phases"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`docker build -t app .`")
            && message.contains("PUSHBUILD_CODEBUILD_PROJECT"),
        "{message}"
    );
    assert!(
        !h.log(answer[0]["buildId"].as_str().unwrap())
            .contains("building an image")
    );
}
