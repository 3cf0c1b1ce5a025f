//! CodePipeline's input artifacts as a source. The function unpacks a job's zip under its work
//! directory before the build (`<root>/<job>/src`, the commit it stands for in
//! `<root>/<job>/commit`); the build resolves that commit and its fetch moves the files into
//! place (a rename: nothing is copied). Any other repository goes to the source it wraps.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{FetchSummary, ResolvedCommit, Source, SourceError};
use crate::names::{CommitId, Repo, RepositoryName, SourceVersion};

/// Unpacked artifacts under `root`, in front of `inner`.
#[derive(Debug, Clone)]
pub struct Unpacked<S> {
    pub inner: S,
    pub root: PathBuf,
}

impl<S> Unpacked<S> {
    fn dir(&self, job: &RepositoryName) -> PathBuf {
        unpacked_dir(&self.root, job)
    }
}

impl<S: Source> Source for Unpacked<S> {
    async fn resolve(
        &self,
        repo: &Repo,
        version: &SourceVersion,
    ) -> Result<ResolvedCommit, SourceError> {
        let Repo::Artifact(job) = repo else {
            return self.inner.resolve(repo, version).await;
        };
        let commit = std::fs::read_to_string(self.dir(job).join("commit"))
            .ok()
            .and_then(|text| CommitId::parse(text.trim()).ok())
            .ok_or_else(|| gone(job))?;
        Ok(ResolvedCommit {
            commit_id: commit,
            message: String::new(),
            reference: None,
        })
    }

    async fn fetch(
        &self,
        repo: &Repo,
        commit: &CommitId,
        dest: &Path,
    ) -> Result<FetchSummary, SourceError> {
        let Repo::Artifact(job) = repo else {
            return self.inner.fetch(repo, commit, dest).await;
        };
        let src = self.dir(job).join("src");
        if !src.is_dir() {
            return Err(gone(job));
        }
        let io = |source| SourceError::Io {
            path: dest.to_path_buf(),
            source,
        };
        // `dest` is made empty for the fetch: the unpacked files take its place.
        std::fs::remove_dir(dest).or_else(|err| match err.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(io(err)),
        })?;
        std::fs::rename(&src, dest).map_err(io)?;
        let _ = std::fs::remove_dir_all(self.dir(job));
        Ok(count(dest))
    }

    fn clone_url(&self, repo: &Repo, region: Option<&str>) -> Option<String> {
        match repo {
            Repo::Artifact(_) => None,
            _ => self.inner.clone_url(repo, region),
        }
    }
}

/// A job whose artifact is not unpacked here: it is built in the invocation that received it.
fn gone(job: &RepositoryName) -> SourceError {
    SourceError::ArtifactGone {
        job: job.as_str().to_string(),
    }
}

/// Files and bytes under `dir`.
fn count(dir: &Path) -> FetchSummary {
    let mut summary = FetchSummary::default();
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_file() || entry.file_type().is_symlink() {
            summary.files += 1;
            summary.bytes += entry.metadata().map_or(0, |m| m.len());
        }
    }
    summary
}

/// Where job `job`'s input artifact is unpacked under `root`.
fn unpacked_dir(root: &Path, job: &RepositoryName) -> PathBuf {
    root.join(job.as_str())
}

/// Removes what [`unpack`] wrote for job `job` under `root`, for a job that is not built (a
/// delivery of one already built).
pub fn discard_unpacked(root: &Path, job: &RepositoryName) {
    let _ = std::fs::remove_dir_all(unpacked_dir(root, job));
}

/// Unpacks the zip `archive` as job `job`'s source under `root`, standing for `commit`.
/// Entries keep their executable bits and symbolic links; an entry whose path would leave the
/// directory is refused by name.
pub fn unpack(
    archive: impl Read + std::io::Seek,
    root: &Path,
    job: &RepositoryName,
    commit: &CommitId,
) -> Result<FetchSummary, SourceError> {
    let dir = unpacked_dir(root, job);
    let src = dir.join("src");
    let io = |path: &Path, source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&src).map_err(|err| io(&src, err))?;
    let mut zip = zip::ZipArchive::new(archive).map_err(|err| SourceError::Archive {
        problem: err.to_string(),
    })?;
    let mut summary = FetchSummary::default();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|err| SourceError::Archive {
            problem: err.to_string(),
        })?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(SourceError::UnsafePath {
                path: entry.name().to_string(),
            });
        };
        let path = src.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(|err| io(&path, err))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| io(parent, err))?;
        }
        let mode = entry.unix_mode().unwrap_or(0o644);
        if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|err| io(&path, err))?;
            std::os::unix::fs::symlink(&target, &path).map_err(|err| io(&path, err))?;
        } else {
            let mut file = std::fs::File::create(&path).map_err(|err| io(&path, err))?;
            summary.bytes += std::io::copy(&mut entry, &mut file).map_err(|err| io(&path, err))?;
            if mode & 0o111 != 0 {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(|err| io(&path, err))?;
            }
        }
        summary.files += 1;
    }
    let marker = dir.join("commit");
    std::fs::write(&marker, commit.to_string()).map_err(|err| io(&marker, err))?;
    Ok(summary)
}
