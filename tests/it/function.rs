//! The real function binary (`pushbuild-lambda`) driven through the Lambda Runtime API, with the
//! real SDK clients talking over HTTP to an S3-compatible server (s3s-fs) and to the CodeCommit
//! stand-in over a git repository made by each test. Assertions are on what lands in the bucket.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::codecommit_standin::{StandIn, git, init_repo};
use crate::dynamo_server::DynamoServer;
use crate::git_server::GitServer;
use crate::runtime_api::{Outcome, RuntimeApi};
use crate::s3_server::S3Server;

pub(crate) const REPO: &str = "pushbuild-demo";

/// A function process with its servers.
pub(crate) struct Harness {
    s3: S3Server,
    runtime: tokio::runtime::Runtime,
    api: RuntimeApi,
    standin: StandIn,
    child: Child,
    repo: tempfile::TempDir,
    work: tempfile::TempDir,
}

/// A buildspec that succeeds and makes one artifact.
const GOOD: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"building $STAGE at $CODEBUILD_RESOLVED_SOURCE_VERSION\"\n      - mkdir -p out && echo built > out/result.txt\n  post_build:\n    commands:\n      - echo post ran\nartifacts:\n  base-directory: out\n  files: ['**/*']\n";

impl Harness {
    /// A repository whose one commit holds `files` (and `message`), served by the stand-in, an
    /// S3 server, and the function started with `settings` on top of the defaults.
    pub(crate) fn start(
        files: &[(&str, &[u8])],
        message: &str,
        settings: &[(&str, &str)],
    ) -> Harness {
        let s3 = S3Server::start();
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let repo = tempfile::tempdir().expect("temp dir");
        init_repo(repo.path());
        for (path, content) in files {
            let full = repo.path().join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(full, content).expect("write");
        }
        git(repo.path(), &["add", "-A"]);
        git(repo.path(), &["commit", "-q", "-m", message]);
        let (api, standin) = runtime.block_on(async {
            (
                RuntimeApi::start().await,
                StandIn::start(REPO, repo.path()).await,
            )
        });
        let work = tempfile::tempdir().expect("temp dir");
        let child = spawn_function(&api, &s3, &standin, work.path(), settings);
        Harness {
            s3,
            runtime,
            api,
            standin,
            child,
            repo,
            work,
        }
    }

    /// What the function printed on standard output: its EMF metric records.
    pub(crate) fn stdout_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.work.path().join("function.stdout"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The function's work folder (`PUSHBUILD_WORK_DIR`).
    pub(crate) fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// The bucket the function writes to.
    pub(crate) fn bucket(&self) -> String {
        self.s3.bucket.clone()
    }

    /// The settings that reach the S3 server (for the command line).
    pub(crate) fn s3_env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.s3.env();
        env.push(("PUSHBUILD_S3_PATH_STYLE", "true".to_string()));
        env
    }

    /// Commits `files` on top of the repository's head; returns the new head.
    pub(crate) fn commit(&self, files: &[(&str, &[u8])], message: &str) -> String {
        for (path, content) in files {
            std::fs::write(self.repo.path().join(path), content).expect("write");
        }
        git(self.repo.path(), &["add", "-A"]);
        git(self.repo.path(), &["commit", "-q", "-m", message]);
        self.head()
    }

    /// Writes `bytes` as `key` in the bucket.
    pub(crate) fn put_object(&self, key: &str, bytes: Vec<u8>) {
        let client = self.s3.client();
        let (bucket, key) = (self.s3.bucket.clone(), key.to_string());
        self.s3.handle().block_on(async move {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(bytes.into())
                .send()
                .await
                .expect("put the object");
        });
    }

    pub(crate) fn head(&self) -> String {
        git(self.repo.path(), &["rev-parse", "HEAD"])
    }

    pub(crate) fn invoke(&self, event: Value, timeout: Duration) -> Outcome {
        self.runtime
            .block_on(self.api.invoke(event, timeout, Duration::from_secs(30)))
    }

    /// Hands `event` to the function without waiting for its answer.
    pub(crate) fn hand(&self, event: Value, timeout: Duration) {
        self.runtime.block_on(self.api.hand(event, timeout));
    }

    /// SIGKILLs the function process (nothing of its own runs after it).
    pub(crate) fn kill_function(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The keys in the bucket, sorted.
    pub(crate) fn keys(&self) -> Vec<String> {
        let client = self.s3.client();
        let bucket = self.s3.bucket.clone();
        let mut keys: Vec<String> = self.s3.handle().block_on(async move {
            let out = client
                .list_objects_v2()
                .bucket(bucket)
                .send()
                .await
                .expect("list the bucket");
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string))
                .collect()
        });
        keys.sort();
        keys
    }

    /// The keys of builds' results (records, logs, artifacts), not of claims or the ledger.
    fn build_keys(&self) -> Vec<String> {
        self.keys()
            .into_iter()
            .filter(|k| k.starts_with("builds/") || k.starts_with("artifacts/"))
            .collect()
    }

    /// The CodeCommit stand-in's endpoint (for a proxy in front of it).
    pub(crate) fn codecommit_endpoint(&self) -> String {
        self.standin.endpoint()
    }

    pub(crate) fn s3(&self) -> &S3Server {
        &self.s3
    }

    pub(crate) fn object(&self, key: &str) -> Vec<u8> {
        self.s3.object(key)
    }

    pub(crate) fn record(&self, build_id: &str) -> Value {
        self.record_of(REPO, build_id)
    }

    pub(crate) fn log(&self, build_id: &str) -> String {
        self.log_of(REPO, build_id)
    }

    /// The record of a build of `project`.
    pub(crate) fn record_of(&self, project: &str, build_id: &str) -> Value {
        serde_json::from_slice(&self.object(&format!("builds/{project}/{build_id}/build.json")))
            .expect("a JSON record")
    }

    pub(crate) fn log_of(&self, project: &str, build_id: &str) -> String {
        String::from_utf8_lossy(&self.object(&format!("builds/{project}/{build_id}/build.log")))
            .into_owned()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_function(
    api: &RuntimeApi,
    s3: &S3Server,
    standin: &StandIn,
    work: &Path,
    settings: &[(&str, &str)],
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushbuild-lambda"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pushbuild")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL_CODECOMMIT", standin.endpoint())
        .env("PUSHBUILD_BUCKET", &s3.bucket)
        .env("PUSHBUILD_S3_PATH_STYLE", "true")
        .env("PUSHBUILD_WORK_DIR", work)
        // No network here: CodeCommit's git endpoint only where a test serves one.
        .env("PUSHBUILD_CODECOMMIT_GIT", "false")
        .envs(s3.env())
        .envs(DynamoServer::shared().env_with_table())
        .stdin(Stdio::null())
        .stdout(
            std::fs::File::create(work.join("function.stdout")).map_or(Stdio::null(), Stdio::from),
        )
        .stderr(
            std::fs::File::create(work.join("function.stderr")).map_or(Stdio::null(), Stdio::from),
        );
    for (name, value) in settings {
        command.env(name, value);
    }
    command.spawn().expect("the function binary starts")
}

/// A sample event from `events/`, with every commit id replaced by `commit`.
pub(crate) fn sample(name: &str, commit: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("a sample event");
    let mut event: Value = serde_json::from_str(&text).expect("JSON");
    if let Some(records) = event.get_mut("Records").and_then(Value::as_array_mut) {
        for record in records {
            if let Some(refs) = record["codecommit"]["references"].as_array_mut() {
                for reference in refs {
                    reference["commit"] = json!(commit);
                }
            }
        }
    }
    if let Some(id) = event.get_mut("detail").and_then(|d| d.get_mut("commitId")) {
        *id = json!(commit);
    }
    event
}

pub(crate) fn builds(outcome: &Outcome) -> Vec<Value> {
    match outcome {
        Outcome::Response(response) => response["builds"].as_array().cloned().unwrap_or_default(),
        Outcome::Error {
            error_type,
            message,
        } => panic!("the invocation failed: {error_type}: {message}"),
    }
}

pub(crate) const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_push_is_built_and_its_artifacts_log_and_record_land_in_the_bucket() {
    let h = Harness::start(&[("ci/buildspec.yml", GOOD.as_bytes())], "first", &[]);
    let head = h.head();
    let outcome = h.invoke(sample("codecommit-push.json", &head), MINUTE);
    let builds = builds(&outcome);
    assert_eq!(builds.len(), 1);
    let build = &builds[0];
    assert_eq!(build["status"], "SUCCEEDED", "{build}");
    assert_eq!(build["commit"], head.as_str());
    assert_eq!(build["ref"], "refs/heads/main");
    let id = build["buildId"].as_str().expect("a build id");
    let keys = h.keys();
    for key in [
        format!("builds/{REPO}/{id}/build.json"),
        format!("builds/{REPO}/{id}/build.log"),
        format!("artifacts/{REPO}/{id}/{REPO}.zip"),
    ] {
        assert!(keys.contains(&key), "{key} not in {keys:?}");
    }
    let record = h.record(id);
    assert_eq!(record["status"], "SUCCEEDED");
    assert_eq!(record["commit"], head.as_str());
    assert_eq!(record["initiator"], "codecommit/pushbuild-on-push");
    assert_eq!(
        record["artifacts"][0]["uri"],
        format!("s3://{}/artifacts/{REPO}/{id}/{REPO}.zip", h.s3.bucket)
    );
    let log = h.log(id);
    // customData set STAGE=dev and the buildspec path.
    assert!(log.contains(&format!("building dev at {head}")), "{log}");
    assert_eq!(
        build["recordUri"],
        format!("s3://{}/builds/{REPO}/{id}/build.json", h.s3.bucket)
    );
}

#[test]
fn a_failing_build_still_runs_post_build_and_is_a_normal_response() {
    let spec = "version: 0.2\nphases:\n  build:\n    commands: [\"exit 4\"]\n  post_build:\n    commands: [echo post ran with $CODEBUILD_BUILD_SUCCEEDING]\n";
    let h = Harness::start(&[("ci/buildspec.yml", spec.as_bytes())], "breaks", &[]);
    let builds = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(builds[0]["status"], "FAILED");
    let id = builds[0]["buildId"].as_str().expect("id");
    let record = h.record(id);
    let phases: Vec<String> = record["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p["phase"].as_str().unwrap_or(""),
                p["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            "INSTALL=SUCCEEDED",
            "PRE_BUILD=SUCCEEDED",
            "BUILD=FAILED",
            "POST_BUILD=SUCCEEDED"
        ]
    );
    assert!(h.log(id).contains("post ran with 0"));
}

#[test]
fn a_deleted_branch_is_skipped_and_nothing_is_written() {
    let h = Harness::start(&[("buildspec.yml", GOOD.as_bytes())], "first", &[]);
    let builds = builds(&h.invoke(sample("codecommit-branch-deleted.json", &h.head()), MINUTE));
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0]["status"], "SKIPPED");
    assert!(
        builds[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("deleted"),
        "{}",
        builds[0]
    );
    assert!(h.build_keys().is_empty(), "{:?}", h.keys());
}

#[test]
fn an_event_with_two_references_gives_two_builds() {
    let h = Harness::start(&[("buildspec.yml", GOOD.as_bytes())], "release", &[]);
    let builds = builds(&h.invoke(sample("codecommit-two-refs.json", &h.head()), MINUTE));
    let refs: Vec<&str> = builds
        .iter()
        .map(|b| b["ref"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(refs, ["refs/heads/release/1.4", "refs/tags/v1.4.0"]);
    assert!(
        builds.iter().all(|b| b["status"] == "SUCCEEDED"),
        "{builds:?}"
    );
    let records = h
        .keys()
        .into_iter()
        .filter(|k| k.ends_with("/build.json"))
        .count();
    assert_eq!(records, 2);
}

#[test]
fn a_skip_ci_commit_is_not_built() {
    let h = Harness::start(
        &[("buildspec.yml", GOOD.as_bytes())],
        "Docs only [skip ci]",
        &[],
    );
    let builds = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        MINUTE,
    ));
    assert_eq!(builds[0]["status"], "SKIPPED");
    assert!(builds[0]["reason"].as_str().unwrap_or("").contains("skip"));
    assert!(h.build_keys().is_empty(), "{:?}", h.keys());
}

#[test]
fn a_file_over_six_megabytes_fails_the_build_naming_the_file() {
    let big = vec![b'x'; 7 * 1024 * 1024];
    let h = Harness::start(
        &[
            ("buildspec.yml", GOOD.as_bytes()),
            ("assets/huge.bin", &big),
        ],
        "big",
        &[],
    );
    let builds = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        MINUTE,
    ));
    assert_eq!(builds[0]["status"], "FAILED");
    let reason = builds[0]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("assets/huge.bin") && reason.contains("6 MB"),
        "{reason}"
    );
    let id = builds[0]["buildId"].as_str().expect("id");
    assert_eq!(h.record(id)["phases"][0]["phase"], "DOWNLOAD_SOURCE");
}

#[test]
fn a_deadline_reached_mid_build_still_stores_the_log_and_the_record() {
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started > started.txt\n      - sleep 120\nartifacts:\n  files: [started.txt]\n";
    let h = Harness::start(
        &[("buildspec.yml", spec.as_bytes())],
        "slow",
        &[("PUSHBUILD_UPLOAD_RESERVE_SECONDS", "3")],
    );
    let started = std::time::Instant::now();
    let builds = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        Duration::from_secs(8),
    ));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered before the invocation's deadline"
    );
    assert_eq!(builds[0]["status"], "TIMED_OUT");
    let id = builds[0]["buildId"].as_str().expect("id");
    let record = h.record(id);
    assert_eq!(record["status"], "TIMED_OUT");
    // A timed-out build is billed like any other: its ~5 s round up to one minute.
    assert_eq!(record["billed_minutes"], 1);
    let entry_key = h
        .keys()
        .into_iter()
        .find(|k| k.starts_with("billing/") && k.ends_with(&format!("/{id}.json")))
        .expect("a ledger entry for the timed-out build");
    let entry: Value = serde_json::from_slice(&h.object(&entry_key)).expect("JSON");
    assert_eq!(entry["status"], "TIMED_OUT");
    assert_eq!(entry["billed_minutes"], 1);
    assert!(h.log(id).contains("Build timed out during phase BUILD"));
    assert!(
        h.keys()
            .iter()
            .any(|k| k.ends_with("started.txt") || k.ends_with(".zip"))
    );
}

#[test]
fn s3_and_codecommit_answering_503_or_throttling_for_a_while_are_retried() {
    let h = Harness::start(&[("buildspec.yml", GOOD.as_bytes())], "flaky", &[]);
    h.s3.fail_next(2);
    h.standin.fail_next(2);
    h.standin.throttle_next(2);
    let builds = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        MINUTE,
    ));
    assert_eq!(builds[0]["status"], "SUCCEEDED", "{builds:?}");
    assert!(
        h.s3.requests().iter().any(|r| r.starts_with("PUT")),
        "objects were written"
    );
    assert!(
        h.standin.total_calls() >= 4 + 3,
        "the stand-in saw the retries"
    );
}

#[test]
fn a_malformed_event_is_an_invocation_error_that_names_the_accepted_shapes() {
    let h = Harness::start(&[("buildspec.yml", GOOD.as_bytes())], "first", &[]);
    match h.invoke(json!({"hello": "world"}), MINUTE) {
        Outcome::Error {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "PushBuild.Permanent.BadEvent");
            assert!(
                message.contains("Records") && message.contains("repository"),
                "{message}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // The function goes on serving events after a bad one.
    let builds = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        MINUTE,
    ));
    assert_eq!(builds[0]["status"], "SUCCEEDED");
}

#[test]
fn a_missing_setting_stops_the_start_with_a_message_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_pushbuild-lambda"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PUSHBUILD_BUCKET is required"), "{stderr}");
}

#[test]
fn the_same_event_delivered_twice_gives_one_build() {
    let h = Harness::start(&[("buildspec.yml", GOOD.as_bytes())], "once", &[]);
    let event = sample("eventbridge-reference-updated.json", &h.head());
    let first = builds(&h.invoke(event.clone(), MINUTE));
    assert_eq!(first[0]["status"], "SUCCEEDED");
    let second = builds(&h.invoke(event, MINUTE));
    assert_eq!(second[0]["status"], "SKIPPED");
    assert!(
        second[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("duplicate delivery"),
        "{}",
        second[0]
    );
    let records = h
        .keys()
        .into_iter()
        .filter(|k| k.ends_with("/build.json"))
        .count();
    assert_eq!(records, 1);
    let ledger = h
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("billing/"))
        .count();
    assert_eq!(ledger, 1, "one ledger entry for the two deliveries");
    // A different event for the same commit is a new delivery, and builds.
    let mut other = sample("eventbridge-reference-updated.json", &h.head());
    other["id"] = json!("another-event-id");
    assert_eq!(builds(&h.invoke(other, MINUTE))[0]["status"], "SUCCEEDED");
}

#[test]
fn the_per_minute_metric_records_add_up_to_the_billed_minutes() {
    // A 400 ms "minute" and a build of a little over two of them.
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 0.9\n";
    let h = Harness::start(
        &[("buildspec.yml", spec.as_bytes())],
        "metered",
        &[
            ("PUSHBUILD_BILLING_MINUTE_MS", "400"),
            ("PUSHBUILD_NAMESPACE", "PushBuildTest"),
        ],
    );
    let builds = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        MINUTE,
    ));
    assert_eq!(builds[0]["status"], "SUCCEEDED");
    let billed = builds[0]["billedMinutes"].as_u64().expect("billed minutes");
    assert!(
        billed >= 3,
        "a build of over 800 ms bills at least 3 minutes of 400 ms: {billed}"
    );
    let id = builds[0]["buildId"].as_str().expect("id");
    assert_eq!(h.record(id)["billed_minutes"], billed);

    let records: Vec<Value> = h
        .stdout_lines()
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("stdout holds only EMF JSON: {line}"))
        })
        .collect();
    assert!(
        records
            .iter()
            .all(|r| r["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PushBuildTest")
    );
    let minutes: f64 = records
        .iter()
        .filter_map(|r| r["BillableMinutes"].as_f64())
        .sum();
    assert_eq!(
        minutes,
        billed as f64,
        "one BillableMinutes record per billed minute: {records:#?}; stderr: {}",
        std::fs::read_to_string(h.work.path().join("function.stderr")).unwrap_or_default()
    );
    let end = records
        .iter()
        .find(|r| r.get("BilledMinutes").is_some())
        .expect("an end record");
    assert_eq!(end["BilledMinutes"].as_f64(), Some(billed as f64));
    assert_eq!(end["BuildSucceeded"].as_f64(), Some(1.0));
    assert_eq!(end["Repository"], REPO);
    assert_eq!(end["Branch"], "main");
}

#[test]
fn a_reached_monthly_budget_skips_the_next_build_with_a_record_and_a_metric() {
    let h = Harness::start(
        &[("buildspec.yml", GOOD.as_bytes())],
        "budget",
        &[("PUSHBUILD_MONTHLY_MINUTES", "1")],
    );
    let first = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        MINUTE,
    ));
    assert_eq!(first[0]["status"], "SUCCEEDED");
    assert_eq!(first[0]["billedMinutes"], 1);

    let mut again = sample("eventbridge-reference-updated.json", &h.head());
    again["id"] = json!("second-push");
    let second = builds(&h.invoke(again, MINUTE));
    assert_eq!(second[0]["status"], "SKIPPED", "{}", second[0]);
    assert_eq!(second[0]["billedMinutes"], 0);
    let reason = second[0]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("cap of 1") && reason.contains("PUSHBUILD_MONTHLY_MINUTES"),
        "{reason}"
    );
    let id = second[0]["buildId"]
        .as_str()
        .expect("a skipped build still has a record");
    assert_eq!(h.record(id)["status"], "SKIPPED");

    let ledger: Vec<String> = h
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("billing/"))
        .collect();
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    let skipped_metric = h
        .stdout_lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .any(|r| r["BuildSkipped"].as_f64() == Some(1.0) && r["BuildId"] == id);
    assert!(skipped_metric, "a BuildSkipped metric for {id}");
}

#[test]
fn a_minute_refused_mid_build_stops_the_build_at_the_end_of_its_paid_minutes() {
    const LONG: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out && echo early > out/result.txt\n      - sleep 20\nartifacts:\n  base-directory: out\n  files: ['**/*']\n";
    let h = Harness::start(
        &[("buildspec.yml", LONG.as_bytes())],
        "stopped",
        &[
            ("PUSHBUILD_MONTHLY_MINUTES", "2"),
            ("PUSHBUILD_BILLING_MINUTE_MS", "1000"),
        ],
    );
    let started = std::time::Instant::now();
    let built = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        MINUTE,
    ));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped, not slept out"
    );
    assert_eq!(built[0]["status"], "FAILED", "{}", built[0]);
    assert_eq!(built[0]["billedMinutes"], 2);
    let id = built[0]["buildId"].as_str().expect("a build id");
    let record = h.record(id);
    let build = record["phases"]
        .as_array()
        .and_then(|phases| phases.iter().find(|p| p["phase"] == "BUILD"))
        .expect("the BUILD phase")
        .clone();
    assert_eq!(build["status"], "FAILED", "{build}");
    // Stopped at the end of its second paid minute.
    let ran = build["duration_ms"].as_u64().unwrap_or(u64::MAX);
    assert!((1500..5000).contains(&ran), "{build}");
    let context = build["message"].as_str().unwrap_or_default();
    assert!(
        context.starts_with("BUDGET_REACHED: monthly budget reached: the month's 2 billed minutes reached the cap of 2"),
        "{context}"
    );
    assert_eq!(
        record["artifacts"].as_array().map(Vec::len),
        Some(1),
        "its artifacts are stored: {record}"
    );
}

/// A CodeCommit build with the git endpoint served on loopback: signed with `secret_key`, which
/// the server takes when it is the function's.
fn over_codecommit_git(secret_key: &str) -> (Harness, GitServer, tempfile::TempDir, Value) {
    let root = tempfile::tempdir().expect("temp dir");
    let server = GitServer::start_codecommit(
        root.path(),
        crate::s3_server::ACCESS_KEY,
        secret_key,
        crate::s3_server::REGION,
    );
    let url = server.url();
    let h = Harness::start(
        &[("buildspec.yml", GOOD.as_bytes())],
        "over git",
        &[
            ("PUSHBUILD_CODECOMMIT_GIT", "true"),
            ("PUSHBUILD_CODECOMMIT_GIT_URL", url.as_str()),
        ],
    );
    let bare = root.path().join("v1/repos").join(REPO);
    std::fs::create_dir_all(root.path().join("v1/repos")).expect("mkdir");
    let out = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(h.repo.path())
        .arg(&bare)
        .output()
        .expect("git clone --bare");
    assert!(out.status.success(), "{out:?}");
    let built = builds(&h.invoke(
        sample("eventbridge-reference-updated.json", &h.head()),
        MINUTE,
    ));
    let build = built[0].clone();
    (h, server, root, build)
}

#[test]
fn a_codecommit_commit_is_fetched_over_its_git_endpoint_with_signed_credentials() {
    let (h, server, _root, build) = over_codecommit_git(crate::s3_server::SECRET_KEY);
    assert_eq!(build["status"], "SUCCEEDED", "{build}");
    let log = h.log(build["buildId"].as_str().expect("an id"));
    assert!(
        log.contains("Fetched over CodeCommit's git endpoint"),
        "{log}"
    );
    assert_eq!(
        h.standin.calls("GetBlob"),
        0,
        "no file came through the API"
    );
    assert_eq!(h.standin.calls("GetFolder"), 0);
    let requests = server.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| !r.ends_with("[bad token]")),
        "{requests:?}"
    );
    // The signature is no secret to keep, but the secret key is: nowhere in the log.
    assert!(!log.contains(crate::s3_server::SECRET_KEY));
}

#[test]
fn a_refused_git_endpoint_falls_back_to_the_api_and_the_log_says_so() {
    let (h, server, _root, build) = over_codecommit_git("not-the-functions-secret-key");
    assert_eq!(build["status"], "SUCCEEDED", "{build}");
    let log = h.log(build["buildId"].as_str().expect("an id"));
    assert!(
        log.contains(
            "Fetched through CodeCommit's API (GetFolder, GetBlob): the git endpoint failed"
        ),
        "{log}"
    );
    assert!(h.standin.calls("GetBlob") > 0);
    assert!(
        server.requests().iter().any(|r| r.ends_with("[bad token]")),
        "{:?}",
        server.requests()
    );
}
