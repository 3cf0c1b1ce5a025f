//! The index in one SQLite file (`index.sqlite` in the local store). Every step is one
//! `BEGIN IMMEDIATE` transaction: it takes the file's write lock before it reads, so two
//! processes (two `pushbuild run`s, a `serve` and a `billing`) never decide from the same
//! stale read. Writers wait for each other (a busy timeout) instead of failing; WAL lets
//! readers go on meanwhile.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{
    Closed, Closing, Entry, Grant, Index, IndexError, Page, Placement, Sums, settle, usd_to_e7,
};
use crate::batch::{BatchRecord, Step};
use crate::billing::Budget;
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;

mod batches;
mod connection;
mod row;
mod shared;
mod steps;

use connection::COLUMNS;
pub use connection::SqliteIndex;
use row::{int, ms, uint};
use shared::{Delta, add_sums, insert_entry, page, split_cursor};
use steps::{next_number, open, reserve};

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
                "UPDATE builds SET state = ?3, billed = ?4, cost_e7 = ?5, duration_ms = ?6, reason = ?7,
                 tests = ?8 WHERE project = ?1 AND build_id = ?2",
                params![
                    closing.project.as_str(),
                    closing.build_id.as_str(),
                    closing.state.as_str(),
                    int(billed),
                    int(cost_e7),
                    int(closing.duration_ms),
                    closing.reason,
                    closing.tests
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

    fn open_batch(&self, record: &BatchRecord) -> Result<bool, IndexError> {
        self.open_batch_row(record)
    }

    fn batch(&self, project: &str, batch_id: &str) -> Result<Option<BatchRecord>, IndexError> {
        self.batch_row(project, batch_id)
    }

    fn change_batch(
        &self,
        project: &str,
        batch_id: &str,
        change: &mut dyn FnMut(&mut BatchRecord) -> Step,
    ) -> Result<Option<(Step, BatchRecord)>, IndexError> {
        self.change_batch_row(project, batch_id, change)
    }
}
