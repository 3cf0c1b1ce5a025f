//! Once per delivery: a build that comes from an event (or a webhook delivery) with an id is
//! claimed in the index with a conditional create keyed by the project and the delivery's id; a
//! second delivery finds the claim and is a duplicate. A claim is released when pushbuild itself
//! failed, so a retry can build, and expires after [`CLAIM_TTL`] (longer than any retry: Lambda
//! retries an asynchronous event for up to 6 hours, EventBridge for up to 24).

use chrono::Utc;

use super::BuildSummary;
use crate::index::{Index, IndexError};
use crate::names::ProjectName;
use crate::trigger::BuildTarget;

/// How long a claim holds.
pub const CLAIM_TTL: chrono::Duration = chrono::Duration::hours(72);

/// Claims `dedup_key`; whether this call took it (false: an earlier delivery did).
pub fn take(index: &dyn Index, project: &ProjectName, dedup_key: &str) -> Result<bool, IndexError> {
    let now = Utc::now();
    index.claim(project.as_str(), dedup_key, now, now + CLAIM_TTL)
}

/// Gives a claim back (pushbuild failed after taking it).
pub fn release(
    index: &dyn Index,
    project: &ProjectName,
    dedup_key: &str,
) -> Result<(), IndexError> {
    index.release(project.as_str(), dedup_key)
}

/// What a duplicate delivery answers: SKIPPED, with no record, no number and no bill (it is not
/// a build of its own).
pub fn duplicate(target: &BuildTarget, dedup_key: &str) -> BuildSummary {
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
