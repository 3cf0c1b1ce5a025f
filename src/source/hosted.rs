//! Hosted repositories (GitHub, and the hosts to come) over git's smart HTTP protocol, in-process
//! with gix: Lambda's image has no `git`. A build's commit is fetched shallow (depth 1 unless set
//! otherwise) by its id, into a real repository whose worktree is checked out with `HEAD` at the
//! commit, so `git rev-parse HEAD` and `git log -1` work in the build.
//!
//! The clone URL is built from the host's setting (`PUSHBUILD_GITHUB_URL` + `/<path>.git`),
//! never taken from a payload, so a token only goes to the configured host. The token is handed
//! to git's HTTP client when the host asks for it (a 401) and is written nowhere: not in the
//! remote URL, not in `.git/config`.

use std::path::Path;
use std::sync::Arc;

use super::clone::{ShallowClone, give_credentials};
use super::retrying::{classify, retrying};
use super::{FetchSummary, ResolvedCommit, Source, SourceError, Spares};
use crate::names::{CommitId, Host, Repo, SourceVersion};
use crate::secret::Secret;

/// One host that repositories are fetched from.
#[derive(Debug, Clone)]
pub struct GitHost {
    /// Which host it is.
    pub host: Host,
    /// The base URL repositories live under (`https://github.com`).
    pub url: String,
    pub token: Option<Secret>,
}

/// Hosted repositories, fetched over HTTPS.
#[derive(Debug, Clone)]
pub struct HostedSource {
    hosts: Vec<GitHost>,
    /// Commits of history to fetch; 0 for all.
    depth: u32,
    /// Whether to say that submodules were not fetched (they never are yet).
    submodules: bool,
    /// Emptied files the checkouts write into, where creating files is slow.
    spares: Option<Arc<Spares>>,
}

impl HostedSource {
    pub fn new(hosts: Vec<GitHost>, depth: u32, submodules: bool) -> HostedSource {
        HostedSource {
            hosts,
            depth,
            submodules,
            spares: None,
        }
    }

    /// Checkouts write into `spares` (a finished build's emptied files) while there are any.
    pub fn with_spares(mut self, spares: Option<Arc<Spares>>) -> HostedSource {
        self.spares = spares;
        self
    }

    /// The host a repository is on, and its path there.
    fn host_of<'a>(&self, repo: &'a Repo) -> Result<(&GitHost, &'a str), SourceError> {
        let not_found = || SourceError::RepositoryNotFound {
            repository: repo.path().to_string(),
        };
        let Repo::Hosted { host, path } = repo else {
            return Err(not_found());
        };
        let git_host = self.hosts.iter().find(|h| h.host == *host);
        git_host.map(|h| (h, path.as_str())).ok_or_else(not_found)
    }
}

impl Source for HostedSource {
    /// A commit is itself (webhook builds name theirs); a branch or a tag is asked of the host
    /// (git's reference listing, as `git ls-remote` does: one round trip, no objects).
    async fn resolve(
        &self,
        repo: &Repo,
        version: &SourceVersion,
    ) -> Result<ResolvedCommit, SourceError> {
        let (host, path) = self.host_of(repo)?;
        let reference = match version {
            SourceVersion::Commit(commit) => {
                return Ok(ResolvedCommit {
                    commit_id: commit.clone(),
                    // Known once the commit is fetched; the webhook checked `[skip ci]` already.
                    message: String::new(),
                    reference: None,
                });
            }
            SourceVersion::Branch { .. } | SourceVersion::Tag(_) => {
                version.reference().unwrap_or_default()
            }
            other => {
                return Err(SourceError::unsupported(
                    other,
                    "a hosted repository is built at a commit, a branch or a tag",
                ));
            }
        };
        let url = format!("{}/{path}.git", host.url);
        let credentials = host
            .token
            .clone()
            .map(|token| (host.host.token_user().to_string(), token));
        let (listed, _) = retrying("git ls-remote", |_| {
            let (url, credentials, wanted) = (url.clone(), credentials.clone(), reference.clone());
            async move {
                tokio::task::spawn_blocking(move || ls_remote(&url, credentials, &wanted))
                    .await
                    .map_err(|source| SourceError::Task { source })?
            }
        })
        .await;
        let commit = listed?;
        Ok(ResolvedCommit {
            commit_id: commit,
            message: String::new(),
            reference: Some(reference),
        })
    }

    async fn fetch(
        &self,
        repo: &Repo,
        commit: &CommitId,
        dest: &Path,
    ) -> Result<FetchSummary, SourceError> {
        let (host, path) = self.host_of(repo)?;
        let (fetched, retried) = retrying("git fetch", |attempt| {
            let job = ShallowClone {
                url: format!("{}/{path}.git", host.url),
                credentials: host
                    .token
                    .clone()
                    .map(|token| (host.host.token_user().to_string(), token)),
                commit: commit.clone(),
                dest: dest.to_path_buf(),
                depth: self.depth,
                spares: self.spares.clone(),
            };
            async move {
                tokio::task::spawn_blocking(move || {
                    // What an attempt that failed left behind goes first.
                    if attempt > 1 {
                        let _ = std::fs::remove_dir_all(&job.dest);
                        let _ = std::fs::create_dir_all(&job.dest);
                    }
                    job.run()
                })
                .await
                .map_err(|source| SourceError::Task { source })?
            }
        })
        .await;
        let submodules = self.submodules;
        let mut summary = fetched?;
        summary.notes.extend(retried);
        if summary.notes.iter().any(|n| n.contains("submodule")) && submodules {
            summary.notes.push(
                "PUSHBUILD_GIT_SUBMODULES=true: fetching submodules is not supported yet".into(),
            );
        }
        Ok(summary)
    }

    fn clone_url(&self, repo: &Repo, _region: Option<&str>) -> Option<String> {
        let (host, path) = self.host_of(repo).ok()?;
        Some(format!("{}/{path}.git", host.url))
    }
}

/// The commit `reference` (`refs/heads/main`) names at `url`: the host's reference listing,
/// read through a scratch repository (nothing is fetched). Blocks.
fn ls_remote(
    url: &str,
    credentials: Option<(String, Secret)>,
    reference: &str,
) -> Result<CommitId, SourceError> {
    let not_found = || SourceError::CommitNotFound {
        repository: url.to_string(),
        commit: reference.to_string(),
    };
    let failed = |err: gix::Error| classify(url, reference, err);
    let scratch = tempfile::tempdir().map_err(|source| SourceError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let repo = gix::init_bare(scratch.path()).map_err(failed)?;
    let remote = repo
        .remote_at(url)
        .map_err(failed)?
        .with_refspecs(
            [
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            ],
            gix::remote::Direction::Fetch,
        )
        .map_err(failed)?;
    let mut connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(failed)?;
    connection.set_credentials(move |action| give_credentials(action, &credentials));
    let (map, _handshake) = connection
        .ref_map(gix::progress::Discard, Default::default())
        .map_err(failed)?;
    for advertised in &map.remote_refs {
        let (name, target, peeled) = advertised.unpack();
        if name == reference.as_bytes() {
            let id = peeled.or(target).ok_or_else(not_found)?;
            return CommitId::parse(&id.to_string()).map_err(|_| not_found());
        }
    }
    Err(not_found())
}
