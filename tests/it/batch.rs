//! Batch builds through `pushbuild run`: a graph run in its order, a 2 × 2 matrix, a fan-out of
//! four whose `codebuild-tests-run` runs every test file exactly once, fast-fail (stopping what
//! runs) and ignore-failure, and a cycle refused before anything runs; the batch's state in
//! both indexes when children end at once. (Under `serve`: `batch_served.rs`.)

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `pushbuild run --jobs <jobs>` of `project`.
fn run(project: &Path, store: &Path, jobs: usize) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("run")
        .arg(project)
        .arg("--store")
        .arg(store)
        .args(["--jobs", &jobs.to_string()])
        .env("NO_COLOR", "1")
        .output()
        .expect("pushbuild runs")
}

/// A project folder named `name` holding `files`.
fn project(root: &Path, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = root.join(name);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// The batch's record, and each child's build record by identifier.
fn records(store: &Path, project: &str) -> (Value, Vec<(String, Value)>) {
    let dir = store.join("batches").join(project);
    let batch = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: Value =
        serde_json::from_slice(&std::fs::read(batch.join("batch.json")).unwrap()).unwrap();
    let children = record["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            let id = c["buildId"].as_str()?;
            let path = store
                .join("builds")
                .join(project)
                .join(id)
                .join("build.json");
            let build: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            Some((c["identifier"].as_str().unwrap().to_string(), build))
        })
        .collect();
    (record, children)
}

fn log(store: &Path, project: &str, build: &Value) -> String {
    let id = build["build_id"].as_str().unwrap();
    std::fs::read_to_string(
        store
            .join("builds")
            .join(project)
            .join(id)
            .join("build.log"),
    )
    .unwrap()
}

#[test]
fn a_graph_runs_each_child_after_what_it_depends_on() {
    let root = tempfile::tempdir().unwrap();
    let spec = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n    - identifier: b\n      \
                depend-on: [a]\n    - identifier: c\n      depend-on: [a]\n    - identifier: d\n      \
                depend-on: [b, c]\nphases:\n  build:\n    commands:\n      \
                - echo \"child=$CODEBUILD_BATCH_BUILD_IDENTIFIER\"\n      - sleep 0.2\n";
    let dir = project(root.path(), "graph", &[("buildspec.yml", spec)]);
    let store = root.path().join("store");
    let out = run(&dir, &store, 4);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (batch, children) = records(&store, "graph");
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    assert_eq!(children.len(), 4);
    let time = |id: &str, field: &str| {
        let (_, build) = children.iter().find(|(c, _)| c == id).unwrap();
        build[field].as_str().unwrap().to_string()
    };
    for (before, after) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
        assert!(
            time(before, "end_time") <= time(after, "start_time"),
            "{before} ended before {after} began"
        );
    }
    for (id, build) in &children {
        assert!(log(&store, "graph", build).contains(&format!("child={id}")));
    }
    // Each child is its own build, numbered.
    let mut numbers: Vec<u64> = children
        .iter()
        .map(|(_, b)| b["build_number"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3, 4]);
}

#[test]
fn a_matrix_builds_every_combination() {
    let root = tempfile::tempdir().unwrap();
    let spec = "version: 0.2\nbatch:\n  build-matrix:\n    dynamic:\n      env:\n        variables:\n          \
                OS: [linux, mac]\n          PY: ['3.11', '3.12']\nphases:\n  build:\n    commands:\n      \
                - echo \"combo=$OS-$PY\"\n";
    let dir = project(root.path(), "matrix", &[("buildspec.yml", spec)]);
    let store = root.path().join("store");
    assert!(run(&dir, &store, 2).status.success());
    let (batch, children) = records(&store, "matrix");
    assert_eq!(batch["status"], "SUCCEEDED");
    let mut combos: Vec<String> = children
        .iter()
        .map(|(_, b)| {
            let log = log(&store, "matrix", b);
            log.lines()
                .find_map(|l| l.strip_prefix("combo="))
                .unwrap()
                .to_string()
        })
        .collect();
    combos.sort();
    assert_eq!(combos, ["linux-3.11", "linux-3.12", "mac-3.11", "mac-3.12"]);
}

#[test]
fn a_fanout_of_four_runs_every_test_file_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let spec = "version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 4\nphases:\n  build:\n    commands:\n      \
                - codebuild-tests-run --test-command 'bash run-tests.sh' --files-search \
                \"codebuild-glob-search 'tests/**/*_test.sh'\" --sharding-strategy equal-distribution\n";
    let mut files = vec![
        ("buildspec.yml".to_string(), spec.to_string()),
        (
            "run-tests.sh".to_string(),
            "for f in \"$@\"; do echo \"ran $f\"; done\n".to_string(),
        ),
    ];
    for n in 0..9 {
        files.push((format!("tests/group{}/{n}_test.sh", n % 2), String::new()));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = project(root.path(), "fanout", &files);
    let store = root.path().join("store");
    assert!(run(&dir, &store, 4).status.success());
    let (batch, children) = records(&store, "fanout");
    assert_eq!(batch["status"], "SUCCEEDED");
    assert_eq!(children.len(), 4);
    let mut ran: Vec<String> = children
        .iter()
        .flat_map(|(_, b)| {
            log(&store, "fanout", b)
                .lines()
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
}

#[test]
fn fast_fail_skips_the_rest_ignore_failure_does_not_count_and_a_cycle_runs_nothing() {
    let root = tempfile::tempdir().unwrap();
    let spec = "version: 0.2\nbatch:\n  fast-fail: true\n  build-list:\n    - identifier: flaky\n      \
                ignore-failure: true\n      env:\n        variables:\n          FAIL: 'yes'\n    \
                - identifier: broken\n      env:\n        variables:\n          FAIL: 'yes'\n    \
                - identifier: later\nphases:\n  build:\n    commands:\n      \
                - if [ \"$FAIL\" = yes ]; then exit 1; fi\n";
    let dir = project(root.path(), "fast", &[("buildspec.yml", spec)]);
    let store = root.path().join("store");
    let out = run(&dir, &store, 1);
    assert_eq!(out.status.code(), Some(1));
    let (batch, _) = records(&store, "fast");
    assert_eq!(batch["status"], "FAILED");
    let statuses: Vec<&str> = batch["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["FAILED", "FAILED", "SKIPPED"]);
    assert_eq!(
        batch["children"][2]["reason"],
        "fast-fail: `broken` ended FAILED"
    );

    let cycle = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n    \
                 - identifier: b\n      depend-on: [a]\nphases:\n  build:\n    commands: [echo]\n";
    let dir = project(root.path(), "cycle", &[("buildspec.yml", cycle)]);
    let store = root.path().join("store-cycle");
    let out = run(&dir, &store, 2);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("batch.build-graph: a cycle: a → b → a"),
        "{stderr}"
    );
    assert!(!store.join("builds").exists(), "nothing ran");
}

/// Two children ending at the same moment, 20 times over: on `index`, exactly one of the two
/// ends starts what waited on both, and exactly one closes the batch.
fn ends_at_once_hold(index: std::sync::Arc<dyn pushbuild::index::Index>) {
    use pushbuild::batch::{BatchRecord, Child};
    use pushbuild::state::BuildState;
    use std::sync::Barrier;
    let child = |id: &str, deps: &[&str]| Child {
        identifier: id.to_string(),
        buildspec: None,
        variables: Vec::new(),
        depend_on: deps.iter().map(|d| d.to_string()).collect(),
        ignore_failure: false,
        compute_type: None,
        image: None,
        privileged_mode: false,
        shard: None,
    };
    let children = [child("b", &[]), child("c", &[]), child("d", &["b", "c"])];
    for round in 0..20 {
        let batch_id = format!("batch-{}-{round}", std::process::id());
        let record = BatchRecord::new(&batch_id, "proj", false, &children);
        assert!(index.open_batch(&record).expect("opened"));
        assert!(!index.open_batch(&record).expect("not twice"));
        let (step, _) = index
            .change_batch("proj", &batch_id, &mut |r| r.advance(None))
            .expect("changed")
            .expect("there");
        assert_eq!(step.start, [0, 1]);
        let barrier = Barrier::new(2);
        let steps: Vec<_> = std::thread::scope(|scope| {
            let ends: Vec<_> = ["b", "c"]
                .into_iter()
                .map(|id| {
                    let (index, barrier, batch_id) = (&index, &barrier, &batch_id);
                    scope.spawn(move || {
                        barrier.wait();
                        index
                            .change_batch("proj", batch_id, &mut |r| {
                                r.end(id, BuildState::Succeeded, None)
                            })
                            .expect("changed")
                            .expect("there")
                            .0
                    })
                })
                .collect();
            ends.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let starts: Vec<&Vec<usize>> = steps
            .iter()
            .map(|s| &s.start)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            starts,
            [&vec![2]],
            "round {round}: d started once: {steps:?}"
        );
        // d ends twice at once (a retried delivery): the batch closes once.
        let barrier = Barrier::new(2);
        let closes: Vec<_> = std::thread::scope(|scope| {
            let ends: Vec<_> = (0..2)
                .map(|_| {
                    let (index, barrier, batch_id) = (&index, &barrier, &batch_id);
                    scope.spawn(move || {
                        barrier.wait();
                        index
                            .change_batch("proj", batch_id, &mut |r| {
                                r.end("d", BuildState::Succeeded, None)
                            })
                            .expect("changed")
                            .expect("there")
                            .0
                            .closed
                    })
                })
                .collect();
            ends.into_iter().filter_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            closes,
            [BuildState::Succeeded],
            "round {round}: closed once"
        );
        let stored = index
            .batch("proj", &batch_id)
            .expect("read")
            .expect("there");
        assert_eq!(stored.status, BuildState::Succeeded);
    }
    assert!(
        index
            .batch("proj", "no-such-batch")
            .expect("read")
            .is_none()
    );
}

#[test]
fn two_children_ending_at_once_close_the_batch_once_on_both_indexes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = pushbuild::index::SqliteIndex::path_in(dir.path());
    let sqlite = pushbuild::index::SqliteIndex::open(&path).expect("the index");
    ends_at_once_hold(std::sync::Arc::new(sqlite));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dynamo = crate::dynamo_server::DynamoServer::shared().new_index(runtime.handle());
    ends_at_once_hold(std::sync::Arc::new(dynamo));
}

/// `fast-fail` with two builds at once: the one still running when the other fails is asked to
/// stop, its commands are killed, and it ends STOPPED with the reason; the batch FAILED.
#[test]
fn fast_fail_stops_the_running_children() {
    let root = tempfile::tempdir().unwrap();
    let spec = "version: 0.2\nbatch:\n  fast-fail: true\n  build-list:\n    - identifier: slow\n      \
                env:\n        variables:\n          WAIT: '600'\n    - identifier: broken\n      \
                env:\n        variables:\n          WAIT: '0.2'\nphases:\n  build:\n    commands:\n      \
                - sleep $WAIT\n      - if [ \"$WAIT\" != 600 ]; then exit 1; fi\n";
    let dir = project(root.path(), "stopping", &[("buildspec.yml", spec)]);
    let store = root.path().join("store");
    let out = run(&dir, &store, 2);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the running builds are asked to stop"),
        "{stdout}"
    );
    let (batch, children) = records(&store, "stopping");
    assert_eq!(batch["status"], "FAILED");
    let statuses: Vec<&str> = batch["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["STOPPED", "FAILED"]);
    let (_, slow) = children.iter().find(|(id, _)| id == "slow").unwrap();
    assert_eq!(slow["status"], "STOPPED");
    assert_eq!(slow["batch"], batch["batchId"]);
    let build = slow["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "BUILD")
        .unwrap();
    assert_eq!(build["status"], "STOPPED");
    assert_eq!(
        build["message"],
        "BUILD_STOPPED: fast-fail: `broken` ended FAILED"
    );
    assert!(log(&store, "stopping", slow).contains("Build stopped during phase BUILD"));
    // Stopped, not run to its end: the sleep of 600 s was cut short.
    assert!(slow["duration_ms"].as_u64().unwrap() < 60_000, "{slow}");
}

/// Eight children ending at once, each through an index of its own (as eight function
/// processes are): every end is applied and the batch closes once.
#[test]
fn eight_children_ending_at_once_close_the_batch_once_on_dynamodb() {
    use pushbuild::batch::{BatchRecord, Child};
    use pushbuild::state::BuildState;
    use std::sync::Barrier;
    let children: Vec<Child> = (0..8)
        .map(|i| Child {
            identifier: format!("shard_{i}"),
            buildspec: None,
            variables: Vec::new(),
            depend_on: Vec::new(),
            ignore_failure: false,
            compute_type: None,
            image: None,
            privileged_mode: false,
            shard: Some((i, 8)),
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let server = crate::dynamo_server::DynamoServer::shared();
    let index = server.new_index(runtime.handle());
    let batch_id = format!("eight-{}", std::process::id());
    let mut record = BatchRecord::new(&batch_id, "proj", false, &children);
    record.advance(None);
    assert!(pushbuild::index::Index::open_batch(&index, &record).expect("opened"));
    let table = index.table().to_string();
    let barrier = Barrier::new(8);
    let closes: Vec<Option<BuildState>> = std::thread::scope(|scope| {
        let ends: Vec<_> = (0..8)
            .map(|i| {
                let (barrier, batch_id, table) = (&barrier, &batch_id, &table);
                let handle = runtime.handle().clone();
                scope.spawn(move || {
                    let own = {
                        let _entered = handle.enter();
                        pushbuild::index::DynamoIndex::from_conf(
                            &server.sdk_config(),
                            table.clone(),
                        )
                        .expect("an index")
                    };
                    barrier.wait();
                    pushbuild::index::Index::change_batch(&own, "proj", batch_id, &mut |r| {
                        r.end(&format!("shard_{i}"), BuildState::Succeeded, None)
                    })
                    .expect("changed")
                    .expect("there")
                    .0
                    .closed
                })
            })
            .collect();
        ends.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let closed: Vec<_> = closes.into_iter().flatten().collect();
    assert_eq!(closed, [BuildState::Succeeded]);
}

/// The budget holds for a batch: each child takes its own first minute as it begins, so with
/// two minutes left of the month two children run and the third is SKIPPED, billed nothing,
/// and the batch is FAILED; the billing report counts the children as builds.
#[test]
fn a_batch_runs_what_the_budget_allows_and_the_report_counts_its_children() {
    let root = tempfile::tempdir().unwrap();
    let spec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: one\n    - identifier: two\n    \
                - identifier: three\nphases:\n  build:\n    commands: [echo child]\n";
    let dir = project(root.path(), "budgeted", &[("buildspec.yml", spec)]);
    let store = root.path().join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("run")
        .arg(&dir)
        .arg("--store")
        .arg(&store)
        .args(["--jobs", "1"])
        .env("NO_COLOR", "1")
        .env("PUSHBUILD_MONTHLY_MINUTES", "2")
        .output()
        .expect("pushbuild runs");
    assert_eq!(out.status.code(), Some(1));
    let (batch, children) = records(&store, "budgeted");
    assert_eq!(batch["status"], "FAILED", "{batch}");
    let statuses: Vec<&str> = batch["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["SUCCEEDED", "SUCCEEDED", "SKIPPED"]);
    let (_, three) = children.iter().find(|(id, _)| id == "three").unwrap();
    assert_eq!(three["billed_minutes"], 0);
    assert!(
        three["skip_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("PUSHBUILD_MONTHLY_MINUTES"),
        "{three}"
    );
    let report = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["billing", "--json", "--store"])
        .arg(&store)
        .output()
        .expect("pushbuild runs");
    assert!(report.status.success(), "{report:?}");
    let json: Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert_eq!(json["total"]["builds"], 3, "{json}");
    assert_eq!(json["total"]["billed_minutes"], 2, "{json}");
}

/// `PUSHBUILD_BATCH` as the other settings: `off` builds the buildspec once, a wrong value is
/// exit status 2 naming the setting.
#[test]
fn pushbuild_batch_off_builds_once_and_a_wrong_value_is_named() {
    let root = tempfile::tempdir().unwrap();
    let spec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n    - identifier: b\n\
                phases:\n  build:\n    commands: [echo once]\n";
    let dir = project(root.path(), "off", &[("buildspec.yml", spec)]);
    let with = |value: &str, store: &Path| {
        Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .arg("run")
            .arg(&dir)
            .arg("--store")
            .arg(store)
            .env("NO_COLOR", "1")
            .env("PUSHBUILD_BATCH", value)
            .output()
            .expect("pushbuild runs")
    };
    let store = root.path().join("store");
    let out = with("off", &store);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!store.join("batches").exists(), "no batch");
    let builds = std::fs::read_dir(store.join("builds/off")).unwrap().count();
    assert_eq!(builds, 1);
    let out = with("sometimes", &root.path().join("store-bad"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PUSHBUILD_BATCH: expected auto or off"),
        "{stderr}"
    );
}
