//! Once per delivery: a build that comes from an event (or a webhook delivery) with an id is
//! claimed with a conditional write of `claims/<project>/<sha256 of the key>.json`; a second
//! delivery finds the claim and is a duplicate. A claim is released when pushbuild itself failed,
//! so a retry can build.

use chrono::Utc;

use super::BuildSummary;
use crate::names::ProjectName;
use crate::store::{ObjectMeta, Store, StoreError};
use crate::trigger::BuildTarget;

/// Where the claim for one delivery key lies: `claims/<project>/<sha256 of the key>.json`.
pub fn key(project: &ProjectName, dedup_key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(dedup_key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("claims/{project}/{hex}.json")
}

/// Claims `dedup_key`; whether this call took it (false: an earlier delivery did).
pub fn take(store: &dyn Store, project: &ProjectName, dedup_key: &str) -> Result<bool, StoreError> {
    let body = serde_json::json!({
        "dedupKey": dedup_key,
        "repository": project,
        "claimedAt": Utc::now().to_rfc3339(),
    })
    .to_string();
    store.put_if_absent(
        &key(project, dedup_key),
        body.as_bytes(),
        &ObjectMeta::new("application/json"),
    )
}

/// Gives a claim back (pushbuild failed after taking it).
pub fn release(
    store: &dyn Store,
    project: &ProjectName,
    dedup_key: &str,
) -> Result<(), StoreError> {
    store.delete(&key(project, dedup_key))
}

/// What a duplicate delivery answers: SKIPPED, with no record, no number and no bill (it is not
/// a build of its own).
pub fn duplicate(target: &BuildTarget, dedup_key: &str) -> BuildSummary {
    tracing::info!(dedup_key, "duplicate delivery skipped");
    BuildSummary::skipped(
        target.repository.clone(),
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
