//! What a webhook adds to a build target: which host and event it came from, and CodeBuild's
//! webhook variables (`CODEBUILD_WEBHOOK_EVENT`, `…_HEAD_REF`, …). The webhooks themselves are
//! read by `crate::webhook`; this is the part every later step sees.

use serde::{Deserialize, Serialize};

use crate::names::Host;

/// What happened, in CodeBuild's webhook event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    Push,
    PullRequestCreated,
    PullRequestUpdated,
    PullRequestReopened,
    PullRequestMerged,
    PullRequestClosed,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Push,
        EventKind::PullRequestCreated,
        EventKind::PullRequestUpdated,
        EventKind::PullRequestReopened,
        EventKind::PullRequestMerged,
        EventKind::PullRequestClosed,
    ];

    /// `PUSH`, `PULL_REQUEST_CREATED`, …: `CODEBUILD_WEBHOOK_EVENT` and the `EVENT` filter's
    /// names.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "PUSH",
            EventKind::PullRequestCreated => "PULL_REQUEST_CREATED",
            EventKind::PullRequestUpdated => "PULL_REQUEST_UPDATED",
            EventKind::PullRequestReopened => "PULL_REQUEST_REOPENED",
            EventKind::PullRequestMerged => "PULL_REQUEST_MERGED",
            EventKind::PullRequestClosed => "PULL_REQUEST_CLOSED",
        }
    }
}

/// A build's webhook: where it came from and what its variables say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookInfo {
    pub host: Host,
    pub event: EventKind,
    /// The repository's path on the host (`owner/repo`), for reporting back to it.
    pub repository: String,
    /// `CODEBUILD_WEBHOOK_HEAD_REF`.
    pub head_ref: String,
    /// `CODEBUILD_WEBHOOK_BASE_REF` (pull requests).
    pub base_ref: Option<String>,
    /// `CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID`.
    pub actor_account_id: Option<String>,
    /// `CODEBUILD_WEBHOOK_PREV_COMMIT` (pushes).
    pub prev_commit: Option<String>,
}
