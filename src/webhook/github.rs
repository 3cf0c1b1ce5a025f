//! GitHub's webhooks: the `X-Hub-Signature-256` check (HMAC-SHA256 of the body with the
//! webhook's secret), and `push`, `pull_request` and `ping` payloads read into a [`HostEvent`].
//! Other events, and pull request actions that build nothing, are answered as ignored.

use crate::names::RefKind;
use serde_json::Value;

use super::event::{EventKind, Host, HostEvent, PullRequest};
use super::signature::{self, SignatureMessages};
use super::{Headers, Received, WebhookError, fields};
use crate::trigger::json::Node;

/// The setting that holds the webhook's secret, for messages.
pub const SECRET_SETTING: &str = "PUSHBUILD_GITHUB_WEBHOOK_SECRET";

/// The webhook's signature header (GitHub's; Bitbucket uses `X-Hub-Signature` the same way).
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Checks the delivery's signature over the exact body bytes, in constant time, before
/// anything reads the body.
pub fn verify(headers: &Headers, body: &[u8], secret: Option<&[u8]>) -> Result<(), WebhookError> {
    let secret = secret.ok_or(WebhookError::SecretNotConfigured {
        setting: SECRET_SETTING,
    })?;
    signature::verify_hex_header(
        headers,
        SIGNATURE_HEADER,
        &SignatureMessages {
            missing: "no X-Hub-Signature-256 header",
            malformed: "X-Hub-Signature-256 is not `sha256=<hex>`",
            mismatch: "X-Hub-Signature-256 does not match the body",
        },
        secret,
        body,
    )
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
    let head_ref = fields::reference(&root.need("ref", "the pushed reference")?)?;
    let deleted = root.flag("deleted")?;
    let commit = if deleted {
        None
    } else {
        Some(fields::commit(&root.need("after", "the pushed commit")?)?)
    };
    let files = match root.get("commits")? {
        Some(commits) => fields::commit_files(&commits)?,
        None => Vec::new(),
    };
    let sender = root.get("sender")?;
    Ok(Received::Events(vec![HostEvent {
        host: Host::GitHub,
        delivery,
        repository: full_name(&root.need("repository", "the repository")?)?,
        kind: EventKind::Push,
        head_ref,
        base_ref: None,
        actor_account_id: sender.as_ref().map(account_id).transpose()?.flatten(),
        actor_name: sender.as_ref().map(login).transpose()?.flatten(),
        commit,
        abbreviated_commit: None,
        prev_commit: root.opt_str("before")?.map(str::to_string),
        commit_message: match root.get("head_commit")? {
            Some(head) => head.opt_str("message")?.map(str::to_string),
            None => None,
        },
        changed_files: Some(files),
        pull_request: None,
    }]))
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
    let number = fields::number(&pr.need("number", "the pull request's number")?)?;
    let head = pr.need("head", "the pull request's head")?;
    let base = pr.need("base", "the pull request's base")?;
    let repository = full_name(&root.need("repository", "the repository")?)?;
    // A head in another repository is a fork's; a head whose repository is gone was one.
    let from_fork = match head.get("repo")? {
        Some(repo) => full_name(&repo)? != repository,
        None => true,
    };
    let sender = root.get("sender")?;
    Ok(Received::Events(vec![HostEvent {
        host: Host::GitHub,
        delivery,
        repository,
        kind,
        head_ref: branch_ref(&head)?,
        base_ref: Some(branch_ref(&base)?),
        actor_account_id: sender.as_ref().map(account_id).transpose()?.flatten(),
        actor_name: sender.as_ref().map(login).transpose()?.flatten(),
        commit: Some(fields::commit(&head.need("sha", "the head commit")?)?),
        abbreviated_commit: None,
        prev_commit: None,
        commit_message: None,
        changed_files: None,
        pull_request: Some(PullRequest { number, from_fork }),
    }]))
}

/// `owner/repo`, each part a name a project may hold.
fn full_name(repo: &Node) -> Result<String, WebhookError> {
    fields::repository_path(&repo.need("full_name", "`owner/repo`")?, false)
}

/// `refs/heads/<branch>` of a pull request's `head` or `base` (`ref` holds the bare name).
fn branch_ref(side: &Node) -> Result<String, WebhookError> {
    fields::named_ref(&side.need("ref", "a branch name")?, RefKind::Branch)
}

/// The sender's numeric id, as text (`ACTOR_ACCOUNT_ID`).
fn account_id(sender: &Node) -> Result<Option<String>, WebhookError> {
    sender.get("id")?.map(|id| fields::id_text(&id)).transpose()
}

fn login(sender: &Node) -> Result<Option<String>, WebhookError> {
    Ok(sender.opt_str("login")?.map(str::to_string))
}
