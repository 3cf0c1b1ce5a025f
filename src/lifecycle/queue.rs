//! The front door's part of a build's life: a webhook's build is claimed (once per delivery),
//! given its id, entered in the index as `QUEUED` (so the builds waiting are listed too) and
//! handed off to be built ([`Dispatch`]: the local queue of `pushbuild serve`, or the function
//! invoking itself). The build then travels without its delivery's key: its claim is taken.
//! When it cannot be handed off, its entry and its claim go, so the host's redelivery can build.

use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;

use super::Superseding;
use super::claim::{self, Claimed};
use super::{BuildError, in_index};
use crate::index::{Entry, Index};
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;
use crate::trigger::{BuildTarget, Skipped};

/// Hands a queued build off to be built: a local queue, or the function invoking itself.
pub trait Dispatch: Send + Sync + 'static {
    /// Returns once `target` is queued (not built).
    fn dispatch(
        &self,
        target: BuildTarget,
    ) -> impl Future<Output = Result<(), DispatchError>> + Send;
}

/// Why a build could not be handed off.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("the build queue is full ({capacity} builds wait already)")]
    QueueFull { capacity: usize },
    #[error("the builds can no longer be taken: {0}")]
    Closed(String),
    #[error("the function could not invoke itself: {0}")]
    Invoke(String),
}

/// Why a build could not be queued (the front door answers 503: the host may deliver again).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// What the front door answers for one build: `QUEUED` with its id, or `SKIPPED` with why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accepted {
    #[serde(rename = "buildId", skip_serializing_if = "Option::is_none")]
    pub build_id: Option<BuildId>,
    pub repository: ProjectName,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub commit: Option<String>,
    pub status: BuildState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Accepted {
    /// A reference the event names that is not built.
    pub fn skipped(skipped: &Skipped) -> Accepted {
        Accepted {
            build_id: None,
            repository: skipped.repository.clone(),
            reference: skipped.reference.clone(),
            commit: skipped.commit.clone(),
            status: BuildState::Skipped,
            reason: Some(skipped.reason.clone()),
        }
    }
}

/// Claims `target`'s delivery, gives the build its id, enters it as `QUEUED` and hands it off;
/// then, with `superseding`, asks its reference's older builds to stop.
pub async fn queue<D: Dispatch>(
    index: &Arc<dyn Index>,
    dispatch: &D,
    mut target: BuildTarget,
    superseding: Option<&Superseding>,
) -> Result<Accepted, QueueError> {
    let claim = match claim::take(index, &target).await? {
        Claimed::Duplicate(duplicate) => {
            return Ok(Accepted {
                build_id: None,
                repository: duplicate.repository,
                reference: duplicate.reference,
                commit: duplicate.commit,
                status: BuildState::Skipped,
                reason: duplicate.reason,
            });
        }
        Claimed::Taken(claim) => claim,
    };
    target.dedup_key = None;
    let build_id = BuildId::new();
    target.build_id = Some(build_id.clone());
    let accepted = Accepted {
        build_id: Some(build_id.clone()),
        repository: target.project.clone(),
        reference: target.reference.clone(),
        commit: target.commit.as_ref().map(ToString::to_string),
        status: BuildState::Queued,
        reason: None,
    };
    let taken_at = Utc::now();
    let queued = Entry::queued(
        &target.project,
        &build_id,
        &target.initiator,
        accepted.commit.clone(),
        target.reference.clone(),
        taken_at,
    );
    if let Err(err) = in_index(index, move |entries| entries.queue(&queued)).await {
        tracing::error!(error = %err, "a build could not be queued in the index");
        claim.release().await;
        return Err(err.into());
    }
    let queued_target = target.clone();
    if let Err(err) = dispatch.dispatch(target).await {
        tracing::error!(error = %err, "a build could not be handed off");
        let project = accepted.repository.clone();
        let _ = in_index(index, move |entries| {
            entries.discard_queued(&project, &build_id)
        })
        .await;
        claim.release().await;
        return Err(err.into());
    }
    if let Some(superseding) = superseding.cloned() {
        let (index, id) = (index.clone(), build_id.clone());
        let asked = tokio::task::spawn_blocking(move || {
            superseding.older_than(&*index, &queued_target, &id, taken_at)
        })
        .await
        .unwrap_or_default();
        super::supersede::log_superseded(&accepted.repository, &build_id, &asked);
    }
    Ok(accepted)
}
