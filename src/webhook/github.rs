//! GitHub's webhooks: the `X-Hub-Signature-256` check (HMAC-SHA256 of the body with the
//! webhook's secret), and `push`, `pull_request` and `ping` payloads read into a [`HostEvent`].
//! Other events, and pull request actions that build nothing, are answered as ignored.

use serde_json::Value;

use super::event::{EventKind, Host, HostEvent, PullRequest};
use super::signature;
use super::{Headers, Received, WebhookError};
use crate::names::{CommitId, ref_name_problem};
use crate::trigger::json::Node;

/// The setting that holds the webhook's secret, for messages.
pub const SECRET_SETTING: &str = "PUSHBUILD_GITHUB_WEBHOOK_SECRET";

/// Checks the delivery's signature over the exact body bytes, in constant time, before
/// anything reads the body.
pub fn verify(headers: &Headers, body: &[u8], secret: Option<&[u8]>) -> Result<(), WebhookError> {
    let secret = secret.ok_or(WebhookError::SecretNotConfigured {
        setting: SECRET_SETTING,
    })?;
    let header = headers
        .get("x-hub-signature-256")
        .ok_or(WebhookError::Unauthorized {
            why: "no X-Hub-Signature-256 header",
        })?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(WebhookError::Unauthorized {
            why: "X-Hub-Signature-256 is not `sha256=<hex>`",
        })?;
    if signature::hmac_sha256_hex_matches(secret, body, hex) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized {
            why: "X-Hub-Signature-256 does not match the body",
        })
    }
}

/// Reads a verified delivery.
pub fn read(headers: &Headers, body: &[u8]) -> Result<Received, WebhookError> {
    let event = headers
        .get("x-github-event")
        .ok_or_else(|| WebhookError::bad("X-GitHub-Event", "required: the event's name"))?;
    let delivery = headers
        .get("x-github-delivery")
        .ok_or_else(|| WebhookError::bad("X-GitHub-Delivery", "required: the delivery's id"))?;
    let hook = headers.get("x-github-hook-id").unwrap_or("-");
    if !matches!(event, "push" | "pull_request" | "ping") {
        return Ok(Received::Ignored {
            reason: format!("GitHub's `{event}` event does not build"),
        });
    }
    let payload: Value = serde_json::from_slice(body).map_err(|err| {
        WebhookError::bad(
            "the body",
            format!("not JSON ({err}); set the webhook's content type to application/json"),
        )
    })?;
    let root = Node::root(&payload);
    let delivery = format!("{hook}:{delivery}");
    let received = match event {
        "ping" => Received::Ping,
        "push" => push(&root, delivery)?,
        _ => pull_request(&root, delivery)?,
    };
    Ok(received)
}

fn push(root: &Node, delivery: String) -> Result<Received, WebhookError> {
    let head_ref = reference(&root.need("ref", "the pushed reference")?)?;
    let deleted = root.flag("deleted")?;
    let commit = if deleted {
        None
    } else {
        Some(commit(&root.need("after", "the pushed commit")?)?)
    };
    let mut files = Vec::new();
    if let Some(commits) = root.get("commits")? {
        for item in commits.items()? {
            for list in ["added", "removed", "modified"] {
                if let Some(paths) = item.get(list)? {
                    for path in paths.items()? {
                        files.push(path.as_str()?.to_string());
                    }
                }
            }
        }
    }
    files.sort();
    files.dedup();
    let sender = root.get("sender")?;
    Ok(Received::Event(Box::new(HostEvent {
        host: Host::GitHub,
        delivery,
        repository: full_name(&root.need("repository", "the repository")?)?,
        kind: EventKind::Push,
        head_ref,
        base_ref: None,
        actor_account_id: sender.as_ref().map(account_id).transpose()?.flatten(),
        actor_name: sender.as_ref().map(login).transpose()?.flatten(),
        commit,
        prev_commit: root.opt_str("before")?.map(str::to_string),
        commit_message: match root.get("head_commit")? {
            Some(head) => head.opt_str("message")?.map(str::to_string),
            None => None,
        },
        changed_files: Some(files),
        pull_request: None,
    })))
}

fn pull_request(root: &Node, delivery: String) -> Result<Received, WebhookError> {
    let action = root.str("action")?;
    let pr = root.need("pull_request", "the pull request")?;
    let kind = match action {
        "opened" => EventKind::PullRequestCreated,
        "synchronize" => EventKind::PullRequestUpdated,
        "reopened" => EventKind::PullRequestReopened,
        "closed" if pr.flag("merged")? => EventKind::PullRequestMerged,
        "closed" => EventKind::PullRequestClosed,
        other => {
            return Ok(Received::Ignored {
                reason: format!("pull request action `{other}` does not build"),
            });
        }
    };
    let number = number(&pr.need("number", "the pull request's number")?)?;
    let head = pr.need("head", "the pull request's head")?;
    let base = pr.need("base", "the pull request's base")?;
    let repository = full_name(&root.need("repository", "the repository")?)?;
    // A head in another repository is a fork's; a head whose repository is gone was one.
    let from_fork = match head.get("repo")? {
        Some(repo) => full_name(&repo)? != repository,
        None => true,
    };
    let sender = root.get("sender")?;
    Ok(Received::Event(Box::new(HostEvent {
        host: Host::GitHub,
        delivery,
        repository,
        kind,
        head_ref: branch_ref(&head)?,
        base_ref: Some(branch_ref(&base)?),
        actor_account_id: sender.as_ref().map(account_id).transpose()?.flatten(),
        actor_name: sender.as_ref().map(login).transpose()?.flatten(),
        commit: Some(commit(&head.need("sha", "the head commit")?)?),
        prev_commit: None,
        commit_message: None,
        changed_files: None,
        pull_request: Some(PullRequest { number, from_fork }),
    })))
}

/// `owner/repo`, checked as one part of a project name each.
fn full_name(repo: &Node) -> Result<String, WebhookError> {
    let node = repo.need("full_name", "`owner/repo`")?;
    let name = node.as_str()?;
    let parts: Vec<&str> = name.split('/').collect();
    let part_ok = |part: &&str| crate::names::RepositoryName::parse(part).is_ok();
    if parts.len() != 2 || !parts.iter().all(part_ok) {
        return Err(node
            .invalid(format!("expected `owner/repo`, found {name:?}"))
            .into());
    }
    Ok(name.to_string())
}

/// `refs/heads/<branch>` of a pull request's `head` or `base` (`ref` holds the bare name).
fn branch_ref(side: &Node) -> Result<String, WebhookError> {
    let node = side.need("ref", "a branch name")?;
    let name = node.as_str()?;
    if let Some(problem) = ref_name_problem(name) {
        return Err(node
            .invalid(format!("expected a branch name, but {problem}"))
            .into());
    }
    Ok(format!("refs/heads/{name}"))
}

fn reference(node: &Node) -> Result<String, WebhookError> {
    let full = node.as_str()?;
    let name = full
        .strip_prefix("refs/heads/")
        .or_else(|| full.strip_prefix("refs/tags/"));
    match name {
        Some(name) if ref_name_problem(name).is_none() => Ok(full.to_string()),
        _ => Err(node
            .invalid(format!(
                "expected `refs/heads/<branch>` or `refs/tags/<tag>`, found {full:?}"
            ))
            .into()),
    }
}

fn commit(node: &Node) -> Result<CommitId, WebhookError> {
    CommitId::parse(node.as_str()?).map_err(|err| node.invalid(err.to_string()).into())
}

fn number(node: &Node) -> Result<u64, WebhookError> {
    node.value
        .as_u64()
        .ok_or_else(|| node.wrong("a whole number").into())
}

/// The sender's numeric id, as text (`ACTOR_ACCOUNT_ID`).
fn account_id(sender: &Node) -> Result<Option<String>, WebhookError> {
    Ok(match sender.get("id")? {
        Some(id) => Some(number(&id)?.to_string()),
        None => None,
    })
}

fn login(sender: &Node) -> Result<Option<String>, WebhookError> {
    Ok(sender.opt_str("login")?.map(str::to_string))
}
