//! Rows as SQLite gives them: times in milliseconds, counts as signed integers, an entry's
//! columns checked into an [`Entry`].

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Row;

use crate::index::{Entry, IndexError};
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;

pub(super) fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(super) fn time(ms: i64) -> Result<DateTime<Utc>, IndexError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| IndexError::Malformed {
            what: "time".to_string(),
            message: format!("{ms} is not a time in milliseconds"),
        })
}

pub(super) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A row as SQLite gives it, before its values are checked.
pub(super) struct RawEntry {
    project: String,
    build_id: String,
    number: i64,
    state: String,
    start_ms: i64,
    deadline_ms: Option<i64>,
    expires_ms: i64,
    commit: Option<String>,
    reference: Option<String>,
    initiator: String,
    reserved: i64,
    billed: i64,
    cost_e7: i64,
    duration_ms: i64,
    price: f64,
    price_basis: String,
    reason: Option<String>,
    tests: Option<String>,
    batch: Option<String>,
}

impl RawEntry {
    pub(super) fn from_row(row: &Row<'_>) -> Result<RawEntry, rusqlite::Error> {
        Ok(RawEntry {
            project: row.get(0)?,
            build_id: row.get(1)?,
            number: row.get(2)?,
            state: row.get(3)?,
            start_ms: row.get(4)?,
            deadline_ms: row.get(5)?,
            expires_ms: row.get(6)?,
            commit: row.get(7)?,
            reference: row.get(8)?,
            initiator: row.get(9)?,
            reserved: row.get(10)?,
            billed: row.get(11)?,
            cost_e7: row.get(12)?,
            duration_ms: row.get(13)?,
            price: row.get(14)?,
            price_basis: row.get(15)?,
            reason: row.get(16)?,
            tests: row.get(17)?,
            batch: row.get(18)?,
        })
    }

    pub(super) fn into_entry(self) -> Result<Entry, IndexError> {
        Ok(Entry {
            project: ProjectName::parse(&self.project)?,
            build_id: BuildId::parse(&self.build_id)?,
            number: uint(self.number),
            state: BuildState::parse(&self.state)?,
            start_time: time(self.start_ms)?,
            deadline: self.deadline_ms.map(time).transpose()?,
            expires_at: time(self.expires_ms)?,
            commit: self.commit,
            reference: self.reference,
            initiator: self.initiator,
            reserved_minutes: uint(self.reserved),
            billed_minutes: uint(self.billed),
            cost_usd: uint(self.cost_e7) as f64 / 1e7,
            duration_ms: uint(self.duration_ms),
            price_usd_per_minute: self.price,
            price_basis: self.price_basis,
            reason: self.reason,
            tests: self.tests,
            batch: self.batch,
        })
    }
}
