//! One build from start to record. The command line and the Lambda function describe a build
//! as a [`BuildJob`] (who it is, the settings it runs with, and the [`Work`]: run the buildspec,
//! or record why it cannot run or was refused) and hand it to [`run`]; every build, whatever its
//! work, then ends the same way (`finish.rs`): its log, its ledger entry, its record (last) and
//! its end-of-build metrics.
//!
//! The steps: claim a build number (`number.rs`), open the log, do the work (the phases, then
//! the artifacts in `upload.rs`), finish.

mod begin;
mod caching;
mod finish;
mod handover;
mod job;
mod phases;
mod reporting;
mod upload;
mod watch;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::executor::env::BuildInfo;
use crate::executor::log::{BuildLog, Echo};
use crate::executor::{self, ContextCode, EarlyShell, ExecutorError, PhaseContext};
use crate::index::IndexError;
use crate::record::Ending;
use crate::store::{Layout, ObjectMeta, Store, StoreError};

pub use begin::{Begun, begin};
pub use handover::{HandOver, HandedOver, Handover, finish_handed_over, hand_over, load_handover};
pub use job::{BuildIdentity, BuildJob, BuildSettings, Metering, Ready, StoredBuild, Work};
use phases::{Phases, cannot_start, run_phases};

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
    let mut env = caching::build_env(job, ready, &job.identity.info(0));
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
        ..
    } = begun;
    let info = job.identity.info(number);
    let Opened {
        work,
        log_path,
        log,
    } = opened;
    let skipped = |reason: String| (skip(&log, &info, reason), None, None);
    let watch_done = (std::sync::Mutex::new(false), std::sync::Condvar::new());
    let (ending, meter, shell) = std::thread::scope(|scope| {
        // While the phases run, the end of the log so far is kept in the store for the page,
        // and an ask to stop is looked for.
        let watch = match (&job.work, &refusal) {
            (Work::Run(_), None) => {
                let watched = watched(job, &info, &log_path, &deadline, store);
                Some(watch::Watch::start(scope, &watch_done, watched))
            }
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
        if let Some(watch) = watch {
            watch.end();
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

/// The log's last words for a build that is not run: it is SKIPPED, and why.
fn skip(log: &BuildLog, info: &BuildInfo, reason: String) -> Ending {
    log.marker(&format!(
        "Skipping build {} (#{}) of {}: {reason}",
        info.build_id, info.build_number, info.project
    ));
    Ending::skipped(reason)
}

/// What a running build's watch looks after: its live log (when kept), its own ask to stop
/// and its batch's.
fn watched<'scope>(
    job: &BuildJob,
    info: &BuildInfo,
    log_path: &'scope Path,
    deadline: &executor::Deadline,
    store: &'scope dyn Store,
) -> watch::Watched<'scope> {
    let layout = Layout::new(&info.project, info.build_id.as_str());
    let mut stop_keys = vec![layout.stop()];
    if let Some(batch) = &job.identity.batch {
        stop_keys.push(crate::batch::BatchRecord::stop_key(
            info.project.as_str(),
            &batch.batch_id,
        ));
    }
    watch::Watched {
        live: job.settings.live_log.map(|every| watch::Live {
            every,
            path: log_path,
            key: layout.live_log(),
            meta: build_meta(info, "text/plain; charset=utf-8"),
        }),
        stop_keys,
        deadline: deadline.clone(),
        store,
    }
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
