//! pushbuild itself killed (SIGKILL: nothing of its own runs after it) in the middle of a build:
//! the build's processes (its keeper, its shell, the command running) end with it, under
//! `pushbuild run`, `serve` and the function binary alike. Each build carries a variable with a
//! value of its own, so its processes are found through `/proc/<pid>/environ`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::function::{Harness, sample};
use crate::pushed::Pushed;

/// A buildspec whose build runs for ten minutes, its processes marked with `mark`.
fn spec(mark: &str) -> String {
    format!(
        "version: 0.2\nenv:\n  variables:\n    KILLED_TEST_MARK: {mark}\nphases:\n  build:\n    \
         commands:\n      - echo started\n      - sleep 600\n"
    )
}

/// The live processes whose environment holds `KILLED_TEST_MARK=<mark>`.
fn marked(mark: &str) -> Vec<u32> {
    let needle = format!("KILLED_TEST_MARK={mark}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'))
            });
            !zombie
                && environ
                    .split(|b| *b == 0)
                    .any(|var| var == needle.as_bytes())
        })
        .collect()
}

/// Waits until at least `count` processes carry `mark` (the build's keeper, shell and command).
fn wait_for_build(mark: &str, count: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    while marked(mark).len() < count {
        assert!(
            Instant::now() < until,
            "the build never ran: {:?}",
            marked(mark)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// After pushbuild's death: none of `mark`'s processes within a few seconds.
fn assert_all_gone(mark: &str, who: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left = marked(mark);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "{who} was killed, and its build's processes live on: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn new_mark() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

#[test]
fn a_killed_pushbuild_run_leaves_none_of_its_builds_processes() {
    let mark = new_mark();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("buildspec.yml"), spec(&mark)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("run")
        .arg(dir.path())
        .arg("--store")
        .arg(dir.path().join("store"))
        .env("PUSHBUILD_WORK_DIR", dir.path().join("work"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pushbuild runs");
    wait_for_build(&mark, 3);
    kill(child);
    assert_all_gone(&mark, "pushbuild run");
}

#[test]
fn a_killed_serve_leaves_none_of_its_builds_processes() {
    let mark = new_mark();
    let pushed = Pushed::new(&spec(&mark));
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &pushed.env());
    let _build = pushed.deliver(&served.url, "killed-serve-1");
    wait_for_build(&mark, 3);
    // Dropping it SIGKILLs it.
    drop(served);
    assert_all_gone(&mark, "serve");
}

#[test]
fn a_killed_function_leaves_none_of_its_builds_processes() {
    let mark = new_mark();
    let mut h = Harness::start(
        &[("ci/buildspec.yml", spec(&mark).as_bytes())],
        "a long build",
        &[],
    );
    let event = sample("codecommit-push.json", &h.head());
    h.hand(event, Duration::from_secs(900));
    wait_for_build(&mark, 3);
    h.kill_function();
    assert_all_gone(&mark, "the function");
}
