//! The EMF shape, and the invariant: a build's `BillableMinutes` records number its billed minutes.

use crate::names::BuildId;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use super::emf::emf_line_at;
use super::*;
use crate::cost::{Price, billed_minutes_in, build_cost_in};
use crate::executor::env::BuildInfo;
use crate::executor::{PhaseOutcome, RunStatus};
use crate::names::ProjectName;
use crate::record::{BuildRecord, Ending};
use crate::state::BuildState;

const NS: &str = "PushBuild";

fn record(
    status: BuildState,
    duration: Duration,
    minute: Duration,
    phases: &[(&str, u64)],
) -> BuildRecord {
    let cost = build_cost_in(duration, &Price::per_minute(0.002), minute);
    let now = Utc::now();
    let info = BuildInfo {
        initiator: "test".into(),
        ..BuildInfo::new(ProjectName::parse("demo").unwrap(), bid("b-1"), 1)
    };
    let run_status = match status {
        BuildState::Failed => RunStatus::Failed,
        BuildState::TimedOut => RunStatus::TimedOut,
        _ => RunStatus::Succeeded,
    };
    let phases = phases
        .iter()
        .map(|(phase, ms)| PhaseOutcome {
            phase: (*phase).to_string(),
            status: run_status,
            started: now,
            duration_ms: *ms,
            attempts: 1,
            context: None,
        })
        .collect();
    BuildRecord::new(
        &info,
        Some("refs/heads/main".into()),
        now,
        Ending::ran(status, phases),
        String::new(),
        cost,
    )
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
}

/// The records that carry `name`.
fn with_metric(sink: &MemorySink, name: &str) -> Vec<Value> {
    sink.lines()
        .iter()
        .map(|l| parse(l))
        .filter(|v| v.get(name).is_some())
        .collect()
}

fn start(sink: &Arc<MemorySink>, minute: Duration, started: Instant) -> RunningMeter {
    let sink: Arc<dyn MetricSink> = sink.clone();
    Meter::start(sink, NS, "demo", "main", "b-1", minute, started, None)
}

/// Checks one record's EMF shape: metadata, dimensions, and declared metrics = numeric keys.
#[track_caller]
fn check_shape(line: &str) -> Value {
    let v = parse(line);
    let directive = &v["_aws"]["CloudWatchMetrics"][0];
    assert!(v["_aws"]["Timestamp"].is_u64(), "{line}");
    assert_eq!(directive["Namespace"], NS, "{line}");
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([["Repository"], ["Repository", "Branch"]])
    );
    for key in ["Repository", "Branch", "BuildId"] {
        assert!(v[key].is_string(), "{key} missing: {line}");
    }
    let declared: Vec<&str> = directive["Metrics"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m["Name"].as_str()).collect())
        .unwrap_or_default();
    let numeric: Vec<&str> = v
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, x)| x.is_number() && *k != "Minute")
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut sorted = declared.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, numeric, "declared metrics vs numeric keys: {line}");
    for m in directive["Metrics"].as_array().into_iter().flatten() {
        assert!(
            ["Count", "Milliseconds", "None"].contains(&m["Unit"].as_str().unwrap_or("")),
            "{line}"
        );
    }
    v
}

#[test]
fn emf_records_declare_exactly_the_metrics_they_carry() {
    let sink = Arc::new(MemorySink::new());
    let minute = Duration::from_secs(60);
    let meter = start(&sink, minute, Instant::now());
    let rec = record(
        BuildState::Failed,
        Duration::from_millis(61_000),
        minute,
        &[("INSTALL", 10), ("BUILD", 60_000), ("UPLOAD_ARTIFACTS", 5)],
    );
    meter.finish(&rec);
    let sink_dyn: Arc<dyn MetricSink> = sink.clone();
    Meter::skipped(
        sink_dyn,
        NS,
        "demo",
        "",
        "b-2",
        "monthly budget of 100 minutes used",
    );
    let lines = sink.lines();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for line in &lines {
        println!("{line}");
        check_shape(line);
    }
    let end = parse(&lines[2]);
    assert_eq!(end["BilledMinutes"], 2);
    assert_eq!(end["BuildDuration"], 61_000);
    assert_eq!(end["BuildCost"], 0.004);
    assert_eq!(
        (end["BuildFailed"].as_u64(), end["BuildSucceeded"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (end["BuildTimedOut"].as_u64(), end["BuildSkipped"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(end["BUILDDuration"], 60_000);
    assert_eq!(end["UPLOAD_ARTIFACTSDuration"], 5);
    assert_eq!(end["Status"], "FAILED");
    let skipped = parse(&lines[3]);
    assert_eq!(
        (skipped["Branch"].as_str(), skipped["BuildSkipped"].as_u64()),
        (Some("-"), Some(1))
    );
    assert_eq!(skipped["BuildSucceeded"], 0);
}

#[test]
fn emf_keys_come_in_order_and_labels_win_over_clashing_names() {
    let labels = Labels::new("Team/CI", "demo", "v1.0", "b-9");
    let line = emf_line_at(
        1_700_000_000_000,
        &labels,
        &[("Branch", "x".into())],
        &[Metric::count("Repository", 7), Metric::count("Builds", 1)],
    );
    assert_eq!(
        line,
        r#"{"_aws":{"CloudWatchMetrics":[{"Dimensions":[["Repository"],["Repository","Branch"]],"Metrics":[{"Name":"Builds","Unit":"Count"}],"Namespace":"Team/CI"}],"Timestamp":1700000000000},"Repository":"demo","Branch":"v1.0","BuildId":"b-9","Builds":1}"#
    );
}

#[test]
fn branch_names_from_references() {
    for (reference, branch) in [
        (Some("refs/heads/main"), "main"),
        (Some("refs/heads/feature/x"), "feature/x"),
        (Some("refs/tags/v1.2"), "v1.2"),
        (Some("main"), "main"),
        (Some(" "), "-"),
        (None, "-"),
    ] {
        assert_eq!(branch_name(reference), branch, "{reference:?}");
    }
}

#[test]
fn a_130_ms_build_in_50_ms_minutes_has_its_billed_minutes_on_record() {
    // Given a 50 ms minute and a build that runs 130 ms,
    let minute = Duration::from_millis(50);
    let sink = Arc::new(MemorySink::new());
    let started = Instant::now();
    let mut meter = start(&sink, minute, started);
    std::thread::sleep(Duration::from_millis(130));
    // when its duration is measured after the meter stops,
    let duration = meter.stop().duration_since(started);
    let rec = record(BuildState::Succeeded, duration, minute, &[("BUILD", 130)]);
    meter.finish(&rec);
    // then there is one BillableMinutes record per billed minute (3, or more on a slow machine).
    let minutes = with_metric(&sink, "BillableMinutes");
    assert_eq!(minutes.len() as u64, billed_minutes_in(duration, minute));
    assert_eq!(minutes.len() as u64, rec.billed_minutes);
    assert!(rec.billed_minutes >= 3, "{duration:?}");
    let numbers: Vec<u64> = minutes
        .iter()
        .filter_map(|m| m["Minute"].as_u64())
        .collect();
    assert_eq!(numbers, (1..=rec.billed_minutes).collect::<Vec<_>>());
    assert_eq!(with_metric(&sink, "BilledMinutes").len(), 1);
}

#[test]
fn several_real_builds_keep_the_invariant() {
    for (minute_ms, build_ms) in [(1, 7), (5, 0), (5, 12), (20, 20), (20, 41)] {
        let minute = Duration::from_millis(minute_ms);
        let sink = Arc::new(MemorySink::new());
        let started = Instant::now();
        let mut meter = start(&sink, minute, started);
        std::thread::sleep(Duration::from_millis(build_ms));
        let duration = meter.stop().duration_since(started);
        let rec = record(BuildState::Succeeded, duration, minute, &[]);
        meter.finish(&rec);
        let count = with_metric(&sink, "BillableMinutes").len() as u64;
        assert_eq!(
            count, rec.billed_minutes,
            "minute {minute_ms} ms, build {build_ms} ms"
        );
    }
}

#[track_caller]
fn case(duration: Duration, billed: u64) {
    // A 60 s minute: the ticker emits minute 1 only, finish tops up the rest.
    let minute = Duration::from_secs(60);
    let sink = Arc::new(MemorySink::new());
    let meter = start(&sink, minute, Instant::now());
    let rec = record(BuildState::Succeeded, duration, minute, &[]);
    assert_eq!(rec.billed_minutes, billed, "{duration:?}");
    meter.finish(&rec);
    assert_eq!(
        with_metric(&sink, "BillableMinutes").len() as u64,
        billed,
        "{duration:?}"
    );
}

#[test]
fn minute_edges() {
    case(Duration::ZERO, 1);
    case(Duration::from_millis(59_999), 1);
    case(Duration::from_secs(60), 1);
    case(Duration::from_millis(60_001), 2);
    case(Duration::from_secs(150), 3);
}

#[test]
fn finish_tops_up_when_the_ticker_was_slow() {
    // Given a meter whose ticker has emitted only minute 1 (its minute is an hour),
    let minute = Duration::from_secs(3600);
    let sink = Arc::new(MemorySink::new());
    let meter = start(&sink, minute, Instant::now());
    assert_eq!(meter.minutes_emitted(), 1);
    // when the record says the build took just over four of those minutes,
    let rec = record(
        BuildState::TimedOut,
        minute * 4 + Duration::from_millis(1),
        minute,
        &[],
    );
    meter.finish(&rec);
    // then finish emits minutes 2 to 5, then the end record.
    let minutes: Vec<u64> = with_metric(&sink, "BillableMinutes")
        .iter()
        .filter_map(|m| m["Minute"].as_u64())
        .collect();
    assert_eq!(minutes, vec![1, 2, 3, 4, 5]);
    let end = with_metric(&sink, "BilledMinutes");
    assert_eq!((end.len(), end[0]["BuildTimedOut"].as_u64()), (1, Some(1)));
}

#[test]
fn finish_never_emits_more_than_the_billed_minutes() {
    // Given a ticker that got ahead of a record measured too early (a misuse),
    let minute = Duration::from_millis(2);
    let sink = Arc::new(MemorySink::new());
    let started = Instant::now();
    let mut meter = start(&sink, minute, started);
    std::thread::sleep(Duration::from_millis(15));
    meter.stop();
    let before = with_metric(&sink, "BillableMinutes").len();
    assert!(before >= 2, "{before}");
    // when it finishes with a one-minute record,
    meter.finish(&record(
        BuildState::Succeeded,
        Duration::from_millis(1),
        minute,
        &[],
    ));
    // then no minute is added.
    assert_eq!(with_metric(&sink, "BillableMinutes").len(), before);
}

#[test]
fn a_dropped_meter_stops_ticking() {
    let minute = Duration::from_millis(1);
    let sink = Arc::new(MemorySink::new());
    drop(start(&sink, minute, Instant::now()));
    let after_drop = sink.lines().len();
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(sink.lines().len(), after_drop);
}

#[test]
fn skipped_emits_one_record() {
    let sink = Arc::new(MemorySink::new());
    let sink_dyn: Arc<dyn MetricSink> = sink.clone();
    Meter::skipped(sink_dyn, NS, "demo", "main", "b-3", "budget");
    let lines = sink.lines();
    assert_eq!(lines.len(), 1);
    let v = check_shape(&lines[0]);
    assert_eq!(
        (v["BuildSkipped"].as_u64(), v["Reason"].as_str()),
        (Some(1), Some("budget"))
    );
    assert!(v.get("BillableMinutes").is_none());
    NullSink.emit("dropped");
}

/// Grants the first `grant` minutes and records every minute asked for.
struct Reserver {
    grant: u64,
    asked: std::sync::Mutex<Vec<(u64, Instant)>>,
}

impl Reserve for Reserver {
    fn minute(&self, minute: u64) -> bool {
        self.asked.lock().unwrap().push((minute, Instant::now()));
        minute <= self.grant
    }
}

#[test]
fn minutes_are_reserved_before_they_start_and_none_is_emitted_past_a_refusal() {
    let minute = Duration::from_millis(100);
    let sink = Arc::new(MemorySink::default());
    let reserver = Arc::new(Reserver {
        grant: 3,
        asked: std::sync::Mutex::default(),
    });
    let started = Instant::now();
    let dyn_sink: Arc<dyn MetricSink> = sink.clone();
    let mut meter = Meter::start(
        dyn_sink,
        NS,
        "demo",
        "main",
        "b-1",
        minute,
        started,
        Some(reserver.clone()),
    );
    std::thread::sleep(minute * 6);
    meter.stop();
    assert_eq!(meter.minutes_reserved(), Some(3));
    assert_eq!(meter.minutes_emitted(), 3);
    let asked = reserver.asked.lock().unwrap().clone();
    // Minute 1 came reserved; 2 and 3 were granted and 4 refused; nothing was asked after that.
    let minutes: Vec<u64> = asked.iter().map(|(m, _)| *m).collect();
    assert_eq!(minutes, [2, 3, 4]);
    // Each is asked for ahead of its start (a tenth of a minute), unless the machine is slower
    // than that: never a whole minute late.
    for (m, at) in &asked {
        let begins = started + minute * (*m as u32 - 1);
        assert!(
            *at < begins + minute,
            "minute {m} was asked for a minute late"
        );
    }
    assert_eq!(with_metric(&sink, "BillableMinutes").len(), 3);
}

/// A build id the test knows is valid.
fn bid(id: &str) -> BuildId {
    BuildId::parse(id).expect("a build id")
}
