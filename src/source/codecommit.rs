//! The CodeCommit adapter of [`Source`]: `GetBranch` and `GetCommit` resolve a version. The
//! commit is fetched over CodeCommit's git endpoint when one is set ([`GitEndpoint`]: one
//! shallow pack, signed with the function's credentials); when that fails, or with no endpoint,
//! `GetFolder` walks the commit's tree from `/` and `GetBlob` reads each file, with a bounded
//! number of calls in flight. Throttling and 5xx answers are retried by the SDK client.

mod git;
mod limit;
mod walk;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_codecommit::Client;
use aws_sdk_codecommit::config::retry::RetryConfig;
use aws_sdk_codecommit::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{BLOB_LIMIT_BYTES, FetchSummary, ResolvedCommit, Source, SourceError, Spares};
use crate::names::{CommitId, Repo, RepositoryName, SourceVersion};

/// Reads source from CodeCommit.
#[derive(Debug, Clone)]
pub struct CodeCommitSource {
    client: Client,
    concurrency: usize,
    git: Option<GitEndpoint>,
    /// Emptied files the git endpoint's checkouts write into.
    spares: Option<Arc<Spares>>,
}

pub use git::GitEndpoint;

impl CodeCommitSource {
    /// Calls in flight when no other number is set: enough to hide CodeCommit's per-call
    /// latency without running into its request-rate quota.
    pub const DEFAULT_CONCURRENCY: usize = 32;

    /// Wraps a client as it is (give it [`CodeCommitSource::retry_config`] to retry as
    /// `from_conf` does). At most `concurrency` calls are in flight during a fetch (at least 1).
    pub fn new(client: Client, concurrency: usize) -> Self {
        Self {
            client,
            concurrency: concurrency.max(1),
            git: None,
            spares: None,
        }
    }

    /// Checkouts from the git endpoint write into `spares` while there are any.
    pub fn with_spares(mut self, spares: Option<Arc<Spares>>) -> Self {
        self.spares = spares;
        self
    }

    /// Fetches over `endpoint` first (the API walk when it fails).
    pub fn with_git(mut self, endpoint: GitEndpoint) -> Self {
        self.git = Some(endpoint);
        self
    }

    /// Builds the client from the shared SDK configuration (region, credentials and the
    /// `AWS_ENDPOINT_URL_CODECOMMIT` endpoint as the SDK reads them), with [`Self::retry_config`].
    pub fn from_conf(sdk_config: &aws_config::SdkConfig, concurrency: usize) -> Self {
        let conf = aws_sdk_codecommit::config::Builder::from(sdk_config)
            .retry_config(Self::retry_config())
            .interceptor(crate::store::retries::LogRetries {
                service: "CodeCommit",
            })
            .build();
        Self::new(Client::from_conf(conf), concurrency)
    }

    /// Standard retry mode, 6 attempts with exponential backoff: throttling, 5xx answers and
    /// dropped connections are tried again.
    pub fn retry_config() -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(6)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(5))
    }

    /// The most calls this source has in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// One shallow clone of `commit` from the git endpoint; why not, as text, when it fails.
    async fn fetch_over_git(
        &self,
        endpoint: &GitEndpoint,
        repository: &str,
        commit: &CommitId,
        dest: &Path,
    ) -> Result<FetchSummary, String> {
        let (url, credentials) = endpoint.login(repository).await?;
        let (commit, dest, spares) = (commit.clone(), dest.to_path_buf(), self.spares.clone());
        tokio::task::spawn_blocking(move || {
            crate::source::clone::clone_commit(url, Some(credentials), &commit, &dest, 1, spares)
        })
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())
    }

    async fn commit(
        &self,
        repository: &str,
        commit_id: &str,
    ) -> Result<(CommitId, String), SourceError> {
        let out = self
            .client
            .get_commit()
            .repository_name(repository)
            .commit_id(commit_id)
            .send()
            .await
            .map_err(|e| api_error("GetCommit", e, repository, Subject::Commit(commit_id)))?;
        let commit = out.commit().ok_or_else(|| missing("GetCommit", "commit"))?;
        let id = commit.commit_id().unwrap_or(commit_id);
        let id = CommitId::parse(id).map_err(|err| SourceError::Api {
            operation: "GetCommit",
            message: format!("commit.commitId: {err}"),
        })?;
        Ok((id, commit.message().unwrap_or_default().to_string()))
    }

    async fn branch_head(&self, repository: &str, branch: &str) -> Result<String, SourceError> {
        let out = self
            .client
            .get_branch()
            .repository_name(repository)
            .branch_name(branch)
            .send()
            .await
            .map_err(|e| api_error("GetBranch", e, repository, Subject::Branch(branch)))?;
        out.branch()
            .and_then(|b| b.commit_id())
            .map(str::to_string)
            .ok_or_else(|| missing("GetBranch", "branch.commitId"))
    }
}

impl Source for CodeCommitSource {
    async fn resolve(
        &self,
        repo: &Repo,
        version: &SourceVersion,
    ) -> Result<ResolvedCommit, SourceError> {
        let repository = codecommit_name(repo)?;
        let repository = repository.as_str();
        let (commit_id, reference) = match version {
            SourceVersion::Branch { name: branch, .. } => (
                self.branch_head(repository, branch).await?,
                version.reference(),
            ),
            // A tag whose name is its commit id needs no tag API.
            SourceVersion::Tag(tag) if CommitId::parse(tag).is_ok() => {
                (tag.clone(), version.reference())
            }
            SourceVersion::Tag(_) => {
                return Err(SourceError::unsupported(
                    version,
                    "CodeCommit has no API to read tags; build a tag by its commit id \
                     (a push event carries it)",
                ));
            }
            SourceVersion::Commit(id) => (id.to_string(), None),
            SourceVersion::PullRequest(_) => {
                return Err(SourceError::unsupported(
                    version,
                    "CodeCommit pull requests are built by their source branch",
                ));
            }
        };
        let (commit_id, message) = self.commit(repository, &commit_id).await?;
        Ok(ResolvedCommit {
            commit_id,
            message,
            reference,
        })
    }

    async fn fetch(
        &self,
        repo: &Repo,
        commit: &CommitId,
        dest: &Path,
    ) -> Result<FetchSummary, SourceError> {
        let name = codecommit_name(repo)?;
        let mut fallback = None;
        if let Some(endpoint) = &self.git {
            match self
                .fetch_over_git(endpoint, name.as_str(), commit, dest)
                .await
            {
                Ok(mut summary) => {
                    summary.notes.insert(
                        0,
                        "Fetched over CodeCommit's git endpoint (one pack)".into(),
                    );
                    return Ok(summary);
                }
                Err(reason) => {
                    tracing::warn!(repository = %name, %reason, "the git fetch failed; walking the tree through the API");
                    // What the failed clone left goes, so the walk starts from nothing.
                    let _ = std::fs::remove_dir_all(dest);
                    std::fs::create_dir_all(dest).map_err(|source| SourceError::Io {
                        path: dest.to_path_buf(),
                        source,
                    })?;
                    fallback = Some(reason);
                }
            }
        }
        let mut summary = walk::fetch(
            &self.client,
            name.as_str(),
            commit.as_str(),
            dest,
            self.concurrency,
        )
        .await?;
        // With a git endpoint, the log says which way the source came.
        if let Some(reason) = fallback {
            summary.notes.insert(
                0,
                format!(
                    "Fetched through CodeCommit's API (GetFolder, GetBlob): the git endpoint failed: {reason}"
                ),
            );
        }
        Ok(summary)
    }

    /// CodeCommit's HTTPS clone URL, in the event's region or else the client's.
    fn clone_url(&self, repo: &Repo, region: Option<&str>) -> Option<String> {
        let repository = codecommit_name(repo).ok()?;
        let configured = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string());
        let region = region.map(str::to_string).or(configured)?;
        Some(format!(
            "https://git-codecommit.{region}.amazonaws.com/v1/repos/{repository}"
        ))
    }
}

/// The CodeCommit repository's name; a repository on a git host is none of CodeCommit's.
fn codecommit_name(repo: &Repo) -> Result<&RepositoryName, SourceError> {
    match repo {
        Repo::CodeCommit(name) => Ok(name),
        Repo::Hosted { .. } | Repo::Artifact(_) => Err(SourceError::RepositoryNotFound {
            repository: repo.path().to_string(),
        }),
    }
}

/// What a failed call was about, to name it in the error.
pub(super) enum Subject<'a> {
    Branch(&'a str),
    Commit(&'a str),
    File(&'a str),
}

pub(super) fn api_error<E, R>(
    operation: &'static str,
    err: SdkError<E, R>,
    repository: &str,
    subject: Subject<'_>,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let repository = repository.to_string();
    match (err.code(), subject) {
        (Some("RepositoryDoesNotExistException"), _) => {
            SourceError::RepositoryNotFound { repository }
        }
        (Some("BranchDoesNotExistException"), Subject::Branch(branch)) => {
            SourceError::BranchNotFound {
                repository,
                branch: branch.to_string(),
            }
        }
        (
            Some(
                "CommitIdDoesNotExistException"
                | "CommitDoesNotExistException"
                | "InvalidCommitIdException",
            ),
            Subject::Commit(commit),
        ) => SourceError::CommitNotFound {
            repository,
            commit: commit.to_string(),
        },
        (Some("FileTooLargeException"), Subject::File(path)) => SourceError::FileTooLarge {
            path: path.to_string(),
            limit_bytes: BLOB_LIMIT_BYTES,
        },
        (Some(code), _) => SourceError::Api {
            operation,
            message: format!("{code}: {}", err.message().unwrap_or("no message")),
        },
        (None, _) => SourceError::Api {
            operation,
            message: DisplayErrorContext(&err).to_string(),
        },
    }
}

fn missing(operation: &'static str, field: &str) -> SourceError {
    SourceError::Api {
        operation,
        message: format!("the answer has no `{field}`"),
    }
}
