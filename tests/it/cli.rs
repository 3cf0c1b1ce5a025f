//! The `pushbuild` binary as a user meets it: the README's main job on the sample project, and
//! bad input answered with a message and a non-zero status.

use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let rel = entry.path().strip_prefix(from).expect("inside");
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

#[test]
fn the_sample_project_builds_and_prints_its_summary() {
    let work = tempfile::tempdir().expect("temp dir");
    let project = work.path().join("hello");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &project,
    );
    let store = work.path().join("store");
    let output = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("run")
        .arg(&project)
        .arg("--store")
        .arg(&store)
        .env("NO_COLOR", "1")
        .output()
        .expect("pushbuild runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Entering phase BUILD",
        "greet: building hello 1.10.1",
        "SUCCEEDED",
        "hello-1.10.1.zip",
        "report.zip",
        "APP_VERSION=1.10.1",
        "BUILT_FILES=4",
        "Billed  1 minute(s)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    let records: Vec<_> = walkdir::WalkDir::new(store.join("builds/hello"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "build.json")
        .collect();
    assert_eq!(records.len(), 1);
}

#[test]
fn a_bad_buildspec_is_exit_status_2_with_its_line_and_nothing_stored() {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        work.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo: broken\n",
    )
    .expect("write");
    let store = work.path().join("store");
    let output = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("run")
        .arg(work.path())
        .arg("--store")
        .arg(&store)
        .output()
        .expect("pushbuild runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("buildspec.yml:5") && stderr.contains("phases.build.commands[0]"),
        "{stderr}"
    );
    assert!(!store.exists(), "nothing is written for bad input");
}
