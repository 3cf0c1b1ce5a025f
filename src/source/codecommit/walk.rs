//! Walking a commit's tree: `GetFolder` from `/` down, `GetBlob` for every file and link, at
//! most `concurrency` calls in flight (fewer while CodeCommit throttles: see `limit.rs`), each
//! entry written under the destination as it arrives.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use aws_sdk_codecommit::Client;
use aws_sdk_codecommit::config::http::HttpResponse;
use aws_sdk_codecommit::config::retry::RetryConfig;
use aws_sdk_codecommit::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codecommit::types::{FileModeTypeEnum, SymbolicLink};
use futures::stream::{FuturesUnordered, StreamExt};

use super::limit::{Limiter, backoff};
use super::{Subject, api_error};
use crate::source::{FetchSummary, SourceError};

/// Writes the tree of `commit_id` under `dest`.
pub(super) async fn fetch(
    client: &Client,
    repository: &str,
    commit_id: &str,
    dest: &Path,
    concurrency: usize,
) -> Result<FetchSummary, SourceError> {
    let walk = Walk {
        client,
        repository,
        commit_id,
        dest,
        limiter: Limiter::new(concurrency),
    };
    let mut summary = FetchSummary::default();
    let mut pending = FuturesUnordered::new();
    pending.push(walk.run(Job::Folder {
        path: String::new(),
    }));
    while let Some(step) = pending.next().await {
        let step = step?;
        summary.files += step.files;
        summary.bytes += step.bytes;
        summary.notes.extend(step.notes);
        for job in step.jobs {
            pending.push(walk.run(job));
        }
    }
    summary.notes.sort();
    summary.notes.extend(walk.limiter.note());
    Ok(summary)
}

/// Tries per call; throttling and passing failures (5xx, a dropped connection) are tried again.
const ATTEMPTS: u32 = 10;

/// What a failed call's error calls for.
#[derive(PartialEq, Eq)]
enum Failure {
    /// CodeCommit asked for fewer calls: narrow the window, wait, try again.
    Throttled,
    /// A passing failure: wait, try again.
    Passing,
    /// Trying again cannot help.
    Final,
}

fn failure<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Failure {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Passing
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match err.code() {
                Some(
                    "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "SlowDown",
                ) => Failure::Throttled,
                _ if status == 429 => Failure::Throttled,
                _ if status >= 500 => Failure::Passing,
                _ => Failure::Final,
            }
        }
        _ => Failure::Final,
    }
}

/// One call's worth of work while walking a tree; paths are relative to the repository root.
enum Job {
    Folder {
        path: String,
    },
    File {
        path: String,
        blob_id: String,
        executable: bool,
    },
    Link {
        path: String,
        blob_id: String,
    },
}

/// What a job did, and the jobs it found.
#[derive(Default)]
struct Step {
    jobs: Vec<Job>,
    files: usize,
    bytes: u64,
    notes: Vec<String>,
}

/// One fetch in progress.
struct Walk<'a> {
    client: &'a Client,
    repository: &'a str,
    commit_id: &'a str,
    dest: &'a Path,
    /// One place per call in flight.
    limiter: Limiter,
}

impl Walk<'_> {
    async fn run(&self, job: Job) -> Result<Step, SourceError> {
        match job {
            Job::Folder { path } => self.folder(path).await,
            Job::File {
                path,
                blob_id,
                executable,
            } => {
                let content = self.blob(&path, &blob_id).await?;
                let local = self.dest.join(&path);
                write_file(&local, &content, executable).await?;
                Ok(Step {
                    files: 1,
                    bytes: content.len() as u64,
                    ..Step::default()
                })
            }
            Job::Link { path, blob_id } => {
                let target = self.blob(&path, &blob_id).await?;
                let target = Path::new(std::ffi::OsStr::from_bytes(&target));
                check_link_target(&path, target)?;
                let local = self.dest.join(&path);
                tokio::fs::symlink(target, &local)
                    .await
                    .map_err(|source| io(&local, source))?;
                Ok(Step {
                    files: 1,
                    ..Step::default()
                })
            }
        }
    }

    async fn folder(&self, path: String) -> Result<Step, SourceError> {
        let local = self.dest.join(&path);
        tokio::fs::create_dir_all(&local)
            .await
            .map_err(|source| io(&local, source))?;
        let folder_path = format!("/{path}");
        let out = self
            .call("GetFolder", Subject::Commit(self.commit_id), || {
                self.client
                    .get_folder()
                    .repository_name(self.repository)
                    .commit_specifier(self.commit_id)
                    .folder_path(&folder_path)
                    .customize()
                    .config_override(no_retries())
                    .send()
            })
            .await?;
        let mut step = Step::default();
        for folder in out.sub_folders() {
            let path = child(&path, folder.relative_path())?;
            step.jobs.push(Job::Folder { path });
        }
        for file in out.files() {
            let path = child(&path, file.relative_path())?;
            let blob_id = blob_id(file.blob_id(), &path)?;
            let listed_as_link = |l: &SymbolicLink| l.relative_path() == file.relative_path();
            match file.file_mode() {
                // A link is made once, whichever list names it.
                Some(FileModeTypeEnum::Symlink)
                    if out.symbolic_links().iter().any(listed_as_link) => {}
                Some(FileModeTypeEnum::Symlink) => step.jobs.push(Job::Link { path, blob_id }),
                mode => step.jobs.push(Job::File {
                    path,
                    blob_id,
                    executable: mode == Some(&FileModeTypeEnum::Executable),
                }),
            }
        }
        for link in out.symbolic_links() {
            let path = child(&path, link.relative_path())?;
            let blob_id = blob_id(link.blob_id(), &path)?;
            step.jobs.push(Job::Link { path, blob_id });
        }
        for module in out.sub_modules() {
            let path = child(&path, module.relative_path())?;
            let commit = module.commit_id().unwrap_or("unknown commit");
            step.notes.push(format!(
                "submodule `{path}` (at {commit}) was not fetched: CodeCommit serves no submodule contents"
            ));
        }
        Ok(step)
    }

    async fn blob(&self, path: &str, blob_id: &str) -> Result<Vec<u8>, SourceError> {
        let out = self
            .call("GetBlob", Subject::File(path), || {
                self.client
                    .get_blob()
                    .repository_name(self.repository)
                    .blob_id(blob_id)
                    .customize()
                    .config_override(no_retries())
                    .send()
            })
            .await?;
        Ok(out.content.into_inner())
    }

    /// One call, in the window, tried again while it is throttled or fails in passing.
    async fn call<T, E, F, Fut>(
        &self,
        operation: &'static str,
        subject: Subject<'_>,
        send: F,
    ) -> Result<T, SourceError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut attempt = 0;
        loop {
            let ticket = self.limiter.acquire().await.map_err(|_| closed())?;
            let err = match send().await {
                Ok(out) => {
                    self.limiter.answered(ticket);
                    return Ok(out);
                }
                Err(err) => err,
            };
            let kind = failure(&err);
            if kind == Failure::Throttled {
                self.limiter.throttled(ticket);
            } else {
                self.limiter.failed(ticket);
            }
            attempt += 1;
            if kind == Failure::Final || attempt >= ATTEMPTS {
                return Err(api_error(operation, err, self.repository, subject));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

/// The walk retries its calls itself (see [`Walk::call`]), so the client's own retries are off.
fn no_retries() -> aws_sdk_codecommit::config::Builder {
    aws_sdk_codecommit::config::Builder::default().retry_config(RetryConfig::disabled())
}

fn closed() -> SourceError {
    SourceError::Api {
        operation: "fetch",
        message: "the call limiter was closed".into(),
    }
}

fn io(path: &Path, source: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn blob_id(id: Option<&str>, path: &str) -> Result<String, SourceError> {
    id.map(str::to_string).ok_or_else(|| SourceError::Api {
        operation: "GetFolder",
        message: format!("the entry `{path}` has no blobId"),
    })
}

/// The repository path of `relative` inside the folder `parent`; only plain names are accepted,
/// so no entry can climb out of the folder it was listed in.
fn child(parent: &str, relative: Option<&str>) -> Result<String, SourceError> {
    let relative = relative.unwrap_or_default();
    let unsafe_path = || SourceError::UnsafePath {
        path: format!("{parent}/{relative}")
            .trim_start_matches('/')
            .to_string(),
    };
    let plain =
        |part: &str| !part.is_empty() && part != "." && part != ".." && !part.contains('\0');
    if relative.starts_with('/') || !relative.split('/').all(plain) {
        return Err(unsafe_path());
    }
    Ok(if parent.is_empty() {
        relative.to_string()
    } else {
        format!("{parent}/{relative}")
    })
}

/// Refuses a link at `path` (repository-relative) whose `target` leaves the repository, judged
/// by the names alone: an absolute target, or more `..` than the link has folders above it.
fn check_link_target(path: &str, target: &Path) -> Result<(), SourceError> {
    let mut depth = path.split('/').count() as isize - 1;
    for part in target.components() {
        match part {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => depth = -1,
        }
        if depth < 0 {
            return Err(SourceError::UnsafePath {
                path: format!("{path} -> {}", target.display()),
            });
        }
    }
    Ok(())
}

async fn write_file(path: &PathBuf, content: &[u8], executable: bool) -> Result<(), SourceError> {
    tokio::fs::write(path, content)
        .await
        .map_err(|source| io(path, source))?;
    let mode = if executable { 0o755 } else { 0o644 };
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|source| io(path, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_must_be_plain_names() {
        assert_eq!(child("", Some("a")).unwrap(), "a");
        assert_eq!(child("a/b", Some("c.txt")).unwrap(), "a/b/c.txt");
        for bad in ["..", ".", "", "/etc", "x/../../y", "a//b"] {
            assert!(
                matches!(child("a", Some(bad)), Err(SourceError::UnsafePath { .. })),
                "{bad:?} was accepted"
            );
        }
        assert!(child("", None).is_err());
    }

    #[test]
    fn link_targets_stay_inside_the_repository() {
        let ok = [
            ("l", "a/b"),
            ("l", "."),
            ("d/l", "../x"),
            ("d/e/l", "../../x"),
            ("d/l", "x/../../y"),
        ];
        for (path, target) in ok {
            assert!(
                check_link_target(path, Path::new(target)).is_ok(),
                "{path} -> {target}"
            );
        }
        let bad = [
            ("l", "../x"),
            ("l", "/etc/passwd"),
            ("d/l", "../../x"),
            ("l", "a/../../x"),
        ];
        for (path, target) in bad {
            assert!(
                matches!(
                    check_link_target(path, Path::new(target)),
                    Err(SourceError::UnsafePath { .. })
                ),
                "{path} -> {target} was accepted"
            );
        }
    }
}
