//! Stopping builds: `pushbuild stop` of a build running under `serve` (it ends STOPPED) and of
//! one queued behind it (it does not run); in the function binary, stopped from the command
//! line over the bucket and the table while its invocation runs; and on AWS CodeBuild, where the
//! stand-in receives `StopBuild` and the STOPPED event finishes the build.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::codebuild_standin::CodeBuildStandIn;
use crate::dynamo_server::DynamoServer;
use crate::function::{Harness, builds, sample};
use crate::hooks;
use crate::pushed::{Pushed, record_in};

/// `pushbuild stop PROJECT BUILD_ID` with `args` and `env`.
fn stop(project: &str, build_id: &str, args: &[String], env: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["stop", project, build_id])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("USER", "alice")
        .output()
        .expect("pushbuild runs")
}

/// Stops `build_id` once the index has it (a build just handed off may not have begun).
fn stop_when_begun(
    project: &str,
    build_id: &str,
    args: &[String],
    env: &[(&str, String)],
) -> Output {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let out = stop(project, build_id, args, env);
        if out.status.code() != Some(2) {
            return out;
        }
        assert!(
            Instant::now() < until,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pushbuild_stop_stops_a_running_build_under_serve_and_a_queued_one_never_runs() {
    let forever =
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo waiting\n      - sleep 600\n";
    let quick = "version: 0.2\nphases:\n  build:\n    commands: [echo quick]\n";
    let pushed = Pushed::branches(&[("main", forever, &[]), ("quick", quick, &[])]);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &pushed.env());
    let project = pushed.git.project(hooks::REPOSITORY);
    let running = pushed.deliver_branch(&served.url, "main", "stop-1");
    let queued = pushed.deliver_branch(&served.url, "quick", "stop-2");
    let at = vec!["--store".to_string(), store.path().display().to_string()];
    // The queued one first: it waits behind the running one (one job).
    let out = stop_when_begun(&project, &queued, &at, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("a queued one will not run"));
    let out = stop_when_begun(&project, &running, &at, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = record_in(store.path(), &project, &running);
    assert_eq!(record["status"], "STOPPED", "{record}");
    let build = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "BUILD")
        .unwrap()
        .clone();
    assert_eq!(build["status"], "STOPPED");
    assert_eq!(build["message"], "BUILD_STOPPED: asked by alice");
    assert!(record["duration_ms"].as_u64().unwrap() < 60_000, "{record}");
    let skipped = record_in(store.path(), &project, &queued);
    assert_eq!(skipped["status"], "SKIPPED", "{skipped}");
    assert_eq!(
        skipped["skip_reason"],
        "stopped before it began: asked by alice"
    );
    assert_eq!(skipped["billed_minutes"], 0);
    // The commit's status says it was stopped.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let last = pushed.api.statuses(&pushed.commit).pop();
        if let Some(last) = last.filter(|s| s.body["state"] != "pending") {
            assert_eq!(last.body["state"], "error", "{:?}", last.body);
            assert!(
                last.body["description"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("billed minute: asked by alice"),
                "{:?}",
                last.body
            );
            break;
        }
        assert!(Instant::now() < until, "no final status");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Once ended there is nothing to stop; an unknown build is a mistake.
    let again = stop(&project, &running, &at, &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stdout).contains("has ended already: STOPPED"));
    let unknown = stop(&project, "20260101T000000Z-00000000", &at, &[]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no build 20260101T000000Z-00000000")
    );
}

/// The function binary runs a ten-minute build; `pushbuild stop --bucket --table` stops it and
/// its invocation answers STOPPED, with its record in the bucket.
#[test]
fn a_build_in_the_function_is_stopped_from_the_command_line() {
    let forever = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 600\n";
    let table = DynamoServer::shared().new_table();
    let h = Harness::start(
        &[("buildspec.yml", forever.as_bytes())],
        "A build of ten minutes",
        &[("PUSHBUILD_INDEX_TABLE", table.as_str())],
    );
    let event = sample("eventbridge-reference-updated.json", &h.head());
    let (answer, stopped) = std::thread::scope(|scope| {
        let invocation = scope.spawn(|| builds(&h.invoke(event, Duration::from_secs(120))));
        // The build's id is the index's only open entry's: found by listing the bucket's
        // live log, the first object a running build writes.
        let until = Instant::now() + Duration::from_secs(60);
        let build_id = loop {
            let live = h
                .keys()
                .into_iter()
                .find(|k| k.ends_with("/live.log") || k.ends_with("/build.log"));
            if let Some(key) = live {
                break key.rsplit('/').nth(1).unwrap().to_string();
            }
            assert!(Instant::now() < until, "the build never ran");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut env = h.s3_env();
        env.extend(DynamoServer::shared().env());
        let at = vec![
            "--bucket".to_string(),
            h.bucket(),
            "--table".to_string(),
            table.clone(),
        ];
        let out = stop_when_begun(crate::function::REPO, &build_id, &at, &env);
        (invocation.join().unwrap(), out)
    });
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert_eq!(answer[0]["status"], "STOPPED", "{answer:?}");
    let record = h.record(answer[0]["buildId"].as_str().unwrap());
    assert_eq!(record["status"], "STOPPED");
    assert!(record["duration_ms"].as_u64().unwrap() < 60_000, "{record}");
}

/// A build handed to CodeBuild: `pushbuild stop` calls `StopBuild`, and CodeBuild's STOPPED
/// event finishes it STOPPED.
#[test]
fn a_build_on_codebuild_is_stopped_there() {
    let asks = "version: 0.2\nenv:\n  variables:\n    PUSHBUILD_COMPUTE: codebuild\nphases:\n  build:\n    commands:\n      - sleep 600\n";
    let table = DynamoServer::shared().new_table();
    let standin = CodeBuildStandIn::start("pushbuild-overflow");
    let endpoint = standin.endpoint();
    let h = Harness::start(
        &[("buildspec.yml", asks.as_bytes())],
        "A build for CodeBuild",
        &[
            ("PUSHBUILD_CODEBUILD_PROJECT", "pushbuild-overflow"),
            ("AWS_ENDPOINT_URL_CODEBUILD", endpoint.as_str()),
            ("PUSHBUILD_INDEX_TABLE", table.as_str()),
        ],
    );
    let event = sample("eventbridge-reference-updated.json", &h.head());
    let answer = builds(&h.invoke(event, Duration::from_secs(60)));
    assert_eq!(answer[0]["status"], "IN_PROGRESS", "{answer:?}");
    let build_id = answer[0]["buildId"].as_str().unwrap().to_string();
    let (codebuild_id, _) = standin.started().remove(0);
    let mut env = h.s3_env();
    env.extend(DynamoServer::shared().env());
    env.push(("AWS_ENDPOINT_URL_CODEBUILD", endpoint.clone()));
    let at = vec![
        "--bucket".to_string(),
        h.bucket(),
        "--table".to_string(),
        table,
    ];
    let out = stop(crate::function::REPO, &build_id, &at, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&codebuild_id));
    assert_eq!(standin.stopped(), std::slice::from_ref(&codebuild_id));
    let done = builds(&h.invoke(
        standin.state_change(&codebuild_id, "STOPPED", 20),
        Duration::from_secs(60),
    ));
    assert_eq!(done[0]["status"], "STOPPED", "{done:?}");
    assert_eq!(h.record(&build_id)["status"], "STOPPED");
}

/// `PUSHBUILD_SUPERSEDE=branch` under `serve` (one job): ten pushes to `main` in a row leave one
/// build that succeeds, the last; the first, running, is STOPPED by the second; the eight that
/// waited are not run. The old commits' statuses say why.
#[test]
fn ten_pushes_in_a_row_leave_one_build_with_supersede_branch() {
    let specs: Vec<String> = (0..10)
        .map(|n| {
            format!(
                "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 8\n      - echo push {n}\n"
            )
        })
        .collect();
    let pushed = Pushed::successive(&specs.iter().map(String::as_str).collect::<Vec<_>>());
    let (api, commits) = (&pushed.api, &pushed.commits);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut env = pushed.env();
    env.push(("PUSHBUILD_SUPERSEDE", "branch".to_string()));
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &env);
    let ids: Vec<String> = (0..10)
        .map(|n| pushed.deliver_nth(&served.url, n, &format!("ten-{n}")))
        .collect();
    let project = pushed.git.project(hooks::REPOSITORY);
    let records: Vec<Value> = ids
        .iter()
        .map(|id| record_in(store.path(), &project, id))
        .collect();
    let states: Vec<&str> = records
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(states[9], "SUCCEEDED", "{states:?}");
    assert_eq!(
        states.iter().filter(|s| **s == "SUCCEEDED").count(),
        1,
        "{states:?}"
    );
    assert!(
        states[..9]
            .iter()
            .all(|s| *s == "STOPPED" || *s == "SKIPPED"),
        "{states:?}"
    );
    assert_eq!(states[0], "STOPPED", "{states:?}");
    let stopped_phase = records[0]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["status"] == "STOPPED")
        .unwrap()["message"]
        .clone();
    assert_eq!(
        stopped_phase,
        format!("BUILD_STOPPED: superseded by {}", ids[1])
    );
    // Each between was superseded: skipped if it had not begun when the next push came (billed
    // nothing), else stopped.
    for (n, record) in records[1..9].iter().enumerate() {
        if record["status"] == "SKIPPED" {
            let reason = record["skip_reason"].as_str().unwrap_or_default();
            assert!(
                reason.starts_with("stopped before it began: superseded by "),
                "{n}: {reason}"
            );
            assert_eq!(record["billed_minutes"], 0);
        } else {
            let stopped = record["phases"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["status"] == "STOPPED")
                .map(|p| p["message"].as_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            assert!(
                stopped.starts_with("BUILD_STOPPED: superseded by "),
                "{n}: {record}"
            );
        }
    }
    // The first commit's status says it was superseded.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let last = api.statuses(&commits[0].1).pop();
        if let Some(last) = last.filter(|s| s.body["state"] != "pending") {
            assert_eq!(last.body["state"], "error", "{:?}", last.body);
            let description = last.body["description"].as_str().unwrap_or_default();
            assert!(description.contains("superseded by"), "{description}");
            break;
        }
        assert!(Instant::now() < until, "no final status for the first push");
        std::thread::sleep(Duration::from_millis(50));
    }
}
