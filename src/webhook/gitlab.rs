//! GitLab's webhooks: authenticity by the `X-Gitlab-Token` header (compared in constant time
//! with the configured token) or, where GitLab signs and a signing token is configured, by its
//! Standard Webhooks signature (`webhook-signature: v1,<base64>` over
//! `<webhook-id>.<webhook-timestamp>.<body>`, five minutes' tolerance). Events (`X-Gitlab-Event`):
//! `Push Hook`, `Tag Push Hook` and `Merge Request Hook` read into a [`HostEvent`].

use crate::names::RefKind;
use serde_json::Value;

use super::event::{EventKind, Host, HostEvent, PullRequest};
use super::{Headers, HostSettings, Received, WebhookError, fields, signature};
use crate::trigger::json::Node;

/// The settings that hold GitLab's webhook token and signing token, for messages.
pub const TOKEN_SETTING: &str = "PUSHBUILD_GITLAB_WEBHOOK_TOKEN";
pub const SIGNING_SETTING: &str = "PUSHBUILD_GITLAB_SIGNING_TOKEN";

/// A commit id of zeros: the `after` of a push that deleted its branch.
const ZEROS: &str = "0000000000000000000000000000000000000000";

/// Checks the delivery: its Standard Webhooks signature when a signing token is configured and
/// the delivery is signed, else its `X-Gitlab-Token`.
pub fn verify(
    headers: &Headers,
    body: &[u8],
    settings: &HostSettings,
    now: i64,
) -> Result<(), WebhookError> {
    let refuse = |why| WebhookError::Unauthorized { why };
    if let (Some(signing), Some(header)) =
        (&settings.signing_secret, headers.get("webhook-signature"))
    {
        let id = headers
            .get("webhook-id")
            .ok_or(refuse("a signed delivery without webhook-id"))?;
        let timestamp = headers
            .get("webhook-timestamp")
            .ok_or(refuse("a signed delivery without webhook-timestamp"))?;
        return signature::standard_webhook(signing.expose(), id, timestamp, body, header, now)
            .map_err(|refusal| match refusal {
                signature::StandardRefusal::BadSecret => refuse(
                    "the signing token (PUSHBUILD_GITLAB_SIGNING_TOKEN) is not `whsec_<base64>`",
                ),
                signature::StandardRefusal::Stale => {
                    refuse("webhook-timestamp is more than five minutes from now")
                }
                signature::StandardRefusal::Mismatch => {
                    refuse("webhook-signature does not match the body")
                }
            });
    }
    let Some(token) = &settings.webhook_secret else {
        return Err(WebhookError::SecretNotConfigured {
            setting: if settings.signing_secret.is_some() {
                SIGNING_SETTING
            } else {
                TOKEN_SETTING
            },
        });
    };
    let sent = headers
        .get("x-gitlab-token")
        .ok_or(refuse("no X-Gitlab-Token header"))?;
    if signature::constant_time_eq(sent.as_bytes(), token.expose().as_bytes()) {
        Ok(())
    } else {
        Err(refuse("X-Gitlab-Token is not the configured token"))
    }
}

/// Reads a verified delivery.
pub fn read(headers: &Headers, body: &[u8]) -> Result<Received, WebhookError> {
    let event = headers
        .get("x-gitlab-event")
        .ok_or_else(|| WebhookError::bad("X-Gitlab-Event", "required: the event's name"))?;
    // `Idempotency-Key` is the same across GitLab's retries of one delivery.
    let delivery = headers
        .get("idempotency-key")
        .or_else(|| headers.get("x-gitlab-event-uuid"))
        .ok_or_else(|| WebhookError::bad("Idempotency-Key", "required (or X-Gitlab-Event-UUID)"))?
        .to_string();
    if !matches!(event, "Push Hook" | "Tag Push Hook" | "Merge Request Hook") {
        return Ok(Received::Ignored {
            reason: format!("GitLab's `{event}` does not build"),
        });
    }
    let payload: Value = serde_json::from_slice(body)
        .map_err(|err| WebhookError::bad("the body", format!("not JSON ({err})")))?;
    let root = Node::root(&payload);
    match event {
        "Merge Request Hook" => merge_request(&root, delivery),
        _ => push(&root, delivery),
    }
}

fn push(root: &Node, delivery: String) -> Result<Received, WebhookError> {
    let head_ref = fields::reference(&root.need("ref", "the pushed reference")?)?;
    let deleted = root.opt_str("after")? == Some(ZEROS) || root.get("checkout_sha")?.is_none();
    let commit = if deleted {
        None
    } else {
        Some(fields::commit(
            &root.need("checkout_sha", "the pushed commit")?,
        )?)
    };
    let commits = root.get("commits")?;
    // GitLab lists at most 20 commits; past that the files come from its API.
    let listed = commits
        .as_ref()
        .map_or(Ok(0), |c| c.items().map(|i| i.len()))?;
    let total = match root.get("total_commits_count")? {
        Some(node) => fields::number(&node)? as usize,
        None => listed,
    };
    let changed_files = match &commits {
        Some(commits) if listed >= total => Some(fields::commit_files(commits)?),
        _ => None,
    };
    let project = root.need("project", "the project")?;
    // The head commit's message: the listed commit that is the pushed one.
    let mut message = None;
    if let (Some(commits), Some(head)) = (&commits, &commit) {
        for item in commits.items()? {
            if item.opt_str("id")? == Some(head.as_str()) {
                message = item.opt_str("message")?.map(str::to_string);
            }
        }
    }
    Ok(Received::Events(vec![HostEvent {
        host: Host::GitLab,
        delivery,
        repository: path(&project)?,
        kind: EventKind::Push,
        head_ref,
        base_ref: None,
        actor_account_id: root
            .get("user_id")?
            .map(|n| fields::id_text(&n))
            .transpose()?,
        actor_name: root.opt_str("user_username")?.map(str::to_string),
        commit,
        abbreviated_commit: None,
        prev_commit: root.opt_str("before")?.map(str::to_string),
        commit_message: message,
        changed_files,
        pull_request: None,
    }]))
}

fn merge_request(root: &Node, delivery: String) -> Result<Received, WebhookError> {
    let attributes = root.need("object_attributes", "the merge request")?;
    let action = attributes.opt_str("action")?.unwrap_or("");
    let kind = match action {
        "open" => EventKind::PullRequestCreated,
        // GitLab also sends `update` for a title or label edit: only new commits build.
        "update" if attributes.get("oldrev")?.is_some() => EventKind::PullRequestUpdated,
        "update" => {
            return Ok(Received::Ignored {
                reason: "merge request update without new commits does not build".into(),
            });
        }
        "reopen" => EventKind::PullRequestReopened,
        "merge" => EventKind::PullRequestMerged,
        "close" => EventKind::PullRequestClosed,
        other => {
            return Ok(Received::Ignored {
                reason: format!("merge request action `{other}` does not build"),
            });
        }
    };
    let project = root.need("project", "the project")?;
    let number = fields::number(&attributes.need("iid", "the merge request's iid")?)?;
    let source = attributes.get("source_project_id")?;
    let target = attributes.get("target_project_id")?;
    let from_fork = match (source, target) {
        (Some(source), Some(target)) => source.value != target.value,
        _ => false,
    };
    let last_commit = attributes.need("last_commit", "the head commit")?;
    let user = root.get("user")?;
    Ok(Received::Events(vec![HostEvent {
        host: Host::GitLab,
        delivery,
        repository: path(&project)?,
        kind,
        head_ref: fields::named_ref(
            &attributes.need("source_branch", "a branch")?,
            RefKind::Branch,
        )?,
        base_ref: Some(fields::named_ref(
            &attributes.need("target_branch", "a branch")?,
            RefKind::Branch,
        )?),
        actor_account_id: match &user {
            Some(user) => user.get("id")?.map(|n| fields::id_text(&n)).transpose()?,
            None => None,
        },
        actor_name: match &user {
            Some(user) => user.opt_str("username")?.map(str::to_string),
            None => None,
        },
        commit: Some(fields::commit(&last_commit.need("id", "the commit's id")?)?),
        abbreviated_commit: None,
        prev_commit: None,
        commit_message: None,
        changed_files: None,
        pull_request: Some(PullRequest { number, from_fork }),
    }]))
}

/// `group/project` (or deeper), the project's `path_with_namespace`.
fn path(project: &Node) -> Result<String, WebhookError> {
    fields::repository_path(
        &project.need("path_with_namespace", "`group/project`")?,
        true,
    )
}
