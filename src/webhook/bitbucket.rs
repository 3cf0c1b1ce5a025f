//! Bitbucket Cloud's webhooks: `X-Hub-Signature: sha256=<hex>` (HMAC-SHA256 of the body with the
//! webhook's secret), and events (`X-Event-Key`) `repo:push` (one event per pushed reference:
//! `push.changes[]`), `pullrequest:created`, `…:updated`, `…:fulfilled` (merged) and
//! `…:rejected` (declined). Once per delivery: `X-Request-UUID`.

use crate::names::RefKind;
use serde_json::Value;

use super::event::{EventKind, Host, HostEvent, PullRequest};
use super::signature::{self, SignatureMessages};
use super::{Headers, Received, WebhookError, fields};
use crate::names::CommitId;
use crate::trigger::json::Node;

/// The setting that holds the webhook's secret, for messages.
pub const SECRET_SETTING: &str = "PUSHBUILD_BITBUCKET_WEBHOOK_SECRET";

/// Checks the delivery's signature over the exact body bytes, in constant time.
pub fn verify(headers: &Headers, body: &[u8], secret: Option<&[u8]>) -> Result<(), WebhookError> {
    let secret = secret.ok_or(WebhookError::SecretNotConfigured {
        setting: SECRET_SETTING,
    })?;
    signature::verify_hex_header(
        headers,
        "x-hub-signature",
        &SignatureMessages {
            missing: "no X-Hub-Signature header",
            malformed: "X-Hub-Signature is not `sha256=<hex>`",
            mismatch: "X-Hub-Signature does not match the body",
        },
        secret,
        body,
    )
}

/// Reads a verified delivery.
pub fn read(headers: &Headers, body: &[u8]) -> Result<Received, WebhookError> {
    let event = headers
        .get("x-event-key")
        .ok_or_else(|| WebhookError::bad("X-Event-Key", "required: the event's name"))?;
    let delivery = headers
        .get("x-request-uuid")
        .ok_or_else(|| WebhookError::bad("X-Request-UUID", "required: the delivery's id"))?
        .to_string();
    let kind = match event {
        "repo:push" => None,
        "pullrequest:created" => Some(EventKind::PullRequestCreated),
        "pullrequest:updated" => Some(EventKind::PullRequestUpdated),
        "pullrequest:fulfilled" => Some(EventKind::PullRequestMerged),
        "pullrequest:rejected" => Some(EventKind::PullRequestClosed),
        other => {
            return Ok(Received::Ignored {
                reason: format!("Bitbucket's `{other}` does not build"),
            });
        }
    };
    let payload: Value = serde_json::from_slice(body)
        .map_err(|err| WebhookError::bad("the body", format!("not JSON ({err})")))?;
    let root = Node::root(&payload);
    match kind {
        None => push(&root, &delivery),
        Some(kind) => pull_request(&root, delivery, kind),
    }
}

/// The actor's account id and nickname.
fn actor(root: &Node) -> Result<(Option<String>, Option<String>), WebhookError> {
    Ok(match root.get("actor")? {
        Some(actor) => (
            actor.opt_str("account_id")?.map(str::to_string),
            actor
                .opt_str("nickname")?
                .or(actor.opt_str("display_name")?)
                .map(str::to_string),
        ),
        None => (None, None),
    })
}

fn push(root: &Node, delivery: &str) -> Result<Received, WebhookError> {
    let repository = full_name(&root.need("repository", "the repository")?)?;
    let (actor_id, actor_name) = actor(root)?;
    let changes = root
        .need("push", "the push")?
        .need("changes", "the pushed changes")?;
    let mut events = Vec::new();
    for change in changes.items()? {
        // `new` is null when the reference was deleted; then `old` names it.
        let side = match change.get("new")? {
            Some(new) => new,
            None => change.need("old", "the deleted reference")?,
        };
        let deleted = change.get("new")?.is_none();
        let kind = match side.str("type")? {
            "branch" | "named_branch" => RefKind::Branch,
            "tag" | "annotated_tag" => RefKind::Tag,
            other => {
                return Err(side
                    .invalid(format!("expected a branch or a tag, found {other:?}"))
                    .into());
            }
        };
        let head_ref = fields::named_ref(&side.need("name", "the reference's name")?, kind)?;
        let target = side.need("target", "the reference's commit")?;
        let commit = if deleted {
            None
        } else {
            Some(fields::commit(&target.need("hash", "the commit's hash")?)?)
        };
        let prev_commit = match change.get("old")? {
            Some(old) if !deleted => old
                .get("target")?
                .map(|t| t.opt_str("hash"))
                .transpose()?
                .flatten()
                .map(str::to_string),
            _ => None,
        };
        events.push(HostEvent {
            host: Host::Bitbucket,
            // One delivery can push several references: each is its own delivery to claim.
            delivery: format!("{delivery}:{head_ref}"),
            repository: repository.clone(),
            kind: EventKind::Push,
            head_ref,
            base_ref: None,
            actor_account_id: actor_id.clone(),
            actor_name: actor_name.clone(),
            commit,
            abbreviated_commit: None,
            prev_commit,
            commit_message: target.opt_str("message")?.map(str::to_string),
            // A push lists no files: they come from Bitbucket's API when a filter wants them.
            changed_files: None,
            pull_request: None,
        });
    }
    Ok(Received::Events(events))
}

fn pull_request(root: &Node, delivery: String, kind: EventKind) -> Result<Received, WebhookError> {
    let repository = full_name(&root.need("repository", "the repository")?)?;
    let (actor_id, actor_name) = actor(root)?;
    let pr = root.need("pullrequest", "the pull request")?;
    let number = fields::number(&pr.need("id", "the pull request's id")?)?;
    let source = pr.need("source", "the pull request's source")?;
    let destination = pr.need("destination", "the pull request's destination")?;
    let branch = |side: &Node| -> Result<String, WebhookError> {
        fields::named_ref(
            &side
                .need("branch", "the branch")?
                .need("name", "a branch name")?,
            RefKind::Branch,
        )
    };
    let side_repo = |side: &Node| -> Result<Option<String>, WebhookError> {
        side.get("repository")?.map(|r| full_name(&r)).transpose()
    };
    // A source in another repository is a fork's.
    let from_fork = side_repo(&source)?.is_some_and(|r| r != repository);
    // Bitbucket abbreviates the head commit's hash here; the full id is asked of its API.
    let hash_node = source
        .need("commit", "the head commit")?
        .need("hash", "the commit's hash")?;
    let hash = hash_node.as_str()?;
    let (commit, abbreviated_commit) = match CommitId::parse(hash) {
        Ok(id) => (Some(id), None),
        Err(_) if hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (None, Some(hash.to_string()))
        }
        Err(err) => return Err(hash_node.invalid(err.to_string()).into()),
    };
    Ok(Received::Events(vec![HostEvent {
        host: Host::Bitbucket,
        delivery,
        repository,
        kind,
        head_ref: branch(&source)?,
        base_ref: Some(branch(&destination)?),
        actor_account_id: actor_id,
        actor_name,
        commit,
        abbreviated_commit,
        prev_commit: None,
        commit_message: None,
        changed_files: None,
        pull_request: Some(PullRequest { number, from_fork }),
    }]))
}

/// `workspace/repo`.
fn full_name(repo: &Node) -> Result<String, WebhookError> {
    fields::repository_path(&repo.need("full_name", "`workspace/repo`")?, false)
}
