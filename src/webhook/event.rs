//! A host's webhook event in one shape for every host: what happened, to which repository and
//! reference, at which commit, by whom. The host adapters (`github.rs`) read their payloads
//! into it; filters and planning read only this.

use crate::names::{CommitId, RefKind, short_ref, split_ref};
pub use crate::trigger::{EventKind, Host};

/// A pull request an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    /// Whether its head lives in another repository (a fork, or a fork since deleted).
    pub from_fork: bool,
}

/// One webhook event, as every host's adapter reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    pub host: Host,
    /// What identifies this delivery across the host's redeliveries (`<hook id>:<delivery>`).
    pub delivery: String,
    /// The repository's path on the host (`owner/repo`).
    pub repository: String,
    pub kind: EventKind,
    /// The pushed reference, or the pull request's head branch (`refs/heads/…`, `refs/tags/…`).
    pub head_ref: String,
    /// A pull request's base branch (`refs/heads/main`).
    pub base_ref: Option<String>,
    /// The host's id of the account that caused the event.
    pub actor_account_id: Option<String>,
    /// Who caused the event, for the build's initiator (`octocat`).
    pub actor_name: Option<String>,
    /// The commit to build: the pushed one, or the pull request's head; `None` when a push
    /// deleted its reference (or when the payload abbreviates it, below).
    pub commit: Option<CommitId>,
    /// The head commit's id as a payload abbreviates it (Bitbucket's pull requests): the full id
    /// is asked of the host's API before the event is planned.
    pub abbreviated_commit: Option<String>,
    /// A push's previous commit (`before`).
    pub prev_commit: Option<String>,
    /// The head commit's message, when the payload carries it.
    pub commit_message: Option<String>,
    /// The files the event changes: a push's commits' (from the payload), a pull request's
    /// (asked of the host when a filter needs them).
    pub changed_files: Option<Vec<String>>,
    pub pull_request: Option<PullRequest>,
}

impl HostEvent {
    /// `branch/<name>`, `tag/<name>` or `pr/<number>`: `CODEBUILD_WEBHOOK_TRIGGER`.
    pub fn trigger(&self) -> String {
        if let Some(pr) = &self.pull_request {
            return format!("pr/{}", pr.number);
        }
        match split_ref(&self.head_ref) {
            Some((RefKind::Tag, tag)) => format!("tag/{tag}"),
            _ => format!("branch/{}", short_ref(&self.head_ref)),
        }
    }
}
