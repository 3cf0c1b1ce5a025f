//! Asking a build to stop, whoever asks: `pushbuild stop`, the Stop button of a running build's
//! page, a newer push that supersedes it, a batch's `fast-fail`. The ask is an object in the store
//! (see [`crate::store::stop`]) that the running build looks for every few seconds wherever it
//! runs; a build handed to AWS CodeBuild is stopped there too (`StopBuild`), and its end comes
//! back as any CodeBuild build's does (`STOPPED`). A build still queued finds the ask as it is
//! taken and is not run.

use crate::codebuild::{CodeBuild, CodeBuildError};
use crate::index::{Index, IndexError};
use crate::names::{BuildId, ProjectName};
use crate::pipeline::{self, PipelineError};
use crate::state::BuildState;
use crate::store::{Layout, Store, StoreError, stop};

/// What asking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopping {
    /// Asked: a running build stops within a few seconds; a queued one will not run.
    Asked,
    /// It runs on AWS CodeBuild, which was asked too (`StopBuild`).
    OnCodeBuild { codebuild_id: String },
    /// It had ended already, as this.
    Ended(BuildState),
}

/// Why a build could not be asked to stop.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("no build {build_id} of {project} in the index")]
    NotFound {
        project: ProjectName,
        build_id: BuildId,
    },
    #[error(
        "build {build_id} runs on AWS CodeBuild as {codebuild_id}, and no CodeBuild client is \
         set up here to stop it (the function's pages, or the command line with --bucket, are)"
    )]
    NoCodeBuild {
        build_id: BuildId,
        codebuild_id: String,
    },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    CodeBuild(#[from] CodeBuildError),
}

/// Asks the build `build_id` of `project` to stop, for `reason` (`asked by alice`). Blocking.
pub fn ask_to_stop(
    store: &dyn Store,
    index: &dyn Index,
    codebuild: Option<&dyn CodeBuild>,
    project: &ProjectName,
    build_id: &BuildId,
    reason: &str,
) -> Result<Stopping, StopError> {
    let Some(entry) = index.entry(project, build_id)? else {
        return Err(StopError::NotFound {
            project: project.clone(),
            build_id: build_id.clone(),
        });
    };
    if !entry.state.is_open() {
        return Ok(Stopping::Ended(entry.state));
    }
    stop::ask(
        store,
        &Layout::new(project, build_id.as_str()).stop(),
        reason,
    )?;
    let Some(handover) = pipeline::load_handover(project, build_id.as_str(), store)? else {
        return Ok(Stopping::Asked);
    };
    let Some(codebuild) = codebuild else {
        return Err(StopError::NoCodeBuild {
            build_id: build_id.clone(),
            codebuild_id: handover.codebuild_id,
        });
    };
    codebuild.stop_build(&handover.codebuild_id)?;
    Ok(Stopping::OnCodeBuild {
        codebuild_id: handover.codebuild_id,
    })
}

/// The ask to stop the build `build_id` of `project`, if there is one (its reason).
pub fn asked(
    store: &dyn Store,
    project: &ProjectName,
    build_id: &BuildId,
) -> Result<Option<String>, StoreError> {
    Ok(stop::asked(store, &Layout::new(project, build_id.as_str()).stop())?.map(|a| a.reason))
}

impl<S> super::Builds<S> {
    /// Why the build `identity` was asked to stop, if it was (one look in the store).
    pub(super) async fn stop_asked(
        &self,
        identity: &crate::pipeline::BuildIdentity,
    ) -> Option<String> {
        let (store, project, id) = (
            self.store.clone(),
            identity.project.clone(),
            identity.build_id.clone(),
        );
        let asked = tokio::task::spawn_blocking(move || asked(&*store, &project, &id));
        match asked.await {
            Ok(Ok(reason)) => reason,
            _ => None,
        }
    }
}
