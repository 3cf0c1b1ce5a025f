//! A source directory on the local disk, and what git says of it (when it is a git work tree).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::names::CommitId;

/// What git knows of a local source directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// The commit checked out (`HEAD`).
    pub commit: Option<CommitId>,
    /// The branch checked out, when not detached.
    pub branch: Option<String>,
    /// The `origin` remote's URL.
    pub remote_url: Option<String>,
}

/// Asks git about `dir`; every field is `None` where git is missing or `dir` is no work tree.
pub fn git_info(dir: &Path) -> GitInfo {
    // Outside any work tree there is nothing to ask: no git processes (a few ms each).
    if std::env::var_os("GIT_DIR").is_none() && !dir.ancestors().any(|d| d.join(".git").exists()) {
        return GitInfo::default();
    }
    GitInfo {
        commit: git(dir, &["rev-parse", "--verify", "-q", "HEAD"])
            .and_then(|id| CommitId::parse(&id).ok()),
        branch: git(dir, &["symbolic-ref", "-q", "--short", "HEAD"]),
        remote_url: git(dir, &["config", "--get", "remote.origin.url"]),
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_commit_and_branch_of_a_work_tree_and_nothing_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_info(dir.path()), GitInfo::default());
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .output()
                .unwrap();
            assert!(
                ok.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&ok.stderr)
            );
        };
        run(&["init", "-q", "-b", "trunk"]);
        run(&["commit", "-q", "--allow-empty", "-m", "first"]);
        let info = git_info(dir.path());
        assert_eq!(info.branch.as_deref(), Some("trunk"));
        assert_eq!(info.commit.as_ref().map(|c| c.as_str().len()), Some(40));
        assert_eq!(info.remote_url, None);
    }
}
