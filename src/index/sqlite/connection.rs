//! The SQLite file itself: its schema, and the one connection a process keeps to it (made on
//! first use, or on a thread while the build starts), with the transactions every step runs in.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};

use super::IndexError;
use super::row::RawEntry;
use crate::index::Entry;

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
    tests TEXT,
    batch TEXT,
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
CREATE TABLE IF NOT EXISTS batches (
    project TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (project, batch_id)
);
CREATE TABLE IF NOT EXISTS placements (
    project TEXT PRIMARY KEY,
    compute TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    reason TEXT NOT NULL
);
";

pub(super) const COLUMNS: &str = "project, build_id, number, state, start_ms, deadline_ms, expires_ms, \
    commit_id, ref, initiator, reserved, billed, cost_e7, duration_ms, price, price_basis, reason, tests, batch";

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
    pub(super) fn with_connection<T>(
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
        connection.execute_batch(&format!("BEGIN IMMEDIATE;\n{SCHEMA}"))?;
        // An index made before builds had reports gains their column (in the same transaction:
        // two processes opening it at once add it once).
        let has_tests: bool = connection.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('builds') WHERE name = 'tests'",
            [],
            |row| row.get(0),
        )?;
        if !has_tests {
            connection.execute_batch("ALTER TABLE builds ADD COLUMN tests TEXT")?;
        }
        // And, made before batches, their children's column.
        let has_batch: bool = connection.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('builds') WHERE name = 'batch'",
            [],
            |row| row.get(0),
        )?;
        if !has_batch {
            connection.execute_batch("ALTER TABLE builds ADD COLUMN batch TEXT")?;
        }
        connection.execute_batch("COMMIT")?;
        Ok(connection)
    }

    /// Runs `step` in one immediate transaction.
    pub(super) fn write<T>(
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

    pub(super) fn read<T>(
        &self,
        step: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, IndexError> {
        self.with_connection(|connection| {
            step(connection).map_err(|err| sqlite_error(&self.path, err))
        })
    }

    pub(super) fn entries(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Entry>, IndexError> {
        let rows = self.read(|c| {
            let mut statement = c.prepare_cached(sql)?;
            let rows = statement.query_map(params, RawEntry::from_row)?;
            rows.collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter().map(RawEntry::into_entry).collect()
    }
}

pub(super) fn sqlite_error(path: &Path, err: rusqlite::Error) -> IndexError {
    IndexError::Sqlite {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}

/// Whether SQLite said the database was busy or locked (another connection holds it).
pub(super) fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
