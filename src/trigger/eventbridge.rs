//! EventBridge events: CodeCommit's `CodeCommit Repository State Change` (a branch or tag was
//! created, updated or deleted) and a `Scheduled Event` whose `detail` is a build request.
//!
//! The envelope (`id`, `region`, `account`, `resources`) is read through `aws_lambda_events`'
//! `EventBridgeEvent`; the `detail` is read field by field so errors name the field.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

use super::check::{self, RefKind};
use super::json::Node;
use super::request::{self, Origin};
use super::{BuildTarget, EventError, Planned, Skipped};
use crate::names::{self, SourceVersion, full_ref};

const CODECOMMIT_SOURCE: &str = "aws.codecommit";
const STATE_CHANGE: &str = "CodeCommit Repository State Change";
const SCHEDULED: &str = "Scheduled Event";

/// The builds an EventBridge event asks for.
pub(crate) fn plan(event: &Value) -> Result<Vec<Planned>, EventError> {
    let root = Node::root(event);
    let detail_type = root.str("detail-type")?;
    let source = root.opt_str("source")?.unwrap_or("");
    if detail_type == SCHEDULED {
        return scheduled(event, &root);
    }
    if source != CODECOMMIT_SOURCE || detail_type != STATE_CHANGE {
        return Err(EventError::UnknownShape {
            found: format!("an EventBridge event from {source:?} of type {detail_type:?}"),
        });
    }
    let detail = root.need("detail", "an object")?;
    Ok(vec![state_change(&envelope(event)?, &detail)?])
}

fn envelope(event: &Value) -> Result<EventBridgeEvent, EventError> {
    serde_json::from_value(event.clone()).map_err(|err| EventError::Envelope {
        message: err.to_string(),
    })
}

/// A reference created or updated is built; a deleted one is skipped.
fn state_change(envelope: &EventBridgeEvent, detail: &Node) -> Result<Planned, EventError> {
    let repository = check::repository(
        detail.str("repositoryName")?,
        &detail.child_path("repositoryName"),
    )?;
    let name = detail.str("referenceName")?;
    let full = match detail.str("referenceType")? {
        "branch" => full_ref(names::RefKind::Branch, name),
        "tag" => full_ref(names::RefKind::Tag, name),
        other => {
            return Err(EventError::Invalid {
                path: detail.child_path("referenceType"),
                problem: format!("expected \"branch\" or \"tag\", found {other:?}"),
            });
        }
    };
    if let Some(problem) = names::ref_name_problem(name) {
        return Err(EventError::Invalid {
            path: detail.child_path("referenceName"),
            problem: format!("expected a branch or tag name, but {problem}"),
        });
    }
    let kind = match names::split_ref(&full) {
        Some((names::RefKind::Branch, _)) => RefKind::Branch(name),
        _ => RefKind::Tag(name),
    };
    match detail.str("event")? {
        "referenceCreated" | "referenceUpdated" => {}
        "referenceDeleted" => {
            return Ok(Planned::Skip(Skipped {
                repository: repository.into(),
                reference: Some(full.clone()),
                commit: detail.opt_str("commitId")?.map(str::to_string),
                reason: format!("{} was deleted", kind.describe(&full)),
            }));
        }
        other => {
            return Err(EventError::Invalid {
                path: detail.child_path("event"),
                problem: format!(
                    "expected referenceCreated, referenceUpdated or referenceDeleted, \
                     found {other:?}"
                ),
            });
        }
    }
    let commit = detail
        .get("commitId")?
        .map(|node| check::commit(&node))
        .transpose()?;
    let Some(commit) = commit else {
        return Err(EventError::Missing {
            path: detail.child_path("commitId"),
            expected: "the commit id the reference now points to",
        });
    };
    let version = SourceVersion::Commit(commit.clone());
    Ok(Planned::Build(Box::new(BuildTarget {
        commit: Some(commit),
        reference: Some(full.clone()),
        webhook_trigger: kind.webhook_trigger(),
        dedup_key: envelope.id.as_ref().map(|id| format!("{id}:{full}")),
        region: envelope.region.clone(),
        account: envelope.account.clone(),
        ..BuildTarget::codecommit(repository, version, "eventbridge/codecommit")
    })))
}

/// A `Scheduled Event` whose `detail` is a build request. A rule's default scheduled event has
/// an empty `detail`, which names no repository: the message says to send the request instead.
fn scheduled(event: &Value, root: &Node) -> Result<Vec<Planned>, EventError> {
    let detail = root.need("detail", "a build request")?;
    let envelope = envelope(event)?;
    if detail.object()?.is_empty() {
        return Err(detail.invalid(
            "empty: a schedule must send a build request (`{\"repository\": ..., \
             \"sourceVersion\": ...}`), as the rule's constant input or as this detail",
        ));
    }
    let rule = envelope
        .resources
        .iter()
        .flatten()
        .find_map(|arn| arn.split_once(":rule/").map(|(_, name)| name.to_string()));
    let origin = Origin {
        initiator: format!("eventbridge/{}", rule.as_deref().unwrap_or("schedule")),
        event_id: envelope.id.clone(),
        region: envelope.region.clone(),
        account: envelope.account.clone(),
    };
    Ok(vec![Planned::Build(Box::new(request::plan(
        &detail, origin,
    )?))])
}
