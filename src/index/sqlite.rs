//! The index in one SQLite file (`index.sqlite` in the local store). Every step is one
//! `BEGIN IMMEDIATE` transaction: it takes the file's write lock before it reads, so two
//! processes (two `pushbuild run`s, a `serve` and a `billing`) never decide from the same
//! stale read. Writers wait for each other (a busy timeout) instead of failing; WAL lets
//! readers go on meanwhile.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    Closed, Closing, Entry, Grant, Index, IndexError, Page, State, Sums, refusal, settle, usd_to_e7,
};
use crate::billing::Budget;

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counters (
    project TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE TABLE IF NOT EXISTS builds (
    project TEXT NOT NULL,
    build_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    month TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    deadline_ms INTEGER,
    expires_ms INTEGER NOT NULL,
    commit_id TEXT,
    ref TEXT,
    initiator TEXT NOT NULL,
    reserved INTEGER NOT NULL,
    billed INTEGER NOT NULL,
    cost_e7 INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    price REAL NOT NULL,
    price_basis TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (project, build_id)
);
CREATE INDEX IF NOT EXISTS builds_by_month ON builds (month, build_id, project);
CREATE INDEX IF NOT EXISTS builds_open ON builds (expires_ms) WHERE state IN ('QUEUED', 'IN_PROGRESS');
CREATE TABLE IF NOT EXISTS sums (
    month TEXT NOT NULL,
    repository TEXT NOT NULL,
    minutes INTEGER NOT NULL DEFAULT 0,
    builds INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    cost_e7 INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, repository)
);
";

const COLUMNS: &str = "project, build_id, number, state, start_ms, deadline_ms, expires_ms, \
    commit_id, ref, initiator, reserved, billed, cost_e7, duration_ms, price, price_basis, reason";

/// The index in a SQLite file.
pub struct SqliteIndex {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl SqliteIndex {
    /// The file the local store at `store_dir` keeps its index in.
    pub fn path_in(store_dir: &Path) -> PathBuf {
        store_dir.join("index.sqlite")
    }

    /// Opens (or makes) the index at `path`.
    pub fn open(path: &Path) -> Result<SqliteIndex, IndexError> {
        let fail = |err: rusqlite::Error| sqlite_error(path, err);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| IndexError::Sqlite {
                path: path.display().to_string(),
                message: err.to_string(),
            })?;
        }
        let connection = Connection::open(path).map_err(fail)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        connection.execute_batch(SCHEMA).map_err(fail)?;
        Ok(SqliteIndex {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    /// Runs `step` in one immediate transaction.
    fn write<T>(
        &self,
        step: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<T, IndexError> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let fail = |err| sqlite_error(&self.path, err);
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let value = step(&tx).map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(value)
    }

    fn read<T>(
        &self,
        step: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, IndexError> {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        step(&connection).map_err(|err| sqlite_error(&self.path, err))
    }

    fn entries(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Entry>, IndexError> {
        let rows = self.read(|c| {
            let mut statement = c.prepare_cached(sql)?;
            let rows = statement.query_map(params, RawEntry::from_row)?;
            rows.collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter().map(RawEntry::into_entry).collect()
    }
}

fn sqlite_error(path: &Path, err: rusqlite::Error) -> IndexError {
    IndexError::Sqlite {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}

fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

fn time(ms: i64) -> Result<DateTime<Utc>, IndexError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| IndexError::Malformed {
            what: "time".to_string(),
            message: format!("{ms} is not a time in milliseconds"),
        })
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A row as SQLite gives it, before its values are checked.
struct RawEntry {
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
}

impl RawEntry {
    fn from_row(row: &Row<'_>) -> Result<RawEntry, rusqlite::Error> {
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
        })
    }

    fn into_entry(self) -> Result<Entry, IndexError> {
        Ok(Entry {
            project: self.project,
            build_id: self.build_id,
            number: uint(self.number),
            state: State::parse(&self.state)?,
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
        })
    }
}

/// Adds to the month's sums of `repository` and of the total.
fn add_sums(
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
struct Delta {
    minutes: i64,
    builds: i64,
    failures: i64,
    skipped: i64,
    cost_e7: i64,
    duration_ms: i64,
}

impl Delta {
    /// What a closed build adds, besides its minutes.
    fn closed(state: State, cost_e7: u64, duration_ms: u64) -> Delta {
        Delta {
            builds: 1,
            failures: i64::from(matches!(state, State::Failed | State::TimedOut)),
            skipped: i64::from(state == State::Skipped),
            cost_e7: int(cost_e7),
            duration_ms: int(duration_ms),
            ..Delta::default()
        }
    }
}

fn month_minutes(
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

fn insert_entry(tx: &rusqlite::Transaction<'_>, entry: &Entry) -> Result<usize, rusqlite::Error> {
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO builds ({COLUMNS}, month) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ),
        params![
            entry.project,
            entry.build_id,
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
            entry.month(),
        ],
    )
}

/// Pages are keyed by `<build-id> <project>`: build ids sort by their start time.
fn cursor(entry: &Entry) -> String {
    format!("{} {}", entry.build_id, entry.project)
}

fn split_cursor(after: Option<&str>) -> (String, String) {
    match after.and_then(|a| a.split_once(' ')) {
        Some((id, project)) => (id.to_string(), project.to_string()),
        // Past every build id: the first page.
        None => ("\u{10ffff}".to_string(), String::new()),
    }
}

fn page(mut entries: Vec<Entry>, limit: usize) -> Page {
    let next = (entries.len() > limit).then(|| {
        entries.truncate(limit);
        entries.last().map(cursor).unwrap_or_default()
    });
    Page { entries, next }
}

impl Index for SqliteIndex {
    fn next_number(&self, project: &str) -> Result<u64, IndexError> {
        self.write(|tx| {
            let last: i64 = tx.query_row(
                "INSERT INTO counters (project, last) VALUES (?1, 1)
                 ON CONFLICT (project) DO UPDATE SET last = last + 1 RETURNING last",
                params![project],
                |row| row.get(0),
            )?;
            Ok(uint(last))
        })
    }

    fn claim(
        &self,
        project: &str,
        key: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<bool, IndexError> {
        self.write(|tx| {
            let changed = tx.execute(
                "INSERT INTO claims (project, key, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (project, key) DO UPDATE SET expires_ms = excluded.expires_ms
                 WHERE claims.expires_ms <= ?4",
                params![project, key, ms(expires), ms(now)],
            )?;
            Ok(changed == 1)
        })
    }

    fn release(&self, project: &str, key: &str) -> Result<(), IndexError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM claims WHERE project = ?1 AND key = ?2",
                params![project, key],
            )?;
            Ok(())
        })
    }

    fn open(&self, entry: &Entry) -> Result<(), IndexError> {
        let entry = Entry {
            state: State::InProgress,
            reserved_minutes: 0,
            billed_minutes: 0,
            cost_usd: 0.0,
            duration_ms: 0,
            ..entry.clone()
        };
        self.write(|tx| insert_entry(tx, &entry).map(drop))
    }

    fn reserve(
        &self,
        project: &str,
        build_id: &str,
        minute: u64,
        expires_at: DateTime<Utc>,
        caps: &Budget,
    ) -> Result<Grant, IndexError> {
        self.write(|tx| {
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
            if state != State::InProgress.as_str() {
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
        })
    }

    fn close(&self, closing: &Closing) -> Result<Closed, IndexError> {
        let found = self.write(|tx| {
            let found: Option<(String, i64, String, f64)> = tx
                .query_row(
                    "SELECT state, reserved, month, price FROM builds WHERE project = ?1 AND build_id = ?2",
                    params![closing.project, closing.build_id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()?;
            let Some((state, reserved, month, price)) = found else {
                return Ok(None);
            };
            if state != State::InProgress.as_str() && state != State::Queued.as_str() {
                return Ok(Some(false));
            }
            let (billed, cost_e7) = settle(closing, uint(reserved), price);
            let reserved = uint(reserved);
            tx.execute(
                "UPDATE builds SET state = ?3, billed = ?4, cost_e7 = ?5, duration_ms = ?6, reason = ?7
                 WHERE project = ?1 AND build_id = ?2",
                params![
                    closing.project,
                    closing.build_id,
                    closing.state.as_str(),
                    int(billed),
                    int(cost_e7),
                    int(closing.duration_ms),
                    closing.reason
                ],
            )?;
            let delta = Delta {
                minutes: -int(reserved - billed),
                ..Delta::closed(closing.state, cost_e7, closing.duration_ms)
            };
            add_sums(tx, &month, &closing.project, &delta)?;
            Ok(Some(true))
        })?;
        match found {
            Some(true) => {
                let entry = self.entry(&closing.project, &closing.build_id)?;
                Ok(Closed::Now {
                    billed_minutes: entry.map_or(0, |e| e.billed_minutes),
                })
            }
            Some(false) => match self.entry(&closing.project, &closing.build_id)? {
                Some(entry) => Ok(Closed::Already(Box::new(entry))),
                None => Ok(Closed::Now { billed_minutes: 0 }),
            },
            None => Err(IndexError::Malformed {
                what: "build entry".to_string(),
                message: format!(
                    "{}:{} was never opened, so it cannot be closed",
                    closing.project, closing.build_id
                ),
            }),
        }
    }

    fn expired(&self, now: DateTime<Utc>) -> Result<Vec<Entry>, IndexError> {
        self.entries(
            &format!(
                "SELECT {COLUMNS} FROM builds WHERE state IN ('QUEUED', 'IN_PROGRESS') AND expires_ms < ?1"
            ),
            params![ms(now)],
        )
    }

    fn month_sums(&self, month: &str) -> Result<Vec<Sums>, IndexError> {
        self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT repository, minutes, builds, failures, skipped, cost_e7, duration_ms
                 FROM sums WHERE month = ?1 ORDER BY repository",
            )?;
            let rows = statement.query_map(params![month], |row| {
                Ok(Sums {
                    repository: row.get(0)?,
                    minutes: uint(row.get(1)?),
                    builds: uint(row.get(2)?),
                    failures: uint(row.get(3)?),
                    skipped: uint(row.get(4)?),
                    cost_e7: uint(row.get(5)?),
                    duration_ms: uint(row.get(6)?),
                })
            })?;
            rows.collect()
        })
    }

    fn entry(&self, project: &str, build_id: &str) -> Result<Option<Entry>, IndexError> {
        let mut found = self.entries(
            &format!("SELECT {COLUMNS} FROM builds WHERE project = ?1 AND build_id = ?2"),
            params![project, build_id],
        )?;
        Ok(found.pop())
    }

    fn project_builds(
        &self,
        project: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError> {
        let (after_id, _) = split_cursor(after);
        let entries = self.entries(
            &format!(
                "SELECT {COLUMNS} FROM builds WHERE project = ?1 AND build_id < ?2
                 ORDER BY build_id DESC LIMIT ?3"
            ),
            params![project, after_id, int(limit as u64 + 1)],
        )?;
        Ok(page(entries, limit))
    }

    fn month_builds(
        &self,
        month: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError> {
        let (after_id, after_project) = split_cursor(after);
        let entries = self.entries(
            &format!(
                "SELECT {COLUMNS} FROM builds WHERE month = ?1
                   AND (build_id < ?2 OR (build_id = ?2 AND project < ?3))
                 ORDER BY build_id DESC, project DESC LIMIT ?4"
            ),
            params![month, after_id, after_project, int(limit as u64 + 1)],
        )?;
        Ok(page(entries, limit))
    }

    fn in_progress(&self) -> Result<Vec<Entry>, IndexError> {
        self.entries(
            &format!(
                "SELECT {COLUMNS} FROM builds WHERE state IN ('QUEUED', 'IN_PROGRESS')
                 ORDER BY expires_ms"
            ),
            [],
        )
    }

    fn add_closed(&self, entry: &Entry) -> Result<bool, IndexError> {
        self.write(|tx| {
            if insert_entry(tx, entry)? == 0 {
                return Ok(false);
            }
            let cost_e7 = usd_to_e7(entry.cost_usd);
            let delta = Delta {
                minutes: int(entry.billed_minutes),
                ..Delta::closed(entry.state, cost_e7, entry.duration_ms)
            };
            add_sums(tx, &entry.month(), &entry.project, &delta)?;
            tx.execute(
                "INSERT INTO counters (project, last) VALUES (?1, ?2)
                 ON CONFLICT (project) DO UPDATE SET last = max(last, excluded.last)",
                params![entry.project, int(entry.number)],
            )?;
            Ok(true)
        })
    }
}
