use crate::names::BuildId;
use std::time::Duration;

use chrono::TimeZone;

use super::*;
use crate::cost::{Price, build_cost};
use crate::executor::env::BuildInfo;
use crate::names::ProjectName;
use crate::record::Ending;
use crate::state::BuildState;
use crate::store::LocalStore;

fn at(year: i32, month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, 0, 0)
        .single()
        .unwrap_or_default()
}

fn record(repository: &str, build_id: &str, status: BuildState, seconds: u64) -> BuildRecord {
    let cost = build_cost(Duration::from_secs(seconds), &Price::per_minute(0.002));
    let info = BuildInfo {
        initiator: "tests".into(),
        resolved_source_version: Some(
            CommitId::parse("abc1230000000000000000000000000000000000").unwrap(),
        ),
        ..BuildInfo::new(ProjectName::parse(repository).unwrap(), bid(build_id), 1)
    };
    let mut record = BuildRecord::new(
        &info,
        Some("refs/heads/main".into()),
        at(2026, 11, 30, 23),
        Ending::ran(status, Vec::new()),
        "file:///log".into(),
        cost,
    );
    record.end_time = at(2026, 12, 1, 0);
    record
}

fn entry(repository: &str, build_id: &str, status: BuildState, seconds: u64) -> LedgerEntry {
    // The ledger's report must cope with any name it finds (a comma, say), so the entry's
    // repository is set after the record is made.
    let mut entry =
        LedgerEntry::from_record(&record("any", build_id, BuildState::Succeeded, seconds));
    entry.repository = pn(repository);
    entry.status = status;
    entry
}

#[test]
fn an_entry_carries_the_records_bill() {
    let entry = LedgerEntry::from_record(&record("web", "b1", BuildState::TimedOut, 61));
    assert_eq!(entry.status, BuildState::TimedOut);
    assert_eq!(entry.billed_minutes, 2);
    assert_eq!(entry.duration_ms, 61_000);
    assert_eq!(entry.cost_usd, 0.004);
    assert_eq!(entry.price_usd_per_minute, 0.002);
    assert_eq!(entry.price_basis, "setting");
    assert_eq!(entry.codebuild_general1_small_usd, 0.01);
    assert_eq!(entry.reference.as_deref(), Some("refs/heads/main"));
    assert!(entry.is_failure());
    let json = serde_json::to_value(&entry).unwrap();
    assert_eq!(json["ref"], "refs/heads/main");
    assert_eq!(json["start_time"], "2026-11-30T23:00:00Z");
}

#[track_caller]
fn key_case(start: DateTime<Utc>, expected: &str) {
    let mut entry = entry("web", "b1", BuildState::Succeeded, 1);
    entry.start_time = start;
    assert_eq!(entry.key(), expected);
}

#[test]
fn keys_follow_the_utc_month_of_the_start() {
    key_case(at(2026, 11, 30, 23), "billing/2026/11/web/b1.json");
    key_case(at(2026, 1, 1, 0), "billing/2026/01/web/b1.json");
    let local = chrono::FixedOffset::east_opt(3600)
        .and_then(|tz| tz.with_ymd_and_hms(2026, 12, 1, 0, 30, 0).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    key_case(local, "billing/2026/11/web/b1.json");
    assert_eq!(month_prefix(987, 3), "billing/0987/03/");
}

#[test]
fn a_month_reads_back_and_sums_per_repository() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    for (repo, id, seconds) in [("web", "a", 30), ("web", "b", 90), ("api", "c", 200)] {
        write_entry(&store, &entry(repo, id, BuildState::Succeeded, seconds)).unwrap();
    }
    let mut other_month = entry("web", "d", BuildState::Succeeded, 30);
    other_month.start_time = at(2026, 10, 1, 0);
    write_entry(&store, &other_month).unwrap();

    let month = read_month(&store, 2026, 11).unwrap();
    let ids: Vec<&str> = month.iter().map(|e| e.build_id.as_str()).collect();
    assert_eq!(ids, ["c", "a", "b"]);
    let of = |repository: &str| {
        sum_minutes(month.iter().filter(|e| e.repository == pn(repository))).unwrap()
    };
    assert_eq!(sum_minutes(&month).unwrap(), 1 + 2 + 4);
    assert_eq!(of("web"), 3);
    assert_eq!(of("none"), 0);
    assert_eq!(
        sum_minutes(&read_month(&store, 2026, 10).unwrap()).unwrap(),
        1
    );
}

#[test]
fn a_malformed_entry_is_an_error_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    store
        .put(
            "billing/2026/11/web/bad.json",
            b"{not json",
            &ObjectMeta::default(),
        )
        .unwrap();
    let err = read_month(&store, 2026, 11).unwrap_err();
    assert!(matches!(err, BillingError::Malformed { .. }), "{err:?}");
    assert!(
        err.to_string().contains("billing/2026/11/web/bad.json"),
        "{err}"
    );
}

/// The error reading a month whose one entry is `json`.
fn read_error(json: &serde_json::Value) -> BillingError {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let key = "billing/2026/11/web/b1.json";
    store
        .put(key, json.to_string().as_bytes(), &ObjectMeta::default())
        .unwrap();
    read_month(&store, 2026, 11).unwrap_err()
}

#[test]
fn a_malformed_entry_names_the_field_and_what_was_expected() {
    let good = serde_json::to_value(entry("web", "b1", BuildState::Succeeded, 61)).unwrap();
    let cases = [
        ("billed_minutes", serde_json::json!("ten"), "expected u64"),
        ("billed_minutes", serde_json::json!(-1), "expected u64"),
        ("cost_usd", serde_json::Value::Null, "expected f64"),
        ("status", serde_json::json!("DONE"), "SUCCEEDED"),
        (
            "cost_usd",
            serde_json::json!(-0.5),
            "finite amount of 0 or more",
        ),
        (
            "price_usd_per_minute",
            serde_json::json!(-1e300),
            "finite amount",
        ),
    ];
    for (field, value, expected) in cases {
        let mut json = good.clone();
        json[field] = value;
        let message = read_error(&json).to_string();
        assert!(
            message.contains(&format!("`{field}`")) && message.contains(expected),
            "{field}: {message}"
        );
        assert!(message.contains("billing/2026/11/web/b1.json"), "{message}");
    }
}

#[test]
fn sums_that_would_overflow_are_errors_naming_the_entry() {
    let mut huge = entry("web", "b1", BuildState::Succeeded, 61);
    huge.billed_minutes = u64::MAX - 1;
    let mut more = entry("web", "b2", BuildState::Succeeded, 61);
    more.billed_minutes = 4;
    let entries = [huge, more];
    let err = Report::for_month(&entries, 2026, 11).unwrap_err();
    assert!(
        matches!(&err, BillingError::Overflow { key, what: "billed minutes" } if key.ends_with("web/b2.json")),
        "{err:?}"
    );
    assert!(sum_minutes(&entries).is_err());
    assert_eq!(sum_minutes(&entries[..1]).unwrap(), u64::MAX - 1);

    // Costs that are each finite but whose sum is not.
    let mut dear = entry("web", "b3", BuildState::Succeeded, 61);
    dear.cost_usd = f64::MAX;
    let err = Report::for_month(&[dear.clone(), dear], 2026, 11).unwrap_err();
    assert!(
        matches!(&err, BillingError::Overflow { what: "cost", .. }),
        "{err:?}"
    );
}

#[test]
fn a_sum_over_a_wrapping_ledger_is_an_error_not_a_total() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    for (id, minutes) in [("b1", u64::MAX - 1), ("b2", 4)] {
        let mut e = entry("web", id, BuildState::Succeeded, 61);
        e.start_time = at(2026, 11, 2, 0);
        e.billed_minutes = minutes;
        write_entry(&store, &e).unwrap();
    }
    let entries = read_month(&store, 2026, 11).unwrap();
    let err = sum_minutes(&entries).unwrap_err();
    assert!(matches!(err, BillingError::Overflow { .. }), "{err:?}");
}

/// The refusal for one more minute of `repository` with 7 minutes used in the month, 3 of them
/// web's and 4 api's.
#[track_caller]
fn budget_case(budget: &Budget, repository: &str, refused: Option<&str>) {
    let own = match repository {
        "web" => 3,
        "api" => 4,
        _ => 0,
    };
    let reason = crate::index::refusal(budget, repository, 7, own);
    assert_eq!(reason.as_deref(), refused);
}

#[test]
fn a_budget_refuses_builds_once_a_cap_is_reached() {
    let caps = |monthly, per: &[(&str, u64)]| Budget {
        monthly_minutes: monthly,
        per_repository: per.iter().map(|(r, m)| (r.to_string(), *m)).collect(),
    };
    budget_case(&Budget::default(), "web", None);
    budget_case(&caps(Some(8), &[]), "web", None);
    budget_case(
        &caps(Some(7), &[]),
        "web",
        Some("the month's 7 billed minutes reached the cap of 7 (PUSHBUILD_MONTHLY_MINUTES)"),
    );
    budget_case(
        &caps(Some(0), &[]),
        "new",
        Some("the month's 7 billed minutes reached the cap of 0 (PUSHBUILD_MONTHLY_MINUTES)"),
    );
    budget_case(&caps(None, &[("web", 4)]), "web", None);
    budget_case(
        &caps(None, &[("web", 3)]),
        "web",
        Some(
            "web's 3 billed minutes this month reached its cap of 3 (PUSHBUILD_REPOSITORY_MINUTES)",
        ),
    );
    // Another repository's cap does not bind this one.
    budget_case(&caps(Some(100), &[("api", 1)]), "web", None);
    budget_case(
        &caps(Some(100), &[("api", 4)]),
        "api",
        Some(
            "api's 4 billed minutes this month reached its cap of 4 (PUSHBUILD_REPOSITORY_MINUTES)",
        ),
    );
}

fn sample() -> Report {
    let entries = [
        entry("web", "a", BuildState::Succeeded, 30),
        entry("web", "b", BuildState::Failed, 90),
        entry("api", "c", BuildState::TimedOut, 200),
        entry("api", "d", BuildState::Skipped, 0),
        entry("docs.old", "e", BuildState::Succeeded, 10),
    ];
    Report::for_month(&entries, 2026, 11).unwrap()
}

#[test]
fn the_report_total_is_the_sum_of_its_rows() {
    let report = sample();
    assert_eq!(report.month, "2026-11");
    let names: Vec<&str> = report
        .repositories
        .iter()
        .map(|r| r.repository.as_str())
        .collect();
    assert_eq!(names, ["api", "docs.old", "web"]);
    let api = &report.repositories[0];
    assert_eq!(
        (api.builds, api.billed_minutes, api.failures, api.skipped),
        (2, 5, 1, 1)
    );
    assert_eq!(api.average_duration_s, 100.0);
    let total = &report.total;
    let sum = |f: fn(&Row) -> u64| report.repositories.iter().map(f).sum::<u64>();
    assert_eq!(total.builds, sum(|r| r.builds));
    assert_eq!(total.billed_minutes, sum(|r| r.billed_minutes));
    assert_eq!(total.failures, sum(|r| r.failures));
    assert_eq!(total.skipped, sum(|r| r.skipped));
    let cost: f64 = report.repositories.iter().map(|r| r.cost_usd).sum();
    assert!((total.cost_usd - cost).abs() < 1e-9);
    assert_eq!(
        (total.builds, total.billed_minutes, total.failures),
        (5, 9, 2)
    );
    assert_eq!(total.cost_usd, 0.018);
    assert_eq!(total.average_duration_s, 66.0);
}

#[test]
fn the_report_renders_as_csv_json_and_a_table() {
    let report = sample();
    let csv = report.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        [
            "repository,builds,billed_minutes,cost_usd,average_duration_s,failures,skipped",
            "api,2,5,0.01,100,1,1",
            "docs.old,1,1,0.002,10,0,0",
            "web,2,3,0.006,60,1,0",
            "TOTAL,5,9,0.018,66,2,1",
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["month"], "2026-11");
    assert_eq!(json["repositories"].as_array().map(Vec::len), Some(3));
    assert_eq!(json["total"]["builds"], 5);
    assert_eq!(json["total"]["billed_minutes"], 9);
    assert_eq!(json["total"]["cost_usd"], 0.018);
    assert!(json["total"].get("duration_ms").is_none());
    let table = report.to_table();
    assert!(
        table.starts_with("Billing for 2026-11\nrepository"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("TOTAL") && l.contains("0.0180")),
        "{table}"
    );
    assert_eq!(table.lines().count(), 7, "{table}");
}

/// A project name the test knows is valid.
fn pn(name: &str) -> ProjectName {
    ProjectName::parse(name).expect("a project name")
}

/// A build id the test knows is valid.
fn bid(id: &str) -> BuildId {
    BuildId::parse(id).expect("a build id")
}
