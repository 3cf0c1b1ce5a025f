//! The index in one SQLite file (`index.sqlite` in the local store). Every step is one
//! `BEGIN IMMEDIATE` transaction: it takes the file's write lock before it reads, so two
//! processes (two `pushbuild run`s, a `serve` and a `billing`) never decide from the same
//! stale read. Writers wait for each other (a busy timeout) instead of failing; WAL lets
//! readers go on meanwhile.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Closed, Closing, Entry, Grant, Index, IndexError, Page, Placement, Sums, refusal, settle,
    usd_to_e7,
};
use crate::billing::Budget;
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;

mod row;
mod shared;

use row::{RawEntry, int, ms, uint};
use shared::{Delta, add_sums, insert_entry, month_minutes, page, split_cursor};

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
CREATE TABLE IF NOT EXISTS placements (
    project TEXT PRIMARY KEY,
    compute TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    reason TEXT NOT NULL
);
";

pub(super) const COLUMNS: &str = "project, build_id, number, state, start_ms, deadline_ms, expires_ms, \
    commit_id, ref, initiator, reserved, billed, cost_e7, duration_ms, price, price_basis, reason";

/// The index in a SQLite file.
pub struct SqliteIndex {
    path: PathBuf,
    connection: Mutex<Option<Connection>>,
    /// The connection being made on a thread ([`SqliteIndex::open_in_background`]).
    opening: Mutex<Option<std::thread::JoinHandle<Result<Connection, IndexError>>>>,
}

impl SqliteIndex {
    /// The file the local store at `store_dir` keeps its index in.
    pub fn path_in(store_dir: &Path) -> PathBuf {
        store_dir.join("index.sqlite")
    }

    /// Opens (or makes) the index at `path`.
    pub fn open(path: &Path) -> Result<SqliteIndex, IndexError> {
        Self::make_folder(path)?;
        Ok(SqliteIndex {
            path: path.to_path_buf(),
            connection: Mutex::new(Some(Self::connect_patiently(path)?)),
            opening: Mutex::new(None),
        })
    }

    /// The index at `path`, opened (or made) on a thread of its own, which its first use waits
    /// for: a command that builds once opens it while the build's shell starts. Its folder is
    /// made now; an error opening it is the first use's.
    pub fn open_in_background(path: &Path) -> Result<SqliteIndex, IndexError> {
        Self::make_folder(path)?;
        let owned = path.to_path_buf();
        let opening = std::thread::Builder::new()
            .name("index-open".into())
            .spawn(move || Self::connect_patiently(&owned))
            .map_err(|err| IndexError::Sqlite {
                path: path.display().to_string(),
                message: err.to_string(),
            })?;
        Ok(SqliteIndex {
            path: path.to_path_buf(),
            connection: Mutex::new(None),
            opening: Mutex::new(Some(opening)),
        })
    }

    fn make_folder(path: &Path) -> Result<(), IndexError> {
        match path.parent() {
            Some(parent) => std::fs::create_dir_all(parent).map_err(|err| IndexError::Sqlite {
                path: path.display().to_string(),
                message: err.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Runs `step` on the connection, once it is made.
    fn with_connection<T>(
        &self,
        step: impl FnOnce(&mut Connection) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = slot.as_mut() {
            return step(connection);
        }
        let opening = self
            .opening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let connection = match opening.map(std::thread::JoinHandle::join) {
            Some(Ok(made)) => made?,
            // Nothing on its way (it failed before, or panicked): made here.
            Some(Err(_)) | None => Self::connect_patiently(&self.path)?,
        };
        step(slot.insert(connection))
    }

    /// One connection. Processes that make a new index at the same moment can find its file
    /// locked while one of them turns on WAL (SQLite does not wait its busy timeout for that):
    /// each tries again, a little later, for up to the busy timeout.
    fn connect_patiently(path: &Path) -> Result<Connection, IndexError> {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match Self::connect(path) {
                Ok(connection) => return Ok(connection),
                Err(err) if is_busy(&err) && started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(err) => return Err(sqlite_error(path, err)),
            }
        }
    }

    /// One connection, in WAL mode, with the schema.
    fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        // WAL stays set in the file: only its first opener changes the mode.
        let mode: String = connection.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            connection.pragma_update(None, "journal_mode", "WAL")?;
        }
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        // A command that opens the index for one build should not pay a checkpoint (and its two
        // fsyncs) on close: the WAL stays, and the next opener reads it back. Commits checkpoint
        // once it holds 128 pages, which bounds that read to 512 KiB.
        connection.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        connection.pragma_update(None, "wal_autocheckpoint", 128)?;
        // In one immediate transaction: the write lock is taken first (waiting its turn), so
        // processes opening a new index at once do not fail on each other's schema.
        connection.execute_batch(&format!("BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;"))?;
        Ok(connection)
    }

    /// Runs `step` in one immediate transaction.
    fn write<T>(
        &self,
        step: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<T, IndexError> {
        self.with_connection(|connection| {
            let fail = |err| sqlite_error(&self.path, err);
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let value = step(&tx).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(value)
        })
    }

    fn read<T>(
        &self,
        step: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, IndexError> {
        self.with_connection(|connection| {
            step(connection).map_err(|err| sqlite_error(&self.path, err))
        })
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

/// [`Index::next_number`] in `tx`.
fn next_number(tx: &rusqlite::Transaction<'_>, project: &str) -> Result<u64, rusqlite::Error> {
    let last: i64 = tx.query_row(
        "INSERT INTO counters (project, last) VALUES (?1, 1)
         ON CONFLICT (project) DO UPDATE SET last = last + 1 RETURNING last",
        params![project],
        |row| row.get(0),
    )?;
    Ok(uint(last))
}

/// [`Index::open`] in `tx`.
fn open(tx: &rusqlite::Transaction<'_>, entry: &Entry) -> Result<(), rusqlite::Error> {
    let entry = entry.opening();
    // A queued entry of this build gives way to the opened one.
    tx.execute(
        "DELETE FROM builds WHERE project = ?1 AND build_id = ?2 AND state = 'QUEUED'",
        params![entry.project.as_str(), entry.build_id.as_str()],
    )?;
    insert_entry(tx, &entry).map(drop)
}

/// [`Index::reserve`] in `tx`.
fn reserve(
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

impl Index for SqliteIndex {
    fn next_number(&self, project: &ProjectName) -> Result<u64, IndexError> {
        let project = project.as_str();
        self.write(|tx| next_number(tx, project))
    }

    fn claim(
        &self,
        project: &ProjectName,
        key: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<bool, IndexError> {
        let project = project.as_str();
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

    fn release(&self, project: &ProjectName, key: &str) -> Result<(), IndexError> {
        let project = project.as_str();
        self.write(|tx| {
            tx.execute(
                "DELETE FROM claims WHERE project = ?1 AND key = ?2",
                params![project, key],
            )?;
            Ok(())
        })
    }

    fn queue(&self, entry: &Entry) -> Result<(), IndexError> {
        self.write(|tx| insert_entry(tx, entry).map(drop))
    }

    fn discard_queued(&self, project: &ProjectName, build_id: &BuildId) -> Result<(), IndexError> {
        let (project, build_id) = (project.as_str(), build_id.as_str());
        self.write(|tx| {
            tx.execute(
                "DELETE FROM builds WHERE project = ?1 AND build_id = ?2 AND state = 'QUEUED'",
                params![project, build_id],
            )
            .map(drop)
        })
    }

    fn open(&self, entry: &Entry) -> Result<(), IndexError> {
        self.write(|tx| open(tx, entry))
    }

    fn reserve(
        &self,
        project: &ProjectName,
        build_id: &BuildId,
        minute: u64,
        expires_at: DateTime<Utc>,
        caps: &Budget,
    ) -> Result<Grant, IndexError> {
        let (project, build_id) = (project.as_str(), build_id.as_str());
        self.write(|tx| reserve(tx, project, build_id, minute, expires_at, caps))
    }

    /// The three steps in one transaction: one commit, and the pages they share written once.
    fn begin(
        &self,
        entry: &mut Entry,
        expires_at: DateTime<Utc>,
        caps: &Budget,
    ) -> Result<Grant, IndexError> {
        self.write(|tx| {
            entry.number = next_number(tx, entry.project.as_str())?;
            open(tx, entry)?;
            reserve(
                tx,
                entry.project.as_str(),
                entry.build_id.as_str(),
                1,
                expires_at,
                caps,
            )
        })
    }

    fn close(&self, closing: &Closing) -> Result<Closed, IndexError> {
        let found = self.write(|tx| {
            let found: Option<(String, i64, String, f64)> = tx
                .query_row(
                    "SELECT state, reserved, month, price FROM builds WHERE project = ?1 AND build_id = ?2",
                    params![closing.project.as_str(), closing.build_id.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()?;
            let Some((state, reserved, month, price)) = found else {
                return Ok(None);
            };
            if state != BuildState::InProgress.as_str() && state != BuildState::Queued.as_str() {
                return Ok(Some(false));
            }
            let (billed, cost_e7) = settle(closing, uint(reserved), price);
            let reserved = uint(reserved);
            tx.execute(
                "UPDATE builds SET state = ?3, billed = ?4, cost_e7 = ?5, duration_ms = ?6, reason = ?7
                 WHERE project = ?1 AND build_id = ?2",
                params![
                    closing.project.as_str(),
                    closing.build_id.as_str(),
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
            add_sums(tx, &month, closing.project.as_str(), &delta)?;
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

    fn entry(
        &self,
        project: &ProjectName,
        build_id: &BuildId,
    ) -> Result<Option<Entry>, IndexError> {
        let (project, build_id) = (project.as_str(), build_id.as_str());
        let mut found = self.entries(
            &format!("SELECT {COLUMNS} FROM builds WHERE project = ?1 AND build_id = ?2"),
            params![project, build_id],
        )?;
        Ok(found.pop())
    }

    fn project_builds(
        &self,
        project: &ProjectName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError> {
        let project = project.as_str();
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
            add_sums(tx, &entry.month(), entry.project.as_str(), &delta)?;
            tx.execute(
                "INSERT INTO counters (project, last) VALUES (?1, ?2)
                 ON CONFLICT (project) DO UPDATE SET last = max(last, excluded.last)",
                params![entry.project.as_str(), int(entry.number)],
            )?;
            Ok(true)
        })
    }

    fn placement(&self, project: &ProjectName) -> Result<Option<Placement>, IndexError> {
        let project = project.as_str();
        let row = self.read(|c| {
            c.query_row(
                "SELECT compute, since_ms, reason FROM placements WHERE project = ?1",
                params![project],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()
        })?;
        row.map(|(compute, since, reason)| {
            Ok(Placement {
                compute,
                since: DateTime::from_timestamp_millis(since).ok_or_else(|| {
                    IndexError::Malformed {
                        what: "placement".to_string(),
                        message: format!("since_ms {since} is not a time"),
                    }
                })?,
                reason,
            })
        })
        .transpose()
    }

    fn set_placement(
        &self,
        project: &ProjectName,
        placement: Option<&Placement>,
    ) -> Result<(), IndexError> {
        let project = project.as_str();
        self.write(|tx| {
            match placement {
                Some(p) => tx.execute(
                    "INSERT INTO placements (project, compute, since_ms, reason) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (project) DO UPDATE SET compute = excluded.compute,
                         since_ms = excluded.since_ms, reason = excluded.reason",
                    params![project, p.compute, ms(p.since), p.reason],
                )?,
                None => tx.execute("DELETE FROM placements WHERE project = ?1", params![project])?,
            };
            Ok(())
        })
    }
}

/// Whether SQLite said the database was busy or locked (another connection holds it).
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
