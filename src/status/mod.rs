//! The result back on the commit: a commit status (`pending` when the build starts, then
//! `success`, `failure` or `error`) sent to the host the webhook came from. Reporting never fails
//! or delays a build: an API that is down or slow is tried a few times, then the failure is
//! logged and the build's own result stands.
//!
//! The port is [`HostApi`] (the host's REST API: statuses, the files a change touches, a full
//! commit id); the adapters are `github.rs`, `gitlab.rs` and `bitbucket.rs`, over one HTTP
//! client (`client.rs`).

#[cfg(feature = "server")]
mod bitbucket;
#[cfg(feature = "server")]
mod client;
pub mod events;
#[cfg(feature = "server")]
mod github;
#[cfg(feature = "server")]
mod gitlab;
pub mod notify;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

#[cfg(feature = "server")]
pub use bitbucket::BitbucketApi;
#[cfg(feature = "server")]
pub use github::GitHubApi;
#[cfg(feature = "server")]
pub use gitlab::GitLabApi;

use serde::{Deserialize, Serialize};

use crate::names::CommitId;
use crate::state::BuildState;
use crate::trigger::Host;

/// Where a build's commit status goes: the host and repository, the commit, the status's
/// context and link. Kept with a build handed to CodeBuild, whose result comes back later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusTarget {
    pub host: Host,
    pub repository: String,
    pub commit: CommitId,
    pub context: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
}

/// A commit status's state (each host's adapter names it its host's way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Success,
    Failure,
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Success => "success",
            State::Failure => "failure",
            State::Error => "error",
        }
    }

    /// The commit's state for a build in `state`: SUCCEEDED is a success, FAILED and TIMED_OUT
    /// a failure, a build that was asked for but not run (or stopped) an error, and one queued or running
    /// (here, or handed to CodeBuild) still pending. Each host's own words are made from this
    /// one state, in its adapter.
    pub fn of(state: BuildState) -> State {
        match state {
            BuildState::Succeeded => State::Success,
            BuildState::Failed | BuildState::TimedOut => State::Failure,
            BuildState::Skipped | BuildState::Stopped => State::Error,
            BuildState::Queued | BuildState::InProgress => State::Pending,
        }
    }
}

/// One commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub state: State,
    pub context: String,
    pub target_url: Option<String>,
    /// At most 140 characters (GitHub's limit).
    pub description: String,
}

impl CommitStatus {
    pub fn new(
        state: State,
        context: String,
        target_url: Option<String>,
        description: &str,
    ) -> CommitStatus {
        CommitStatus {
            state,
            context,
            target_url,
            description: truncate(description, 140),
        }
    }
}

/// Why a call to a host's API failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{operation}: the host answered {status}: {body}")]
    Refused {
        operation: &'static str,
        status: u16,
        body: String,
    },
    #[error("{operation}: {message}")]
    Unreachable {
        operation: &'static str,
        message: String,
    },
    #[error("{operation}: the answer is not what the API documents: {message}")]
    Malformed {
        operation: &'static str,
        message: String,
    },
}

impl ApiError {
    /// Whether trying again can help (the host is down, slow, or throttling).
    pub fn retryable(&self) -> bool {
        match self {
            ApiError::Refused { status, .. } => *status == 429 || *status >= 500,
            ApiError::Unreachable { .. } => true,
            ApiError::Malformed { .. } => false,
        }
    }
}

/// A boxed future, so [`HostApi`] can be used as a trait object.
pub type ApiFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// A change whose files a filter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// A pull (merge) request, by its number on the host.
    PullRequest(u64),
    /// A push, from `before` (when the reference existed) to `after`.
    Push {
        before: Option<&'a str>,
        after: &'a CommitId,
    },
}

/// A host's REST API, as pushbuild uses it.
pub trait HostApi: Send + Sync {
    /// Sets a status on `commit` of `repository` (`owner/repo`, `group/project`).
    fn post_status<'a>(
        &'a self,
        repository: &'a str,
        commit: &'a CommitId,
        status: &'a CommitStatus,
    ) -> ApiFuture<'a, ()>;

    /// The paths `change` touches (every page).
    fn changed_files<'a>(
        &'a self,
        repository: &'a str,
        change: Change<'a>,
    ) -> ApiFuture<'a, Vec<String>>;

    /// The full id of a commit a payload abbreviates.
    fn full_commit_id<'a>(
        &'a self,
        repository: &'a str,
        abbreviated: &'a str,
    ) -> ApiFuture<'a, CommitId>;
}

/// How many times a status is tried, and the pause before the first retry (doubling after).
pub const ATTEMPTS: u32 = 4;
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Sends `status`, retrying what can be retried; a status that still fails is logged, never
/// returned: a build's result does not depend on its report.
pub async fn report(api: &dyn HostApi, repository: &str, commit: &CommitId, status: &CommitStatus) {
    let mut pause = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match api.post_status(repository, commit, status).await {
            Ok(()) => return,
            Err(err) if err.retryable() && attempt < ATTEMPTS => {
                tracing::info!(repository, %commit, attempt, error = %err, "commit status not sent; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(err) => {
                tracing::warn!(repository, %commit, state = status.state.as_str(), error = %err, "commit status not sent");
                return;
            }
        }
    }
}

/// Expands `$NAME` and `${NAME}` in a status template from `vars`; an unknown name expands to
/// nothing, as a shell's would.
pub fn expand(template: &str, vars: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                out.push_str(lookup(&braced[..end]));
                rest = &braced[end + 1..];
                continue;
            }
        }
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len == 0 {
            out.push('$');
        } else {
            out.push_str(lookup(&after[..len]));
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_from_the_builds_variables() {
        let vars = vec![
            ("CODEBUILD_BUILD_ID".to_string(), "web:b1".to_string()),
            ("STAGE".to_string(), "prod".to_string()),
        ];
        assert_eq!(expand("pushbuild/$STAGE", &vars), "pushbuild/prod");
        assert_eq!(
            expand("https://ci.example.com/${CODEBUILD_BUILD_ID}/log", &vars),
            "https://ci.example.com/web:b1/log"
        );
        assert_eq!(expand("a $MISSING b", &vars), "a  b");
        assert_eq!(expand("cost $ 5 ${open", &vars), "cost $ 5 ${open");
        assert_eq!(expand("plain", &vars), "plain");
    }

    #[test]
    fn descriptions_fit_githubs_limit_and_states_follow_the_outcome() {
        let long = "x".repeat(200);
        let status = CommitStatus::new(State::Failure, "ctx".into(), None, &long);
        assert_eq!(status.description.chars().count(), 140);
        assert!(status.description.ends_with('…'));
        assert_eq!(State::of(BuildState::Succeeded), State::Success);
        assert_eq!(State::of(BuildState::TimedOut), State::Failure);
        assert_eq!(State::of(BuildState::Skipped), State::Error);
        assert_eq!(State::of(BuildState::Stopped), State::Error);
    }
}
