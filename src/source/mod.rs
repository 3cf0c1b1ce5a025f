//! Where a build's source comes from. The port is [`Source`]: resolve what a push names (a
//! branch, a tag, a commit) to one commit, then write that commit's files into a directory.
//! `codecommit` reads a CodeCommit repository through its API; for `pushbuild run` the source is
//! a directory on disk, and `local` reads what git knows of it, for the `CODEBUILD_*` variables.

#[cfg(feature = "aws")]
mod codecommit;
mod git;
pub mod local;

use std::future::Future;
use std::path::{Path, PathBuf};

#[cfg(feature = "aws")]
pub use codecommit::CodeCommitSource;
pub use git::GitDirSource;

/// The largest blob CodeCommit's `GetBlob` serves (6 MB); a bigger file cannot be fetched.
pub const BLOB_LIMIT_BYTES: u64 = 6 * 1024 * 1024;

/// The commit a version resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCommit {
    /// The full 40-hex commit id.
    pub commit_id: String,
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
}

/// Why a source could not be resolved or fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("repository `{repository}` does not exist (or this role cannot see it)")]
    RepositoryNotFound { repository: String },
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
    #[error("CodeCommit {operation} failed: {message}")]
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
    #[error("refusing unsafe path `{path}`: it would reach outside the source directory")]
    UnsafePath { path: String },
}

/// A repository host that pushbuild can build from.
///
/// The methods return `Send` futures so a caller can be generic over the source and still spawn.
pub trait Source: Send + Sync {
    /// Resolves `version` in `repository` to a commit. `version` is a branch name,
    /// `refs/heads/<branch>`, `refs/tags/<tag>` or a 40-hex commit id.
    fn resolve(
        &self,
        repository: &str,
        version: &str,
    ) -> impl Future<Output = Result<ResolvedCommit, SourceError>> + Send;

    /// Writes the files of `commit_id` under `dest` (created when missing; meant to be empty).
    fn fetch(
        &self,
        repository: &str,
        commit_id: &str,
        dest: &Path,
    ) -> impl Future<Output = Result<FetchSummary, SourceError>> + Send;
}

/// What a source version names, before asking the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Version<'a> {
    Branch(&'a str),
    Tag(&'a str),
    Commit(&'a str),
}

impl<'a> Version<'a> {
    /// Reads a version as a push event or a user gives it.
    pub(crate) fn parse(version: &'a str) -> Result<Self, SourceError> {
        let invalid = |reason| SourceError::InvalidVersion {
            version: version.to_string(),
            reason,
        };
        let parsed = if let Some(branch) = version.strip_prefix("refs/heads/") {
            Version::Branch(branch)
        } else if let Some(tag) = version.strip_prefix("refs/tags/") {
            Version::Tag(tag)
        } else if is_commit_id(version) {
            Version::Commit(version)
        } else if version.starts_with("refs/") {
            return Err(invalid(
                "only refs/heads/… and refs/tags/… refs can be built",
            ));
        } else {
            Version::Branch(version)
        };
        match parsed {
            Version::Branch("") | Version::Tag("") => Err(invalid("the name is empty")),
            other => Ok(other),
        }
    }
}

/// Whether `text` is a full commit id (40 hex digits).
pub(crate) fn is_commit_id(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    #[track_caller]
    fn case(input: &str, expected: Option<Version<'_>>) {
        match (Version::parse(input), expected) {
            (Ok(got), Some(want)) => assert_eq!(got, want, "{input}"),
            (Err(SourceError::InvalidVersion { .. }), None) => {}
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn versions_parse_as_branch_tag_or_commit() {
        case("main", Some(Version::Branch("main")));
        case("feature/x", Some(Version::Branch("feature/x")));
        case("refs/heads/main", Some(Version::Branch("main")));
        case("refs/heads/a/b", Some(Version::Branch("a/b")));
        case("refs/tags/v1.0", Some(Version::Tag("v1.0")));
        case(ID, Some(Version::Commit(ID)));
        case(
            &ID.to_uppercase(),
            Some(Version::Commit(&ID.to_uppercase())),
        );
        // 39 digits is a branch name, not a commit id.
        case(&ID[1..], Some(Version::Branch(&ID[1..])));
        case("", None);
        case("refs/heads/", None);
        case("refs/tags/", None);
        case("refs/pull/1/head", None);
    }

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
}
