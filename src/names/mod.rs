//! Names with rules, and a build's identity: a project's name, a repository's name, where a
//! build's source lives (`repo.rs`), a build's id (`build.rs`), a commit id, a source version and
//! git's reference names (`version.rs`), a variable name and a `NAME=VALUE` assignment.
//! Each rule is written once, here, as a type with one `parse` (or one predicate); the trigger,
//! the source, the settings, the index and the command line all go through it, and a value of
//! the type is valid wherever it travels.
//!
//! Commit ids are 40 hexadecimal digits (SHA-1, CodeCommit's and most git hosts') or 64
//! (git's SHA-256 repositories), accepted alike everywhere.

mod build;
mod repo;
mod version;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use build::BuildId;
pub use repo::{Host, Repo};
pub use version::{
    CommitId, RefKind, SourceVersion, full_ref, pull_request_ref, ref_name_problem, short_ref,
    split_ref,
};

/// Why a text is not a name of its kind. Messages say what was expected and show what was
/// found; callers add where it was found (a field's path, a setting, a flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "expected a repository name of 1 to 100 letters, digits, `.`, `_` or `-`, found {found:?}"
    )]
    Repository { found: String },
    #[error(
        "expected a project name: a repository name, or `<host>[:<port>]/<owner>/<repository>` \
         of letters, digits, `.`, `_` and `-` (with more `/` parts for nested groups), found \
         {found:?}"
    )]
    Project { found: String },
    #[error(
        "expected a repository's path on its host, `<owner>/<repository>` (more `/` parts for \
         nested groups) of letters, digits, `.`, `_` and `-`, found {found:?}"
    )]
    HostedPath { found: String },
    #[error(
        "expected a build id of 1 to 64 letters, digits, `.`, `_` or `-` (such as \
         `20261122T231000Z-3f9c1a2b`), found {found:?}"
    )]
    BuildId { found: String },
    #[error(
        "expected a commit id of 40 hexadecimal digits (64 in a SHA-256 repository), found {found:?}"
    )]
    Commit { found: String },
    #[error("expected a branch, a `refs/...` name or a commit id, but {problem}")]
    Version {
        found: String,
        problem: &'static str,
    },
    #[error(
        "expected a variable name of letters, digits and `_` not starting with a digit, found {found:?}"
    )]
    Variable { found: String },
    #[error("expected NAME=VALUE, found {found:?}")]
    Assignment { found: String },
}

/// A repository's (or a local project's) name: 1 to 100 ASCII letters, digits, `.`, `_` or
/// `-`, and neither `.` nor `..` (CodeCommit's rule; the name becomes part of object keys and
/// paths, so nothing else may pass).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepositoryName(String);

impl RepositoryName {
    pub fn parse(text: &str) -> Result<RepositoryName, NameError> {
        if !key_safe(text, 100) {
            return Err(NameError::Repository {
                found: text.to_string(),
            });
        }
        Ok(RepositoryName(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name a project has in the store, the ledger, the index and the metrics: a CodeCommit
/// repository's (or a local project's) name, `pushbuild-demo`, or a hosted repository's host
/// and path, `github.com/owner/repo` (GitLab's nested groups give more parts). The host keeps
/// its port when its URL has one (`git.example.com:8443/team/app`), so builds of different
/// hosts never share a project, and the name reads as the repository's web address does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(text: &str) -> Result<ProjectName, NameError> {
        let bad = || NameError::Project {
            found: text.to_string(),
        };
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() == 1 {
            return RepositoryName::parse(text)
                .map(ProjectName::from)
                .map_err(|_| bad());
        }
        let (host, path) = (parts[0], &parts[1..]);
        if parts.len() < 3
            || text.len() > 255
            || !host_ok(host)
            || !path.iter().all(|p| RepositoryName::parse(p).is_ok())
        {
            return Err(bad());
        }
        Ok(ProjectName(text.to_string()))
    }

    /// A hosted repository's project: `<host>/<path>`, `host` being the host's name with its
    /// port if its URL has one, `path` being `owner/repo` (or `group/subgroup/project`).
    pub fn hosted(host: &str, path: &str) -> Result<ProjectName, NameError> {
        ProjectName::parse(&format!("{host}/{path}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The CodeCommit (or local) repository this project is, when it is one.
    pub fn repository(&self) -> Option<RepositoryName> {
        RepositoryName::parse(&self.0).ok()
    }

    /// The host (with its port, if any) and the repository's path on it, when the project is a
    /// hosted repository.
    pub fn host_and_path(&self) -> Option<(&str, &str)> {
        self.0.split_once('/')
    }
}

/// Whether `text` is safe as one part of an object key or a path: 1 to `max` ASCII letters,
/// digits, `.`, `_` or `-`, and neither `.` nor `..`.
fn key_safe(text: &str, max: usize) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    !text.is_empty()
        && text.len() <= max
        && text.chars().all(allowed)
        && text != "."
        && text != ".."
}

/// A host's part of a project name: a name of letters, digits, `.`, `_` and `-`, then
/// `:<port>` when its URL names one.
fn host_ok(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && !p.starts_with('0') && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    RepositoryName::parse(name).is_ok() && port_ok
}

impl From<RepositoryName> for ProjectName {
    fn from(name: RepositoryName) -> ProjectName {
        ProjectName(name.0)
    }
}

/// `NAME=VALUE`: a variable's name (checked) and its value (anything, `=` included). The error
/// shows the name, never a value.
pub fn variable_assignment(text: &str) -> Result<(String, String), NameError> {
    let (name, value) = text.split_once('=').ok_or_else(|| NameError::Assignment {
        // Without `=` the text has no value to hide, but may be one mistyped: show its start.
        found: text.chars().take(40).collect(),
    })?;
    Ok((variable_name(name.trim())?.to_string(), value.to_string()))
}

/// Whether `name` can name a shell variable: a letter or `_`, then letters, digits or `_`.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a variable name; the error shows the name (never a value).
pub fn variable_name(name: &str) -> Result<&str, NameError> {
    if is_variable_name(name) {
        Ok(name)
    } else {
        Err(NameError::Variable {
            found: name.to_string(),
        })
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! text_conversions {
    ($($name:ident),*) => {$(
        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(text: String) -> Result<Self, NameError> {
                $name::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.to_string()
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(text: &str) -> Result<Self, NameError> {
                $name::parse(text)
            }
        }
    )*};
}

text_conversions!(
    RepositoryName,
    ProjectName,
    CommitId,
    SourceVersion,
    BuildId
);

impl AsRef<str> for RepositoryName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ProjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests;
