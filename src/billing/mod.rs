//! The billing ledger: one small JSON object per build under
//! `billing/<YYYY>/<MM>/<repository>/<build-id>.json`, written just before the build's record.
//! Builds never read and rewrite a shared object, so any number of them can finish at once; a
//! month's usage is the sum over its objects, and the index keeps that sum as builds go
//! (`pushbuild billing --verify` reconciles the two). [`Budget`] caps the month's minutes and
//! [`Report`] sums them per repository.

mod budget;
mod report;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::names::{BuildId, CommitId, ProjectName};
use crate::record::BuildRecord;
use crate::state::BuildState;
use crate::store::{ObjectMeta, Store, StoreError};

pub use budget::Budget;
pub use report::{CacheStorage, Report, Row};

/// Why the ledger could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An object under `billing/` is not a ledger entry.
    #[error("the ledger entry {key} is malformed at `{field}`: {message}")]
    Malformed {
        key: String,
        /// The field's path in the entry (`billed_minutes`), `.` for the whole entry.
        field: String,
        message: String,
    },
    /// An entry holds an amount no build can cost.
    #[error(
        "the ledger entry {key} has `{field}` = {found}: expected a finite amount of 0 or more"
    )]
    BadAmount {
        key: String,
        field: &'static str,
        found: f64,
    },
    /// A sum over the month would leave its type's range: no total is given rather than a
    /// wrong one.
    #[error("the month's {what} overflows at the ledger entry {key}")]
    Overflow { key: String, what: &'static str },
}

impl BillingError {
    /// Whether the ledger's content is at fault (not the store's reading of it).
    pub fn is_bad_entry(&self) -> bool {
        !matches!(self, BillingError::Store(_))
    }
}

/// One build's line in the ledger: what was built, how it ended and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub build_id: BuildId,
    pub repository: ProjectName,
    /// The reference that was built (`refs/heads/main`), when there is one.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitId>,
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `SKIPPED`.
    pub status: BuildState,
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
            repository: record.repository.clone(),
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
        .with("build-id", entry.build_id.as_str())
        .with("repository", entry.repository.as_str());
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
        entries.push(parse_entry(&key, &bytes)?);
    }
    Ok(entries)
}

/// The billed minutes of `entries`, summed without wrapping: an error names the entry at which
/// the sum would overflow.
pub fn sum_minutes<'a>(
    entries: impl IntoIterator<Item = &'a LedgerEntry>,
) -> Result<u64, BillingError> {
    entries.into_iter().try_fold(0u64, |sum, entry| {
        sum.checked_add(entry.billed_minutes)
            .ok_or_else(|| BillingError::Overflow {
                key: entry.key(),
                what: "billed minutes",
            })
    })
}

/// The entry stored as `key`: its JSON, whose errors name the field, and amounts that are
/// finite and not negative.
pub fn parse_entry(key: &str, bytes: &[u8]) -> Result<LedgerEntry, BillingError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let entry: LedgerEntry =
        serde_path_to_error::deserialize(&mut json).map_err(|err| BillingError::Malformed {
            key: key.to_string(),
            field: err.path().to_string(),
            message: err.into_inner().to_string(),
        })?;
    let amounts = [
        ("cost_usd", entry.cost_usd),
        ("price_usd_per_minute", entry.price_usd_per_minute),
        (
            "codebuild_general1_small_usd",
            entry.codebuild_general1_small_usd,
        ),
    ];
    for (field, found) in amounts {
        if !(found.is_finite() && found >= 0.0) {
            return Err(BillingError::BadAmount {
                key: key.to_string(),
                field,
                found,
            });
        }
    }
    Ok(entry)
}

/// A month's sums for one repository (or, with `repository` empty, for all of them), as the
/// index keeps them: the report and the billing page are made from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sums {
    pub repository: String,
    /// Billed minutes of closed builds plus the reservations of open ones.
    pub minutes: u64,
    /// Closed builds.
    pub builds: u64,
    pub failures: u64,
    pub skipped: u64,
    /// The cost in ten-millionths of a dollar (the records' precision), summed exactly.
    pub cost_e7: u64,
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests;
