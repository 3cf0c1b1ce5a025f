//! Where a build runs: here (the function, or `serve`), or on AWS CodeBuild. A build goes to
//! CodeBuild when its repository's builds were placed there (one timed out here: the placement is
//! kept in the index until `pushbuild placement reset`), when `PUSHBUILD_CODEBUILD_REPOSITORIES`
//! lists it, when its buildspec runs Docker and Docker cannot run here (the function: Lambda has
//! no privileged mode and no user namespaces; CodeBuild runs it in privileged mode), or when its
//! buildspec sets `PUSHBUILD_COMPUTE: codebuild`. A build that runs Docker where neither can is
//! refused in DOWNLOAD_SOURCE, naming the command and the setting that would run it. A build handed over ends
//! when CodeBuild's state-change event comes back ([`Builds::codebuild_changed`]), or when the
//! periodic look-up finds it ended ([`Builds::settle_handed_over`]).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{BuildError, BuildSummary, Builds, in_index, report, run_blocking};
use crate::buildspec;
use crate::codebuild::{self, CodeBuild, ComputeType};
use crate::executor::{ContextCode, PhaseContext};
use crate::index::Placement;
use crate::names::ProjectName;
use crate::pipeline::{
    self, Begun, BuildIdentity, BuildJob, BuildSettings, HandedOver, PipelineError, Ready,
    StoredBuild, Work,
};
use crate::source::Source;
use crate::status::StatusTarget;
use crate::store::Store;
use crate::trigger::{BatchChild, BuildTarget, EventError};

/// The buildspec variable that sends a build to AWS CodeBuild (`PUSHBUILD_COMPUTE: codebuild`);
/// CodeBuild itself ignores it, so the same buildspec runs on both.
pub const COMPUTE_VAR: &str = "PUSHBUILD_COMPUTE";

/// A build ready to run, and where.
pub(super) enum Placed {
    Here(Box<Ready>),
    /// On CodeBuild, and why.
    CodeBuild(Box<Ready>, String),
    /// Nowhere here can run it: its one phase, DOWNLOAD_SOURCE, says why.
    CannotStart(Work),
}

/// What a hand-over carries besides the build: its beginning, the build it starts again (if
/// any) and where its commit's status goes when it ends.
pub(super) struct Handing {
    pub begun: Begun,
    pub replaces: Option<String>,
    pub status: Option<StatusTarget>,
}

impl<S> Builds<S> {
    /// Whether builds can go to CodeBuild here.
    pub(super) fn overflows(&self) -> bool {
        self.codebuild.is_some() && self.config.codebuild.project.is_some()
    }
}

impl<S: Source> Builds<S> {
    /// Where a build that is ready to run goes (see the module's rules). Without a CodeBuild
    /// project the buildspec's wish is noted in the log and the build runs here.
    pub(super) async fn place(
        &self,
        identity: &BuildIdentity,
        mut ready: Box<Ready>,
    ) -> Result<Placed, BuildError> {
        let project = &identity.project;
        let asks = ready
            .spec
            .env
            .variables
            .iter()
            .any(|(name, value)| name == COMPUTE_VAR && value.trim() == "codebuild");
        // A batch's task that names an image, a CodeBuild compute type, or privileged mode.
        let task = identity.batch.as_ref().and_then(task_wants);
        let docker = (!self.docker)
            .then(|| buildspec::docker_use(&ready.spec))
            .flatten()
            .map(|docker| {
                let line = match docker.line {
                    0 => String::new(),
                    line => format!(", line {line}"),
                };
                format!(
                    "the buildspec runs Docker ({}{line}: `{}`)",
                    docker.key, docker.command
                )
            });
        if !self.overflows() {
            if let Some(docker) = docker {
                return Ok(Placed::CannotStart(cannot_run_docker(&docker, ready)));
            }
            if let Some(task) = &task {
                ready.notes.push(format!(
                    "{task}, but this deployment has no CodeBuild project \
                     (PUSHBUILD_CODEBUILD_PROJECT): the build runs here"
                ));
            } else if asks {
                ready.notes.push(format!(
                    "The buildspec sets {COMPUTE_VAR}: codebuild, but this deployment has no \
                     CodeBuild project (PUSHBUILD_CODEBUILD_PROJECT): the build runs here"
                ));
            }
            return Ok(Placed::Here(ready));
        }
        let name = project.clone();
        let placed = in_index(&self.books.index, move |index| index.placement(&name)).await?;
        let codebuild = if let Some(placed) = placed {
            Some(format!(
                "its builds run on CodeBuild since {}: {} (`pushbuild placement reset {project}` \
                 brings them back)",
                placed.since.format("%Y-%m-%d %H:%M UTC"),
                placed.reason
            ))
        } else if self.config.codebuild.repositories.contains(project) {
            Some(format!("PUSHBUILD_CODEBUILD_REPOSITORIES lists {project}"))
        } else if let Some(docker) = docker {
            Some(format!(
                "{docker}, which AWS Lambda cannot run; CodeBuild runs it in privileged mode"
            ))
        } else if let Some(task) = task {
            Some(task)
        } else {
            asks.then(|| format!("the buildspec sets {COMPUTE_VAR}: codebuild"))
        };
        Ok(match codebuild {
            Some(why) => Placed::CodeBuild(ready, why),
            None => Placed::Here(ready),
        })
    }

    /// Runs a placed build here, or hands it to CodeBuild.
    pub(super) async fn run_placed(
        &self,
        identity: BuildIdentity,
        placed: Placed,
        handing: Handing,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, BuildError> {
        let (ready, why) = match placed {
            Placed::CodeBuild(ready, why) => (ready, why),
            Placed::Here(ready) => {
                let work = self.with_secrets(ready).await?;
                return self
                    .run(identity, work, Some(handing.begun), deadline)
                    .await;
            }
            Placed::CannotStart(work) => {
                return self
                    .run(identity, work, Some(handing.begun), deadline)
                    .await;
            }
        };
        let (Some(codebuild), Some(project)) = (
            self.codebuild.clone(),
            self.config.codebuild.project.clone(),
        ) else {
            let work = Work::Run(ready);
            return self
                .run(identity, work, Some(handing.begun), deadline)
                .await;
        };
        let buildspec_path = ready
            .buildspec_path
            .clone()
            .unwrap_or_else(|| self.config.buildspec.clone());
        let job = BuildJob::new(identity, &self.settings(), Work::Run(ready));
        let (store, mut settings, bucket) = (
            self.store.clone(),
            self.config.codebuild.clone(),
            self.config.bucket.clone(),
        );
        // A batch's task names its compute type.
        if let Some(compute) = job
            .identity
            .batch
            .as_ref()
            .and_then(|child| child.compute_type.as_deref())
            .and_then(ComputeType::parse)
        {
            settings.compute_type = compute;
        }
        let handed = run_blocking(move || {
            let to = pipeline::HandOver {
                codebuild: &*codebuild,
                settings: &settings,
                project: &project,
                bucket: &bucket,
                why,
                replaces: handing.replaces,
                status: handing.status,
                buildspec_path,
            };
            pipeline::hand_over(&job, handing.begun, &to, &*store)
        })
        .await??;
        Ok(match handed {
            HandedOver::Started(handover) => BuildSummary::handed_over(&handover),
            HandedOver::Ended(stored) => BuildSummary::stored(&stored),
        })
    }

    /// A build of `target` timed out here: its project's builds go to CodeBuild from now on.
    pub(super) async fn move_to_codebuild(
        &self,
        target: &BuildTarget,
        timed_out: &str,
    ) -> Result<(), BuildError> {
        let placement = Placement {
            compute: "codebuild".to_string(),
            since: chrono::Utc::now(),
            reason: format!("build {timed_out} timed out in the function"),
        };
        let project = target.project.clone();
        in_index(&self.books.index, move |index| {
            index.set_placement(&project, Some(&placement))
        })
        .await?;
        Ok(())
    }

    /// A `CodeBuild Build State Change` event: a build pushbuild handed over has ended, and is
    /// finished here (record, ledger, index, metrics, commit status). An event for a build
    /// pushbuild did not start, or one not ended yet, is no build (`None`).
    pub async fn codebuild_changed(
        &self,
        event: &serde_json::Value,
    ) -> Result<Option<BuildSummary>, BuildError> {
        let build = codebuild::event::build(event).map_err(|problem| EventError::Invalid {
            path: "detail".to_string(),
            problem,
        })?;
        if !build.ended() {
            return Ok(None);
        }
        let (Some(project), Some(build_id)) = (
            build
                .var(codebuild::PROJECT_VAR)
                .and_then(|p| ProjectName::parse(p).ok()),
            build.var(codebuild::BUILD_ID_VAR).map(str::to_string),
        ) else {
            tracing::info!(codebuild_id = %build.id, "a CodeBuild build pushbuild did not start: ignored");
            return Ok(None);
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
            Ok::<_, PipelineError>(Some((handover, stored)))
        })
        .await??;
        let Some((handover, stored)) = finished else {
            tracing::info!("a CodeBuild build with no hand-over of pushbuild's: ignored");
            return Ok(None);
        };
        Ok(Some(self.handed_over_ended(handover, &stored).await))
    }

    /// Builds handed to CodeBuild whose result never came (their entry has expired) are looked
    /// up with `BatchGetBuilds` and finished if they have ended; at most once a billed minute
    /// per process. Logged, never failing the caller.
    pub async fn settle_handed_over(&self) {
        let Some(codebuild) = self.codebuild.clone() else {
            return;
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let every = i64::try_from(self.config.billing_minute.as_millis()).unwrap_or(i64::MAX);
        let last = self.settled_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < every
            || self
                .settled_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let (store, settings) = (self.store.clone(), self.settings());
        match run_blocking(move || settle(&*codebuild, &settings, &*store)).await {
            Ok(Ok(finished)) => {
                for (handover, stored) in finished {
                    self.handed_over_ended(handover, &stored).await;
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "builds on CodeBuild could not be looked up"),
            Err(error) => tracing::warn!(%error, "builds on CodeBuild could not be looked up"),
        }
    }
}

impl<S: Source> Builds<S> {
    /// A build on CodeBuild has ended and is recorded: its commit's status, and its batch's
    /// state when it is a child.
    async fn handed_over_ended(
        &self,
        handover: pipeline::Handover,
        stored: &StoredBuild,
    ) -> BuildSummary {
        let summary = BuildSummary::stored(stored);
        if let Some(status) = handover.status {
            report::send_final(&self.apis, status, &summary).await;
        }
        tokio::join!(self.announce_end(&summary), self.notify_end(&summary));
        if let Some(child) = &handover.batch {
            self.child_ended(&handover.project, child, &summary).await;
        }
        summary
    }
}

/// What a batch's task asks of CodeBuild, when it asks anything: an image, a CodeBuild compute
/// type, privileged mode.
fn task_wants(child: &BatchChild) -> Option<String> {
    let wants = child
        .image
        .as_deref()
        .map(|image| format!("the image {image}"))
        .or_else(|| {
            child
                .compute_type
                .as_deref()
                .filter(|t| ComputeType::parse(t).is_some())
                .map(|t| format!("compute-type {t}"))
        })
        .or_else(|| child.privileged_mode.then(|| "privileged-mode".to_string()))?;
    Some(format!(
        "the batch's task `{}` asks for {wants}",
        child.identifier
    ))
}

/// A build that runs Docker where it cannot run: FAILED in DOWNLOAD_SOURCE, saying what would
/// run it.
fn cannot_run_docker(docker: &str, ready: Box<Ready>) -> Work {
    let context = PhaseContext::new(
        ContextCode::ClientError,
        format!(
            "{docker}, which AWS Lambda cannot run (no privileged mode, no user namespaces); set \
             PUSHBUILD_CODEBUILD_PROJECT to an AWS CodeBuild project and builds that run Docker \
             go there, in privileged mode"
        ),
    );
    Work::CannotStart {
        context,
        notes: ready.notes,
    }
}

/// Finishes the expired builds on CodeBuild that have ended: their status targets and records.
fn settle(
    codebuild: &dyn CodeBuild,
    settings: &BuildSettings,
    store: &dyn Store,
) -> Result<Vec<(pipeline::Handover, StoredBuild)>, PipelineError> {
    let mut handovers = Vec::new();
    for entry in settings.books.index.expired(chrono::Utc::now())? {
        let Ok(project) = ProjectName::parse(entry.project.as_str()) else {
            continue;
        };
        if let Some(handover) = pipeline::load_handover(&project, entry.build_id.as_str(), store)? {
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
            finished.push((handover.clone(), stored));
        }
    }
    Ok(finished)
}
