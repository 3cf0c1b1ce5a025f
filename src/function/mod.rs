//! The Lambda function's work for one invocation: map the event to builds, and for each one
//! claim the event's delivery, resolve its commit, begin it in the index (its number and first
//! minute, against the budget), fetch its source (`prepare.rs`) and run the pipeline. The binary (`pushbuild-lambda`) and `pushbuild invoke` both drive
//! [`Function::handle`].
//!
//! A failed user build is a normal response; only pushbuild's own failures (a bad event, a source
//! or store that stays unreachable) are errors, and [`FunctionError::error_type`] says whether a
//! retry can help.

pub mod claim;
mod error;
mod prepare;
use prepare::Resolution;
mod report;
mod response;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::codebuild::{self, CodeBuild};
use crate::config::Config;
use crate::executor::env::WebhookVars;
use crate::executor::log::Echo;
use crate::index::{Books, Placement};
use crate::names::ProjectName;
use crate::pipeline::{
    self, Begun, BuildIdentity, BuildJob, BuildSettings, HandedOver, Metering, Ready, StoredBuild,
    Work,
};
use crate::record::Status;
use crate::runtimes::Runtimes;
use crate::source::Source;
use crate::status::HostApi;
use crate::status::StatusTarget;
use crate::store::Store;
use crate::trigger::{self, BuildTarget, EventError, Host, Planned};

/// The buildspec variable that sends a build to AWS CodeBuild (`PUSHBUILD_COMPUTE: codebuild`);
/// CodeBuild itself ignores it, so the same buildspec runs on both.
pub const COMPUTE_VAR: &str = "PUSHBUILD_COMPUTE";

pub use error::FunctionError;
pub use response::{BuildSummary, InvocationResponse};

/// The function: its settings, its source and its store.
pub struct Function<S> {
    pub config: Config,
    pub source: S,
    pub store: Arc<dyn Store>,
    /// The index (build numbers, claims, build entries, the month's sums), with the budget's
    /// caps: made once, so the builds of one function share its sweep clock.
    pub books: Books,
    /// The environment builds start from (the function's own, less pushbuild's settings).
    pub base_env: Vec<(String, String)>,
    /// The image's runtimes (`PUSHBUILD_RUNTIMES_DIR`), which `runtime-versions` chooses from;
    /// `None` in the zip deployment and locally: the machine's own tools.
    pub runtimes: Option<Arc<Runtimes>>,
    /// Where billing metrics go (standard output on Lambda, as EMF).
    pub metrics: Arc<dyn crate::metering::MetricSink>,
    /// Where build logs are echoed as they are written (off on Lambda: standard output carries
    /// metrics there).
    pub echo: Echo,
    /// The hosts' APIs that webhook builds report their results to.
    pub apis: Vec<(Host, Arc<dyn HostApi>)>,
    /// AWS CodeBuild, for builds that outgrow the function (with `PUSHBUILD_CODEBUILD_PROJECT`).
    pub codebuild: Option<Arc<dyn CodeBuild>>,
}

impl<S: Source> Function<S> {
    /// Builds what `event` asks for; `deadline` is the invocation's.
    pub async fn handle(
        &self,
        event: &serde_json::Value,
        deadline: Option<Instant>,
    ) -> Result<InvocationResponse, FunctionError> {
        self.settle_handed_over().await;
        if codebuild::event::is_state_change(event) {
            return self.codebuild_changed(event).await;
        }
        let plan = trigger::plan(event)?;
        let mut builds = Vec::with_capacity(plan.len());
        for planned in plan {
            match planned {
                Planned::Skip(skipped) => builds.push(BuildSummary::skipped(
                    skipped.repository,
                    skipped.reference,
                    skipped.commit,
                    skipped.reason,
                )),
                // Boxed: one build's future is deep (claim, budget, source, pipeline), and the
                // binary's event loop nests it further.
                Planned::Build(target) => {
                    builds.push(Box::pin(self.build(*target, deadline)).await?);
                }
            }
        }
        Ok(InvocationResponse { builds })
    }

    /// Builds one target once: a target that carries an event's delivery key is claimed first
    /// (a conditional write), so a second delivery of the same event is reported as a duplicate
    /// instead of building again. A claim whose build failed for pushbuild's own reasons is
    /// released, so Lambda's retry can build it.
    pub async fn build(
        &self,
        target: BuildTarget,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, FunctionError> {
        let Some(dedup_key) = target.dedup_key.clone() else {
            return self.run_target(target, deadline).await;
        };
        let index = self.books.index.clone();
        let (project, key) = (target.project.clone(), dedup_key.clone());
        let created = run_blocking(move || claim::take(&*index, &project, &key)).await??;
        if !created {
            return Ok(claim::duplicate(&target, &dedup_key));
        }
        let result = self.run_target(target.clone(), deadline).await;
        if result.is_err() {
            let index = self.books.index.clone();
            let _ =
                run_blocking(move || claim::release(&*index, &target.project, &dedup_key)).await;
        }
        result
    }

    /// Builds one target, and tells the host how it went when a webhook asked for it.
    async fn run_target(
        &self,
        target: BuildTarget,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, FunctionError> {
        let identity = self.identity(&target);
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
        let result = self
            .run_identified(target, identity, deadline, status, None)
            .await;
        if let Some(report) = report {
            report.finish(&result).await;
        }
        result
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
            ..BuildIdentity::new(target.project.clone(), target.initiator.clone())
        };
        if let Some(build_id) = &target.build_id {
            identity.build_id = build_id.clone();
        }
        identity
    }

    /// Resolves the commit, begins the build (its first minute reserved before the source is
    /// fetched), fetches the source and runs the pipeline, or hands the build to CodeBuild. A
    /// build that times out in the function is started again on CodeBuild (`replaces`: the one
    /// it starts again).
    async fn run_identified(
        &self,
        target: BuildTarget,
        mut identity: BuildIdentity,
        deadline: Option<Instant>,
        status: Option<StatusTarget>,
        replaces: Option<String>,
    ) -> Result<BuildSummary, FunctionError> {
        let resolved = match prepare::resolve(&self.source, &target).await? {
            Resolution::SkipCi(resolved) => {
                // Not a build: a queued entry of it (a webhook's) goes.
                let (index, project, id) = (
                    self.books.index.clone(),
                    identity.project.clone(),
                    identity.build_id.clone(),
                );
                run_blocking(move || index.discard_queued(project.as_str(), &id)).await??;
                return Ok(BuildSummary::skipped(
                    target.project,
                    target.reference.or(resolved.reference),
                    Some(resolved.commit_id.to_string()),
                    "the commit message asks to skip CI ([skip ci] or [ci skip])".to_string(),
                ));
            }
            Resolution::CannotStart(work) => {
                return self.run(identity, work, None, deadline).await;
            }
            Resolution::Resolved(resolved) => resolved,
        };
        identity.commit = Some(resolved.commit_id.clone());
        identity.reference = identity.reference.or(resolved.reference.clone());
        let begun = self.begin(&identity, deadline).await?;
        if let Some(reason) = begun.refusal() {
            let work = Work::Refused {
                reason: reason.to_string(),
            };
            return self.run(identity, work, Some(begun), deadline).await;
        }
        let dirs = self.config.build_dirs(&identity.build_id);
        let work = prepare::fetch(&self.source, &self.config, &target, &dirs, &resolved).await;
        let placed = self.placed(&identity.project).await?;
        let summary = match work {
            Ok(Work::Run(mut ready)) => match self.placement(&identity.project, &mut ready, placed)
            {
                Some(why) => {
                    self.hand_over(identity, *ready, begun, why, replaces, status.clone())
                        .await
                }
                None => {
                    self.run(identity, Work::Run(ready), Some(begun), deadline)
                        .await
                }
            },
            Ok(work) => self.run(identity, work, Some(begun), deadline).await,
            Err(err) => {
                // pushbuild's own failure: the build is closed (its reserved minutes given
                // back) before the error goes to Lambda's retry.
                let work = Work::Refused {
                    reason: format!("pushbuild could not fetch the source: {err}"),
                };
                let _ = self.run(identity, work, Some(begun), deadline).await;
                Err(err)
            }
        };
        // The build's own directories go with it, after the answer: the next build starts from
        // nothing, and /tmp does not fill up over many builds. (On Lambda a removal the freeze
        // interrupts goes on when the sandbox thaws.)
        let root = dirs.root.clone();
        let removed = std::thread::Builder::new()
            .name("pushbuild-clean".to_string())
            .spawn(move || std::fs::remove_dir_all(root));
        if removed.is_err() {
            let _ = std::fs::remove_dir_all(&dirs.root);
        }
        match summary {
            Ok(timed_out) if timed_out.status == Status::TimedOut && self.overflows() => {
                self.start_again_on_codebuild(target, timed_out, deadline, status)
                    .await
            }
            other => other,
        }
    }

    /// Whether builds can go to CodeBuild here.
    fn overflows(&self) -> bool {
        self.codebuild.is_some() && self.config.codebuild.project.is_some()
    }

    /// Where the index places `project`'s builds, when builds can go to CodeBuild.
    async fn placed(&self, project: &ProjectName) -> Result<Option<Placement>, FunctionError> {
        if !self.overflows() {
            return Ok(None);
        }
        let (index, project) = (self.books.index.clone(), project.to_string());
        Ok(run_blocking(move || index.placement(&project)).await??)
    }

    /// A build timed out in the function: its repository's builds go to CodeBuild from now on
    /// (the placement, kept in the index until `pushbuild placement reset`), and this one starts
    /// again there at once, as a new build that names the one it replaces.
    async fn start_again_on_codebuild(
        &self,
        mut target: BuildTarget,
        timed_out: BuildSummary,
        deadline: Option<Instant>,
        status: Option<StatusTarget>,
    ) -> Result<BuildSummary, FunctionError> {
        let old = timed_out.build_id.clone().unwrap_or_default();
        let placement = Placement {
            compute: "codebuild".to_string(),
            since: chrono::Utc::now(),
            reason: format!("build {old} timed out in the function"),
        };
        let (index, project) = (self.books.index.clone(), target.project.to_string());
        run_blocking(move || index.set_placement(&project, Some(&placement))).await??;
        target.build_id = None;
        target.dedup_key = None;
        let identity = self.identity(&target);
        Box::pin(self.run_identified(target, identity, deadline, status, Some(old))).await
    }

    /// Why a build that is ready to run goes to AWS CodeBuild, if it does: its repository is
    /// listed in `PUSHBUILD_CODEBUILD_REPOSITORIES`, or its buildspec sets `PUSHBUILD_COMPUTE:
    /// codebuild`. Without a CodeBuild project the buildspec's wish is noted and the build runs
    /// here.
    fn placement(
        &self,
        project: &ProjectName,
        ready: &mut Ready,
        placed: Option<Placement>,
    ) -> Option<String> {
        let settings = &self.config.codebuild;
        let asks = ready
            .spec
            .env
            .variables
            .iter()
            .any(|(name, value)| name == COMPUTE_VAR && value.trim() == "codebuild");
        if settings.project.is_none() || self.codebuild.is_none() {
            if asks {
                ready.notes.push(format!(
                    "The buildspec sets {COMPUTE_VAR}: codebuild, but this deployment has no \
                     CodeBuild project (PUSHBUILD_CODEBUILD_PROJECT): the build runs here"
                ));
            }
            return None;
        }
        if let Some(placed) = placed {
            return Some(format!(
                "its builds run on CodeBuild since {}: {} (`pushbuild placement reset {project}` \
                 brings them back)",
                placed.since.format("%Y-%m-%d %H:%M UTC"),
                placed.reason
            ));
        }
        if settings.repositories.contains(project) {
            return Some(format!("PUSHBUILD_CODEBUILD_REPOSITORIES lists {project}"));
        }
        asks.then(|| format!("the buildspec sets {COMPUTE_VAR}: codebuild"))
    }

    /// Hands a begun, fetched build to AWS CodeBuild (see [`pipeline::hand_over`]).
    async fn hand_over(
        &self,
        identity: BuildIdentity,
        ready: Ready,
        begun: Begun,
        why: String,
        replaces: Option<String>,
        status: Option<StatusTarget>,
    ) -> Result<BuildSummary, FunctionError> {
        let (Some(codebuild), Some(project)) = (
            self.codebuild.clone(),
            self.config.codebuild.project.clone(),
        ) else {
            return self
                .run(identity, Work::Run(Box::new(ready)), Some(begun), None)
                .await;
        };
        let buildspec_path = ready
            .buildspec_path
            .clone()
            .unwrap_or_else(|| self.config.buildspec.clone());
        let job = BuildJob::new(identity, &self.settings(), Work::Run(Box::new(ready)));
        let (store, settings, bucket) = (
            self.store.clone(),
            self.config.codebuild.clone(),
            self.config.bucket.clone(),
        );
        let handed = run_blocking(move || {
            let to = pipeline::HandOver {
                codebuild: &*codebuild,
                settings: &settings,
                project: &project,
                bucket: &bucket,
                why,
                replaces,
                status,
                buildspec_path,
            };
            pipeline::hand_over(&job, begun, &to, &*store)
        })
        .await??;
        Ok(match handed {
            HandedOver::Started(handover) => BuildSummary::handed_over(&handover),
            HandedOver::Ended(stored) => BuildSummary::stored(&stored),
        })
    }

    /// A `CodeBuild Build State Change` event: a build pushbuild handed over has ended, and is
    /// finished here (record, ledger, index, metrics, commit status). An event for a build
    /// pushbuild did not start, or one not ended yet, is ignored.
    async fn codebuild_changed(
        &self,
        event: &serde_json::Value,
    ) -> Result<InvocationResponse, FunctionError> {
        let build = codebuild::event::build(event).map_err(|problem| EventError::Invalid {
            path: "detail".to_string(),
            problem,
        })?;
        let ignored = Ok(InvocationResponse { builds: Vec::new() });
        if !build.ended() {
            return ignored;
        }
        let (Some(project), Some(build_id)) = (
            build
                .var(codebuild::PROJECT_VAR)
                .and_then(|p| ProjectName::parse(p).ok()),
            build.var(codebuild::BUILD_ID_VAR).map(str::to_string),
        ) else {
            tracing::info!(codebuild_id = %build.id, "a CodeBuild build pushbuild did not start: ignored");
            return ignored;
        };
        let (store, settings) = (self.store.clone(), self.settings());
        let finished = run_blocking(move || {
            let Some(handover) = pipeline::load_handover(&project, &build_id, &*store)? else {
                return Ok(None);
            };
            if handover.codebuild_id != build.id {
                return Ok(None);
            }
            let stored = pipeline::finish_handed_over(&handover, &build, &settings, &*store)?;
            Ok::<_, pipeline::PipelineError>(Some((handover, stored)))
        })
        .await??;
        let Some((handover, stored)) = finished else {
            tracing::info!("a CodeBuild build with no hand-over of pushbuild's: ignored");
            return ignored;
        };
        let summary = BuildSummary::stored(&stored);
        if let Some(status) = handover.status {
            report::send_final(&self.apis, status, &summary).await;
        }
        Ok(InvocationResponse {
            builds: vec![summary],
        })
    }

    /// Builds handed to CodeBuild whose result never came (their entry has expired) are looked
    /// up with `BatchGetBuilds` and finished if they have ended; at most once a billed minute
    /// per process. Logged, never failing the invocation.
    async fn settle_handed_over(&self) {
        static LAST_MS: AtomicI64 = AtomicI64::new(i64::MIN);
        let Some(codebuild) = self.codebuild.clone() else {
            return;
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let every = i64::try_from(self.config.billing_minute.as_millis()).unwrap_or(i64::MAX);
        let last = LAST_MS.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < every
            || LAST_MS
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let (store, settings) = (self.store.clone(), self.settings());
        let settled = run_blocking(move || settle(&*codebuild, &settings, &*store)).await;
        match settled {
            Ok(Ok(finished)) => {
                for (status, stored) in finished {
                    if let Some(status) = status {
                        report::send_final(&self.apis, status, &BuildSummary::stored(&stored))
                            .await;
                    }
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "builds on CodeBuild could not be looked up");
            }
            Err(error) => tracing::warn!(%error, "builds on CodeBuild could not be looked up"),
        }
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

    /// Begins the build in the index: its number, its entry, its first minute.
    async fn begin(
        &self,
        identity: &BuildIdentity,
        deadline: Option<Instant>,
    ) -> Result<Begun, FunctionError> {
        let (identity, settings, store) = (identity.clone(), self.settings(), self.store.clone());
        let deadline = self.commands_deadline(&identity, deadline);
        let begun = run_blocking(move || pipeline::begin(&identity, &settings, deadline, &*store))
            .await??;
        Ok(begun)
    }

    /// Runs the pipeline off the async threads; every build with a record ends here.
    async fn run(
        &self,
        identity: BuildIdentity,
        work: Work,
        begun: Option<Begun>,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, FunctionError> {
        let deadline = self.commands_deadline(&identity, deadline);
        let job = BuildJob::new(identity, &self.settings(), work).with_deadline(deadline);
        let store = self.store.clone();
        let stored: StoredBuild = run_blocking(move || match begun {
            Some(begun) => pipeline::run_begun(&job, begun, &*store),
            None => pipeline::run(&job, &*store),
        })
        .await??;
        Ok(BuildSummary::stored(&stored))
    }

    /// How this function's builds run.
    fn settings(&self) -> BuildSettings {
        BuildSettings {
            price: self.config.price.clone(),
            metering: Metering {
                sink: self.metrics.clone(),
                namespace: self.config.namespace.clone(),
                minute: self.config.billing_minute,
            },
            echo: self.echo,
            temp_root: self.config.work_dir.join("tmp"),
            base_env: self.base_env.clone(),
            runtimes: self.runtimes.clone(),
            live_log: self.config.live_log,
            books: self.books.clone(),
        }
    }

    /// Removes what builds left in the work directory (a build killed with its invocation):
    /// called once when the function starts.
    pub fn clear_work_dir(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.config.builds_dir()) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

/// Runs blocking work (the pipeline, the sync store) off the async runtime's threads.
async fn run_blocking<T, F>(work: F) -> Result<T, FunctionError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(FunctionError::Task)
}

/// The invocation's deadline (Lambda gives milliseconds since the Unix epoch) as an `Instant`.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<Instant> {
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis(),
    )
    .ok()?;
    // A deadline too far off to be an `Instant` is no deadline at all.
    (deadline_ms > 0)
        .then(|| {
            Instant::now().checked_add(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
        })
        .flatten()
}

/// Finishes the expired builds on CodeBuild that have ended: their status targets and records.
fn settle(
    codebuild: &dyn CodeBuild,
    settings: &BuildSettings,
    store: &dyn Store,
) -> Result<Vec<(Option<StatusTarget>, StoredBuild)>, pipeline::PipelineError> {
    let mut handovers = Vec::new();
    for entry in settings.books.index.expired(chrono::Utc::now())? {
        let Ok(project) = ProjectName::parse(&entry.project) else {
            continue;
        };
        if let Some(handover) = pipeline::load_handover(&project, &entry.build_id, store)? {
            handovers.push(handover);
        }
    }
    let mut finished = Vec::new();
    // BatchGetBuilds takes at most 100 ids.
    for batch in handovers.chunks(100) {
        let ids: Vec<String> = batch.iter().map(|h| h.codebuild_id.clone()).collect();
        let builds = codebuild.builds(&ids)?;
        for handover in batch {
            let Some(build) = builds
                .iter()
                .find(|b| b.id == handover.codebuild_id && b.ended())
            else {
                continue;
            };
            let stored = pipeline::finish_handed_over(handover, build, settings, store)?;
            finished.push((handover.status.clone(), stored));
        }
    }
    Ok(finished)
}

/// The environment builds start from: the function's own, less pushbuild's settings and the
/// runtime's private variables.
pub fn build_base_env(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter(|(name, _)| {
        !name.starts_with("PUSHBUILD_")
            && name != "AWS_LAMBDA_RUNTIME_API"
            && !name.starts_with("_LAMBDA")
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_env_drops_settings_and_runtime_variables() {
        let vars = [
            ("PATH", "/bin"),
            ("PUSHBUILD_BUCKET", "b"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env = build_base_env(vars.into_iter());
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "AWS_REGION"]);
    }

    #[test]
    fn deadlines_in_epoch_milliseconds_become_instants() {
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let deadline = deadline_from_epoch_ms(now_ms + 10_000).unwrap();
        let left = deadline.duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        assert_eq!(deadline_from_epoch_ms(0), None);
    }
}
