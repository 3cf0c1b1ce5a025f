//! The statements the index's steps share: the month's sums, a new entry, and pages.

use rusqlite::{OptionalExtension, params};

use super::connection::COLUMNS;
use super::row::{int, ms, uint};
use crate::index::{Entry, Page, usd_to_e7};
use crate::state::BuildState;

/// Adds to the month's sums of `repository` and of the total.
pub(super) fn add_sums(
    tx: &rusqlite::Transaction<'_>,
    month: &str,
    repository: &str,
    delta: &Delta,
) -> Result<(), rusqlite::Error> {
    for row in [repository, ""] {
        tx.execute(
            "INSERT INTO sums (month, repository, minutes, builds, failures, skipped, cost_e7, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (month, repository) DO UPDATE SET
               minutes = minutes + excluded.minutes, builds = builds + excluded.builds,
               failures = failures + excluded.failures, skipped = skipped + excluded.skipped,
               cost_e7 = cost_e7 + excluded.cost_e7, duration_ms = duration_ms + excluded.duration_ms",
            params![
                month,
                row,
                delta.minutes,
                delta.builds,
                delta.failures,
                delta.skipped,
                delta.cost_e7,
                delta.duration_ms
            ],
        )?;
    }
    Ok(())
}

/// A change to a month's sums.
#[derive(Default)]
pub(super) struct Delta {
    pub(super) minutes: i64,
    pub(super) builds: i64,
    pub(super) failures: i64,
    pub(super) skipped: i64,
    pub(super) cost_e7: i64,
    pub(super) duration_ms: i64,
}

impl Delta {
    /// What a closed build adds, besides its minutes.
    pub(super) fn closed(state: BuildState, cost_e7: u64, duration_ms: u64) -> Delta {
        Delta {
            builds: 1,
            failures: i64::from(matches!(state, BuildState::Failed | BuildState::TimedOut)),
            skipped: i64::from(state == BuildState::Skipped),
            cost_e7: int(cost_e7),
            duration_ms: int(duration_ms),
            ..Delta::default()
        }
    }
}

pub(super) fn month_minutes(
    tx: &rusqlite::Transaction<'_>,
    month: &str,
    repository: &str,
) -> Result<u64, rusqlite::Error> {
    let minutes: Option<i64> = tx
        .query_row(
            "SELECT minutes FROM sums WHERE month = ?1 AND repository = ?2",
            params![month, repository],
            |row| row.get(0),
        )
        .optional()?;
    Ok(uint(minutes.unwrap_or(0)))
}

pub(super) fn insert_entry(
    tx: &rusqlite::Transaction<'_>,
    entry: &Entry,
) -> Result<usize, rusqlite::Error> {
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO builds ({COLUMNS}, month) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
        ),
        params![
            entry.project.as_str(),
            entry.build_id.as_str(),
            int(entry.number),
            entry.state.as_str(),
            ms(entry.start_time),
            entry.deadline.map(ms),
            ms(entry.expires_at),
            entry.commit,
            entry.reference,
            entry.initiator,
            int(entry.reserved_minutes),
            int(entry.billed_minutes),
            int(usd_to_e7(entry.cost_usd)),
            int(entry.duration_ms),
            entry.price_usd_per_minute,
            entry.price_basis,
            entry.reason,
            entry.tests,
            entry.batch,
            entry.month(),
        ],
    )
}

/// Pages are keyed by `<build-id> <project>`: build ids sort by their start time.
pub(super) fn cursor(entry: &Entry) -> String {
    format!("{} {}", entry.build_id, entry.project)
}

pub(super) fn split_cursor(after: Option<&str>) -> (String, String) {
    match after.and_then(|a| a.split_once(' ')) {
        Some((id, project)) => (id.to_string(), project.to_string()),
        // Past every build id: the first page.
        None => ("\u{10ffff}".to_string(), String::new()),
    }
}

pub(super) fn page(mut entries: Vec<Entry>, limit: usize) -> Page {
    let next = (entries.len() > limit).then(|| {
        entries.truncate(limit);
        entries.last().map(cursor).unwrap_or_default()
    });
    Page { entries, next }
}
