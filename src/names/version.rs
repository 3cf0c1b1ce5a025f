//! What a build asks the source for: commit ids, source versions and git's reference names
//! (`refs/heads/<branch>`, `refs/tags/<tag>`), each rule written once here.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::NameError;

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
        let version = if let Some((kind, name)) = split_ref(text) {
            match kind {
                RefKind::Branch => SourceVersion::Branch {
                    name: name.to_string(),
                    full: true,
                },
                RefKind::Tag => SourceVersion::Tag(name.to_string()),
            }
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
            SourceVersion::Branch { name, .. } => Some(full_ref(RefKind::Branch, name)),
            SourceVersion::Tag(name) => Some(full_ref(RefKind::Tag, name)),
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

/// The two kinds of git reference a build is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefKind {
    Branch,
    Tag,
}

impl RefKind {
    /// `refs/heads/` or `refs/tags/`.
    pub fn prefix(self) -> &'static str {
        match self {
            RefKind::Branch => "refs/heads/",
            RefKind::Tag => "refs/tags/",
        }
    }
}

/// The full reference of a branch or a tag: `refs/heads/<name>`, `refs/tags/<name>`.
pub fn full_ref(kind: RefKind, name: &str) -> String {
    format!("{}{name}", kind.prefix())
}

/// The kind and the name of a full branch or tag reference; `None` for any other text (a
/// short name, `refs/pull/…`, a commit id).
pub fn split_ref(full: &str) -> Option<(RefKind, &str)> {
    [RefKind::Branch, RefKind::Tag]
        .into_iter()
        .find_map(|kind| full.strip_prefix(kind.prefix()).map(|name| (kind, name)))
}

/// The branch or tag a full reference names (`main` for `refs/heads/main`); any other text as
/// it is.
pub fn short_ref(full: &str) -> &str {
    split_ref(full).map_or(full, |(_, name)| name)
}

/// The reference of a pull request's head, as GitHub names it: `refs/pull/<number>/head`.
pub fn pull_request_ref(number: u64) -> String {
    format!("refs/pull/{number}/head")
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

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SourceVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceVersion::Branch { name, full: false } => f.write_str(name),
            SourceVersion::Branch { name, full: true } => {
                f.write_str(&full_ref(RefKind::Branch, name))
            }
            SourceVersion::Tag(name) => f.write_str(&full_ref(RefKind::Tag, name)),
            SourceVersion::Commit(id) => f.write_str(id.as_str()),
            SourceVersion::PullRequest(n) => write!(f, "pr/{n}"),
        }
    }
}

impl AsRef<str> for CommitId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
