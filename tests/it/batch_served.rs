//! Batch builds under `serve`: children through its queue as builds of their own, with their
//! statuses and the batch's page; a matrix, a fan-out, fast-fail stopping what runs and a cycle
//! refused; a child killed mid-way closed by the sweep with its batch.

use std::path::Path;

use serde_json::Value;

use crate::hooks;
use crate::pushed::Pushed;

/// The batch's record once it has closed, waiting at most `seconds` for it.
pub(crate) fn batch_record(store: &Path, project: &str, batch_id: &str, seconds: u64) -> Value {
    let key = store
        .join("batches")
        .join(project)
        .join(batch_id)
        .join("batch.json");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !key.exists() {
        assert!(std::time::Instant::now() < until, "the batch never closed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap()
}

/// A child whose `serve` is killed mid-way: the next `serve` over the same store sweeps it
/// (TIMED_OUT, its reserved minutes billed) and its batch closes with it, FAILED, with the
/// batch's commit status.
#[test]
fn a_child_killed_mid_way_is_closed_by_the_sweep_and_so_is_its_batch() {
    let spec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: slow\n      env:\n        \
                variables:\n          WAIT: '30'\n    - identifier: quick\nphases:\n  build:\n    \
                commands:\n      - echo started\n      - sleep ${WAIT:-0}\n";
    let pushed = Pushed::new(spec);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut env = pushed.env();
    env.extend([
        ("PUSHBUILD_BILLING_MINUTE_MS", "1000".to_string()),
        ("PUSHBUILD_UPLOAD_RESERVE_SECONDS", "1".to_string()),
        ("PUSHBUILD_LIVE_LOG_SECONDS", "1".to_string()),
    ]);
    let project = pushed.git.project(hooks::REPOSITORY);
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "2"], &env);
    let batch_id = pushed.deliver(&served.url, "killed-1");
    // slow is running once its live log is in the store.
    let builds = store.path().join("builds").join(&project);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let slow = loop {
        let live = std::fs::read_dir(&builds).ok().and_then(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .find(|p| p.join("live.log").exists())
        });
        if let Some(build) = live {
            break build.file_name().unwrap().to_string_lossy().to_string();
        }
        assert!(std::time::Instant::now() < until, "slow never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(served);
    // Its entry expires at the end of its last reserved minute and the upload reserve: at most
    // 2 s after serve was killed.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let _again = crate::served::serve(store.path(), work.path(), &["--jobs", "2"], &env);
    let batch = batch_record(store.path(), &project, &batch_id, 30);
    assert_eq!(batch["status"], "FAILED", "{batch}");
    let child = |id: &str| {
        batch["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["identifier"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(child("slow")["status"], "TIMED_OUT", "{batch}");
    assert_eq!(child("slow")["buildId"], slow.as_str());
    assert_eq!(child("quick")["status"], "SUCCEEDED", "{batch}");
    let record: Value =
        serde_json::from_slice(&std::fs::read(builds.join(&slow).join("build.json")).unwrap())
            .unwrap();
    assert_eq!(record["status"], "TIMED_OUT");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let last = pushed.api.statuses(&pushed.commit);
        let batch_status = last
            .iter()
            .find(|c| c.body["context"] == "pushbuild" && c.body["state"] != "pending");
        if let Some(status) = batch_status {
            assert_eq!(status.body["state"], "failure", "{:?}", status.body);
            break;
        }
        assert!(std::time::Instant::now() < until, "no batch status");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Under `serve`, a push whose buildspec is a graph (a → b, a → c, b + c → d): each child a
/// build of its own through the queue, in the graph's order; a status per child and one for
/// the batch; the batch's record in the store.
#[test]
fn under_serve_a_pushed_graph_runs_as_children_with_their_own_statuses() {
    let spec = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n    - identifier: b\n      \
                depend-on: [a]\n    - identifier: c\n      depend-on: [a]\n    - identifier: d\n      \
                depend-on: [b, c]\nphases:\n  build:\n    commands:\n      \
                - echo \"child=$CODEBUILD_BATCH_BUILD_IDENTIFIER\"\n";
    let pushed = Pushed::new(spec);
    let (api, commit, git_server) = (&pushed.api, &pushed.commit, &pushed.git);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = pushed.env();
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "3"], &env);
    let batch_id = pushed.deliver(&served.url, "batch-1");
    let project = git_server.project(hooks::REPOSITORY);
    let batch = batch_record(store.path(), &project, &batch_id, 60);
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    // The batch's page: each child with its state, and the graph's four arrows.
    let page =
        reqwest::blocking::get(format!("{}/batches/{project}/{batch_id}", served.url)).unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    for id in ["a", "b", "c", "d"] {
        assert!(
            page.contains(&format!("data-id=\"{id}\" data-status=\"SUCCEEDED\"")),
            "{page}"
        );
    }
    assert_eq!(page.matches("class=\"edge\"").count(), 4, "{page}");
    for (from, to) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
        assert!(page.contains(&format!("data-from=\"{from}\" data-to=\"{to}\"")));
    }
    let children = batch["children"].as_array().unwrap();
    assert_eq!(children.len(), 4);
    let record = |id: &str| -> Value {
        let child = children.iter().find(|c| c["identifier"] == id).unwrap();
        let build = child["buildId"].as_str().unwrap();
        let path = store
            .path()
            .join("builds")
            .join(&project)
            .join(build)
            .join("build.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    for (before, after) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
        let (x, y) = (record(before), record(after));
        assert!(
            x["end_time"].as_str() <= y["start_time"].as_str(),
            "{before} ended before {after} began"
        );
    }
    // The push's own build names the batch; it ran nothing and cost nothing.
    let push = store
        .path()
        .join("builds")
        .join(&project)
        .join(&batch_id)
        .join("build.json");
    let push: Value = serde_json::from_slice(&std::fs::read(push).unwrap()).unwrap();
    assert_eq!(push["billed_minutes"], 0);
    assert_eq!(push["batch"], batch_id.as_str());
    // Its page links the batch's.
    let page = reqwest::blocking::get(format!("{}/builds/{project}/{batch_id}", served.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains(&format!("href=\"/batches/{project}/{batch_id}\"")),
        "{page}"
    );
    assert!(
        push["skip_reason"]
            .as_str()
            .unwrap()
            .contains("runs as batch"),
        "{push}"
    );
    // A status per child, then the batch's on the push's own context.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let finals: Vec<(String, String)> = api
            .statuses(commit)
            .iter()
            .filter(|c| c.body["state"] != "pending")
            .map(|c| {
                (
                    c.body["context"].as_str().unwrap_or_default().to_string(),
                    c.body["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut contexts: Vec<&str> = finals.iter().map(|(c, _)| c.as_str()).collect();
        contexts.sort_unstable();
        if contexts.len() >= 5 {
            assert_eq!(
                contexts,
                [
                    "pushbuild",
                    "pushbuild/a",
                    "pushbuild/b",
                    "pushbuild/c",
                    "pushbuild/d"
                ],
                "{finals:?}"
            );
            assert!(
                finals.iter().all(|(_, state)| state == "success"),
                "{finals:?}"
            );
            break;
        }
        assert!(std::time::Instant::now() < until, "statuses: {finals:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A child's build record and log, from the batch's record.
fn child_build(store: &Path, project: &str, child: &Value) -> (Value, String) {
    let dir = store
        .join("builds")
        .join(project)
        .join(child["buildId"].as_str().expect("a build"));
    let record = serde_json::from_slice(&std::fs::read(dir.join("build.json")).unwrap()).unwrap();
    (
        record,
        std::fs::read_to_string(dir.join("build.log")).unwrap(),
    )
}

/// Under one `serve` (`--jobs 4`): a 2 × 2 matrix builds each combination; a fan-out of four
/// runs each test file exactly once; `fast-fail` stops the child still running when one fails
/// (one failing with `ignore-failure` does not count); a cycle fails the push's build before
/// anything runs, naming it.
#[test]
fn under_serve_a_matrix_a_fanout_fast_fail_and_a_cycle() {
    let matrix = "version: 0.2\nbatch:\n  build-matrix:\n    dynamic:\n      env:\n        variables:\n          \
                  OS: [linux, mac]\n          PY: ['3.11', '3.12']\nphases:\n  build:\n    commands:\n      \
                  - echo \"combo=$OS-$PY\"\n";
    let fanout = "version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 4\nphases:\n  build:\n    commands:\n      \
                  - codebuild-tests-run --test-command 'bash run-tests.sh' --files-search \
                  \"codebuild-glob-search 'tests/**/*_test.sh'\" --sharding-strategy stability\n";
    let mut fanout_files = vec![(
        "run-tests.sh".to_string(),
        "for f in \"$@\"; do echo \"ran $f\"; done\n".to_string(),
    )];
    for n in 0..9 {
        fanout_files.push((format!("tests/group{}/{n}_test.sh", n % 2), String::new()));
    }
    let fast = "version: 0.2\nbatch:\n  fast-fail: true\n  build-list:\n    - identifier: slow\n      \
                env:\n        variables:\n          WAIT: '600'\n    - identifier: flaky\n      \
                ignore-failure: true\n      env:\n        variables:\n          WAIT: '0'\n    \
                - identifier: broken\n      env:\n        variables:\n          WAIT: '1'\nphases:\n  \
                build:\n    commands:\n      - sleep $WAIT\n      - if [ \"$WAIT\" != 600 ]; then exit 1; fi\n";
    let cycle = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n    \
                 - identifier: b\n      depend-on: [a]\nphases:\n  build:\n    commands: [echo]\n";
    let pushed = Pushed::branches(&[
        ("main", matrix, &[]),
        ("fanout", fanout, &fanout_files),
        ("fast", fast, &[]),
        ("cycle", cycle, &[]),
    ]);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "4"], &pushed.env());
    let project = pushed.git.project(hooks::REPOSITORY);
    let ids: Vec<String> = ["main", "fanout", "fast", "cycle"]
        .iter()
        .map(|branch| pushed.deliver_branch(&served.url, branch, &format!("mixed-{branch}")))
        .collect();

    // The matrix: four children, one a combination.
    let batch = batch_record(store.path(), &project, &ids[0], 60);
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    let mut combos: Vec<String> = batch["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let (_, log) = child_build(store.path(), &project, c);
            log.lines()
                .find_map(|l| l.strip_prefix("combo="))
                .unwrap()
                .to_string()
        })
        .collect();
    combos.sort();
    assert_eq!(combos, ["linux-3.11", "linux-3.12", "mac-3.11", "mac-3.12"]);

    // The fan-out: every file once over the four shards.
    let batch = batch_record(store.path(), &project, &ids[1], 60);
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    assert_eq!(batch["children"].as_array().unwrap().len(), 4);
    let mut ran: Vec<String> = batch["children"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            let (_, log) = child_build(store.path(), &project, c);
            log.lines()
                .filter_map(|l| l.strip_prefix("ran ").map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    ran.sort();
    let mut want: Vec<String> = (0..9)
        .map(|n| format!("tests/group{}/{n}_test.sh", n % 2))
        .collect();
    want.sort();
    assert_eq!(ran, want);

    // fast-fail: flaky's failure is allowed; broken's stops slow.
    let batch = batch_record(store.path(), &project, &ids[2], 60);
    assert_eq!(batch["status"], "FAILED", "{batch}");
    assert_eq!(batch["stopping"], "fast-fail: `broken` ended FAILED");
    let states: Vec<&str> = batch["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["STOPPED", "FAILED", "FAILED"]);
    let (slow, log) = child_build(store.path(), &project, &batch["children"][0]);
    assert_eq!(slow["status"], "STOPPED");
    assert!(
        log.contains("Build stopped during phase BUILD: fast-fail"),
        "{log}"
    );

    // The cycle: the push's build failed before any child, naming it; no batch.
    let record = |id: &str| -> Option<Value> {
        let path = store
            .path()
            .join("builds")
            .join(&project)
            .join(id)
            .join("build.json");
        Some(serde_json::from_slice(&std::fs::read(path).ok()?).unwrap())
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let cycle = loop {
        if let Some(record) = record(&ids[3]) {
            break record;
        }
        assert!(
            std::time::Instant::now() < until,
            "the cycle's build never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(cycle["status"], "FAILED");
    let message = cycle["phases"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("a → b → a"), "{message}");
    assert!(
        !store
            .path()
            .join("batches")
            .join(&project)
            .join(&ids[3])
            .exists()
    );
}

/// A batch's children are not held to the queue's bound (`--queue 1`, one worker): every one of
/// six runs, one after the other.
#[test]
fn a_batch_wider_than_the_queue_runs_every_child() {
    let spec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: c1\n    - identifier: c2\n    \
                - identifier: c3\n    - identifier: c4\n    - identifier: c5\n    - identifier: c6\n\
                phases:\n  build:\n    commands: [echo child]\n";
    let pushed = Pushed::new(spec);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(
        store.path(),
        work.path(),
        &["--jobs", "1", "--queue", "1"],
        &pushed.env(),
    );
    let batch_id = pushed.deliver(&served.url, "wide-1");
    let project = pushed.git.project(hooks::REPOSITORY);
    let batch = batch_record(store.path(), &project, &batch_id, 60);
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    assert!(
        batch["children"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "SUCCEEDED" && c["buildId"].is_string()),
        "{batch}"
    );
}
