//! Webhooks from repository hosts, up to the builds they ask for: check the delivery's
//! signature (before anything reads the body), read the host's payload into one event shape
//! ([`HostEvent`]), then decide with the filter groups and the settings what to build
//! ([`plan`]). Serving them over HTTP and handing the builds off is `crate::http`'s.
//!
//! Hosts: GitHub (`github.rs`), GitLab (`gitlab.rs`), Bitbucket Cloud (`bitbucket.rs`). Each
//! adapter checks its host's authentication and reads its payloads; everything after that is
//! shared.

pub mod bitbucket;
mod event;
mod fields;
mod filter;
pub mod github;
pub mod gitlab;
mod plan;
pub mod signature;

pub use event::{HostEvent, PullRequest};
pub use filter::{FilterError, FilterGroups};
pub use plan::{Plan, plan};

use crate::names::{NameError, ProjectName, Repo};
use crate::secret::Secret;
use crate::trigger::EventError;
pub use crate::trigger::{EventKind, Host};

/// The most a webhook body may hold: a Lambda Function URL takes no more (6 MB).
pub const BODY_LIMIT: usize = 6 * 1024 * 1024;

/// A request's headers, names in lowercase.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Headers from (name, value) pairs; names are compared without case.
    pub fn new<I, N, V>(pairs: I) -> Headers
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: Into<String>,
    {
        Headers(
            pairs
                .into_iter()
                .map(|(name, value)| (name.as_ref().to_ascii_lowercase(), value.into()))
                .collect(),
        )
    }

    /// The first value of `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a verified delivery is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The host checking the hook (`ping`): answered `{"pong": true}`.
    Ping,
    /// An event or action that builds nothing, and why (answered 200: a host disables hooks
    /// that get errors).
    Ignored { reason: String },
    /// Events that may build: one for most deliveries, one per pushed reference for a host
    /// that reports several in one delivery (Bitbucket).
    Events(Vec<HostEvent>),
}

/// Why a webhook request is refused: each maps to one HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// 401: the signature is missing or wrong. Nothing is built or stored.
    #[error("unauthorized: {why}")]
    Unauthorized { why: &'static str },
    /// 401: this route's secret is not configured (pushbuild's log names the setting).
    #[error("unauthorized: the webhook's secret is not configured ({setting})")]
    SecretNotConfigured { setting: &'static str },
    /// 400: the body is not the event it claims to be.
    #[error("{field}: {problem}")]
    BadRequest { field: String, problem: String },
    /// 413: the body is over the limit.
    #[error("the body is over the {limit}-byte limit")]
    TooLarge { limit: usize },
}

impl WebhookError {
    fn bad(field: &str, problem: impl Into<String>) -> WebhookError {
        WebhookError::BadRequest {
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::Unauthorized { .. } | WebhookError::SecretNotConfigured { .. } => 401,
            WebhookError::BadRequest { .. } => 400,
            WebhookError::TooLarge { .. } => 413,
        }
    }
}

impl From<EventError> for WebhookError {
    /// A payload field that is missing or wrong: the error names the field's path.
    fn from(err: EventError) -> WebhookError {
        match err {
            EventError::Missing { path, expected } => WebhookError::BadRequest {
                field: path,
                problem: format!("required, expected {expected}"),
            },
            EventError::WrongType {
                path,
                expected,
                found,
            } => WebhookError::BadRequest {
                field: path,
                problem: format!("expected {expected}, found {found}"),
            },
            EventError::Invalid { path, problem } => WebhookError::BadRequest {
                field: path,
                problem,
            },
            other => WebhookError::bad("the body", other.to_string()),
        }
    }
}

/// One host's webhook settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSettings {
    pub host: Host,
    /// Where repositories are cloned from (`https://github.com`); never taken from a payload.
    pub url: String,
    /// The host's REST API (`https://api.github.com`).
    pub api_url: String,
    /// GitHub's and Bitbucket's webhook secret; GitLab's webhook token (`X-Gitlab-Token`).
    pub webhook_secret: Option<Secret>,
    /// GitLab's signing token (`whsec_…`), for its Standard Webhooks signatures.
    pub signing_secret: Option<Secret>,
    /// For private repositories and for reporting back.
    pub token: Option<Secret>,
    /// `owner/repo` or `owner/*` patterns; empty: any repository the secret signs for.
    pub repositories: Vec<String>,
}

impl HostSettings {
    /// The host's part of its projects' names: its URL's host, with the port when the URL
    /// names one (`github.com`, `git.example.com:8443`), so two hosts on one machine never
    /// share a project.
    pub fn project_host(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        authority.rsplit_once('@').map_or(authority, |(_, h)| h)
    }

    /// The project of the repository at `path` on this host (`<host>/<path>`).
    pub fn project(&self, path: &str) -> Result<ProjectName, NameError> {
        ProjectName::hosted(self.project_host(), path)
    }

    /// Whether `repository` (`owner/repo`, `group/sub/project`) is one this host's builds are
    /// for: `owner/*` takes every repository under `owner/`, nested groups included.
    pub fn allows(&self, repository: &str) -> bool {
        let lower = repository.to_ascii_lowercase();
        self.repositories.is_empty()
            || self.repositories.iter().any(|pattern| {
                let pattern = pattern.to_ascii_lowercase();
                match pattern.strip_suffix("/*") {
                    Some(owner) => lower.starts_with(&format!("{owner}/")),
                    None => pattern == lower,
                }
            })
    }
}

/// How webhooks become builds.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSettings {
    pub filter_groups: FilterGroups,
    /// `PUSHBUILD_FORK_PULL_REQUESTS=build`: pull requests from forks are built (their code
    /// runs with the function's role).
    pub fork_pull_requests: bool,
    pub github: HostSettings,
    pub gitlab: HostSettings,
    pub bitbucket: HostSettings,
}

impl WebhookSettings {
    /// `host`'s settings.
    pub fn host(&self, host: Host) -> &HostSettings {
        match host {
            Host::GitHub => &self.github,
            Host::GitLab => &self.gitlab,
            Host::Bitbucket => &self.bitbucket,
        }
    }

    /// Where the source of a project named by hand lives ("Build now"): a repository name is
    /// CodeCommit's; `<host>/<path>` is on the configured host whose URL gives that `<host>`
    /// (`None`: no host here has it).
    pub fn repo_of(&self, project: &ProjectName) -> Option<Repo> {
        if let Some(name) = project.repository() {
            return Some(Repo::CodeCommit(name));
        }
        let (host, path) = project.host_and_path()?;
        let settings = Host::ALL
            .into_iter()
            .map(|kind| self.host(kind))
            .find(|settings| settings.project_host() == host)?;
        Repo::hosted(settings.host, path).ok()
    }
}

/// Reads a delivery for `host`: the size limit, the signature, then the payload.
pub fn receive(
    host: Host,
    settings: &WebhookSettings,
    headers: &Headers,
    body: &[u8],
) -> Result<Received, WebhookError> {
    if body.len() > BODY_LIMIT {
        return Err(WebhookError::TooLarge { limit: BODY_LIMIT });
    }
    let host_settings = settings.host(host);
    let secret = host_settings.webhook_secret.as_ref();
    match host {
        Host::GitHub => {
            github::verify(headers, body, secret.map(|s| s.expose().as_bytes()))?;
            github::read(headers, body)
        }
        Host::GitLab => {
            gitlab::verify(headers, body, host_settings, chrono::Utc::now().timestamp())?;
            gitlab::read(headers, body)
        }
        Host::Bitbucket => {
            bitbucket::verify(headers, body, secret.map(|s| s.expose().as_bytes()))?;
            bitbucket::read(headers, body)
        }
    }
}

#[cfg(test)]
mod tests;
