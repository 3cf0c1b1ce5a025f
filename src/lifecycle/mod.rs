//! One owner of a build's life, from what to build to its answer:
//!
//! ```text
//! claim → resolve → begin → fetch → place → run here or hand over → finish → report
//! ```
//!
//! [`Builds::build`] reads in that order, and every build goes through it, whoever asked: the
//! Lambda handler (`crate::function`), the local queue behind `pushbuild serve`, and
//! `pushbuild invoke`. They only turn an event or a request into a [`BuildTarget`], and the
//! [`BuildSummary`] into their answer. The front door's part of a webhook's life (claim the
//! delivery, queue the build, hand it off) is [`queue`] here too, so a delivery is claimed in
//! one place.
//!
//! Beside: `claim.rs` (once per delivery), `prepare.rs` (resolve, fetch), `cleanup.rs` (a
//! build's directories removed after it, giving way to fetches), `place.rs` (Lambda
//! or CodeBuild, and CodeBuild's results), `report.rs` (the commit's status), `batching.rs`,
//! `stopping.rs`; beginning, running and finishing a build are `crate::pipeline`'s. Only
//! pushbuild's own failures are a [`BuildError`] (which says whether a retry can help).

mod batching;
mod claim;
mod cleanup;
mod disk;
mod error;
mod events;
#[cfg(feature = "aws")]
mod job;
mod notify;
mod place;
mod prepare;
mod queue;
mod report;
mod retry;
mod secrets;
mod setup;
mod stopping;
mod summary;
mod supersede;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Instant;

use crate::codebuild::CodeBuild;
use crate::config::Config;
use crate::executor::env::WebhookVars;
use crate::executor::log::Echo;
use crate::index::{Books, Index, IndexError};
use crate::metering::MetricSink;
use crate::pipeline::{self, Begun, BuildIdentity, BuildJob, Work};
use crate::runtimes::Runtimes;
use crate::source::Source;
use crate::state::BuildState;
use crate::status::{HostApi, StatusTarget};
use crate::store::Store;
use crate::trigger::{BuildTarget, Host};
use crate::vault::Vault;

pub use batching::ChildDispatch;
pub use claim::CLAIM_TTL;
pub use disk::spare_files;
pub use error::BuildError;
pub use place::COMPUTE_VAR;
pub use queue::{Accepted, Dispatch, DispatchError, QueueError, queue};
pub use retry::{RetryError, retry_target};
pub use setup::build_base_env;
pub use stopping::{StopError, Stopping, ask_to_stop};
pub use summary::BuildSummary;
pub use supersede::Superseding;

/// What builds here are made with: the settings, the source, the store and the index, and the
/// optional parts (the image's runtimes, the metrics' sink, the hosts' APIs, AWS CodeBuild).
/// Made once with [`Builds::new`] and the `with_*` methods, when the function or a command
/// starts.
pub struct Builds<S> {
    config: Config,
    source: S,
    store: Arc<dyn Store>,
    /// The index (numbers, claims, entries, the month's sums) with the budget's caps: one for
    /// all the builds, so they share the sweep's clock.
    books: Books,
    /// The environment builds start from (the process's own, less pushbuild's settings).
    base_env: Vec<(String, String)>,
    /// The image's runtimes, which `runtime-versions` chooses from (`None`: the machine's own
    /// tools).
    runtimes: Option<Arc<Runtimes>>,
    metrics: Arc<dyn MetricSink>,
    /// Where build logs are echoed as they are written (off on Lambda, whose standard output
    /// carries metrics).
    echo: Echo,
    /// The hosts' APIs that webhook builds report their results to.
    apis: Vec<(Host, Arc<dyn HostApi>)>,
    /// AWS CodeBuild, for builds that outgrow the function (with `PUSHBUILD_CODEBUILD_PROJECT`).
    codebuild: Option<Arc<dyn CodeBuild>>,
    /// Where people are told of failed and fixed builds (`PUSHBUILD_NOTIFY_URL`).
    notify: Option<Arc<dyn crate::status::notify::Notify>>,
    /// Where each build's state changes go as events (`PUSHBUILD_EVENT_BUS`).
    events: Option<Arc<dyn crate::status::events::BuildEvents>>,
    /// CodePipeline, for the jobs of its Lambda invoke action (the function only).
    codepipeline: Option<Arc<dyn crate::codepipeline::CodePipeline>>,
    /// Where the builds' secret variables are read (`None`: this process's own environment).
    vault: Option<Arc<dyn Vault>>,
    /// Whether Docker can run here (never in the function; locally, when `docker` is on the
    /// `PATH`): a buildspec that runs it elsewhere goes to CodeBuild, or is refused.
    docker: bool,
    /// When the builds on CodeBuild were last looked up (milliseconds since the epoch).
    settled_ms: AtomicI64,
    /// Who hands off a batch's children, once set (`set_children`).
    children: std::sync::OnceLock<Arc<dyn batching::ChildDispatch>>,
    /// Where a finished build's files are kept for the next checkout (`spare_files`).
    spares: Option<Arc<crate::source::Spares>>,
}

impl<S: Source> Builds<S> {
    /// The whole life of the build `target` asks for; `deadline` is the invocation's. A
    /// failed user build is a summary; only pushbuild's own failures are errors.
    pub async fn build(
        &self,
        target: BuildTarget,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, BuildError> {
        // Claim: a build asked for by a delivery is built once, however often it is delivered.
        let claim = match claim::take(&self.books.index, &target).await? {
            claim::Claimed::Duplicate(summary) => return Ok(*summary),
            claim::Claimed::Taken(claim) => claim,
        };
        let identity = self.identity(&target);
        // A newer push stops its reference's older builds (a webhook's did as it was queued).
        if target.build_id.is_none() {
            self.supersede_older(&target, &identity).await;
        }
        // Report: the commit shows `pending` while the build lives, then how it ended.
        let status = report::target(
            &self.apis,
            &self.config.git,
            &self.base_env,
            &target,
            &identity,
        );
        let report = status
            .clone()
            .and_then(|status| report::Report::start(&self.apis, status, &identity));
        let child = target
            .batch
            .clone()
            .map(|child| (target.project.clone(), child));
        let result = self.live(target, identity, deadline, status).await;
        if let Some(report) = report {
            report.finish(&result).await;
        }
        if let Ok(summary) = &result {
            tokio::join!(self.announce_end(summary), self.notify_end(summary));
        }
        // A batch's child: its end may start others, or close the batch.
        if let (Some((project, child)), Ok(summary)) = (&child, &result) {
            self.child_ended(project, child, summary).await;
        }
        // A claim whose build failed for pushbuild's own reasons goes back for a retry.
        claim.settle(&result).await;
        result
    }

    /// The build, placed where it runs; one that times out in the function starts again on
    /// CodeBuild as a new build naming the one it replaces (and the project's builds go there
    /// from then on).
    async fn live(
        &self,
        mut target: BuildTarget,
        mut identity: BuildIdentity,
        deadline: Option<Instant>,
        status: Option<StatusTarget>,
    ) -> Result<BuildSummary, BuildError> {
        let mut replaces = None;
        loop {
            let summary = self
                .once(&target, identity, deadline, &status, replaces)
                .await?;
            if summary.status != BuildState::TimedOut || !self.overflows() {
                return Ok(summary);
            }
            let timed_out = summary.build_id.clone().unwrap_or_default();
            self.move_to_codebuild(&target, &timed_out).await?;
            target.build_id = None;
            target.dedup_key = None;
            identity = self.identity(&target);
            replaces = Some(timed_out);
        }
    }

    /// One build: resolve its commit, begin it (its number, its first minute), fetch its source,
    /// then run it here or hand it to CodeBuild; it finishes with its record either way.
    async fn once(
        &self,
        target: &BuildTarget,
        mut identity: BuildIdentity,
        deadline: Option<Instant>,
        status: &Option<StatusTarget>,
        replaces: Option<String>,
    ) -> Result<BuildSummary, BuildError> {
        // Asked to stop while it waited in a queue (only a queued build has its id before it
        // begins): not run.
        let asked = match target.build_id {
            Some(_) => self.stop_asked(&identity).await,
            None => None,
        };
        if let Some(reason) = asked {
            let work = Work::Refused {
                reason: format!("stopped before it began: {reason}"),
            };
            return self.run(identity, work, None, deadline).await;
        }
        // Resolve: the commit, and `[skip ci]`.
        let resolved = match prepare::resolve(&self.source, target).await? {
            prepare::Resolution::Resolved(resolved) => resolved,
            prepare::Resolution::CannotStart(work) => {
                return self.run(identity, work, None, deadline).await;
            }
            prepare::Resolution::SkipCi(resolved) => {
                return self.skip_ci(target, &identity, resolved).await;
            }
        };
        identity.commit = Some(resolved.commit_id.clone());
        identity.reference = identity.reference.or(resolved.reference.clone());
        // Begin: the build's number, its entry, its first minute against the budget.
        let begun = self.begin(&identity, deadline).await?;
        // Kept for a retry, now that the build will have a record.
        self.keep_target(target, &identity).await;
        if let Some(reason) = begun.refusal() {
            let work = Work::Refused {
                reason: reason.to_string(),
            };
            return self.run(identity, work, Some(begun), deadline).await;
        }
        self.announce_begun(&identity);
        // Fetch: the source into the build's own directories, and its buildspec.
        let dirs = self.config.build_dirs(identity.build_id.as_str());
        let fetched = prepare::fetch(&self.source, &self.config, target, &dirs, &resolved).await;
        let summary = match fetched {
            // A batch: its children are the builds.
            Ok(Work::Run(ready)) if self.runs_as_batch(target, &ready) => {
                self.start_batch(target, identity, begun, ready, deadline)
                    .await
            }
            // Place: here, or on CodeBuild. A batch's child is one build: its buildspec's own
            // `batch` is not run again.
            Ok(Work::Run(mut ready)) => {
                if target.batch.is_some() {
                    ready.spec.batch = None;
                }
                let placed = self.place(&identity, ready).await?;
                let handing = place::Handing {
                    begun,
                    replaces,
                    status: status.clone(),
                };
                self.run_placed(identity, placed, handing, deadline).await
            }
            Ok(work) => self.run(identity, work, Some(begun), deadline).await,
            Err(err) => self.close_unfetched(identity, begun, deadline, err).await,
        };
        cleanup::remove_in_background(dirs.root, self.spares.clone());
        summary
    }

    /// Who the build of `target` is.
    fn identity(&self, target: &BuildTarget) -> BuildIdentity {
        let mut identity = BuildIdentity {
            source_version: Some(target.version.to_string()),
            commit: target
                .commit
                .clone()
                .or_else(|| target.version.commit().cloned()),
            reference: target.reference.clone(),
            source_repo_url: self
                .source
                .clone_url(&target.source, target.region.as_deref()),
            webhook_trigger: target.webhook_trigger.clone(),
            webhook: target.webhook.as_ref().map(|w| WebhookVars {
                event: w.event.as_str().to_string(),
                head_ref: w.head_ref.clone(),
                base_ref: w.base_ref.clone(),
                actor_account_id: w.actor_account_id.clone(),
                prev_commit: w.prev_commit.clone(),
            }),
            batch: target.batch.clone(),
            retries: target.retries.as_ref().map(ToString::to_string),
            ..BuildIdentity::new(target.project.clone(), target.initiator.clone())
        };
        if let Some(build_id) = &target.build_id {
            identity.build_id = build_id.clone();
        }
        identity
    }

    /// A commit whose message asks for no build: nothing is recorded, and the entry a webhook
    /// queued for it goes.
    async fn skip_ci(
        &self,
        target: &BuildTarget,
        identity: &BuildIdentity,
        resolved: crate::source::ResolvedCommit,
    ) -> Result<BuildSummary, BuildError> {
        let (project, id) = (identity.project.clone(), identity.build_id.clone());
        in_index(&self.books.index, move |index| {
            index.discard_queued(&project, &id)
        })
        .await?;
        Ok(BuildSummary::skipped(
            target.project.clone(),
            target.reference.clone().or(resolved.reference),
            Some(resolved.commit_id.to_string()),
            "the commit message asks to skip CI ([skip ci] or [ci skip])".to_string(),
        ))
    }

    /// A source that could not be fetched for pushbuild's own reasons: the build is closed (its
    /// reserved minutes given back) before the error goes to the caller's retry.
    async fn close_unfetched(
        &self,
        identity: BuildIdentity,
        begun: Begun,
        deadline: Option<Instant>,
        err: BuildError,
    ) -> Result<BuildSummary, BuildError> {
        let work = Work::Refused {
            reason: format!("pushbuild could not fetch the source: {err}"),
        };
        let _ = self.run(identity, work, Some(begun), deadline).await;
        Err(err)
    }

    /// Begins the build in the index: its number, its entry, its first minute.
    async fn begin(
        &self,
        identity: &BuildIdentity,
        deadline: Option<Instant>,
    ) -> Result<Begun, BuildError> {
        let (identity, settings, store) = (identity.clone(), self.settings(), self.store.clone());
        let deadline = self.commands_deadline(&identity, deadline);
        let mut begun =
            run_blocking(move || pipeline::begin(&identity, &settings, deadline, &*store))
                .await??;
        // A batch's child the sweep closed on the way ends in its batch.
        self.swept(begun.take_swept()).await;
        Ok(begun)
    }

    /// Runs the build here and finishes it (off the async threads): every build with a record
    /// ends here or in the hand-over.
    async fn run(
        &self,
        identity: BuildIdentity,
        work: Work,
        begun: Option<Begun>,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, BuildError> {
        let deadline = self.commands_deadline(&identity, deadline);
        let job = BuildJob::new(identity, &self.settings(), work).with_deadline(deadline);
        let store = self.store.clone();
        let stored = run_blocking(move || match begun {
            Some(begun) => pipeline::run_begun(&job, begun, &*store),
            None => pipeline::run(&job, &*store),
        })
        .await??;
        Ok(BuildSummary::stored(&stored))
    }

    /// The commands' deadline for an invocation's `deadline`: the upload reserve before it.
    fn commands_deadline(
        &self,
        identity: &BuildIdentity,
        deadline: Option<Instant>,
    ) -> Option<Instant> {
        deadline.map(|d| {
            d.checked_sub(self.config.upload_reserve)
                .unwrap_or(identity.started)
        })
    }
}

/// One step of the index, off the async runtime's threads.
async fn in_index<T: Send + 'static>(
    index: &Arc<dyn Index>,
    step: impl FnOnce(&dyn Index) -> Result<T, IndexError> + Send + 'static,
) -> Result<T, BuildError> {
    let index = index.clone();
    Ok(run_blocking(move || step(&*index)).await??)
}

/// Runs blocking work (the pipeline, the index, the sync store) off the async runtime's threads.
async fn run_blocking<T, F>(work: F) -> Result<T, BuildError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(BuildError::Task)
}
