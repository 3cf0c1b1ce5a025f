//! Batch builds through `pushbuild run`: a graph run in its order, a 2 × 2 matrix, a fan-out of
//! four whose `codebuild-tests-run` runs every test file exactly once, fast-fail (stopping what
//! runs) and ignore-failure, and a cycle refused before anything runs; under `serve`: a graph,
//! and a child killed mid-way closed by the sweep with its batch; the batch's state in both
//! indexes when children end at once.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::hooks;

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

/// Under `serve`, a push whose buildspec is a graph (a → b, a → c, b + c → d): each child a
/// build of its own through the queue, in the graph's order; a status per child and one for
/// the batch; the batch's record in the store.
/// A repository holding one commit of a buildspec, on a git server, with the GitHub API
/// stand-in that takes its statuses.
struct Pushed {
    _repos: tempfile::TempDir,
    git: crate::git_server::GitServer,
    api: crate::github_api::GitHubApi,
    commit: String,
}

impl Pushed {
    fn new(spec: &str) -> Pushed {
        use crate::git_server::{GitServer, git, publish};
        let (repos, work_tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        crate::codecommit_standin::init_repo(work_tree.path());
        std::fs::write(work_tree.path().join("buildspec.yml"), spec).unwrap();
        git(work_tree.path(), &["add", "-A"]);
        git(work_tree.path(), &["commit", "-q", "-m", "a batch"]);
        let commit = git(work_tree.path(), &["rev-parse", "HEAD"]);
        publish(repos.path(), hooks::REPOSITORY, work_tree.path());
        let git = GitServer::start(repos.path(), hooks::TOKEN);
        let api = crate::github_api::GitHubApi::start(hooks::TOKEN);
        api.add_commits(&[&commit]);
        Pushed {
            _repos: repos,
            git,
            api,
            commit,
        }
    }

    /// `serve`'s settings for GitHub, here.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PUSHBUILD_GITHUB_WEBHOOK_SECRET", hooks::SECRET.to_string()),
            ("PUSHBUILD_GITHUB_TOKEN", hooks::TOKEN.to_string()),
            ("PUSHBUILD_GITHUB_URL", self.git.url()),
            ("PUSHBUILD_GITHUB_API_URL", self.api.url()),
        ]
    }

    /// Delivers the push of the commit to `serve` at `url`; the batch's id.
    fn deliver(&self, url: &str, delivery: &str) -> String {
        let body = hooks::push("refs/heads/main", &self.commit, "a batch");
        let (headers, bytes) = hooks::delivery("push", &body, delivery, hooks::SECRET);
        let mut request = reqwest::blocking::Client::new()
            .post(format!("{url}/webhooks/github"))
            .body(bytes);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer: Value = serde_json::from_str(&request.send().unwrap().text().unwrap()).unwrap();
        answer["builds"][0]["buildId"]
            .as_str()
            .expect("queued")
            .to_string()
    }
}

/// The batch's record once it has closed, waiting at most `seconds` for it.
fn batch_record(store: &Path, project: &str, batch_id: &str, seconds: u64) -> Value {
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
