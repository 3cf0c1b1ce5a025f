//! Batch plans from buildspecs: lists, graphs in order, matrices' combinations, fan-outs'
//! shards, and each mistake named before anything runs; the fan-out's tools on real files.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::state::BuildState;

fn planned(batch: &str) -> Result<Vec<Child>, String> {
    let text = format!("version: 0.2\nbatch:\n{batch}phases:\n  build:\n    commands: [echo]\n");
    let parsed = crate::buildspec::parse("buildspec.yml", &text).map_err(|e| e.to_string())?;
    plan(parsed.spec.batch.as_ref().expect("a batch"))
}

fn ids(children: &[Child]) -> Vec<&str> {
    children.iter().map(|c| c.identifier.as_str()).collect()
}

#[test]
fn a_list_runs_its_tasks_with_their_own_buildspecs_and_variables() {
    let children = planned(
        "  fast-fail: true\n  build-list:\n    - identifier: unit\n      env:\n        \
         variables:\n          SUITE: unit\n    - identifier: lint\n      buildspec: ci/lint.yml\n      \
         ignore-failure: true\n",
    )
    .unwrap();
    assert_eq!(ids(&children), ["unit", "lint"]);
    assert_eq!(
        children[0].env(),
        [
            ("SUITE".to_string(), "unit".to_string()),
            (IDENTIFIER_VAR.to_string(), "unit".to_string())
        ]
    );
    assert_eq!(children[1].buildspec.as_deref(), Some("ci/lint.yml"));
    assert!(children[1].ignore_failure);
    let ends = |a: BuildState, b: BuildState| {
        let mut record = BatchRecord::new("b-1", "p", false, &children);
        schedule(
            &mut record,
            2,
            |i| (None, if i == 0 { a } else { b }),
            |_| {},
        );
        record.status
    };
    assert_eq!(
        ends(BuildState::Succeeded, BuildState::Failed),
        BuildState::Succeeded
    );
    assert_eq!(
        ends(BuildState::Failed, BuildState::Succeeded),
        BuildState::Failed
    );
}

#[test]
fn a_graph_runs_each_task_after_what_it_depends_on() {
    // a → b, a → c, b + c → d, written out of order.
    let children = planned(
        "  build-graph:\n    - identifier: d\n      depend-on: [b, c]\n    - identifier: b\n      \
         depend-on: [a]\n    - identifier: a\n    - identifier: c\n      depend-on:\n        - a\n",
    )
    .unwrap();
    assert_eq!(ids(&children), ["a", "b", "c", "d"]);
    assert_eq!(children[3].depend_on, ["b", "c"]);
}

#[test]
fn mistakes_in_a_graph_are_named_before_anything_runs() {
    let cycle = planned(
        "  build-graph:\n    - identifier: a\n      depend-on: [c]\n    - identifier: b\n      \
         depend-on: [a]\n    - identifier: c\n      depend-on: [b]\n    - identifier: e\n",
    )
    .unwrap_err();
    assert_eq!(cycle, "batch.build-graph: a cycle: a → c → b → a");
    let unknown =
        planned("  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [z]\n")
            .unwrap_err();
    assert_eq!(
        unknown,
        "batch.build-graph[1] (`b`): depend-on `z` names no task"
    );
    let twice = planned("  build-list:\n    - identifier: a\n    - identifier: a\n").unwrap_err();
    assert_eq!(
        twice,
        "batch.build-list[1] (line 5): identifier `a` is used twice"
    );
    let shape = planned("  build-list:\n    - identifier: a-b\n").unwrap_err();
    assert!(
        shape.contains("identifier `a-b` may only have letters"),
        "{shape}"
    );
    let missing = planned("  build-list:\n    - buildspec: x.yml\n").unwrap_err();
    assert!(
        missing.contains("batch.build-list[0]") && missing.contains("no `identifier`"),
        "{missing}"
    );
    let compute = planned(
        "  build-list:\n    - identifier: a\n      env:\n        compute-type: CUSTOM_INSTANCE_TYPE\n",
    )
    .unwrap_err();
    assert!(
        compute.starts_with(
            "batch.build-list[0].env.compute-type: `CUSTOM_INSTANCE_TYPE` has no equivalent"
        ),
        "{compute}"
    );
}

#[test]
fn a_matrix_is_every_combination_with_its_static_part() {
    let children = planned(
        "  build-matrix:\n    static:\n      ignore-failure: true\n      env:\n        variables:\n          \
         MODE: ci\n    dynamic:\n      buildspec: [a.yml, b.yml]\n      env:\n        variables:\n          \
         PY: ['3.11', '3.12']\n",
    )
    .unwrap();
    assert_eq!(
        ids(&children),
        ["matrix_1", "matrix_2", "matrix_3", "matrix_4"]
    );
    let combos: Vec<(Option<&str>, &str)> = children
        .iter()
        .map(|c| (c.buildspec.as_deref(), c.variables[1].1.as_str()))
        .collect();
    assert_eq!(
        combos,
        [
            (Some("a.yml"), "3.11"),
            (Some("a.yml"), "3.12"),
            (Some("b.yml"), "3.11"),
            (Some("b.yml"), "3.12")
        ]
    );
    assert!(
        children
            .iter()
            .all(|c| c.ignore_failure && c.variables[0].1 == "ci")
    );
    let big = planned(
        "  build-matrix:\n    dynamic:\n      env:\n        variables:\n          A: [1,2,3,4,5,6,7,8,9,10,11]\n          \
         B: [1,2,3,4,5,6,7,8,9,10]\n",
    )
    .unwrap_err();
    assert_eq!(
        big,
        "batch.build-matrix: 110 builds, more than the 100 a batch may have"
    );
}

#[test]
fn a_fanout_is_its_shards_and_its_parallelism_is_checked() {
    let children = planned("  build-fanout:\n    parallelism: 3\n").unwrap();
    assert_eq!(ids(&children), ["shard_0", "shard_1", "shard_2"]);
    let env = children[2].env();
    assert!(env.contains(&(SHARD_INDEX_VAR.to_string(), "2".to_string())));
    assert!(env.contains(&(SHARD_COUNT_VAR.to_string(), "3".to_string())));
    let zero = planned("  build-fanout:\n    parallelism: 0\n").unwrap_err();
    assert!(
        zero.contains("batch.build-fanout.parallelism") && zero.contains("1 or more"),
        "{zero}"
    );
}

/// Runs `codebuild-tests-run` in `src` as shard `index` of `count`; the files its test
/// command was given.
fn shard_files(tools: &Path, src: &Path, strategy: &str, index: u64, count: u64) -> Vec<String> {
    let out = Command::new(tools.join(tools::TESTS_RUN))
        .args([
            "--test-command",
            "printf '%s\\n' \"$CODEBUILD_CURRENT_SHARD_FILES\" > shard.env; printf '%s\\n'",
            "--files-search",
            "codebuild-glob-search 'tests/**/test_*.py'",
            "--sharding-strategy",
            strategy,
        ])
        .current_dir(src)
        .env("PATH", format!("{}:/usr/bin:/bin", tools.display()))
        .env(SHARD_INDEX_VAR, index.to_string())
        .env(SHARD_COUNT_VAR, count.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let given: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    if !given.is_empty() {
        let exported = std::fs::read_to_string(src.join("shard.env")).unwrap();
        assert_eq!(exported.trim_end().lines().collect::<Vec<_>>(), given);
    }
    given
}

#[test]
fn four_shards_run_every_test_file_exactly_once_by_either_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools");
    tools::install(&tools).unwrap();
    let src = dir.path().join("src");
    let mut all = BTreeSet::new();
    for n in 0..10 {
        let file = format!("tests/pkg{}/test_{n} x.py", n % 3);
        std::fs::create_dir_all(src.join(&file).parent().unwrap()).unwrap();
        std::fs::write(src.join(&file), "").unwrap();
        all.insert(file);
    }
    std::fs::write(src.join("tests/helper.py"), "").unwrap();
    for strategy in ["equal-distribution", "stability"] {
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for index in 0..4 {
            let files = shard_files(&tools, &src, strategy, index, 4);
            sizes.push(files.len());
            seen.extend(files);
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 10, "{strategy}: {seen:?}");
        assert_eq!(unique, all, "{strategy}");
        if strategy == "equal-distribution" {
            assert_eq!(sizes, [2, 3, 2, 3]);
        }
    }
    // Not a shard: every file.
    assert_eq!(shard_files(&tools, &src, "stability", 0, 1).len(), 10);
    let out = Command::new(tools.join(tools::TESTS_RUN))
        .args([
            "--test-command",
            "true",
            "--files-search",
            "true",
            "--sharding-strategy",
            "random",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("'random' is not equal-distribution or stability")
    );
}

#[test]
fn children_wait_for_their_dependencies_and_a_failure_skips_what_waits_on_it() {
    use std::sync::Mutex;
    let children = planned(
        "  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [a]\n    \
         - identifier: c\n      depend-on: [a]\n    - identifier: d\n      depend-on: [b, c]\n",
    )
    .unwrap();
    let order = Mutex::new(Vec::new());
    let mut record = BatchRecord::new("b-1", "p", false, &children);
    schedule(
        &mut record,
        4,
        |i| {
            order.lock().unwrap().push(children[i].identifier.clone());
            let status = if children[i].identifier == "c" {
                BuildState::Failed
            } else {
                BuildState::Succeeded
            };
            (Some(format!("build-{i}")), status)
        },
        |_| {},
    );
    let order = order.into_inner().unwrap();
    assert_eq!(order[0], "a");
    assert_eq!(order.len(), 3, "d never runs: {order:?}");
    assert_eq!(record.children[3].status, BuildState::Skipped);
    assert_eq!(
        record.children[3].reason.as_deref(),
        Some("depends on `c`, which did not succeed")
    );
    assert_eq!(record.children[1].build_id.as_deref(), Some("build-1"));
    assert_eq!(record.status, BuildState::Failed);
    assert!(record.end_time.is_some());
}

#[test]
fn fast_fail_skips_what_has_not_started() {
    let children = planned(
        "  fast-fail: true\n  build-list:\n    - identifier: a\n    - identifier: b\n    - identifier: c\n",
    )
    .unwrap();
    // One at a time: a fails, so b and c never start.
    let mut record = BatchRecord::new("b-1", "p", true, &children);
    schedule(
        &mut record,
        1,
        |i| {
            let status = if i == 0 {
                BuildState::Failed
            } else {
                BuildState::Succeeded
            };
            (None, status)
        },
        |_| panic!("nothing runs when a fails"),
    );
    let statuses: Vec<BuildState> = record.children.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [BuildState::Failed, BuildState::Skipped, BuildState::Skipped]
    );
    assert_eq!(
        record.children[1].reason.as_deref(),
        Some("fast-fail: `a` ended FAILED")
    );
}

#[test]
fn two_children_ending_at_once_start_what_waited_once_and_close_the_batch_once() {
    // b and c wait on a; d on both. Each end is applied to the state as the index applies it:
    // one after the other, each seeing the last.
    let children = planned(
        "  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [a]\n    \
         - identifier: c\n      depend-on: [a]\n    - identifier: d\n      depend-on: [b, c]\n",
    )
    .unwrap();
    let mut record = BatchRecord::new("b-1", "p", false, &children);
    assert_eq!(record.advance(None).start, [0]);
    assert_eq!(record.end("a", BuildState::Succeeded, None).start, [1, 2]);
    let first = record.end("b", BuildState::Succeeded, None);
    assert_eq!(first, Step::default(), "d still waits on c");
    let second = record.end("c", BuildState::Succeeded, None);
    assert_eq!(second.start, [3], "d starts once, from the second end");
    // c's end reported again (a delivery twice): nothing starts, nothing closes.
    assert_eq!(
        record.end("c", BuildState::Succeeded, None),
        Step::default()
    );
    let last = record.end("d", BuildState::Succeeded, None);
    assert_eq!(last.closed, Some(BuildState::Succeeded));
    assert_eq!(record.end("d", BuildState::Failed, None), Step::default());
    assert_eq!(record.status, BuildState::Succeeded);
}

#[test]
fn fast_fail_asks_the_running_children_to_stop_once() {
    let children = planned(
        "  fast-fail: true\n  build-list:\n    - identifier: a\n    - identifier: b\n    - identifier: c\n",
    )
    .unwrap();
    // Two at a time: a fails while b runs; b runs until it is asked to stop; c never starts.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let rx = std::sync::Mutex::new(rx);
    let asked = std::sync::Mutex::new(Vec::new());
    let mut record = BatchRecord::new("b-1", "p", true, &children);
    schedule(
        &mut record,
        2,
        |i| match i {
            0 => (None, BuildState::Failed),
            _ => {
                let why = rx.lock().unwrap().recv().unwrap();
                assert!(why.starts_with("fast-fail"));
                (None, BuildState::Stopped)
            }
        },
        |why| {
            asked.lock().unwrap().push(why.to_string());
            tx.send(why.to_string()).unwrap();
        },
    );
    assert_eq!(asked.into_inner().unwrap(), ["fast-fail: `a` ended FAILED"]);
    let statuses: Vec<BuildState> = record.children.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [BuildState::Failed, BuildState::Stopped, BuildState::Skipped]
    );
    assert_eq!(record.status, BuildState::Failed);
}
