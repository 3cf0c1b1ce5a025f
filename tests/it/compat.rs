//! A local store written by pushbuild before builds carried typed identities (commit 2383e24:
//! `tests/fixtures/store-2383e24`, two builds of `app` in December 2026, one failing, made by
//! that commit's `pushbuild run`) still reads with today's code: its index, its records and
//! its ledger agree, its builds are listed, and the next build of the project takes the next
//! number.

use std::path::Path;
use std::process::Command;

use pushbuild::index::{Index, SqliteIndex};
use pushbuild::names::{BuildId, ProjectName};
use pushbuild::record::BuildRecord;
use pushbuild::state::BuildState;

const SUCCEEDED: &str = "20261206T215919Z-203f9ae3";
const FAILED: &str = "20261206T215919Z-44bdbe65";

/// A copy of the fixture store, to be written to.
fn old_store() -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-2383e24");
    let to = tempfile::tempdir().expect("temp dir");
    for item in walkdir::WalkDir::new(&from) {
        let item = item.expect("the fixture reads");
        let path = to
            .path()
            .join(item.path().strip_prefix(&from).expect("inside"));
        if item.file_type().is_dir() {
            std::fs::create_dir_all(&path).expect("a folder");
        } else {
            std::fs::copy(item.path(), &path).expect("a copy");
        }
    }
    to
}

fn pushbuild(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("pushbuild runs")
}

#[test]
fn a_store_written_before_typed_identities_reads_and_numbers_on() {
    let store = old_store();
    let dir = store.path().to_str().expect("a UTF-8 path");

    // The old index's entries read as typed ones.
    let index = SqliteIndex::open(&SqliteIndex::path_in(store.path())).expect("the old index");
    let app = ProjectName::parse("app").expect("a name");
    let entry = index
        .entry(&app, &BuildId::parse(FAILED).expect("an id"))
        .expect("reads")
        .expect("the failed build's entry");
    assert_eq!((entry.number, entry.state), (2, BuildState::Failed));
    let page = index.project_builds(&app, None, 10).expect("a page");
    assert_eq!(page.entries.len(), 2);

    // The old records read, and the ledger, the index and its sums agree.
    let record: BuildRecord = serde_json::from_slice(
        &std::fs::read(
            store
                .path()
                .join(format!("builds/app/{SUCCEEDED}/build.json")),
        )
        .expect("the old record"),
    )
    .expect("parses as today's record");
    assert_eq!(record.build_id.as_str(), SUCCEEDED);
    assert_eq!(record.status, BuildState::Succeeded);
    let verified = pushbuild(&["billing", "--store", dir, "--month", "2026-12", "--verify"]);
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let report = pushbuild(&["billing", "--store", dir, "--month", "2026-12", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert_eq!(report["total"]["builds"], 2);
    assert_eq!(report["total"]["failures"], 1);

    // The project's next build continues its numbers.
    let src = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo again\n",
    )
    .expect("a buildspec");
    let next = pushbuild(&[
        "run",
        src.path().to_str().expect("UTF-8"),
        "--project",
        "app",
        "--store",
        dir,
        "--json",
    ]);
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    let record: serde_json::Value = serde_json::from_slice(&next.stdout).expect("the record");
    assert_eq!(record["build_number"], 3, "{record}");
}
