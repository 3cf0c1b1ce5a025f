//! The one way a build ends, whether it ran, could not start or was refused: the meter stops,
//! the log gets its last line and is stored, then the ledger entry, then the record (so a
//! reader who finds it finds everything else), then the build is closed in the index (so an
//! entry closed has its record), then the end-of-build metrics.

use std::path::Path;

use super::{BuildJob, PipelineError, StoredBuild, build_meta};
use crate::billing::{self, LedgerEntry};
use crate::cost::{self, BuildCost};
use crate::executor::ShellTail;
use crate::executor::env::BuildInfo;
use crate::executor::log::BuildLog;
use crate::index::{Closed, Closing};
use crate::metering::RunningMeter;
use crate::record::{BuildRecord, Ending};
use crate::state::BuildState;
use crate::store::{Layout, Store};

/// A build's work is done: how it ended, its log (still open), and its meter (`None` for a
/// build that was refused: it is billed nothing).
pub(super) struct Ended<'a> {
    pub ending: Ending,
    pub log: BuildLog,
    pub log_path: &'a Path,
    /// The build's work directory (the log's), removed once the log is stored.
    pub work: Option<tempfile::TempDir>,
    /// The last shell's tail (see [`Billed::shell`]).
    pub shell: Option<ShellTail>,
    pub meter: Option<RunningMeter>,
    /// Why the budget stopped the build, when it did.
    pub stop_reason: Option<String>,
}

/// Stores the build's log, ledger entry and record, and emits its end-of-build metrics.
pub(super) fn finish(
    job: &BuildJob,
    info: &BuildInfo,
    ended: Ended<'_>,
    store: &dyn Store,
) -> Result<StoredBuild, PipelineError> {
    let Ended {
        ending,
        log,
        log_path,
        work,
        shell,
        mut meter,
        stop_reason,
    } = ended;
    let identity = &job.identity;
    // The meter stops first, so the minutes it has emitted never exceed the billed ones; a
    // build is billed at most the minutes it reserved.
    let cost = match meter.as_mut() {
        Some(meter) => {
            let stopped = meter.stop();
            let mut cost = cost::build_cost_in(
                stopped.duration_since(identity.started),
                &job.settings.price,
                job.settings.metering.minute,
            );
            if let Some(reserved) = meter.minutes_reserved() {
                cost = cost.at_most(reserved);
            }
            cost
        }
        None => BuildCost::nothing(&job.settings.price),
    };
    let reason = ending.skip_reason.clone().or(stop_reason);
    record_end(
        job,
        info,
        Billed {
            ending,
            log,
            log_path,
            work,
            shell,
            cost,
            meter,
            reason,
        },
        store,
    )
}

/// A build's end with its cost worked out: what [`record_end`] stores.
pub(super) struct Billed<'a> {
    pub ending: Ending,
    pub log: BuildLog,
    pub log_path: &'a Path,
    /// The build's work directory (the log's), removed once the log is stored, beside the
    /// ledger entry and the record.
    pub work: Option<tempfile::TempDir>,
    /// The last shell, ended, its processes killed: their last output and the keeper are
    /// collected before the log's last line.
    pub shell: Option<ShellTail>,
    pub cost: BuildCost,
    /// The meter, for the billed minutes it has not emitted and the end record; `None` for a
    /// build billed nothing.
    pub meter: Option<RunningMeter>,
    /// Why it was skipped or stopped, for the index.
    pub reason: Option<String>,
}

/// Stores the build's log, ledger entry and record, then closes it in the index, and emits its
/// end-of-build metrics. The index is closed last: an entry closed has its record. A build whose
/// results cannot be stored stays open and is closed by the sweep (which finds its record, when
/// only the close failed).
pub(super) fn record_end(
    job: &BuildJob,
    info: &BuildInfo,
    billed: Billed<'_>,
    store: &dyn Store,
) -> Result<StoredBuild, PipelineError> {
    let Billed {
        ending,
        log,
        log_path,
        work,
        shell,
        cost,
        meter,
        reason,
    } = billed;
    let identity = &job.identity;
    // The killed processes' last output and the keeper, before the log's last line.
    if let Some(shell) = shell {
        shell.collect();
    }
    let complete = format!(
        "Build completed: {} in {} ms, {} billed minute(s)",
        ending.status, cost.duration_ms, cost.billed_minutes
    );
    if ending.status == BuildState::Succeeded {
        log.marker_ok(&complete);
    } else {
        log.marker_failed(&complete);
    }
    if let Some(err) = log.take_error() {
        return Err(PipelineError::Log(err));
    }
    drop(log);

    let layout = Layout::new(&info.project, info.build_id.as_str());
    let mut record = BuildRecord::new(
        info,
        identity.reference.clone(),
        identity.start_time,
        ending,
        store.uri(&layout.log()),
        cost,
    );
    record.batch = identity.batch.as_ref().map(|b| b.batch_id.clone());
    record.retries = identity.retries.clone();
    let record_uri = store_results(store, info, &layout, &record, log_path, work)?;
    let billed = close_in_index(job, &record, reason)?;
    if billed.billed_minutes != record.billed_minutes {
        // The sweep closed it first: the minutes it billed stand, in the ledger and the record.
        record.billed_minutes = billed.billed_minutes;
        record.cost = billed;
        billing::write_entry(store, &LedgerEntry::from_record(&record))?;
        store.put(
            &layout.record(),
            &serde_json::to_vec_pretty(&record)?,
            &build_meta(info, "application/json"),
        )?;
    }
    if job.settings.live_log.is_some() {
        // The whole log is stored: the live one goes.
        if let Err(error) = store.delete(&layout.live_log()) {
            tracing::debug!(%error, "the live log could not be removed");
        }
    }
    let reference = identity.reference.as_deref();
    match (meter, &record.skip_reason) {
        (Some(meter), _) => meter.finish(&record),
        (None, reason) => {
            job.settings
                .metering
                .skipped(info, reference, reason.as_deref().unwrap_or_default())
        }
    }
    Ok(StoredBuild { record, record_uri })
}

/// Records the end in the index, which gives back the minutes reserved and not started: the
/// cost as billed (a build the sweep closed first keeps the minutes the sweep billed).
fn close_in_index(
    job: &BuildJob,
    record: &BuildRecord,
    reason: Option<String>,
) -> Result<BuildCost, PipelineError> {
    let closing = Closing {
        project: record.repository.clone(),
        build_id: record.build_id.clone(),
        state: record.status,
        billed_minutes: record.cost.billed_minutes,
        cost_usd: record.cost.cost_usd,
        duration_ms: record.cost.duration_ms,
        reason,
        tests: crate::reports::ReportSummary::line(&record.reports),
    };
    match job.settings.books.index.close(&closing)? {
        Closed::Already(entry) => {
            tracing::warn!(
                build_id = %record.build_id,
                state = entry.state.as_str(),
                "the build was closed by the sweep before it finished; its billed minutes stay as the sweep recorded them"
            );
            Ok(record.cost.clone().with_minutes(entry.billed_minutes))
        }
        Closed::Now { .. } => Ok(record.cost.clone()),
    }
}

/// The log and the ledger entry go up side by side; the record, last. The work directory goes
/// once the log is out of it, while the ledger entry and the record are written. Where the record
/// is.
fn store_results(
    store: &dyn Store,
    info: &BuildInfo,
    layout: &Layout,
    record: &BuildRecord,
    log_path: &Path,
    work: Option<tempfile::TempDir>,
) -> Result<String, PipelineError> {
    let panicked = || PipelineError::Log(std::io::Error::other("the log's upload panicked"));
    let log_key = layout.log();
    std::thread::scope(|scope| {
        let log_key = &log_key;
        let (taken_tx, taken) = std::sync::mpsc::channel();
        let log = scope.spawn(move || {
            // Nothing reads the log file after: a local store takes it whole.
            let _ = taken_tx.send(store.take_file(
                log_key,
                log_path,
                &build_meta(info, "text/plain; charset=utf-8"),
            ));
            drop(work);
        });
        let ledgered = billing::write_entry(store, &LedgerEntry::from_record(record));
        let stored = taken.recv().map_err(|_| panicked()).and_then(|logged| {
            logged?;
            ledgered?;
            Ok(store.put(
                &layout.record(),
                &serde_json::to_vec_pretty(record)?,
                &build_meta(info, "application/json"),
            )?)
        });
        log.join().map_err(|_| panicked())?;
        stored
    })
}
