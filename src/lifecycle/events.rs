//! A build's state changes as events (see [`crate::status::events`]): one as it begins (put
//! beside the build), one as it ends, wherever it ended (here, or on CodeBuild, whose end comes
//! back later). Each is one `PutEvents`, given at most a few seconds; one that fails is logged
//! and the build goes on.

use std::time::Duration;

use super::{BuildSummary, Builds};
use crate::pipeline::BuildIdentity;
use crate::state::BuildState;
use crate::status::events::{BuildChange, BuildEvents};

/// The longest putting an event may take.
const PUT_WITHIN: Duration = Duration::from_secs(3);

impl<S> Builds<S> {
    /// The build has begun (it has its number and its first minute): put beside the build, which
    /// goes on to its fetch without waiting for EventBridge.
    pub(super) fn announce_begun(&self, identity: &BuildIdentity) {
        let Some(events) = &self.events else {
            return;
        };
        let (project, id) = (identity.project.to_string(), identity.build_id.to_string());
        let change = BuildChange {
            link: self.page_link(&project, &id),
            project,
            build_id: id,
            status: BuildState::InProgress,
            initiator: Some(identity.initiator.clone()),
            source_version: identity.source_version.clone(),
            reference: identity.reference.clone(),
            commit: identity.commit.as_ref().map(ToString::to_string),
            start_time: identity.start_time,
            reason: None,
            artifact: None,
            log: None,
            record: None,
            billed_minutes: None,
        };
        let events = events.clone();
        tokio::spawn(async move { put(&*events, &change).await });
    }

    /// The build has ended with its record (a build still running on CodeBuild has not).
    pub(super) async fn announce_end(&self, summary: &BuildSummary) {
        let (Some(events), Some(id)) = (&self.events, &summary.build_id) else {
            return;
        };
        if summary.status == BuildState::InProgress {
            return;
        }
        let project = summary.repository.to_string();
        let change = BuildChange {
            link: self
                .page_link(&project, id)
                .or_else(|| summary.log_uri.clone()),
            project,
            build_id: id.clone(),
            status: summary.status,
            initiator: summary.origin.as_ref().map(|o| o.initiator.clone()),
            source_version: summary.reference.clone().or_else(|| summary.commit.clone()),
            reference: summary.reference.clone(),
            commit: summary.commit.clone(),
            start_time: summary
                .origin
                .as_ref()
                .map_or_else(chrono::Utc::now, |o| o.start_time),
            reason: summary.reason.clone(),
            artifact: summary.artifact_uris.first().cloned(),
            log: summary.log_uri.clone(),
            record: summary.record_uri.clone(),
            billed_minutes: Some(summary.billed_minutes),
        };
        put(&**events, &change).await;
    }
}

/// Puts `change`, logging what went wrong.
async fn put(events: &dyn BuildEvents, change: &BuildChange) {
    let (build_id, status) = (change.build_id.as_str(), change.status.as_str());
    match tokio::time::timeout(PUT_WITHIN, events.put(change)).await {
        Ok(Ok(())) => tracing::info!(build_id, status, "state change put on the event bus"),
        Ok(Err(why)) => tracing::warn!(build_id, status, why, "the state change was not put"),
        Err(_) => tracing::warn!(build_id, status, "putting the state change took too long"),
    }
}
