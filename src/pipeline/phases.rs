//! What a build that runs does: its phases in its shell, then its artifacts; and the one
//! phase of a build whose source or buildspec could not be had.

use std::path::Path;
use std::time::Instant;

use chrono::Utc;

use super::{BuildJob, PipelineError, Ready, caching, reporting, started_line, upload};
use crate::executor::env::BuildInfo;
use crate::executor::log::BuildLog;
use crate::executor::{
    self, BuildRequest, Deadline, EarlyShell, PhaseContext, PhaseOutcome, RunStatus, ShellTail,
};
use crate::record::Ending;
use crate::state::BuildState;
use crate::store::Store;

/// What a build's phases run with.
pub(super) struct Phases<'a> {
    pub job: &'a BuildJob,
    pub ready: &'a Ready,
    pub info: &'a BuildInfo,
    pub work_dir: &'a Path,
    pub log: &'a BuildLog,
    pub store: &'a dyn Store,
    pub deadline: &'a Deadline,
}

/// The phases (in `early`'s shell, if one was started), then the artifacts; with the last
/// shell's tail, to collect before the log's last line.
pub(super) fn run_phases(
    phases: &Phases<'_>,
    early: Option<EarlyShell>,
) -> Result<(Ending, Option<ShellTail>), PipelineError> {
    let Phases {
        job,
        ready,
        info,
        work_dir,
        log,
        store,
        deadline,
    } = *phases;
    let mut warnings = opening_lines(ready, info, log);
    let env = caching::build_env(job, ready, info);
    let caching = caching::Caching {
        job,
        ready,
        info,
        env: &env,
        store,
        deadline,
        log,
    };
    let since = reporting::file_clock_now(work_dir);
    let mut cache = caching.restore();
    let request = BuildRequest {
        spec: &ready.spec,
        src_dir: ready.src_dir.clone(),
        work_dir: work_dir.to_path_buf(),
        env: env.clone(),
        secret_values: ready.secrets.iter().map(|(_, v)| v.clone()).collect(),
        deadline: deadline.clone(),
        runtimes: job.settings.runtimes.as_deref(),
    };
    // What the shell left is killed by now: its last output and the keeper are collected while
    // the build is recorded.
    let (mut outcome, shell) = executor::run_to_tail(&request, log, early)?;
    // Stopped by the budget, not by its deadline: FAILED, its last phase says why; asked to
    // stop: STOPPED.
    let stopped_as = if deadline.stop_reason().is_some() {
        Some(RunStatus::Stopped)
    } else {
        deadline.budget_reason().map(|_| RunStatus::Failed)
    };
    if let (RunStatus::TimedOut, Some(status)) = (outcome.status, stopped_as) {
        outcome.status = status;
        if let Some(last) = outcome.phases.last_mut() {
            last.status = status;
        }
    }
    let mut ending = Ending::ran(outcome.status, outcome.phases);
    ending.exported_variables = outcome.exported_variables.into_iter().collect();
    ending.reports = reporting::Reporting {
        spec: &ready.spec,
        src_dir: &ready.src_dir,
        env: &env,
        info,
        store,
        log,
        since,
    }
    .run();
    if let (true, Some(spec_artifacts)) = (outcome.upload_artifacts, &ready.spec.artifacts) {
        let target = upload::Target {
            info,
            src_dir: &ready.src_dir,
            store,
            log,
        };
        let names = &outcome.artifact_names;
        let uploaded = upload::upload_artifacts(&target, spec_artifacts, names)?;
        warnings.extend(uploaded.add_to(&mut ending));
    }
    caching.save(&mut cache, ending.status == BuildState::Succeeded);
    ending.cache = cache;
    ending.warnings = warnings;
    Ok((ending, shell))
}

/// The log's first lines: the build started, the notes on how it runs and the buildspec's
/// warnings (which the record keeps too).
fn opening_lines(ready: &Ready, info: &BuildInfo, log: &BuildLog) -> Vec<String> {
    started_line(log, info);
    let warnings: Vec<String> = ready
        .spec_warnings
        .iter()
        .map(|w| format!("buildspec: {w}"))
        .collect();
    for note in &ready.notes {
        log.marker(note);
    }
    for warning in &warnings {
        log.marker(&format!("Warning: {warning}"));
    }
    warnings
}

/// The short log and the one phase of a build whose source or buildspec could not be had.
pub(super) fn cannot_start(
    info: &BuildInfo,
    context: &PhaseContext,
    notes: &[String],
    log: &BuildLog,
) -> Ending {
    const PHASE: &str = "DOWNLOAD_SOURCE";
    let started = Utc::now();
    let clock = Instant::now();
    started_line(log, info);
    log.marker(&format!("Entering phase {PHASE}"));
    for note in notes {
        log.marker(note);
    }
    log.phase_complete(PHASE, RunStatus::Failed, Some(context));
    let phase = PhaseOutcome {
        phase: PHASE.to_string(),
        status: RunStatus::Failed,
        started,
        duration_ms: executor::millis(clock.elapsed()),
        attempts: 1,
        context: Some(context.clone()),
    };
    Ending::ran(RunStatus::Failed, vec![phase])
}
