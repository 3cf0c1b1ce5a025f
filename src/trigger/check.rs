//! The rules every event shape shares: repository names, references, buildspec paths,
//! variable overrides, and the `[skip ci]` marker.

use super::EventError;
use super::json::Node;
use crate::names::{self, CommitId, RepositoryName, SourceVersion};

/// True when a commit message asks for no build: it holds `[skip ci]` or `[ci skip]`, in any
/// letter case.
pub fn skip_ci(commit_message: &str) -> bool {
    let lower = commit_message.to_ascii_lowercase();
    lower.contains("[skip ci]") || lower.contains("[ci skip]")
}

/// What is wrong with a buildspec path, if anything: it must be a relative path inside the
/// repository (`buildspec.yml`, `ci/release.yml`), without `..` and without control characters.
pub fn buildspec_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("the path is empty")
    } else if path.starts_with('/') || path.starts_with('\\') {
        Some("the path is absolute")
    } else if path.chars().any(char::is_control) {
        Some("the path holds a control character (an inline buildspec is not supported)")
    } else if path.split(['/', '\\']).any(|part| part == "..") {
        Some("the path leaves the repository with `..`")
    } else {
        None
    }
}

/// The buildspec path a field holds, checked.
pub(crate) fn buildspec(node: &Node) -> Result<String, EventError> {
    let path = node.as_str()?;
    match buildspec_path_problem(path) {
        None => Ok(path.to_string()),
        Some(problem) => Err(node.invalid(format!(
            "expected a relative path in the repository such as `buildspec.yml`, but {problem}"
        ))),
    }
}

/// Checks the repository name a field holds (the rule is [`RepositoryName::parse`]).
pub(crate) fn repository(name: &str, path: &str) -> Result<RepositoryName, EventError> {
    RepositoryName::parse(name).map_err(|err| EventError::Invalid {
        path: path.to_string(),
        problem: err.to_string(),
    })
}

/// A reference named by a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind<'a> {
    Branch(&'a str),
    Tag(&'a str),
    /// Another `refs/...` name (`refs/notes/commits`): not built.
    Other,
}

impl RefKind<'_> {
    /// `branch/<name>` or `tag/<name>`, as `CODEBUILD_WEBHOOK_TRIGGER` says it.
    pub fn webhook_trigger(&self) -> Option<String> {
        match self {
            RefKind::Branch(name) => Some(format!("branch/{name}")),
            RefKind::Tag(name) => Some(format!("tag/{name}")),
            RefKind::Other => None,
        }
    }

    /// `branch main`, `tag v1`, for messages.
    pub fn describe(&self, reference: &str) -> String {
        match self {
            RefKind::Branch(name) => format!("branch {name}"),
            RefKind::Tag(name) => format!("tag {name}"),
            RefKind::Other => format!("reference {reference}"),
        }
    }
}

/// Classifies the full reference name a field holds; a name outside `refs/` is an error.
pub(crate) fn reference<'a>(node: &Node<'a>) -> Result<(&'a str, RefKind<'a>), EventError> {
    let full = node.as_str()?;
    if let Some(problem) = names::ref_name_problem(full) {
        return Err(node.invalid(format!("expected a full reference name, but {problem}")));
    }
    let kind = if let Some((kind, name)) = names::split_ref(full) {
        match kind {
            names::RefKind::Branch => RefKind::Branch(name),
            names::RefKind::Tag => RefKind::Tag(name),
        }
    } else if full.starts_with("refs/") {
        RefKind::Other
    } else {
        return Err(node.invalid(format!(
            "expected a full reference name (`refs/heads/<branch>` or `refs/tags/<tag>`), \
             found {full:?}"
        )));
    };
    match kind {
        RefKind::Branch("") | RefKind::Tag("") => Err(node.invalid(format!(
            "expected a reference with a name after the prefix, found {full:?}"
        ))),
        kind => Ok((full, kind)),
    }
}

/// Checks the commit id a field holds (the rule is [`CommitId::parse`]).
pub(crate) fn commit(node: &Node) -> Result<CommitId, EventError> {
    CommitId::parse(node.as_str()?).map_err(|err| node.invalid(err.to_string()))
}

/// Checks the source version a field holds (the rule is [`SourceVersion::parse`]).
pub(crate) fn source_version(node: &Node) -> Result<SourceVersion, EventError> {
    SourceVersion::parse(node.as_str()?).map_err(|err| node.invalid(err.to_string()))
}

/// Checks a variable name found at `path`. The message names the variable, never its value.
pub(crate) fn variable_name(name: &str, path: &str) -> Result<String, EventError> {
    match names::variable_name(name) {
        Ok(name) => Ok(name.to_string()),
        Err(err) => Err(EventError::Invalid {
            path: path.to_string(),
            problem: err.to_string(),
        }),
    }
}

/// Checks a variable's value: a string without a NUL byte (no process environment can carry
/// one). The message never shows the value.
fn variable_value(node: &Node) -> Result<String, EventError> {
    let value = node.as_str()?;
    if value.contains('\0') {
        return Err(node.invalid("a variable's value cannot hold a NUL byte"));
    }
    Ok(value.to_string())
}

/// Reads `[{name, value, type?}]`, CodeBuild's override list. A `type` other than `PLAINTEXT`
/// is an error: parameter-store and secrets-manager overrides are not supported.
pub(crate) fn override_list(node: &Node) -> Result<Vec<(String, String)>, EventError> {
    let mut vars = Vec::new();
    for item in node.items()? {
        let name_node = item.need("name", "a variable name")?;
        let name = variable_name(name_node.as_str()?, &name_node.path)?;
        let value = variable_value(&item.need("value", "a string")?)?;
        match item.opt_str("type")? {
            None | Some("PLAINTEXT") => {}
            Some(kind) => {
                return Err(EventError::Invalid {
                    path: item.child_path("type"),
                    problem: format!("only PLAINTEXT is supported, found {kind:?}"),
                });
            }
        }
        vars.push((name, value));
    }
    Ok(vars)
}

/// Reads an override object, `{"NAME": "value"}`, sorted by name (JSON objects keep no order).
pub(crate) fn override_map(node: &Node) -> Result<Vec<(String, String)>, EventError> {
    let mut vars = Vec::new();
    for (name, value) in node.entries()? {
        let name = variable_name(name, &value.path)?;
        vars.push((name, variable_value(&value)?));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_ci_markers() {
        #[track_caller]
        fn skip(message: &str, want: bool) {
            assert_eq!(skip_ci(message), want, "{message:?}");
        }
        skip("Fix typo [skip ci]", true);
        skip("[ci skip] docs only", true);
        skip("Docs\n\n[CI SKIP]", true);
        skip("[Skip CI]", true);
        skip("skip ci", false);
        skip("ci skip please", false);
        skip("[skip-ci]", false);
        skip("[skipci]", false);
        skip("", false);
    }

    #[test]
    fn buildspec_paths_stay_in_the_repository() {
        #[track_caller]
        fn case(path: &str, want: Option<&str>) {
            assert_eq!(buildspec_path_problem(path), want, "{path:?}");
        }
        case("buildspec.yml", None);
        case("ci/build spec.yml", None);
        case("a..b/x.yml", None);
        case("", Some("the path is empty"));
        case("/b.yml", Some("the path is absolute"));
        case(
            "ci/../../b.yml",
            Some("the path leaves the repository with `..`"),
        );
        case(
            "..\\b.yml",
            Some("the path leaves the repository with `..`"),
        );
        case(
            "version: 0.2\nphases: {}",
            Some("the path holds a control character (an inline buildspec is not supported)"),
        );
    }
}
