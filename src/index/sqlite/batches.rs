//! A batch's state in SQLite: one row of JSON per batch, changed in an immediate transaction
//! (the write lock is the condition: nobody changes the row between the read and the write).

use rusqlite::{OptionalExtension, params};

use super::SqliteIndex;
use crate::batch::{BatchRecord, Step};
use crate::index::IndexError;

/// A JSON error as SQLite's, so it leaves the transaction like any other.
fn json_error(err: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(err))
}

impl SqliteIndex {
    pub(super) fn open_batch_row(&self, record: &BatchRecord) -> Result<bool, IndexError> {
        let state = serde_json::to_string(record).map_err(|err| IndexError::Malformed {
            what: "batch state".into(),
            message: err.to_string(),
        })?;
        self.write(|tx| {
            let added = tx.execute(
                "INSERT OR IGNORE INTO batches (project, batch_id, state) VALUES (?1, ?2, ?3)",
                params![record.project, record.batch_id, state],
            )?;
            Ok(added == 1)
        })
    }

    pub(super) fn batch_row(
        &self,
        project: &str,
        batch_id: &str,
    ) -> Result<Option<BatchRecord>, IndexError> {
        self.read(|connection| {
            let state: Option<String> = connection
                .query_row(
                    "SELECT state FROM batches WHERE project = ?1 AND batch_id = ?2",
                    params![project, batch_id],
                    |row| row.get(0),
                )
                .optional()?;
            state
                .map(|state| serde_json::from_str(&state).map_err(json_error))
                .transpose()
        })
    }

    pub(super) fn change_batch_row(
        &self,
        project: &str,
        batch_id: &str,
        change: &mut dyn FnMut(&mut BatchRecord) -> Step,
    ) -> Result<Option<(Step, BatchRecord)>, IndexError> {
        self.write(|tx| {
            let state: Option<String> = tx
                .query_row(
                    "SELECT state FROM batches WHERE project = ?1 AND batch_id = ?2",
                    params![project, batch_id],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(state) = state else {
                return Ok(None);
            };
            let mut record: BatchRecord = serde_json::from_str(&state).map_err(json_error)?;
            let step = change(&mut record);
            let state = serde_json::to_string(&record).map_err(json_error)?;
            tx.execute(
                "UPDATE batches SET state = ?3 WHERE project = ?1 AND batch_id = ?2",
                params![project, batch_id, state],
            )?;
            Ok(Some((step, record)))
        })
    }
}
