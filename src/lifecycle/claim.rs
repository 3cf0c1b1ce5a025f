//! Once per delivery: a build that comes from an event (or a webhook delivery) with an id is
//! claimed in the index with a conditional create keyed by the project and the delivery's id; a
//! second delivery finds the claim and is a duplicate. A claim is released when pushbuild itself
//! failed, so a retry can build, and expires after [`CLAIM_TTL`] (longer than any retry: Lambda
//! retries an asynchronous event for up to 6 hours, EventBridge for up to 24).
//!
//! This is the one place a claim is taken: by the front door when it queues a webhook's build
//! (the build then travels without its delivery's key), or by [`super::Builds::build`] for an
//! event that reaches the function directly.

use std::sync::Arc;

use chrono::Utc;

use super::{BuildError, BuildSummary, in_index};
use crate::index::Index;
use crate::names::ProjectName;
use crate::trigger::BuildTarget;

/// How long a claim holds.
pub const CLAIM_TTL: chrono::Duration = chrono::Duration::hours(72);

/// What claiming a target gave.
pub(super) enum Claimed {
    /// This delivery builds it (or it has no delivery to claim).
    Taken(Claim),
    /// An earlier delivery took it: SKIPPED, with no record, no number and no bill.
    Duplicate(Box<BuildSummary>),
}

/// A claim held while its build lives.
pub(super) struct Claim {
    held: Option<(Arc<dyn Index>, ProjectName, String)>,
}

/// Claims `target`'s delivery, when it carries one.
pub(super) async fn take(
    index: &Arc<dyn Index>,
    target: &BuildTarget,
) -> Result<Claimed, BuildError> {
    let Some(key) = target.dedup_key.clone() else {
        return Ok(Claimed::Taken(Claim { held: None }));
    };
    let (project, claimed_key) = (target.project.clone(), key.clone());
    let taken = in_index(index, move |claims| {
        let now = Utc::now();
        claims.claim(&project, &claimed_key, now, now + CLAIM_TTL)
    })
    .await?;
    if !taken {
        return Ok(Claimed::Duplicate(Box::new(duplicate(target, &key))));
    }
    Ok(Claimed::Taken(Claim {
        held: Some((index.clone(), target.project.clone(), key)),
    }))
}

impl Claim {
    /// Keeps the claim when the build has an outcome; gives it back when pushbuild failed, so a
    /// retry of the delivery can build.
    pub async fn settle<T>(self, result: &Result<T, BuildError>) {
        if result.is_err() {
            self.release().await;
        }
    }

    /// Gives the claim back (the build was not handed off, or pushbuild failed).
    pub async fn release(self) {
        let Some((index, project, key)) = self.held else {
            return;
        };
        let released = in_index(&index, move |index| index.release(&project, &key)).await;
        if let Err(error) = released {
            tracing::warn!(%error, "a delivery's claim could not be given back; it expires by itself");
        }
    }
}

/// What a duplicate delivery answers.
fn duplicate(target: &BuildTarget, dedup_key: &str) -> BuildSummary {
    tracing::info!(dedup_key, "duplicate delivery skipped");
    BuildSummary::skipped(
        target.project.clone(),
        target.reference.clone(),
        target
            .commit
            .as_ref()
            .or(target.version.commit())
            .map(ToString::to_string),
        format!(
            "duplicate delivery: `{dedup_key}` was already taken by an earlier delivery of this event"
        ),
    )
}
