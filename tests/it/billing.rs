//! The billing ledger through the real pipeline: 20 builds finishing at once, on the local
//! store and on an S3 server, leave 20 entries whose report adds up; the index's sums give the
//! same report, `billing --verify` finds them in agreement and names an entry removed by hand,
//! and an index rebuilt from the store gives the same report again; `pushbuild billing` prints
//! the same totals.

use std::path::Path;
use std::process::Command;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use pushbuild::billing::{self, Budget, Report};
use pushbuild::index::audit;
use pushbuild::index::{Books, Index};
use pushbuild::pipeline::{self, BuildIdentity, BuildJob, BuildSettings, Work};
use pushbuild::record::BuildRecord;
use pushbuild::state::BuildState;
use pushbuild::store::{LocalStore, Store};

use crate::dynamo_server::DynamoServer;
use crate::s3_server::S3Server;
use crate::support;

const BUILDS: usize = 20;
const REPOSITORIES: [&str; 2] = ["web", "api"];

/// Every test build starts in November 2026 (UTC), so the month never turns mid-test.
fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 15, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Build `build_id` of `repository`, started in November 2026, with `books`.
fn job(src: &Path, temp: &Path, books: &Books, repository: &str, build_id: String) -> BuildJob {
    let identity = BuildIdentity {
        start_time: start_time(),
        ..support::identity(repository, &build_id)
    };
    let settings = BuildSettings {
        books: books.clone(),
        ..support::settings(temp, 0.0016)
    };
    support::job(src, &settings, identity)
}

/// Runs 20 builds at once (one std thread each), every third one failing, in `dir`, with
/// `books`.
fn twenty_builds_at_once(store: &dyn Store, dir: &Path, books: &Books) -> Vec<BuildRecord> {
    let src = dir.join("src");
    let temp = dir.join("work");
    std::fs::create_dir_all(&src).expect("src");
    std::fs::create_dir_all(temp.join("home")).expect("home");
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built\n      - test \"$FAIL\" != yes\n";
    std::fs::write(src.join("buildspec.yml"), spec).expect("buildspec");
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..BUILDS)
            .map(|i| {
                let (src, temp) = (&src, &temp);
                scope.spawn(move || {
                    let repository = REPOSITORIES[i % 2];
                    let mut job = job(src, temp, books, repository, format!("b{i:02}"));
                    if let (Work::Run(ready), true) = (&mut job.work, i % 3 == 0) {
                        ready.overrides.push(("FAIL".into(), "yes".into()));
                    }
                    pipeline::run(&job, store)
                        .expect("pushbuild itself does not fail")
                        .record
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("the build thread"))
            .collect()
    })
}

/// The month holds exactly the builds' entries, and the report's totals are their sums; the
/// builds that ran at once got different numbers, 1 to 10 in each repository.
fn check_ledger(store: &dyn Store, records: &[BuildRecord]) -> Report {
    for repository in REPOSITORIES {
        let mut numbers: Vec<u64> = records
            .iter()
            .filter(|r| r.repository.as_str() == repository)
            .map(|r| r.build_number)
            .collect();
        numbers.sort_unstable();
        let expected: Vec<u64> = (1..=(BUILDS / 2) as u64).collect();
        assert_eq!(numbers, expected, "{repository}'s build numbers");
    }
    let entries = billing::read_month(store, 2026, 11).expect("the month reads");
    assert_eq!(entries.len(), BUILDS);
    let mut ids: Vec<&str> = entries.iter().map(|e| e.build_id.as_str()).collect();
    ids.sort_unstable();
    let mut expected: Vec<String> = (0..BUILDS).map(|i| format!("b{i:02}")).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    for record in records {
        let entry = entries
            .iter()
            .find(|e| e.build_id == record.build_id)
            .expect("an entry per build");
        assert_eq!(entry, &billing::LedgerEntry::from_record(record));
    }
    let report = Report::for_month(&entries, 2026, 11).unwrap();
    let minutes: u64 = entries.iter().map(|e| e.billed_minutes).sum();
    let cost: f64 = entries.iter().map(|e| e.cost_usd).sum();
    let failures = entries
        .iter()
        .filter(|e| e.status == BuildState::Failed)
        .count() as u64;
    assert_eq!(report.total.builds, BUILDS as u64);
    assert_eq!(report.total.billed_minutes, minutes);
    assert!((report.total.cost_usd - cost).abs() < 1e-9, "{report:?}");
    assert_eq!(report.total.failures, failures);
    assert_eq!(failures, 7, "builds 0, 3, ..., 18 fail");
    assert_eq!(report.repositories.len(), 2);
    let row_builds: u64 = report.repositories.iter().map(|r| r.builds).sum();
    assert_eq!(row_builds, BUILDS as u64);
    assert_eq!(billing::sum_minutes(&entries).expect("minutes"), minutes);
    report
}

/// The index's sums give the ledger's report; `verify` agrees, then names an entry removed by
/// hand; an index rebuilt from the store gives the same report.
fn check_index(store: &dyn Store, books: &Books, report: &Report, fresh: &dyn Index) {
    let index = books.index.as_ref();
    let sums = index.month_sums("2026-11").expect("the sums");
    let from_index = Report::from_sums("2026-11", &sums);
    assert_eq!(from_index.to_table(), report.to_table());
    assert_eq!(from_index.total.billed_minutes, report.total.billed_minutes);
    assert_eq!(
        audit::verify(store, index, 2026, 11).expect("verify runs"),
        Vec::<String>::new()
    );
    let rebuilt = audit::rebuild(store, fresh).expect("rebuild");
    assert_eq!(rebuilt.from_records, BUILDS as u64);
    let again = Report::from_sums("2026-11", &fresh.month_sums("2026-11").expect("sums"));
    assert_eq!(again.to_table(), report.to_table());
    // Rebuilding again adds nothing.
    assert_eq!(
        audit::rebuild(store, fresh).expect("rebuild").already,
        BUILDS as u64
    );
    // An entry removed by hand is named.
    let gone = billing::read_month(store, 2026, 11).expect("the month")[0].clone();
    store.delete(&gone.key()).expect("removed");
    let differences = audit::verify(store, index, 2026, 11).expect("verify runs");
    assert!(
        differences
            .iter()
            .any(|d| d.contains(gone.build_id.as_str()) && d.contains("no ledger entry")),
        "{differences:?}"
    );
    assert!(
        differences.iter().any(|d| d.contains("the month's total")),
        "{differences:?}"
    );
    billing::write_entry(store, &gone).expect("put back");
}

/// `pushbuild billing --month 2026-11 --json ARGS` with `env`: the printed totals.
fn cli_totals(args: &[&str], env: &[(&str, String)]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["billing", "--month", "2026-11", "--json"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("pushbuild runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    json["total"].clone()
}

fn check_cli_totals(total: &serde_json::Value, report: &Report) {
    assert_eq!(total["builds"], BUILDS as u64);
    assert_eq!(total["billed_minutes"], report.total.billed_minutes);
    let cost = total["cost_usd"].as_f64().unwrap_or(f64::NAN);
    assert!((cost - report.total.cost_usd).abs() < 1e-9, "{total}");
    assert_eq!(total["failures"], report.total.failures);
}

#[test]
fn billing_twenty_concurrent_builds_on_the_local_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::new(dir.path());
    // The store's own index, as `pushbuild run` keeps it.
    let books = support::books(dir.path(), Budget::default());
    let records = twenty_builds_at_once(&store, work.path(), &books);
    let report = check_ledger(&store, &records);
    let fresh = support::books(work.path(), Budget::default());
    check_index(&store, &books, &report, fresh.index.as_ref());
    let store_arg = dir.path().display().to_string();
    let total = cli_totals(&["--store", &store_arg], &[]);
    check_cli_totals(&total, &report);
    let verified = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args([
            "billing", "--month", "2026-11", "--verify", "--store", &store_arg,
        ])
        .output()
        .expect("pushbuild runs");
    assert!(verified.status.success(), "{verified:?}");
    // The README's sample: `cargo test --test it billing_twenty -- --nocapture`.
    println!("{}", report.to_table());
}

#[test]
fn billing_twenty_concurrent_builds_on_s3_and_dynamodb() {
    let server = S3Server::start();
    let store = server.store();
    let work = tempfile::tempdir().expect("temp dir");
    let dynamo = DynamoServer::shared();
    let books = Books::new(
        Arc::new(dynamo.new_index(&server.handle())),
        Budget::default(),
        std::time::Duration::from_secs(30),
    );
    let records = twenty_builds_at_once(&store, work.path(), &books);
    let report = check_ledger(&store, &records);
    let fresh = dynamo.new_index(&server.handle());
    check_index(&store, &books, &report, &fresh);
    let mut env = server.env();
    env.push(("PUSHBUILD_S3_PATH_STYLE", "true".to_string()));
    env.extend(dynamo.env());
    let table = dynamo.new_table();
    let rebuilt = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args([
            "index",
            "rebuild",
            "--bucket",
            &server.bucket,
            "--table",
            &table,
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("pushbuild runs");
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    let total = cli_totals(&["--bucket", &server.bucket, "--table", &table], &env);
    check_cli_totals(&total, &report);
}

#[test]
fn billing_cli_rejects_a_malformed_month() {
    for month in ["2026-13", "11-2026", "2026/11"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .args(["billing", "--store", "/nonexistent", "--month", month])
            .output()
            .expect("pushbuild runs");
        assert_eq!(out.status.code(), Some(2), "{month}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--month") && stderr.contains("YYYY-MM"),
            "{month}: {stderr}"
        );
    }
}
