//! Where a build's source lives: a CodeCommit repository, or a repository on a git host
//! (GitHub, GitLab, Bitbucket) with its path there. A build carries it from the event that asked
//! for it to the source that fetches it, so nothing finds the host again from the project's name.

use serde::{Deserialize, Serialize};

use super::{NameError, RepositoryName};

/// A repository host that sends webhooks, serves git over HTTPS and takes commit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Host {
    GitHub,
    GitLab,
    Bitbucket,
}

impl Host {
    pub const ALL: [Host; 3] = [Host::GitHub, Host::GitLab, Host::Bitbucket];

    /// The host's name in routes, initiators and settings (`github`).
    pub fn as_str(self) -> &'static str {
        match self {
            Host::GitHub => "github",
            Host::GitLab => "gitlab",
            Host::Bitbucket => "bitbucket",
        }
    }

    /// The user name that goes with an access token when git fetches over HTTPS.
    pub fn token_user(self) -> &'static str {
        match self {
            Host::GitHub => "x-access-token",
            Host::GitLab => "oauth2",
            Host::Bitbucket => "x-token-auth",
        }
    }
}

/// Where a build's source lives. As JSON: `{"codeCommit": "web"}`,
/// `{"hosted": {"host": "gitlab", "path": "team/app"}}` or `{"artifact": "<job id>"}`; a path
/// read back is checked again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RepoWire")]
pub enum Repo {
    /// A CodeCommit repository (for `pushbuild invoke`, a local git repository of that name).
    CodeCommit(RepositoryName),
    /// A repository on a git host: which host, and the repository's path there (`owner/repo`,
    /// `group/subgroup/project`).
    Hosted { host: Host, path: String },
    /// A CodePipeline job's input artifact, unpacked in the work directory before its build,
    /// named by the job.
    Artifact(RepositoryName),
}

impl Repo {
    /// A repository on `host` at `path`, whose parts follow the rule of repository names.
    pub fn hosted(host: Host, path: &str) -> Result<Repo, NameError> {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() < 2 || !parts.iter().all(|p| RepositoryName::parse(p).is_ok()) {
            return Err(NameError::HostedPath {
                found: path.to_string(),
            });
        }
        Ok(Repo::Hosted {
            host,
            path: path.to_string(),
        })
    }

    /// `owner/repo` on its host, or the CodeCommit repository's name.
    pub fn path(&self) -> &str {
        match self {
            Repo::CodeCommit(name) => name.as_str(),
            Repo::Hosted { path, .. } => path,
            Repo::Artifact(job) => job.as_str(),
        }
    }
}

/// [`Repo`] as it is read, before its path is checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum RepoWire {
    CodeCommit(RepositoryName),
    Hosted {
        host: Host,
        path: String,
    },
    /// A CodePipeline job's input artifact, unpacked in the work directory before its build,
    /// named by the job.
    Artifact(RepositoryName),
}

impl TryFrom<RepoWire> for Repo {
    type Error = NameError;

    fn try_from(wire: RepoWire) -> Result<Repo, NameError> {
        match wire {
            RepoWire::CodeCommit(name) => Ok(Repo::CodeCommit(name)),
            RepoWire::Hosted { host, path } => Repo::hosted(host, &path),
            RepoWire::Artifact(job) => Ok(Repo::Artifact(job)),
        }
    }
}
