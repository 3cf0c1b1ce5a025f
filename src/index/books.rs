//! The index together with the caps and the store: what a build's bookkeeping needs, and closing
//! builds nobody finished ([`Books::sweep`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Closed, Closing, Entry, Index, IndexError};
use crate::billing::{self, Budget, LedgerEntry};
use crate::cost::{self, BuildCost, Price};
use crate::executor::env::BuildInfo;
use crate::names::{CommitId, ProjectName};
use crate::record::{BuildRecord, Ending};
use crate::state::BuildState;
use crate::store::{Layout, ObjectMeta, Store, StoreError};

/// The index, the caps it applies, and how long a build may take to store its results after its
/// last paid minute. Clones share one sweep clock.
#[derive(Clone)]
pub struct Books {
    pub index: Arc<dyn Index>,
    pub budget: Budget,
    /// Kept after a build's last reserved minute (or its deadline) for storing its artifacts,
    /// log and record; an open entry older than that is closed by the sweep.
    pub grace: Duration,
    /// When [`Books::sweep_quietly`] last looked (ms since the epoch; `i64::MIN`: never).
    last_sweep_ms: Arc<AtomicI64>,
}

/// How often builds that begin look for builds nobody finished: at most once a minute per
/// process (a function instance, a `pushbuild serve`), and always on the first build.
pub const SWEEP_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// Why the books could not be read or put right.
#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Billing(#[from] billing::BillingError),
    #[error("the record {key} is malformed: {message}")]
    Record { key: String, message: String },
}

/// Whether the sweep leaves `entry` alone because it runs on AWS CodeBuild (its hand-over object
/// is in the store): the function finishes it from CodeBuild's answer. One a day past its expiry
/// is closed like any other (CodeBuild cannot be asked, or has forgotten it).
fn on_codebuild(store: &dyn Store, entry: &Entry, now: DateTime<Utc>) -> Result<bool, BooksError> {
    if now - entry.expires_at > chrono::Duration::days(1) {
        return Ok(false);
    }
    let Ok(project) = ProjectName::parse(entry.project.as_str()) else {
        return Ok(false);
    };
    Ok(store
        .get(&Layout::new(&project, entry.build_id.as_str()).handover())?
        .is_some())
}

/// What the sweep says of a queued build that never began.
pub const NEVER_STARTED: &str = "the build was queued and never began: it was closed when its \
     queued timeout (8 hours) had passed";

/// What the sweep says of a build it closed.
pub const ABANDONED: &str = "the function did not finish this build: it stopped reserving minutes \
     (the invocation was killed, ran out of memory or timed out) and was closed by a later one";

impl Books {
    pub fn new(index: Arc<dyn Index>, budget: Budget, grace: Duration) -> Books {
        Books {
            index,
            budget,
            grace,
            last_sweep_ms: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// Closes every open entry past its expiry as TIMED_OUT, billed the minutes it reserved, and
    /// stores a log, a ledger entry and a record for it; an entry whose build stored its record
    /// (and lost only its close) is closed as the record says. Returns the entries it closed,
    /// each with the state it was closed in (one look in the store for each).
    pub fn sweep(&self, store: &dyn Store, now: DateTime<Utc>) -> Result<Vec<Entry>, BooksError> {
        let mut closed = Vec::new();
        for mut entry in self.index.expired(now)? {
            if on_codebuild(store, &entry, now)? {
                continue;
            }
            // Its results were stored and only its close was lost: closed as its record says.
            if let Some(record) = stored_record(store, &entry)? {
                if let Closed::Now { .. } = self.index.close(&closing_of(&record))? {
                    entry.state = record.status;
                    closed.push(entry);
                }
                continue;
            }
            let price = Price {
                usd_per_minute: entry.price_usd_per_minute,
                basis: entry.price_basis.clone(),
            };
            let paid_until = entry
                .expires_at
                .checked_sub_signed(chrono::Duration::from_std(self.grace).unwrap_or_default())
                .unwrap_or(entry.expires_at);
            let duration_ms =
                u64::try_from((paid_until - entry.start_time).num_milliseconds()).unwrap_or(0);
            let cost = BuildCost {
                duration_ms,
                billed_minutes: entry.reserved_minutes,
                cost_usd: cost::round_usd(entry.reserved_minutes as f64 * price.usd_per_minute),
                codebuild_general1_small_usd: cost::round_usd(
                    entry.reserved_minutes as f64 * cost::CODEBUILD_GENERAL1_SMALL_MINUTE,
                ),
                price,
            };
            let closing = Closing {
                project: entry.project.clone(),
                build_id: entry.build_id.clone(),
                state: BuildState::TimedOut,
                billed_minutes: entry.reserved_minutes,
                cost_usd: cost.cost_usd,
                duration_ms,
                reason: Some(why(&entry).to_string()),
                tests: None,
            };
            if let Closed::Now { .. } = self.index.close(&closing)? {
                tracing::warn!(
                    project = %entry.project,
                    build_id = %entry.build_id,
                    minutes = entry.reserved_minutes,
                    "closed a build nobody finished as TIMED_OUT"
                );
                store_abandoned(store, &entry, cost)?;
                entry.state = BuildState::TimedOut;
                closed.push(entry);
            }
        }
        Ok(closed)
    }

    /// [`sweep`](Self::sweep) when [`SWEEP_EVERY`] has passed since these books last did,
    /// logging instead of failing: a build must not fail because an earlier one cannot be closed.
    pub fn sweep_quietly(&self, store: &dyn Store) -> Vec<Entry> {
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= SWEEP_EVERY.num_milliseconds();
        let taken = due
            && self
                .last_sweep_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if !taken {
            return Vec::new();
        }
        self.sweep(store, now).unwrap_or_else(|error| {
            tracing::warn!(%error, "the sweep of unfinished builds failed");
            Vec::new()
        })
    }
}

/// Why the sweep closed `entry`.
fn why(entry: &Entry) -> &'static str {
    if entry.state == BuildState::Queued {
        NEVER_STARTED
    } else {
        ABANDONED
    }
}

/// The log, ledger entry and record of a build the sweep closed.
/// The record of the build `entry` names, when it was stored.
fn stored_record(store: &dyn Store, entry: &Entry) -> Result<Option<BuildRecord>, BooksError> {
    let Ok(project) = ProjectName::parse(entry.project.as_str()) else {
        return Ok(None);
    };
    let key = Layout::new(&project, entry.build_id.as_str()).record();
    Ok(store
        .get(&key)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// The close a stored record says.
fn closing_of(record: &BuildRecord) -> Closing {
    Closing {
        project: record.repository.clone(),
        build_id: record.build_id.clone(),
        state: record.status,
        billed_minutes: record.billed_minutes,
        cost_usd: record.cost.cost_usd,
        duration_ms: record.duration_ms,
        reason: record.skip_reason.clone(),
        tests: crate::reports::ReportSummary::line(&record.reports),
    }
}

fn store_abandoned(store: &dyn Store, entry: &Entry, cost: BuildCost) -> Result<(), BooksError> {
    let project =
        ProjectName::parse(entry.project.as_str()).map_err(|err| IndexError::Malformed {
            what: "project".to_string(),
            message: err.to_string(),
        })?;
    let info = BuildInfo {
        build_id: entry.build_id.clone(),
        project: project.clone(),
        build_number: entry.number,
        initiator: entry.initiator.clone(),
        source_version: entry.commit.clone(),
        resolved_source_version: entry
            .commit
            .as_deref()
            .and_then(|c| CommitId::parse(c).ok()),
        source_repo_url: None,
        webhook_trigger: None,
        webhook: None,
        start_time_ms: entry.start_time.timestamp_millis(),
    };
    let layout = Layout::new(&project, entry.build_id.as_str());
    let log_key = layout.log();
    let log_uri = match store.get(&log_key)? {
        Some(_) => store.uri(&log_key),
        None => store.put(
            &log_key,
            format!("[pushbuild] {}\n", why(entry)).as_bytes(),
            &ObjectMeta::new("text/plain; charset=utf-8"),
        )?,
    };
    let mut ending = Ending::ran(BuildState::TimedOut, Vec::new());
    ending.warnings = vec![why(entry).to_string()];
    let record = BuildRecord::new(
        &info,
        entry.reference.clone(),
        entry.start_time,
        ending,
        log_uri,
        cost,
    );
    billing::write_entry(store, &LedgerEntry::from_record(&record))?;
    let json = serde_json::to_vec_pretty(&record).map_err(|err| BooksError::Record {
        key: layout.record(),
        message: err.to_string(),
    })?;
    store.put(
        &layout.record(),
        &json,
        &ObjectMeta::new("application/json"),
    )?;
    Ok(())
}
