//! Local git repositories standing in for CodeCommit: `pushbuild invoke --repos DIR` maps a
//! repository name to `DIR/<name>` (a work tree or a bare repository), so the whole function can
//! be tried with no AWS account.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{FetchSummary, ResolvedCommit, Source, SourceError, Version};

/// Repositories under one directory, by name.
#[derive(Debug, Clone)]
pub struct GitDirSource {
    root: PathBuf,
}

impl GitDirSource {
    pub fn new(root: impl Into<PathBuf>) -> GitDirSource {
        GitDirSource { root: root.into() }
    }

    fn repo(&self, repository: &str) -> Result<PathBuf, SourceError> {
        let path = self.root.join(repository);
        let plain = !repository.is_empty() && !repository.contains('/') && repository != "..";
        if plain && path.is_dir() {
            Ok(path)
        } else {
            Err(SourceError::RepositoryNotFound {
                repository: repository.to_string(),
            })
        }
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<Option<String>, SourceError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SourceError::Io {
            path: repo.to_path_buf(),
            source,
        })?;
    Ok(output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string()
    }))
}

fn resolve_blocking(
    repo: &Path,
    repository: &str,
    version: &str,
) -> Result<ResolvedCommit, SourceError> {
    let (rev, reference) = match Version::parse(version)? {
        Version::Branch(branch) => (
            format!("refs/heads/{branch}"),
            Some(format!("refs/heads/{branch}")),
        ),
        Version::Tag(tag) => (format!("refs/tags/{tag}"), Some(format!("refs/tags/{tag}"))),
        Version::Commit(commit) => (commit.to_string(), None),
    };
    let commit_id = git(
        repo,
        &["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")],
    )?
    .ok_or_else(|| match &reference {
        Some(name) if name.starts_with("refs/heads/") => SourceError::BranchNotFound {
            repository: repository.to_string(),
            branch: name.trim_start_matches("refs/heads/").to_string(),
        },
        _ => SourceError::CommitNotFound {
            repository: repository.to_string(),
            commit: version.to_string(),
        },
    })?;
    let message = git(repo, &["log", "-1", "--format=%B", &commit_id])?.unwrap_or_default();
    Ok(ResolvedCommit {
        commit_id,
        message,
        reference,
    })
}

fn fetch_blocking(repo: &Path, commit_id: &str, dest: &Path) -> Result<FetchSummary, SourceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io { path, source }
    };
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    // `git archive | tar -x` keeps modes and symbolic links, as a checkout does.
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", commit_id])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(io(repo))?;
    let stdout = archive.stdout.take().ok_or_else(|| SourceError::Api {
        operation: "git archive",
        message: "no output".into(),
    })?;
    let untar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(stdout)
        .status()
        .map_err(io(dest))?;
    let archived = archive.wait().map_err(io(repo))?;
    if !archived.success() || !untar.success() {
        return Err(SourceError::Api {
            operation: "git archive",
            message: format!("cannot export commit {commit_id} from {}", repo.display()),
        });
    }
    let mut summary = FetchSummary::default();
    for entry in walkdir::WalkDir::new(dest).min_depth(1) {
        let entry = entry.map_err(|err| SourceError::Io {
            path: dest.to_path_buf(),
            source: err.into(),
        })?;
        if entry.file_type().is_file() || entry.file_type().is_symlink() {
            summary.files += 1;
            if entry.file_type().is_file() {
                summary.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    Ok(summary)
}

/// Runs blocking git work off the async runtime's threads.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| SourceError::Api {
            operation: "git",
            message: err.to_string(),
        })?
}

impl Source for GitDirSource {
    async fn resolve(
        &self,
        repository: &str,
        version: &str,
    ) -> Result<ResolvedCommit, SourceError> {
        let repo = self.repo(repository)?;
        let (repository, version) = (repository.to_string(), version.to_string());
        off_thread(move || resolve_blocking(&repo, &repository, &version)).await
    }

    async fn fetch(
        &self,
        repository: &str,
        commit_id: &str,
        dest: &Path,
    ) -> Result<FetchSummary, SourceError> {
        let repo = self.repo(repository)?;
        let (commit_id, dest) = (commit_id.to_string(), dest.to_path_buf());
        off_thread(move || fetch_blocking(&repo, &commit_id, &dest)).await
    }
}
