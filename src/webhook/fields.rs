//! The payload fields every host's adapter reads the same way: a repository's path, a reference,
//! a branch, a commit id, a number, a changed-files list. Each error names the field's path.

use super::WebhookError;
use crate::names::{CommitId, RefKind, RepositoryName, full_ref, ref_name_problem, split_ref};
use crate::trigger::json::Node;

/// A repository's path on its host (`owner/repo`; GitLab's `group/sub/project` with
/// `nested`), each part a name a project may hold.
pub fn repository_path(node: &Node, nested: bool) -> Result<String, WebhookError> {
    let path = node.as_str()?;
    let parts: Vec<&str> = path.split('/').collect();
    let count_ok = if nested {
        parts.len() >= 2
    } else {
        parts.len() == 2
    };
    if !count_ok || !parts.iter().all(|p| RepositoryName::parse(p).is_ok()) {
        let shape = if nested {
            "`group/project`"
        } else {
            "`owner/repo`"
        };
        return Err(node
            .invalid(format!("expected {shape}, found {path:?}"))
            .into());
    }
    Ok(path.to_string())
}

/// A full reference name, `refs/heads/<branch>` or `refs/tags/<tag>`.
pub fn reference(node: &Node) -> Result<String, WebhookError> {
    let full = node.as_str()?;
    match split_ref(full).map(|(_, name)| name) {
        Some(name) if ref_name_problem(name).is_none() => Ok(full.to_string()),
        _ => Err(node
            .invalid(format!(
                "expected `refs/heads/<branch>` or `refs/tags/<tag>`, found {full:?}"
            ))
            .into()),
    }
}

/// The full reference of a bare branch or tag name a field holds.
pub fn named_ref(node: &Node, kind: RefKind) -> Result<String, WebhookError> {
    let name = node.as_str()?;
    if let Some(problem) = ref_name_problem(name) {
        return Err(node
            .invalid(format!("expected a branch or tag name, but {problem}"))
            .into());
    }
    Ok(full_ref(kind, name))
}

pub fn commit(node: &Node) -> Result<CommitId, WebhookError> {
    CommitId::parse(node.as_str()?).map_err(|err| node.invalid(err.to_string()).into())
}

pub fn number(node: &Node) -> Result<u64, WebhookError> {
    node.value
        .as_u64()
        .ok_or_else(|| node.wrong("a whole number").into())
}

/// A number or a string field, as text (an account id).
pub fn id_text(node: &Node) -> Result<String, WebhookError> {
    match node.value.as_u64() {
        Some(n) => Ok(n.to_string()),
        None => Ok(node.as_str()?.to_string()),
    }
}

/// The `added`, `removed` and `modified` paths of a list of commits, sorted and deduplicated.
pub fn commit_files(commits: &Node) -> Result<Vec<String>, WebhookError> {
    let mut files = Vec::new();
    for item in commits.items()? {
        for list in ["added", "removed", "modified"] {
            if let Some(paths) = item.get(list)? {
                for path in paths.items()? {
                    files.push(path.as_str()?.to_string());
                }
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}
