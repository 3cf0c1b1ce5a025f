//! The rules every event shape shares: repository names, references, buildspec paths,
//! variable overrides, and the `[skip ci]` marker.

use super::EventError;
use super::json::Node;

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

/// Checks a CodeCommit repository name: 1 to 100 letters, digits, `.`, `_` or `-`, and not
/// `.` or `..` (the name becomes part of paths and object keys).
pub(crate) fn repository(name: &str, path: &str) -> Result<String, EventError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty()
        || name.len() > 100
        || !name.chars().all(allowed)
        || name == "."
        || name == ".."
    {
        return Err(EventError::Invalid {
            path: path.to_string(),
            problem: format!(
                "expected a repository name of 1 to 100 letters, digits, `.`, `_` or `-`, \
                 found {name:?}"
            ),
        });
    }
    Ok(name.to_string())
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
    if let Some(problem) = version_problem(full) {
        return Err(node.invalid(format!("expected a full reference name, but {problem}")));
    }
    let kind = if let Some(name) = full.strip_prefix("refs/heads/") {
        RefKind::Branch(name)
    } else if let Some(name) = full.strip_prefix("refs/tags/") {
        RefKind::Tag(name)
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

/// What is wrong with a source version or reference name, if anything. The source step hands
/// it to git, so it must not look like an option, nor hold spaces or control characters.
pub(crate) fn version_problem(version: &str) -> Option<&'static str> {
    if version.is_empty() {
        Some("it is empty")
    } else if version.starts_with('-') {
        Some("it starts with `-`")
    } else if version.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it holds a space or a control character")
    } else {
        None
    }
}

/// True for a full commit id: 40 (SHA-1) or 64 (SHA-256) hexadecimal digits.
pub(crate) fn is_commit_id(version: &str) -> bool {
    matches!(version.len(), 40 | 64) && version.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a commit id a field holds.
pub(crate) fn commit(node: &Node) -> Result<String, EventError> {
    let id = node.as_str()?;
    if is_commit_id(id) {
        Ok(id.to_string())
    } else {
        Err(node.invalid(format!(
            "expected a commit id of 40 hexadecimal digits, found {id:?}"
        )))
    }
}

/// True for a name a shell can export: a letter or `_`, then letters, digits or `_`.
pub(crate) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a variable name found at `path`. The message names the variable, never its value.
pub(crate) fn variable_name(name: &str, path: &str) -> Result<String, EventError> {
    if is_variable_name(name) {
        Ok(name.to_string())
    } else {
        Err(EventError::Invalid {
            path: path.to_string(),
            problem: format!(
                "expected a variable name of letters, digits and `_` not starting with a \
                 digit, found {name:?}"
            ),
        })
    }
}

/// Reads `[{name, value, type?}]`, CodeBuild's override list. A `type` other than `PLAINTEXT`
/// is an error: parameter-store and secrets-manager overrides are not supported.
pub(crate) fn override_list(node: &Node) -> Result<Vec<(String, String)>, EventError> {
    let mut vars = Vec::new();
    for item in node.items()? {
        let name_node = item.need("name", "a variable name")?;
        let name = variable_name(name_node.as_str()?, &name_node.path)?;
        let value = item.need("value", "a string")?.as_str()?.to_string();
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
        vars.push((name, value.as_str()?.to_string()));
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
    fn variable_names_are_shell_identifiers() {
        #[track_caller]
        fn case(name: &str, want: bool) {
            assert_eq!(is_variable_name(name), want, "{name:?}");
        }
        case("STAGE", true);
        case("_x1", true);
        case("a", true);
        case("", false);
        case("1A", false);
        case("A-B", false);
        case("A B", false);
        case("É", false);
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

    #[test]
    fn commit_ids_are_full_hex_ids() {
        #[track_caller]
        fn case(id: &str, want: bool) {
            assert_eq!(is_commit_id(id), want, "{id:?}");
        }
        case(&"a".repeat(40), true);
        case(&"0".repeat(64), true);
        case("3F9C1A2B7D4E5F60718293A4B5C6D7E8F9012345", true);
        case("3f9c1a2", false);
        case(&"g".repeat(40), false);
        case("main", false);
    }
}
