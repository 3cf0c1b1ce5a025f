//! The budget holds under concurrency, on both indexes: 30 builds that start at once against a
//! cap of 10 minutes (a short test minute) bill at most 10 in all; the ones refused their first
//! minute are SKIPPED, the ones refused a later minute stop at the end of the last one they paid
//! for and end FAILED with the reason, their log and artifacts stored. Build numbers and claims
//! hold too, and a build whose process is killed is closed later as TIMED_OUT, billed the minutes
//! it reserved.
//!
//! SQLite is driven as users drive it: 30 `pushbuild run` processes on one store. DynamoDB (moto's
//! server) through the pipeline with the SDK's client, 30 threads.

use pushbuild::names::{BuildId, ProjectName};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pushbuild::billing::Budget;
use pushbuild::index::{Books, Entry, Grant, Index, SqliteIndex};
use pushbuild::pipeline::{self, BuildIdentity, BuildSettings, Metering};
use pushbuild::record::BuildRecord;
use pushbuild::state::BuildState;
use pushbuild::store::{LocalStore, Store};

use crate::dynamo_server::DynamoServer;
use crate::support;

const BUILDS: usize = 30;
const CAP: u64 = 10;
/// The test minute: long enough that 30 processes start within it on a loaded 2-core machine.
const MINUTE_MS: u64 = 1500;

/// Writes its artifact, then wants about four minutes.
const SPEC: &str = "version: 0.2
phases:
  build:
    commands:
      - echo made > out.txt
      - sleep 6
artifacts:
  files:
    - out.txt
";

fn source(root: &Path) -> std::path::PathBuf {
    let dir = root.join("proj");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("buildspec.yml"), SPEC).expect("write");
    dir
}

/// Every record in the store.
fn records(store: &dyn Store) -> Vec<BuildRecord> {
    store
        .list("builds/")
        .expect("the store lists")
        .into_iter()
        .filter(|k| k.ends_with("/build.json"))
        .map(|k| {
            serde_json::from_slice(&store.get(&k).expect("read").expect("there")).expect("a record")
        })
        .collect()
}

/// What must hold of the 30 builds' records, their logs and artifacts, and the index's sums.
fn check_the_cap_held(store: &dyn Store, index: &dyn Index) {
    let records = records(store);
    assert_eq!(records.len(), BUILDS, "every build has its record");
    let billed: u64 = records.iter().map(|r| r.billed_minutes).sum();
    assert!(
        billed <= CAP,
        "{billed} minutes billed against a cap of {CAP}"
    );
    assert!(billed > 0, "some builds ran");
    let month = pushbuild::index::month_of(Utc::now());
    let sums = index.month_sums(&month).expect("the sums");
    let total = sums
        .iter()
        .find(|s| s.repository.is_empty())
        .expect("a total");
    assert_eq!(total.minutes, billed, "the index's sum is the records' sum");
    assert_eq!(total.builds, BUILDS as u64);
    let skipped: Vec<&BuildRecord> = records
        .iter()
        .filter(|r| r.status == BuildState::Skipped)
        .collect();
    assert!(!skipped.is_empty(), "30 builds do not fit in 10 minutes");
    for record in &skipped {
        assert_eq!(record.billed_minutes, 0);
        let reason = record.skip_reason.as_deref().unwrap_or_default();
        assert!(reason.contains("cap of 10"), "{reason}");
    }
    let stopped: Vec<&BuildRecord> = records
        .iter()
        .filter(|r| r.status == BuildState::Failed)
        .collect();
    assert!(
        !stopped.is_empty(),
        "a build that ran was refused a later minute"
    );
    let minute = Duration::from_millis(MINUTE_MS);
    for record in &stopped {
        let phase = record
            .phases
            .iter()
            .find(|p| p.phase == "BUILD")
            .expect("BUILD ran");
        let context = phase
            .context
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            context.starts_with("BUDGET_REACHED: monthly budget reached"),
            "{context}"
        );
        // Stopped at the end of its paid minutes, not at the end of its `sleep`.
        let ran = Duration::from_millis(record.duration_ms);
        assert!(
            ran < minute * (record.billed_minutes as u32) + Duration::from_secs(3),
            "ran {ran:?} for {} paid minute(s)",
            record.billed_minutes
        );
        assert_eq!(record.artifacts.len(), 1, "its artifacts are stored");
        let log = store
            .get(&format!(
                "builds/{}/{}/build.log",
                record.repository, record.build_id
            ))
            .expect("read")
            .expect("its log is stored");
        let log = String::from_utf8_lossy(&log);
        assert!(log.contains("at the end of its last paid minute"), "{log}");
    }
    for record in &records {
        let entry = index
            .entry(&record.repository, &record.build_id)
            .expect("read")
            .expect("an entry per build");
        assert_eq!(entry.state, record.status, "{entry:?} {record:?}");
        assert_eq!(entry.billed_minutes, record.billed_minutes);
    }
}

#[test]
fn thirty_pushbuild_runs_at_once_bill_at_most_the_cap() {
    let work = tempfile::tempdir().expect("temp dir");
    let src = source(work.path());
    let store = work.path().join("store");
    let children: Vec<Child> = (0..BUILDS)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_pushbuild"))
                .arg("run")
                .arg(&src)
                .arg("--store")
                .arg(&store)
                .env("PUSHBUILD_MONTHLY_MINUTES", CAP.to_string())
                .env("PUSHBUILD_BILLING_MINUTE_MS", MINUTE_MS.to_string())
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pushbuild starts")
        })
        .collect();
    for mut child in children {
        child.wait().expect("pushbuild ends");
    }
    let index = SqliteIndex::open(&SqliteIndex::path_in(&store)).expect("the index");
    check_the_cap_held(&LocalStore::new(&store), &index);
    let verified = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["billing", "--verify", "--store"])
        .arg(&store)
        .output()
        .expect("pushbuild runs");
    assert!(verified.status.success(), "{verified:?}");
}

/// A handle on a runtime of the tests' own, for the DynamoDB client.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn thirty_builds_at_once_on_dynamodb_bill_at_most_the_cap() {
    let runtime = runtime();
    let index: Arc<dyn Index> = Arc::new(DynamoServer::shared().new_index(runtime.handle()));
    let work = tempfile::tempdir().expect("temp dir");
    let src = source(work.path());
    let store = LocalStore::new(work.path().join("store"));
    let books = Books::new(
        index.clone(),
        Budget {
            monthly_minutes: Some(CAP),
            per_repository: Vec::new(),
        },
        Duration::from_secs(30),
    );
    let settings = BuildSettings {
        books,
        metering: Metering {
            minute: Duration::from_millis(MINUTE_MS),
            ..Metering::off()
        },
        ..support::settings(work.path(), 0.01)
    };
    std::fs::create_dir_all(work.path().join("home")).expect("home");
    std::thread::scope(|scope| {
        for i in 0..BUILDS {
            let (src, settings, store) = (&src, &settings, &store);
            scope.spawn(move || {
                let identity = BuildIdentity {
                    start_time: Utc::now(),
                    ..support::identity("proj", &format!("b{i:02}"))
                };
                let job = support::job(src, settings, identity);
                pipeline::run(&job, store).expect("pushbuild itself does not fail");
            });
        }
    });
    check_the_cap_held(&store, index.as_ref());
}

/// 20 threads at once: 20 different numbers, and one claim of a delivery.
fn numbers_and_claims_hold(index: &(dyn Index + Sync)) {
    let numbers: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| index.next_number(&pn("proj")).expect("a number")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=20).collect::<Vec<u64>>(), "{numbers:?}");
    let now = Utc::now();
    let taken: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                scope.spawn(move || {
                    index
                        .claim(
                            &pn("proj"),
                            "delivery-7",
                            now,
                            now + chrono::Duration::hours(1),
                        )
                        .expect("a claim")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().expect("thread")))
            .sum()
    });
    assert_eq!(taken, 1);
}

#[test]
fn numbers_and_claims_hold_under_concurrency_on_both_indexes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteIndex::open(&SqliteIndex::path_in(dir.path())).expect("the index");
    numbers_and_claims_hold(&sqlite);
    let runtime = runtime();
    let dynamo = DynamoServer::shared().new_index(runtime.handle());
    numbers_and_claims_hold(&dynamo);
}

/// Waits until `check` holds (every 50 ms, for at most `limit`).
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_pushbuild_run_is_closed_later_as_timed_out_with_its_reserved_minutes() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("killed");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let token = format!("pushbuild-killed-{}", std::process::id());
    std::fs::write(
        dir.join("buildspec.yml"),
        format!("version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 30 # {token}\n"),
    )
    .expect("write");
    let store = work.path().join("store");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("run")
        .arg(&dir)
        .arg("--store")
        .arg(&store)
        .env("PUSHBUILD_BILLING_MINUTE_MS", "300")
        .env("PUSHBUILD_UPLOAD_RESERVE_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pushbuild starts");
    let index = SqliteIndex::open(&SqliteIndex::path_in(&store)).expect("the index");
    let reserved = || -> u64 {
        index
            .in_progress()
            .expect("read")
            .first()
            .map_or(0, |e| e.reserved_minutes)
    };
    wait_for(Duration::from_secs(30), "three reserved minutes", || {
        reserved() >= 3
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killed");
    child.wait().expect("reaped");
    // Its shell, orphaned, goes too.
    for line in crate::hostile::processes_with(&token) {
        if let Some(pid) = line.split(':').next().and_then(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let open: Vec<Entry> = index.in_progress().expect("read");
    assert_eq!(open.len(), 1, "the killed build is still open");
    let reserved = open[0].reserved_minutes;
    // The next command that opens the index closes it once its minutes and the grace are over.
    wait_for(Duration::from_secs(30), "the entry to expire", || {
        !index.expired(Utc::now()).expect("read").is_empty()
    });
    let report = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["billing", "--json", "--store"])
        .arg(&store)
        .output()
        .expect("pushbuild runs");
    assert!(report.status.success(), "{report:?}");
    let entry = index
        .entry(&open[0].project, &open[0].build_id)
        .expect("read")
        .expect("there");
    assert_eq!(entry.state, BuildState::TimedOut);
    assert_eq!(entry.billed_minutes, reserved);
    let local = LocalStore::new(&store);
    let record: BuildRecord = serde_json::from_slice(
        &local
            .get(&format!(
                "builds/{}/{}/build.json",
                entry.project, entry.build_id
            ))
            .expect("read")
            .expect("a record"),
    )
    .expect("a record");
    assert_eq!(record.status, BuildState::TimedOut);
    assert_eq!(record.billed_minutes, reserved);
    assert!(
        record.warnings.iter().any(|w| w.contains("did not finish")),
        "{:?}",
        record.warnings
    );
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert_eq!(json["total"]["billed_minutes"], reserved);
    assert_eq!(json["total"]["failures"], 1);
}

#[test]
fn the_sweep_closes_an_abandoned_build_on_dynamodb() {
    let runtime = runtime();
    let index: Arc<dyn Index> = Arc::new(DynamoServer::shared().new_index(runtime.handle()));
    let work = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::new(work.path());
    let now = Utc::now();
    let entry = Entry {
        project: pn("proj"),
        build_id: bid("b-lost"),
        number: index.next_number(&pn("proj")).expect("a number"),
        state: BuildState::InProgress,
        start_time: now,
        deadline: None,
        expires_at: now,
        commit: None,
        reference: Some("refs/heads/main".to_string()),
        initiator: "tests".to_string(),
        reserved_minutes: 0,
        billed_minutes: 0,
        cost_usd: 0.0,
        duration_ms: 0,
        price_usd_per_minute: 0.5,
        price_basis: "setting".to_string(),
        reason: None,
        tests: None,
        batch: None,
    };
    index.open(&entry).expect("opened");
    let caps = Budget::default();
    for minute in 1..=2 {
        let grant = index
            .reserve(&pn("proj"), &bid("b-lost"), minute, now, &caps)
            .expect("reserved");
        assert_eq!(grant, Grant::Granted);
    }
    assert_eq!(index.in_progress().expect("read").len(), 1);
    let books = Books::new(index.clone(), caps, Duration::ZERO);
    let closed = books
        .sweep(&store, now + chrono::Duration::seconds(1))
        .expect("the sweep");
    assert_eq!(closed.len(), 1);
    let entry = index
        .entry(&pn("proj"), &bid("b-lost"))
        .expect("read")
        .expect("there");
    assert_eq!(
        (entry.state, entry.billed_minutes),
        (BuildState::TimedOut, 2)
    );
    assert!((entry.cost_usd - 1.0).abs() < 1e-9, "{}", entry.cost_usd);
    assert!(index.in_progress().expect("read").is_empty());
    let records = records(&store);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, BuildState::TimedOut);
    assert_eq!(records[0].billed_minutes, 2);
    // A second sweep finds nothing to close.
    assert!(
        books
            .sweep(&store, Utc::now())
            .expect("the sweep")
            .is_empty()
    );
}

/// A queued build is listed as running, becomes the opened build, and one that never begins is
/// closed by the sweep once its queued timeout has passed; a discarded one leaves nothing.
fn queued_builds_hold(index: Arc<dyn Index>) {
    let store_dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::new(store_dir.path());
    let now = Utc::now();
    let queued = |id: &str| {
        Entry::queued(
            &pn("proj"),
            &bid(id),
            "github/alice",
            None,
            Some("refs/heads/main".into()),
            now,
        )
    };
    for id in ["q-begins", "q-lost", "q-gone"] {
        index.queue(&queued(id)).expect("queued");
    }
    // Queued twice (a retried hand-off): still one entry.
    index.queue(&queued("q-begins")).expect("queued");
    let waiting: Vec<BuildId> = index
        .in_progress()
        .expect("read")
        .into_iter()
        .map(|e| {
            assert_eq!(e.state, BuildState::Queued);
            e.build_id
        })
        .collect();
    assert_eq!(waiting.len(), 3, "{waiting:?}");
    index
        .discard_queued(&pn("proj"), &bid("q-gone"))
        .expect("discarded");
    assert!(
        index
            .entry(&pn("proj"), &bid("q-gone"))
            .expect("read")
            .is_none()
    );
    let opened = Entry {
        number: index.next_number(&pn("proj")).expect("a number"),
        price_usd_per_minute: 0.01,
        expires_at: now + chrono::Duration::minutes(2),
        ..queued("q-begins")
    };
    index.open(&opened).expect("opened");
    let entry = index
        .entry(&pn("proj"), &bid("q-begins"))
        .expect("read")
        .expect("there");
    assert_eq!((entry.state, entry.number), (BuildState::InProgress, 1));
    assert_eq!(
        index
            .reserve(&pn("proj"), &bid("q-begins"), 1, now, &Budget::default())
            .expect("a minute"),
        Grant::Granted
    );
    // Eight hours on, the one that never began is closed; the running one is the sweep's too
    // (it stopped reserving), billed its minute.
    let books = Books::new(index.clone(), Budget::default(), Duration::ZERO);
    let later = now + pushbuild::index::QUEUED_TIMEOUT + chrono::Duration::seconds(1);
    let closed = books.sweep(&store, later).expect("the sweep");
    assert_eq!(closed.len(), 2);
    let lost = index
        .entry(&pn("proj"), &bid("q-lost"))
        .expect("read")
        .expect("there");
    assert_eq!((lost.state, lost.billed_minutes), (BuildState::TimedOut, 0));
    assert!(
        lost.reason
            .as_deref()
            .unwrap_or_default()
            .contains("never began"),
        "{lost:?}"
    );
    let begun = index
        .entry(&pn("proj"), &bid("q-begins"))
        .expect("read")
        .expect("there");
    assert_eq!(
        (begun.state, begun.billed_minutes),
        (BuildState::TimedOut, 1)
    );
    assert!(index.in_progress().expect("read").is_empty());

    // A build that ended with reports keeps their line for the list, on either index.
    let tested = Entry {
        number: index.next_number(&pn("proj")).expect("a number"),
        expires_at: later + chrono::Duration::minutes(2),
        ..queued("q-tested")
    };
    index.open(&tested).expect("opened");
    let closing = pushbuild::index::Closing {
        project: pn("proj"),
        build_id: bid("q-tested"),
        state: BuildState::Failed,
        billed_minutes: 0,
        cost_usd: 0.0,
        duration_ms: 10,
        reason: None,
        tests: Some("3 passed, 1 failed".into()),
    };
    index.close(&closing).expect("closed");
    let entry = index.entry(&pn("proj"), &bid("q-tested")).expect("read");
    assert_eq!(
        entry.expect("there").tests.as_deref(),
        Some("3 passed, 1 failed")
    );
}

#[test]
fn queued_builds_are_listed_opened_and_closed_on_both_indexes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteIndex::open(&SqliteIndex::path_in(dir.path())).expect("the index");
    queued_builds_hold(Arc::new(sqlite));
    let runtime = runtime();
    let dynamo = DynamoServer::shared().new_index(runtime.handle());
    queued_builds_hold(Arc::new(dynamo));
}

/// A project name the test knows is valid.
fn pn(name: &str) -> ProjectName {
    ProjectName::parse(name).expect("a project name")
}

/// A build id the test knows is valid.
fn bid(id: &str) -> BuildId {
    BuildId::parse(id).expect("a build id")
}

/// 100 builds beginning at once on DynamoDB (moto's server) against a cap of 40 minutes: 100
/// different numbers, exactly 40 first minutes granted (none over the cap, none refused while
/// minutes were left), the other 60 refused by the budget.
#[test]
fn a_hundred_builds_beginning_at_once_on_dynamodb_get_unique_numbers_and_the_exact_budget() {
    const AT_ONCE: usize = 100;
    const MINUTES: u64 = 40;
    let runtime = runtime();
    let index: Arc<dyn Index> = Arc::new(DynamoServer::shared().new_index(runtime.handle()));
    let work = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::new(work.path().join("store"));
    let books = Books::new(
        index.clone(),
        Budget {
            monthly_minutes: Some(MINUTES),
            per_repository: Vec::new(),
        },
        Duration::from_secs(30),
    );
    let settings = BuildSettings {
        books,
        ..support::settings(work.path(), 0.01)
    };
    let refused: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..AT_ONCE)
            .map(|i| {
                let (settings, store) = (&settings, &store);
                scope.spawn(move || {
                    let identity = support::identity("proj", &format!("b{i:03}"));
                    let begun = pipeline::begin(&identity, settings, None, store)
                        .expect("the index answers");
                    begun.refusal().is_some()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let granted = refused.iter().filter(|r| !**r).count();
    assert_eq!(granted as u64, MINUTES, "first minutes granted");
    let mut numbers: Vec<u64> = (0..AT_ONCE)
        .map(|i| {
            let id = support::identity("proj", &format!("b{i:03}")).build_id;
            index
                .entry(&pn("proj"), &id)
                .expect("the index answers")
                .expect("an entry")
                .number
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=AT_ONCE as u64).collect::<Vec<u64>>());
}
