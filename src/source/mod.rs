//! Where a build's source comes from. The port is [`Source`]: resolve what a push names (a
//! branch, a tag, a commit) to one commit, then write that commit's files into a directory.
//! `codecommit` reads a CodeCommit repository through its API; for `pushbuild run` the source is
//! a directory on disk, and `local` reads what git knows of it, for the `CODEBUILD_*` variables.

#[cfg(feature = "server")]
mod clone;
#[cfg(feature = "aws")]
mod codecommit;
mod git;
#[cfg(feature = "server")]
mod hosted;
pub mod local;
#[cfg(feature = "server")]
mod retrying;
mod spares;
#[cfg(feature = "aws")]
mod unpacked;

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::names::{CommitId, Repo, SourceVersion};

#[cfg(feature = "aws")]
pub use codecommit::{CodeCommitSource, GitEndpoint};
pub use git::GitDirSource;
#[cfg(feature = "server")]
pub use hosted::{GitHost, HostedSource};
pub use spares::Spares;
#[cfg(feature = "aws")]
pub use unpacked::{Unpacked, discard_unpacked, unpack};

/// The largest blob CodeCommit's `GetBlob` serves (6 MB); a bigger file cannot be fetched.
pub const BLOB_LIMIT_BYTES: u64 = 6 * 1024 * 1024;

/// The commit a version resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCommit {
    pub commit_id: CommitId,
    /// The commit message, as stored.
    pub message: String,
    /// The full ref name that was asked (`refs/heads/main`, `refs/tags/v1`), `None` for a commit id.
    pub reference: Option<String>,
}

/// What a fetch wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSummary {
    /// Entries written: regular files and symbolic links.
    pub files: usize,
    /// Bytes of the regular files written.
    pub bytes: u64,
    /// Things a user should know that are not errors (a submodule that was not fetched).
    pub notes: Vec<String>,
    /// How long each of its stages took (`fetch`, `checkout`), when they were timed.
    pub stages: Vec<(&'static str, std::time::Duration)>,
}

impl FetchSummary {
    /// The stages' times in a line, `fetch 120 ms, checkout 280 ms` (empty when untimed).
    pub fn stage_line(&self) -> String {
        self.stages
            .iter()
            .map(|(stage, took)| format!("{stage} {} ms", took.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a source could not be resolved or fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("repository `{repository}` does not exist (or this role cannot see it)")]
    RepositoryNotFound { repository: String },
    #[error(
        "no access to `{repository}`: the host refused the token, or none is configured for a \
         private repository"
    )]
    AccessDenied { repository: String },
    #[error("branch `{branch}` does not exist in repository `{repository}`")]
    BranchNotFound { repository: String, branch: String },
    #[error("commit `{commit}` does not exist in repository `{repository}`")]
    CommitNotFound { repository: String, commit: String },
    #[error("cannot resolve source version `{version}`: {reason}")]
    InvalidVersion {
        version: String,
        reason: &'static str,
    },
    #[error(
        "`{path}` is larger than CodeCommit's {} MB limit for one file, so it cannot be fetched",
        limit_bytes / (1024 * 1024)
    )]
    FileTooLarge { path: String, limit_bytes: u64 },
    #[error("{} failed: {message}", api_name(operation))]
    Api {
        operation: &'static str,
        message: String,
    },
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the CodePipeline job `{job}`'s input artifact is not unpacked here (a job is built in \
         the invocation that received it)"
    )]
    ArtifactGone { job: String },
    #[error("the input artifact is not a zip pushbuild can read: {problem}")]
    Archive { problem: String },
    #[error("refusing unsafe path `{path}`: it would reach outside the source directory")]
    UnsafePath { path: String },
    #[error("the source's work stopped unexpectedly: {source}")]
    Task {
        #[source]
        source: tokio::task::JoinError,
    },
}

/// A repository host that pushbuild can build from.
///
/// The methods return `Send` futures so a caller can be generic over the source and still spawn.
pub trait Source: Send + Sync {
    /// Resolves `version` in `repo` to a commit.
    fn resolve(
        &self,
        repo: &Repo,
        version: &SourceVersion,
    ) -> impl Future<Output = Result<ResolvedCommit, SourceError>> + Send;

    /// Writes the files of `commit` under `dest` (created when missing; meant to be empty).
    fn fetch(
        &self,
        repo: &Repo,
        commit: &CommitId,
        dest: &Path,
    ) -> impl Future<Output = Result<FetchSummary, SourceError>> + Send;

    /// Where `repo` is cloned from, for `CODEBUILD_SOURCE_REPO_URL`; `region` is the event's,
    /// when it names one.
    fn clone_url(&self, repo: &Repo, region: Option<&str>) -> Option<String>;
}

/// Two sources behind one port: CodeCommit repositories go to `plain` (CodeCommit, or local git
/// repositories), repositories on a git host to `hosted`.
#[derive(Debug, Clone)]
pub struct Routed<P, H> {
    pub plain: P,
    pub hosted: H,
}

impl<P: Source, H: Source> Source for Routed<P, H> {
    async fn resolve(
        &self,
        repo: &Repo,
        version: &SourceVersion,
    ) -> Result<ResolvedCommit, SourceError> {
        match repo {
            Repo::CodeCommit(_) => self.plain.resolve(repo, version).await,
            Repo::Hosted { .. } => self.hosted.resolve(repo, version).await,
            Repo::Artifact(job) => Err(SourceError::ArtifactGone {
                job: job.to_string(),
            }),
        }
    }

    async fn fetch(
        &self,
        repo: &Repo,
        commit: &CommitId,
        dest: &Path,
    ) -> Result<FetchSummary, SourceError> {
        match repo {
            Repo::CodeCommit(_) => self.plain.fetch(repo, commit, dest).await,
            Repo::Hosted { .. } => self.hosted.fetch(repo, commit, dest).await,
            Repo::Artifact(job) => Err(SourceError::ArtifactGone {
                job: job.to_string(),
            }),
        }
    }

    fn clone_url(&self, repo: &Repo, region: Option<&str>) -> Option<String> {
        match repo {
            Repo::CodeCommit(_) => self.plain.clone_url(repo, region),
            Repo::Hosted { .. } => self.hosted.clone_url(repo, region),
            Repo::Artifact(_) => None,
        }
    }
}

/// An operation as a message names it: git's as they are (`git fetch`), CodeCommit's API calls
/// with the service (`CodeCommit GetBlob`).
fn api_name(operation: &str) -> String {
    if operation.starts_with("git ") {
        operation.to_string()
    } else {
        format!("CodeCommit {operation}")
    }
}

impl SourceError {
    /// Whether the error is the build's input's to fix (a missing branch, a file too large): the
    /// build is recorded as FAILED. The others (a host that does not answer, a full disk) are
    /// pushbuild's own, worth a retry.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            SourceError::Api { .. } | SourceError::Io { .. } | SourceError::Task { .. }
        )
    }

    /// An error for a version this host cannot build.
    pub(crate) fn unsupported(version: &SourceVersion, reason: &'static str) -> SourceError {
        SourceError::InvalidVersion {
            version: version.to_string(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_too_large_names_the_file_and_the_limit() {
        let err = SourceError::FileTooLarge {
            path: "assets/big.bin".into(),
            limit_bytes: BLOB_LIMIT_BYTES,
        };
        let text = err.to_string();
        assert!(text.contains("`assets/big.bin`"), "{text}");
        assert!(text.contains("6 MB"), "{text}");
    }

    #[test]
    fn only_unreachable_hosts_are_worth_a_retry() {
        let api = SourceError::Api {
            operation: "GetBlob",
            message: "503".into(),
        };
        assert!(!api.is_user_error());
        let big = SourceError::FileTooLarge {
            path: "a".into(),
            limit_bytes: 1,
        };
        assert!(big.is_user_error());
    }
}
