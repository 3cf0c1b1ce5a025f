//! Names with rules: a project's name, a repository's name, a commit id, a source version and a
//! variable name.
//! Each rule is written once, here, as a type with one `parse` (or one predicate); the trigger,
//! the source, the settings and the command line all go through it, and a value of the type is
//! valid wherever it travels.
//!
//! Commit ids are 40 hexadecimal digits (SHA-1, CodeCommit's and most git hosts') or 64
//! (git's SHA-256 repositories), accepted alike everywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a text is not a name of its kind. Messages say what was expected and show what was
/// found; callers add where it was found (a field's path, a setting, a flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "expected a repository name of 1 to 100 letters, digits, `.`, `_` or `-`, found {found:?}"
    )]
    Repository { found: String },
    #[error(
        "expected a project name: a repository name, or `<host>/<owner>/<repository>` of \
         letters, digits, `.`, `_` and `-` (with more `/` parts for nested groups), found {found:?}"
    )]
    Project { found: String },
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
}

/// A repository's (or a local project's) name: 1 to 100 ASCII letters, digits, `.`, `_` or
/// `-`, and neither `.` nor `..` (CodeCommit's rule; the name becomes part of object keys and
/// paths, so nothing else may pass).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepositoryName(String);

impl RepositoryName {
    pub fn parse(text: &str) -> Result<RepositoryName, NameError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if text.is_empty()
            || text.len() > 100
            || !text.chars().all(allowed)
            || text == "."
            || text == ".."
        {
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

/// The name a project has in the store, the ledger and the metrics: a CodeCommit repository's
/// (or a local project's) name, `pushbuild-demo`, or a hosted repository's host and path,
/// `github.com/owner/repo` (GitLab's nested groups give more parts). Builds of different hosts
/// never share a project, and the name reads as the repository's web address does.
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
        let part_ok = |part: &str| RepositoryName::parse(part).is_ok();
        if parts.len() < 3 || text.len() > 255 || !parts.iter().all(|p| part_ok(p)) {
            return Err(bad());
        }
        Ok(ProjectName(text.to_string()))
    }

    /// A hosted repository's project: `<host>/<path>`, `path` being `owner/repo` (or
    /// `group/subgroup/project`).
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

    /// The host and the repository's path on it, when the project is a hosted repository.
    pub fn host_and_path(&self) -> Option<(&str, &str)> {
        self.0.split_once('/')
    }
}

impl From<RepositoryName> for ProjectName {
    fn from(name: RepositoryName) -> ProjectName {
        ProjectName(name.0)
    }
}

/// A full commit id: 40 or 64 hexadecimal digits, kept as given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitId(String);

impl CommitId {
    pub fn parse(text: &str) -> Result<CommitId, NameError> {
        if matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(CommitId(text.to_string()))
        } else {
            Err(NameError::Commit {
                found: text.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a build asks the source for: a branch, a tag, a commit or a pull request.
///
/// Written as CodeBuild's `sourceVersion` is: a branch name or `refs/heads/<branch>`,
/// `refs/tags/<tag>`, a commit id, or `pr/<number>`. It is shown (and put in
/// `CODEBUILD_SOURCE_VERSION`) as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SourceVersion {
    /// A branch; `full` when it was written `refs/heads/<name>`.
    Branch {
        name: String,
        full: bool,
    },
    Tag(String),
    Commit(CommitId),
    PullRequest(u64),
}

impl SourceVersion {
    pub fn parse(text: &str) -> Result<SourceVersion, NameError> {
        let bad = |problem| NameError::Version {
            found: text.to_string(),
            problem,
        };
        if let Some(problem) = ref_name_problem(text) {
            return Err(bad(problem));
        }
        let version = if let Some(branch) = text.strip_prefix("refs/heads/") {
            SourceVersion::Branch {
                name: branch.to_string(),
                full: true,
            }
        } else if let Some(tag) = text.strip_prefix("refs/tags/") {
            SourceVersion::Tag(tag.to_string())
        } else if let Ok(commit) = CommitId::parse(text) {
            SourceVersion::Commit(commit)
        } else if let Some(number) = text.strip_prefix("pr/") {
            match number.parse::<u64>() {
                Ok(n) if n > 0 && !number.starts_with('0') => SourceVersion::PullRequest(n),
                _ => return Err(bad("a pull request is `pr/` and its number")),
            }
        } else if text.starts_with("refs/") {
            return Err(bad(
                "only refs/heads/… and refs/tags/… references can be built",
            ));
        } else {
            SourceVersion::Branch {
                name: text.to_string(),
                full: false,
            }
        };
        match &version {
            SourceVersion::Branch { name, .. } | SourceVersion::Tag(name) if name.is_empty() => {
                Err(bad("the name after the prefix is empty"))
            }
            _ => Ok(version),
        }
    }

    /// The full reference a branch or tag names (`refs/heads/main`); `None` for a commit or a
    /// pull request.
    pub fn reference(&self) -> Option<String> {
        match self {
            SourceVersion::Branch { name, .. } => Some(format!("refs/heads/{name}")),
            SourceVersion::Tag(name) => Some(format!("refs/tags/{name}")),
            SourceVersion::Commit(_) | SourceVersion::PullRequest(_) => None,
        }
    }

    /// The commit, when the version is one.
    pub fn commit(&self) -> Option<&CommitId> {
        match self {
            SourceVersion::Commit(id) => Some(id),
            _ => None,
        }
    }
}

/// What is wrong with a reference or version name, if anything. The source step hands it to a
/// host or to git, so it must not look like an option, nor hold spaces or control characters.
pub fn ref_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with('-') {
        Some("it starts with `-`")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it holds a space or a control character")
    } else {
        None
    }
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

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SourceVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceVersion::Branch { name, full: false } => f.write_str(name),
            SourceVersion::Branch { name, full: true } => write!(f, "refs/heads/{name}"),
            SourceVersion::Tag(name) => write!(f, "refs/tags/{name}"),
            SourceVersion::Commit(id) => f.write_str(id.as_str()),
            SourceVersion::PullRequest(n) => write!(f, "pr/{n}"),
        }
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

text_conversions!(RepositoryName, ProjectName, CommitId, SourceVersion);

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

impl AsRef<str> for CommitId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
