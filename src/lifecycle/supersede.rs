//! Superseded builds (`PUSHBUILD_SUPERSEDE`): a newer push to a branch, or to a pull request,
//! asks that reference's older builds still running or queued to stop, `superseded by <build
//! id>`. A running one ends STOPPED within a few seconds (on CodeBuild, through `StopBuild`); a
//! queued one is not run (SKIPPED). Webhooks' builds do it as they are accepted, so a build
//! waiting behind the one it supersedes does not wait; events the function takes directly
//! (CodeCommit's) as their build is taken.
//!
//! The older builds are found among the builds not ended yet (the index's open entries), never
//! by reading the builds that came before.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::stopping::ask_to_stop;
use crate::codebuild::CodeBuild;
use crate::config::Supersede;
use crate::index::Index;
use crate::names::{BuildId, ProjectName};
use crate::store::Store;
use crate::trigger::BuildTarget;

/// What superseding needs: the setting, and where the asks go.
#[derive(Clone)]
pub struct Superseding {
    pub mode: Supersede,
    pub store: Arc<dyn Store>,
    pub codebuild: Option<Arc<dyn CodeBuild>>,
}

impl Superseding {
    /// Asks the builds of `target`'s reference taken before `newer` (taken at `since`) to stop,
    /// when the setting covers that reference and `target` is a push or a pull request's (not a
    /// manual build, nor a batch's child). Blocking; logs what it could not do. The builds asked.
    pub fn older_than(
        &self,
        index: &dyn Index,
        target: &BuildTarget,
        newer: &BuildId,
        since: DateTime<Utc>,
    ) -> Vec<BuildId> {
        let Some(reference) = target.reference.as_deref() else {
            return Vec::new();
        };
        let pushed = target.webhook.is_some() || target.webhook_trigger.is_some();
        if !pushed || target.batch.is_some() || !self.mode.covers(reference) {
            return Vec::new();
        }
        let open = match index.in_progress() {
            Ok(open) => open,
            Err(error) => {
                tracing::warn!(%error, "superseded builds could not be looked up");
                return Vec::new();
            }
        };
        // By when they were taken (build ids sort by the second only).
        let older = open.into_iter().filter(|entry| {
            entry.project == target.project
                && entry.reference.as_deref() == Some(reference)
                && entry.build_id != *newer
                && entry.start_time <= since
        });
        let reason = format!("superseded by {newer}");
        let mut asked = Vec::new();
        for entry in older {
            let stopped = ask_to_stop(
                &*self.store,
                index,
                self.codebuild.as_deref(),
                &entry.project,
                &entry.build_id,
                &reason,
            );
            match stopped {
                Ok(_) => asked.push(entry.build_id),
                Err(error) => tracing::warn!(
                    %error,
                    build_id = %entry.build_id,
                    "a superseded build could not be asked to stop"
                ),
            }
        }
        asked
    }
}

/// The project and build of each superseded build, for the log.
pub(super) fn log_superseded(project: &ProjectName, newer: &BuildId, asked: &[BuildId]) {
    for old in asked {
        tracing::info!(%project, build_id = %old, superseded_by = %newer, "asked a superseded build to stop");
    }
}

impl<S> super::Builds<S> {
    /// With `PUSHBUILD_SUPERSEDE`, asks the older builds of `target`'s reference to stop, as the
    /// build `identity` of it is taken.
    pub(super) async fn supersede_older(
        &self,
        target: &BuildTarget,
        identity: &crate::pipeline::BuildIdentity,
    ) {
        if self.config.supersede == Supersede::Off {
            return;
        }
        let superseding = Superseding {
            mode: self.config.supersede,
            store: self.store.clone(),
            codebuild: self.codebuild.clone(),
        };
        let (index, taken, id, since) = (
            self.books.index.clone(),
            target.clone(),
            identity.build_id.clone(),
            identity.start_time,
        );
        let asked = tokio::task::spawn_blocking(move || {
            superseding.older_than(&*index, &taken, &id, since)
        })
        .await
        .unwrap_or_default();
        log_superseded(&target.project, &identity.build_id, &asked);
    }
}
