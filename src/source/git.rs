//! Local git repositories standing in for CodeCommit: `pushbuild invoke --repos DIR` maps a
//! repository name to `DIR/<name>` (a work tree or a bare repository), so the whole function can
//! be tried with no AWS account.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{FetchSummary, ResolvedCommit, Source, SourceError};
use crate::names::{CommitId, Repo, SourceVersion};

/// Repositories under one directory, by name.
#[derive(Debug, Clone)]
pub struct GitDirSource {
    root: PathBuf,
}

impl GitDirSource {
    pub fn new(root: impl Into<PathBuf>) -> GitDirSource {
        GitDirSource { root: root.into() }
    }

    /// The repository's directory: `DIR/<name>` for a CodeCommit repository, `DIR/<owner>/<repo>`
    /// for one on a git host (their parts hold no `/` and are never `..`).
    fn repo(&self, repo: &Repo) -> Result<PathBuf, SourceError> {
        let path = self.root.join(repo.path());
        if path.is_dir() {
            Ok(path)
        } else {
            Err(SourceError::RepositoryNotFound {
                repository: repo.path().to_string(),
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
    version: &SourceVersion,
) -> Result<ResolvedCommit, SourceError> {
    let rev = match version {
        SourceVersion::Commit(commit) => commit.to_string(),
        SourceVersion::PullRequest(_) => {
            return Err(SourceError::unsupported(
                version,
                "a local repository has no pull requests; build the branch",
            ));
        }
        branch_or_tag => branch_or_tag.reference().unwrap_or_default(),
    };
    let found = git(
        repo,
        &["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")],
    )?;
    let commit_id =
        found
            .and_then(|id| CommitId::parse(&id).ok())
            .ok_or_else(|| match version {
                SourceVersion::Branch { name: branch, .. } => SourceError::BranchNotFound {
                    repository: repository.to_string(),
                    branch: branch.clone(),
                },
                _ => SourceError::CommitNotFound {
                    repository: repository.to_string(),
                    commit: version.to_string(),
                },
            })?;
    let message = git(repo, &["log", "-1", "--format=%B", commit_id.as_str()])?.unwrap_or_default();
    Ok(ResolvedCommit {
        commit_id,
        message,
        reference: version.reference(),
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
        .map_err(|source| SourceError::Task { source })?
}

impl Source for GitDirSource {
    async fn resolve(
        &self,
        repo: &Repo,
        version: &SourceVersion,
    ) -> Result<ResolvedCommit, SourceError> {
        let (repository, version) = (repo.path().to_string(), version.clone());
        let repo = self.repo(repo)?;
        off_thread(move || resolve_blocking(&repo, &repository, &version)).await
    }

    async fn fetch(
        &self,
        repo: &Repo,
        commit: &CommitId,
        dest: &Path,
    ) -> Result<FetchSummary, SourceError> {
        let repo = self.repo(repo)?;
        let (commit, dest) = (commit.clone(), dest.to_path_buf());
        off_thread(move || fetch_blocking(&repo, commit.as_str(), &dest)).await
    }

    /// The repository's directory, as a `file://` URL.
    fn clone_url(&self, repo: &Repo, _region: Option<&str>) -> Option<String> {
        let path = self.root.join(repo.path());
        let path = std::path::absolute(&path).unwrap_or(path);
        Some(format!("file://{}", path.display()))
    }
}
