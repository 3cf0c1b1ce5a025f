//! The steps a build takes to begin, inside one transaction each: its number, its open entry and
//! a reserved minute, checked against the caps.

use rusqlite::{OptionalExtension, params};

use super::row::{ms, uint};
use super::shared::{Delta, add_sums, insert_entry, month_minutes};
use chrono::{DateTime, Utc};

use crate::billing::Budget;
use crate::index::{Entry, Grant, refusal};
use crate::state::BuildState;

/// [`Index::next_number`] in `tx`.
pub(super) fn next_number(
    tx: &rusqlite::Transaction<'_>,
    project: &str,
) -> Result<u64, rusqlite::Error> {
    let last: i64 = tx.query_row(
        "INSERT INTO counters (project, last) VALUES (?1, 1)
         ON CONFLICT (project) DO UPDATE SET last = last + 1 RETURNING last",
        params![project],
        |row| row.get(0),
    )?;
    Ok(uint(last))
}

/// [`Index::open`] in `tx`.
pub(super) fn open(tx: &rusqlite::Transaction<'_>, entry: &Entry) -> Result<(), rusqlite::Error> {
    let entry = entry.opening();
    // A queued entry of this build gives way to the opened one.
    tx.execute(
        "DELETE FROM builds WHERE project = ?1 AND build_id = ?2 AND state = 'QUEUED'",
        params![entry.project.as_str(), entry.build_id.as_str()],
    )?;
    insert_entry(tx, &entry).map(drop)
}

/// [`Index::reserve`] in `tx`.
pub(super) fn reserve(
    tx: &rusqlite::Transaction<'_>,
    project: &str,
    build_id: &str,
    minute: u64,
    expires_at: DateTime<Utc>,
    caps: &Budget,
) -> Result<Grant, rusqlite::Error> {
    let found: Option<(String, i64, String)> = tx
        .query_row(
            "SELECT state, reserved, month FROM builds WHERE project = ?1 AND build_id = ?2",
            params![project, build_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((state, reserved, month)) = found else {
        return Ok(Grant::Refused(format!(
            "the build {project}:{build_id} is not in the index"
        )));
    };
    if state != BuildState::InProgress.as_str() {
        return Ok(Grant::Refused(format!(
            "the build was closed as {state} before minute {minute}"
        )));
    }
    let reserved = uint(reserved);
    if reserved >= minute {
        return Ok(Grant::Granted);
    }
    let total = month_minutes(tx, &month, "")?;
    let own = month_minutes(tx, &month, project)?;
    if let Some(reason) = refusal(caps, project, total, own) {
        return Ok(Grant::Refused(reason));
    }
    tx.execute(
        "UPDATE builds SET reserved = reserved + 1, expires_ms = ?3
             WHERE project = ?1 AND build_id = ?2",
        params![project, build_id, ms(expires_at)],
    )?;
    add_sums(
        tx,
        &month,
        project,
        &Delta {
            minutes: 1,
            ..Delta::default()
        },
    )?;
    Ok(Grant::Granted)
}
