use crate::names::{BuildId, ProjectName};
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::state::BuildState;

fn index() -> (tempfile::TempDir, SqliteIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = SqliteIndex::open(&SqliteIndex::path_in(dir.path())).unwrap();
    (dir, index)
}

fn entry(project: &str, build_id: &str, number: u64) -> Entry {
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap();
    Entry {
        project: pn(project),
        build_id: bid(build_id),
        number,
        state: BuildState::InProgress,
        start_time: start,
        deadline: None,
        expires_at: start + Duration::minutes(2),
        commit: None,
        reference: Some("refs/heads/main".to_string()),
        initiator: "test".to_string(),
        reserved_minutes: 0,
        billed_minutes: 0,
        cost_usd: 0.0,
        duration_ms: 0,
        price_usd_per_minute: 0.01,
        price_basis: "setting".to_string(),
        reason: None,
        tests: None,
        batch: None,
    }
}

fn caps(total: Option<u64>, own: &[(&str, u64)]) -> Budget {
    Budget {
        monthly_minutes: total,
        per_repository: own.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
    }
}

fn later() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 11, 0, 0).unwrap()
}

fn closing(e: &Entry, state: BuildState, billed: u64) -> Closing {
    Closing {
        project: e.project.clone(),
        build_id: e.build_id.clone(),
        state,
        billed_minutes: billed,
        cost_usd: billed as f64 * 0.01,
        duration_ms: 1000,
        reason: None,
        tests: Some("1 passed".into()),
    }
}

#[test]
fn numbers_count_up_per_project() {
    let (_dir, index) = index();
    assert_eq!(index.next_number(&pn("web")).unwrap(), 1);
    assert_eq!(index.next_number(&pn("web")).unwrap(), 2);
    assert_eq!(index.next_number(&pn("api")).unwrap(), 1);
}

#[test]
fn a_claim_is_taken_once_until_it_expires_or_is_released() {
    let (_dir, index) = index();
    let now = later();
    let expires = now + Duration::hours(1);
    assert!(index.claim(&pn("web"), "delivery-1", now, expires).unwrap());
    assert!(!index.claim(&pn("web"), "delivery-1", now, expires).unwrap());
    assert!(index.claim(&pn("api"), "delivery-1", now, expires).unwrap());
    // Expired: taken again.
    assert!(
        index
            .claim(
                &pn("web"),
                "delivery-1",
                expires,
                expires + Duration::hours(1)
            )
            .unwrap()
    );
    index.release(&pn("web"), "delivery-1").unwrap();
    assert!(index.claim(&pn("web"), "delivery-1", now, expires).unwrap());
}

#[test]
fn reservations_stop_at_the_caps_and_closing_gives_back_what_was_not_started() {
    let (_dir, index) = index();
    let budget = caps(Some(3), &[("api", 1)]);
    let a = entry("web", "a", 1);
    index.open(&a).unwrap();
    for minute in 1..=2 {
        assert_eq!(
            index
                .reserve(&pn("web"), &bid("a"), minute, later(), &budget)
                .unwrap(),
            Grant::Granted
        );
    }
    // A minute asked for again is not counted twice.
    assert_eq!(
        index
            .reserve(&pn("web"), &bid("a"), 2, later(), &budget)
            .unwrap(),
        Grant::Granted
    );
    let b = entry("api", "b", 1);
    index.open(&b).unwrap();
    assert_eq!(
        index
            .reserve(&pn("api"), &bid("b"), 1, later(), &budget)
            .unwrap(),
        Grant::Granted
    );
    let Grant::Refused(reason) = index
        .reserve(&pn("api"), &bid("b"), 2, later(), &budget)
        .unwrap()
    else {
        panic!("the monthly cap of 3 is reached");
    };
    assert!(
        reason.contains("cap of 3") && reason.contains("PUSHBUILD_MONTHLY_MINUTES"),
        "{reason}"
    );
    // a used one of its two minutes: the other goes back, and b can have it... but b's own cap
    // is 1.
    assert_eq!(
        index.close(&closing(&a, BuildState::Succeeded, 1)).unwrap(),
        Closed::Now { billed_minutes: 1 }
    );
    let Grant::Refused(reason) = index
        .reserve(&pn("api"), &bid("b"), 2, later(), &budget)
        .unwrap()
    else {
        panic!("api's own cap of 1 is reached");
    };
    assert!(
        reason.contains("api's 1 billed minutes") && reason.contains("cap of 1"),
        "{reason}"
    );
    // Billed minutes never exceed the reservations.
    assert_eq!(
        index.close(&closing(&b, BuildState::Failed, 5)).unwrap(),
        Closed::Now { billed_minutes: 1 }
    );
    // A closed build reserves nothing more, and closing it again says who closed it.
    assert!(matches!(
        index
            .reserve(&pn("web"), &bid("a"), 3, later(), &caps(None, &[]))
            .unwrap(),
        Grant::Refused(_)
    ));
    assert!(matches!(
        index.close(&closing(&a, BuildState::Failed, 1)).unwrap(),
        Closed::Already(e) if e.state == BuildState::Succeeded
    ));
    // The closed entry keeps its reports' line for the list.
    let closed = index.entry(&pn("web"), &bid("a")).unwrap().unwrap();
    assert_eq!(closed.tests.as_deref(), Some("1 passed"));
    let sums = index.month_sums("2026-11").unwrap();
    let total = sums.iter().find(|s| s.repository.is_empty()).unwrap();
    assert_eq!((total.minutes, total.builds, total.failures), (2, 2, 1));
    assert_eq!(total.cost_e7, usd_to_e7(0.02));
    let api = sums.iter().find(|s| s.repository == "api").unwrap();
    assert_eq!((api.minutes, api.builds), (1, 1));
}

#[test]
fn concurrent_reservations_never_pass_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = SqliteIndex::path_in(dir.path());
    let budget = caps(Some(10), &[]);
    // Several connections, as several processes would have.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (path, budget) = (path.clone(), budget.clone());
            std::thread::spawn(move || {
                let index = SqliteIndex::open(&path).unwrap();
                let mut granted = 0;
                for b in 0..5 {
                    let e = entry("web", &format!("t{t}-b{b}"), 1);
                    index.open(&e).unwrap();
                    for minute in 1..=3 {
                        match index
                            .reserve(&pn("web"), &e.build_id, minute, later(), &budget)
                            .unwrap()
                        {
                            Grant::Granted => granted += 1,
                            Grant::Refused(_) => break,
                        }
                    }
                }
                granted
            })
        })
        .collect();
    let granted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(granted, 10);
    let index = SqliteIndex::open(&path).unwrap();
    let sums = index.month_sums("2026-11").unwrap();
    assert_eq!(
        sums.iter()
            .find(|s| s.repository.is_empty())
            .unwrap()
            .minutes,
        10
    );
}

#[test]
fn expired_open_builds_are_found_and_pages_run_newest_first() {
    let (_dir, index) = index();
    for (i, id) in [
        "20261130T100000Z-a",
        "20261130T100100Z-b",
        "20261130T100200Z-c",
    ]
    .iter()
    .enumerate()
    {
        let mut e = entry("web", id, i as u64 + 1);
        e.expires_at = later() + Duration::minutes(i as i64 - 1);
        index.open(&e).unwrap();
    }
    let expired = index.expired(later()).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].build_id, "20261130T100000Z-a");
    assert_eq!(index.in_progress().unwrap().len(), 3);
    let first = index.project_builds(&pn("web"), None, 2).unwrap();
    let ids: Vec<&str> = first.entries.iter().map(|e| e.build_id.as_str()).collect();
    assert_eq!(ids, ["20261130T100200Z-c", "20261130T100100Z-b"]);
    let second = index
        .project_builds(&pn("web"), first.next.as_deref(), 2)
        .unwrap();
    assert_eq!(second.entries.len(), 1);
    assert_eq!(second.next, None);
    let month = audit::month_entries(&index, "2026-11").unwrap();
    assert_eq!(month.len(), 3);
    assert!(
        index
            .month_builds("2026-10", None, 10)
            .unwrap()
            .entries
            .is_empty()
    );
}

#[test]
fn the_index_is_shared_by_handles_on_one_file() {
    let (dir, index) = index();
    let other: Arc<dyn Index> =
        Arc::new(SqliteIndex::open(&SqliteIndex::path_in(dir.path())).unwrap());
    assert_eq!(index.next_number(&pn("web")).unwrap(), 1);
    assert_eq!(other.next_number(&pn("web")).unwrap(), 2);
}

#[test]
fn a_row_edited_by_hand_is_named_not_guessed() {
    let (dir, index) = index();
    index.open(&entry("web", "a", 1)).unwrap();
    let raw = rusqlite::Connection::open(SqliteIndex::path_in(dir.path())).unwrap();
    raw.execute("UPDATE builds SET state = 'RUNNING'", [])
        .unwrap();
    let err = index.entry(&pn("web"), &bid("a")).unwrap_err();
    assert!(!err.retryable());
    let message = err.to_string();
    assert!(
        message.contains("malformed state") && message.contains("found `RUNNING`"),
        "{message}"
    );
}

#[test]
fn a_placement_is_kept_until_it_is_reset() {
    let (_dir, index) = index();
    assert_eq!(index.placement(&pn("demo")).unwrap(), None);
    let placement = Placement {
        compute: "codebuild".to_string(),
        since: DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        reason: "build b-1 timed out in the function".to_string(),
    };
    index.set_placement(&pn("demo"), Some(&placement)).unwrap();
    assert_eq!(
        index.placement(&pn("demo")).unwrap(),
        Some(placement.clone())
    );
    assert_eq!(index.placement(&pn("other")).unwrap(), None);
    let again = Placement {
        reason: "build b-2 timed out in the function".to_string(),
        ..placement
    };
    index.set_placement(&pn("demo"), Some(&again)).unwrap();
    assert_eq!(index.placement(&pn("demo")).unwrap(), Some(again));
    index.set_placement(&pn("demo"), None).unwrap();
    assert_eq!(index.placement(&pn("demo")).unwrap(), None);
}

#[test]
fn many_openers_of_a_new_index_at_once_all_get_it() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = SqliteIndex::path_in(dir.path());
        let barrier = std::sync::Barrier::new(16);
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    barrier.wait();
                    let index = SqliteIndex::open(&path).expect("the index opens");
                    index.next_number(&pn("demo")).expect("a number");
                });
            }
        });
        let index = SqliteIndex::open(&path).unwrap();
        assert_eq!(index.next_number(&pn("demo")).unwrap(), 17);
    }
}

#[test]
fn an_index_opened_in_the_background_keeps_what_was_written_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = SqliteIndex::path_in(dir.path());
    for expected in 1..=3 {
        // Each handle is closed before the next opens (as one `pushbuild run` after another),
        // with what it wrote still in the WAL.
        let index = SqliteIndex::open_in_background(&path).unwrap();
        assert_eq!(index.next_number(&pn("web")).unwrap(), expected);
    }
    assert_eq!(
        SqliteIndex::open(&path)
            .unwrap()
            .next_number(&pn("web"))
            .unwrap(),
        4
    );
}

#[test]
fn an_index_that_cannot_be_opened_says_so_at_its_first_use() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be.
    let path = SqliteIndex::path_in(dir.path());
    std::fs::create_dir(&path).unwrap();
    let index = SqliteIndex::open_in_background(&path).unwrap();
    let message = index.next_number(&pn("web")).unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    // A second use tries again, and says the same.
    let again = index.next_number(&pn("web")).unwrap_err().to_string();
    assert!(again.contains(&path.display().to_string()), "{again}");
}

#[test]
fn a_build_begins_numbered_opened_and_with_its_first_minute_or_refused_as_the_three_steps_do() {
    let (_dir, index) = index();
    let budget = caps(Some(1), &[]);
    // A queued entry of the build gives way to the opened one.
    let mut queued = entry("web", "a", 0);
    queued.state = BuildState::Queued;
    index.queue(&queued).unwrap();
    let mut a = entry("web", "a", 0);
    assert_eq!(
        index.begin(&mut a, later(), &budget).unwrap(),
        Grant::Granted
    );
    assert_eq!(a.number, 1);
    let stored = index.entry(&pn("web"), &bid("a")).unwrap().unwrap();
    assert_eq!(
        (
            stored.number,
            stored.state,
            stored.reserved_minutes,
            stored.expires_at
        ),
        (1, BuildState::InProgress, 1, later())
    );
    // The month's one minute is a's: b is numbered and opened, and refused its first minute.
    let mut b = entry("web", "b", 0);
    let Grant::Refused(reason) = index.begin(&mut b, later(), &budget).unwrap() else {
        panic!("the monthly cap of 1 is reached");
    };
    assert!(reason.contains("cap of 1"), "{reason}");
    assert_eq!(b.number, 2);
    let stored = index.entry(&pn("web"), &bid("b")).unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.reserved_minutes),
        (BuildState::InProgress, 0)
    );
    let sums = index
        .month_sums(&a.start_time.format("%Y-%m").to_string())
        .unwrap();
    assert!(
        !sums.is_empty() && sums.iter().all(|s| s.minutes == 1),
        "{sums:?}"
    );
}

/// A project name the test knows is valid.
fn pn(name: &str) -> ProjectName {
    ProjectName::parse(name).expect("a project name")
}

/// A build id the test knows is valid.
fn bid(id: &str) -> BuildId {
    BuildId::parse(id).expect("a build id")
}

#[test]
fn an_index_made_before_reports_gains_their_column_and_keeps_its_builds() {
    let (dir, index) = index();
    let a = entry("web", "a", 1);
    index.open(&a).unwrap();
    drop(index);
    let path = SqliteIndex::path_in(dir.path());
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch("ALTER TABLE builds DROP COLUMN tests")
        .unwrap();
    drop(old);
    let index = SqliteIndex::open(&path).unwrap();
    assert_eq!(
        index.entry(&pn("web"), &bid("a")).unwrap().unwrap().tests,
        None
    );
    index.close(&closing(&a, BuildState::Succeeded, 0)).unwrap();
    let closed = index.entry(&pn("web"), &bid("a")).unwrap().unwrap();
    assert_eq!(closed.tests.as_deref(), Some("1 passed"));
}
