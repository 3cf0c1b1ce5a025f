//! One build from start to record. The command line and the Lambda function describe a build
//! as a [`BuildJob`] (who it is, the settings it runs with, and the [`Work`]: run the buildspec,
//! or record why it cannot run or was refused) and hand it to [`run`]; every build, whatever its
//! work, then ends the same way (`finish.rs`): its log, its ledger entry, its record (last) and
//! its end-of-build metrics.
//!
//! The steps: claim a build number (`number.rs`), open the log, do the work (the phases, then
//! the artifacts in `upload.rs`), finish.

mod begin;
mod finish;
mod handover;
mod job;
mod live;
mod upload;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;

use crate::executor::env::{self, BuildInfo};
use crate::executor::log::{BuildLog, Echo};
use crate::executor::{
    self, BuildRequest, ContextCode, Deadline, EarlyShell, ExecutorError, PhaseContext,
    PhaseOutcome, RunStatus, ShellTail,
};
use crate::index::IndexError;
use crate::record::Ending;
use crate::state::BuildState;
use crate::store::{Layout, ObjectMeta, Store, StoreError};

pub use begin::{Begun, begin};
pub use handover::{HandOver, HandedOver, Handover, finish_handed_over, hand_over, load_handover};
pub use job::{BuildIdentity, BuildJob, BuildSettings, Metering, Ready, StoredBuild, Work};

/// A failure of pushbuild itself (not of the user's build).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot prepare the build's work directory under {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    #[error("cannot write the build log: {0}")]
    Log(#[source] std::io::Error),
    #[error("cannot encode the build record: {0}")]
    Record(#[from] serde_json::Error),
    #[error(transparent)]
    CodeBuild(#[from] crate::codebuild::CodeBuildError),
}

impl PipelineError {
    /// Whether trying the build again can succeed: a store error says for itself; pushbuild's
    /// own failures here (a work directory, the log file, a shell that did not start) may not
    /// happen again on another try or another machine.
    pub fn retryable(&self) -> bool {
        match self {
            PipelineError::Store(err) => err.retryable(),
            PipelineError::Index(err) => err.retryable(),
            PipelineError::CodeBuild(err) => err.retryable,
            PipelineError::WorkDir { .. }
            | PipelineError::Executor(_)
            | PipelineError::Log(_)
            | PipelineError::Record(_) => true,
        }
    }
}

/// Runs `job` and stores its log, artifacts, ledger entry and record in `store`: [`begin`],
/// then the rest as [`run_begun`] does. The build's shell starts while the build begins in the
/// index (see [`EarlyShell`]).
pub fn run(job: &BuildJob, store: &dyn Store) -> Result<StoredBuild, PipelineError> {
    let opened = Opened::new(job)?;
    // Started, the shell goes on starting by itself.
    let early = early_shell(job, &opened);
    let begun = begin(&job.identity, &job.settings, job.deadline, store)?;
    run_opened(job, begun, opened, early, store)
}

/// Runs `job`, which has begun (its number taken, its first minute reserved or refused).
pub fn run_begun(
    job: &BuildJob,
    begun: Begun,
    store: &dyn Store,
) -> Result<StoredBuild, PipelineError> {
    let opened = Opened::new(job)?;
    run_opened(job, begun, opened, None, store)
}

/// A build's private work directory (for its log and the shell's command file) and its log,
/// open in it.
struct Opened {
    work: tempfile::TempDir,
    log_path: PathBuf,
    log: BuildLog,
}

impl Opened {
    fn new(job: &BuildJob) -> Result<Opened, PipelineError> {
        let work = executor::work_dir_in(&job.settings.temp_root).map_err(|source| {
            PipelineError::WorkDir {
                path: job.settings.temp_root.clone(),
                source,
            }
        })?;
        let log_path = work.path().join("build.log");
        let log = open_log(&log_path, job.settings.echo)?;
        Ok(Opened {
            work,
            log_path,
            log,
        })
    }
}

/// The shell of a build that runs a buildspec, started with the build's environment but for
/// its number, which only the index can give.
fn early_shell(job: &BuildJob, opened: &Opened) -> Option<EarlyShell> {
    let Work::Run(ready) = &job.work else {
        return None;
    };
    let mut env = env::environment(
        &job.settings.base_env,
        &ready.spec,
        &ready.overrides,
        &ready.secrets,
        &job.identity.info(0),
        &ready.src_dir,
        ready.home.as_deref(),
    );
    env.retain(|(name, _)| name != "CODEBUILD_BUILD_NUMBER");
    // Whatever the shell prints from now on is masked like the build's own output.
    opened
        .log
        .add_secrets(ready.secrets.iter().map(|(_, v)| v.clone()));
    EarlyShell::start(
        &ready.spec,
        &ready.src_dir,
        env,
        opened.work.path(),
        &opened.log,
    )
}

fn run_opened(
    job: &BuildJob,
    begun: Begun,
    opened: Opened,
    early: Option<EarlyShell>,
    store: &dyn Store,
) -> Result<StoredBuild, PipelineError> {
    let Begun {
        number,
        refusal,
        meter,
        deadline,
    } = begun;
    let info = job.identity.info(number);
    let Opened {
        work,
        log_path,
        log,
    } = opened;
    let skipped = |reason: String| {
        log.marker(&format!(
            "Skipping build {} (#{}) of {}: {reason}",
            info.build_id, info.build_number, info.project
        ));
        (Ending::skipped(reason), None, None)
    };
    let stop_live = (std::sync::Mutex::new(false), std::sync::Condvar::new());
    let (ending, meter, shell) = std::thread::scope(|scope| {
        // While the phases run, the end of the log so far is kept in the store for the page.
        let live = match (&job.work, &refusal, job.settings.live_log) {
            (Work::Run(_), None, Some(every)) => Some(live::LiveLog::start(
                scope,
                &stop_live,
                every,
                &log_path,
                Layout::new(&info.project, info.build_id.as_str()).live_log(),
                build_meta(&info, "text/plain; charset=utf-8"),
                store,
            )),
            _ => None,
        };
        let ended = match (&job.work, refusal) {
            (Work::Run(ready), None) => {
                let phases = Phases {
                    job,
                    ready,
                    info: &info,
                    work_dir: work.path(),
                    log: &log,
                    store,
                    deadline: &deadline,
                };
                run_phases(&phases, early).map(|(ending, shell)| (ending, meter, shell))
            }
            (Work::CannotStart { context, notes }, None) => {
                drop(early);
                Ok((cannot_start(&info, context, notes, &log), meter, None))
            }
            (Work::Refused { reason }, _) => {
                drop(early);
                Ok(skipped(reason.clone()))
            }
            (_, Some(reason)) => {
                drop(early);
                Ok(skipped(reason))
            }
        };
        if let Some(live) = live {
            live.stop();
        }
        ended
    })?;
    let stop_reason = deadline.budget_reason();
    finish::finish(
        job,
        &info,
        finish::Ended {
            ending,
            log,
            log_path: &log_path,
            work: Some(work),
            shell,
            meter,
            stop_reason,
        },
        store,
    )
}

fn open_log(path: &Path, echo: Echo) -> Result<BuildLog, PipelineError> {
    let file = File::create(path).map_err(|source| PipelineError::WorkDir {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(BuildLog::new(Box::new(BufWriter::new(file)), echo))
}

fn started_line(log: &BuildLog, info: &BuildInfo) {
    log.marker(&format!(
        "Build {} (#{}) of {} started by {}",
        info.build_id, info.build_number, info.project, info.initiator
    ));
}

/// What a build's phases run with.
struct Phases<'a> {
    job: &'a BuildJob,
    ready: &'a Ready,
    info: &'a BuildInfo,
    work_dir: &'a Path,
    log: &'a BuildLog,
    store: &'a dyn Store,
    deadline: &'a Deadline,
}

/// The phases (in `early`'s shell, if one was started), then the artifacts; with the last
/// shell's tail, to collect before the log's last line.
fn run_phases(
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
    started_line(log, info);
    let mut warnings: Vec<String> = ready
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
    let env = env::environment(
        &job.settings.base_env,
        &ready.spec,
        &ready.overrides,
        &ready.secrets,
        info,
        &ready.src_dir,
        ready.home.as_deref(),
    );
    let request = BuildRequest {
        spec: &ready.spec,
        src_dir: ready.src_dir.clone(),
        work_dir: work_dir.to_path_buf(),
        env,
        secret_values: ready.secrets.iter().map(|(_, v)| v.clone()).collect(),
        deadline: deadline.clone(),
        runtimes: job.settings.runtimes.as_deref(),
    };
    // What the shell left is killed by now: its last output and the keeper are collected while
    // the build is recorded.
    let (mut outcome, shell) = executor::run_to_tail(&request, log, early)?;
    if outcome.status == RunStatus::TimedOut && deadline.budget_reason().is_some() {
        // Stopped by the budget, not by its deadline: FAILED, its last phase says why.
        outcome.status = RunStatus::Failed;
        if let Some(last) = outcome.phases.last_mut() {
            last.status = RunStatus::Failed;
        }
    }
    let mut ending = Ending::ran(outcome.status, outcome.phases);
    ending.exported_variables = outcome.exported_variables.into_iter().collect();
    if outcome.upload_artifacts {
        if let Some(spec_artifacts) = &ready.spec.artifacts {
            let uploaded = upload::upload_artifacts(
                &upload::Target {
                    info,
                    src_dir: &ready.src_dir,
                    store,
                    log,
                },
                spec_artifacts,
                &outcome.artifact_names,
            )?;
            if uploaded.phase.status == RunStatus::Failed && ending.status == BuildState::Succeeded
            {
                ending.status = BuildState::Failed;
            }
            ending.phases.push(uploaded.phase);
            ending.artifacts = uploaded.artifacts;
            warnings.extend(uploaded.warnings);
        }
    }
    ending.warnings = warnings;
    Ok((ending, shell))
}

/// The short log and the one phase of a build whose source or buildspec could not be had.
fn cannot_start(
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

/// A client error: the build's input is at fault.
pub fn client_error(message: impl Into<String>) -> PhaseContext {
    PhaseContext::new(ContextCode::ClientError, message)
}

/// The metadata kept with each of a build's objects: its id, repository and commit.
fn build_meta(info: &BuildInfo, content_type: &str) -> ObjectMeta {
    let mut meta = ObjectMeta::new(content_type)
        .with("build-id", info.build_id.as_str())
        .with("repository", info.project.as_str());
    if let Some(commit) = &info.resolved_source_version {
        meta = meta.with("commit", commit.as_str());
    }
    meta
}

#[cfg(test)]
mod tests;
