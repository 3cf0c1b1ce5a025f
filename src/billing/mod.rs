//! The billing ledger: one small JSON object per build under
//! `billing/<YYYY>/<MM>/<repository>/<build-id>.json`, written just before the build's record.
//! Builds never read and rewrite a shared object, so any number of them can finish at once; a
//! month's usage is the sum over its objects. [`Budget`] caps the month's minutes and
//! [`Report`] sums them per repository.

mod budget;
mod report;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::names::CommitId;
use crate::record::{BuildRecord, Status};
use crate::store::{ObjectMeta, Store, StoreError};

pub use budget::Budget;
pub use report::{Report, Row};

/// Why the ledger could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An object under `billing/` is not a ledger entry.
    #[error("the ledger entry {key} is malformed: {source}")]
    Malformed {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// One build's line in the ledger: what was built, how it ended and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub build_id: String,
    pub repository: String,
    /// The reference that was built (`refs/heads/main`), when there is one.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitId>,
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `SKIPPED`.
    pub status: Status,
    pub start_time: DateTime<Utc>,
    pub duration_ms: u64,
    pub billed_minutes: u64,
    pub cost_usd: f64,
    pub price_usd_per_minute: f64,
    /// Where the price came from (`lambda arm64 2048 MB at ...`, `setting`).
    pub price_basis: String,
    /// What the same minutes would cost on CodeBuild general1.small, in USD.
    pub codebuild_general1_small_usd: f64,
}

impl LedgerEntry {
    /// The entry for the build `record` describes.
    pub fn from_record(record: &BuildRecord) -> LedgerEntry {
        LedgerEntry {
            build_id: record.build_id.clone(),
            repository: record.repository.to_string(),
            reference: record.reference.clone(),
            commit: record.commit.clone(),
            status: record.status,
            start_time: record.start_time,
            duration_ms: record.duration_ms,
            billed_minutes: record.billed_minutes,
            cost_usd: record.cost.cost_usd,
            price_usd_per_minute: record.cost.price.usd_per_minute,
            price_basis: record.cost.price.basis.clone(),
            codebuild_general1_small_usd: record.cost.codebuild_general1_small_usd,
        }
    }

    /// `billing/<YYYY>/<MM>/<repository>/<build-id>.json`, from the start time in UTC.
    pub fn key(&self) -> String {
        format!(
            "{}{}/{}.json",
            month_prefix(self.start_time.year(), self.start_time.month()),
            self.repository,
            self.build_id
        )
    }

    /// Whether the build ended FAILED or TIMED_OUT.
    pub fn is_failure(&self) -> bool {
        self.status.is_failure()
    }
}

/// `billing/<YYYY>/<MM>/`: where a month's entries lie.
pub fn month_prefix(year: i32, month: u32) -> String {
    format!("billing/{year:04}/{month:02}/")
}

/// Stores `entry` as its own object; returns its URI.
pub fn write_entry(store: &dyn Store, entry: &LedgerEntry) -> Result<String, StoreError> {
    let key = entry.key();
    let json = serde_json::to_vec_pretty(entry).map_err(|err| StoreError::Write {
        uri: store.uri(&key),
        source: std::io::Error::other(err),
    })?;
    let meta = ObjectMeta::new("application/json")
        .with("build-id", &entry.build_id)
        .with("repository", &entry.repository);
    store.put(&key, &json, &meta)
}

/// Every entry of the month, in key order (repository, then build id).
pub fn read_month(
    store: &dyn Store,
    year: i32,
    month: u32,
) -> Result<Vec<LedgerEntry>, BillingError> {
    read_prefix(store, &month_prefix(year, month))
}

fn read_prefix(store: &dyn Store, prefix: &str) -> Result<Vec<LedgerEntry>, BillingError> {
    let mut entries = Vec::new();
    for key in store.list(prefix)? {
        if !key.ends_with(".json") {
            continue;
        }
        // An entry listed and then gone (removed by hand) is no longer part of the month.
        let Some(bytes) = store.get(&key)? else {
            continue;
        };
        let entry = serde_json::from_slice(&bytes)
            .map_err(|source| BillingError::Malformed { key, source })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// The month's billed minutes: all repositories', or `repository`'s alone.
pub fn minutes_used(
    store: &dyn Store,
    year: i32,
    month: u32,
    repository: Option<&str>,
) -> Result<u64, BillingError> {
    let prefix = match repository {
        Some(repository) => format!("{}{repository}/", month_prefix(year, month)),
        None => month_prefix(year, month),
    };
    // A project's prefix can hold a longer project's entries (`github.com/owner/repo` under a
    // repository named `github.com`): each entry says whose it is.
    Ok(read_prefix(store, &prefix)?
        .iter()
        .filter(|e| repository.is_none_or(|r| e.repository == r))
        .map(|e| e.billed_minutes)
        .sum())
}

#[cfg(test)]
mod tests;
