//! Hosted repositories (GitHub, and the hosts to come) over git's smart HTTP protocol, in-process
//! with gix: Lambda's image has no `git`. A build's commit is fetched shallow (depth 1 unless set
//! otherwise) by its id, into a real repository whose worktree is checked out with `HEAD` at the
//! commit, so `git rev-parse HEAD` and `git log -1` work in the build.
//!
//! The clone URL is built from the host's setting (`PUSHBUILD_GITHUB_URL` + `/<path>.git`),
//! never taken from a payload, so a token only goes to the configured host. The token is handed
//! to git's HTTP client when the host asks for it (a 401) and is written nowhere: not in the
//! remote URL, not in `.git/config`.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::retrying::{classify, retrying};
use super::{FetchSummary, ResolvedCommit, Source, SourceError};
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
}

impl HostedSource {
    pub fn new(hosts: Vec<GitHost>, depth: u32, submodules: bool) -> HostedSource {
        HostedSource {
            hosts,
            depth,
            submodules,
        }
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
            let job = Clone {
                url: format!("{}/{path}.git", host.url),
                credentials: host
                    .token
                    .clone()
                    .map(|token| (host.host.token_user().to_string(), token)),
                commit: commit.clone(),
                dest: dest.to_path_buf(),
                depth: self.depth,
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

/// A shallow clone (`depth` commits; 0: all) of `commit` from `url` into `dest`, with
/// `credentials` given when the server asks. Blocks: run it off the async threads.
pub(crate) fn clone_commit(
    url: String,
    credentials: Option<(String, Secret)>,
    commit: &CommitId,
    dest: &Path,
    depth: u32,
) -> Result<FetchSummary, SourceError> {
    Clone {
        url,
        credentials,
        commit: commit.clone(),
        dest: dest.to_path_buf(),
        depth,
    }
    .run()
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

/// One shallow clone of one commit.
struct Clone {
    url: String,
    /// (user, token), given to the host only when it asks.
    credentials: Option<(String, Secret)>,
    commit: CommitId,
    dest: std::path::PathBuf,
    depth: u32,
}

impl Clone {
    fn run(self) -> Result<FetchSummary, SourceError> {
        let interrupt = AtomicBool::new(false);
        let failed = |err: gix::Error| classify(&self.url, self.commit.as_str(), err);
        let shallow = match NonZeroU32::new(self.depth) {
            Some(depth) => gix::remote::fetch::Shallow::DepthAtRemote(depth),
            None => gix::remote::fetch::Shallow::NoChange,
        };
        let credentials = self.credentials.clone();
        let mut prepare = gix::clone::PrepareFetch::new(
            self.url.as_str(),
            &self.dest,
            gix::create::Kind::WithWorktree,
            gix::create::Options::default(),
            gix::open::Options::isolated(),
        )
        .map_err(failed)?
        .with_revision(Some(self.commit.as_str()))
        .map_err(failed)?
        .with_shallow(shallow)
        .configure_connection(move |connection| {
            let credentials = credentials.clone();
            connection.set_credentials(move |action| give_credentials(action, &credentials));
            Ok(())
        });
        let (mut checkout, _fetched) = prepare
            .fetch_then_checkout(gix::progress::Discard, &interrupt)
            .map_err(failed)?;
        let (repo, outcome) = checkout
            .main_worktree(gix::progress::Discard, &interrupt)
            .map_err(failed)?;
        let head = repo.head_id().map_err(|err| SourceError::Api {
            operation: "git checkout",
            message: err.to_string(),
        })?;
        let expected = gix::ObjectId::from_hex(self.commit.as_str().as_bytes()).ok();
        if expected != Some(head.detach()) {
            return Err(SourceError::Api {
                operation: "git checkout",
                message: format!("HEAD is {head}, not {}", self.commit),
            });
        }
        if let Some(collision) = outcome.collisions.first() {
            return Err(SourceError::UnsafePath {
                path: collision.path.to_string(),
            });
        }
        summarize(&self.dest)
    }
}

/// What the git client is told when the host asks who it is: the (user, token), when there is
/// one. No token: the host's refusal is the answer; never a prompt.
fn give_credentials(
    action: gix::credentials::helper::Action,
    credentials: &Option<(String, Secret)>,
) -> Result<Option<gix::credentials::protocol::Outcome>, gix::Error> {
    match (action, credentials) {
        (gix::credentials::helper::Action::Get(context), Some((user, token))) => {
            Ok(Some(gix::credentials::protocol::Outcome {
                identity: gix::sec::identity::Account {
                    username: user.clone(),
                    password: token.expose().to_string(),
                    oauth_refresh_token: None,
                },
                next: context.into(),
            }))
        }
        _ => Ok(None),
    }
}

/// Counts what was checked out (outside `.git`), refuses links that leave the source, and notes
/// submodules, which are not fetched.
fn summarize(dest: &Path) -> Result<FetchSummary, SourceError> {
    let mut summary = FetchSummary::default();
    let root = std::fs::canonicalize(dest).map_err(|source| SourceError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    let walk = walkdir::WalkDir::new(&root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|entry| entry.file_name() != ".git");
    for entry in walk {
        let entry = entry.map_err(|err| SourceError::Io {
            path: dest.to_path_buf(),
            source: err.into(),
        })?;
        let relative = entry.path().strip_prefix(&root).unwrap_or(entry.path());
        if entry.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|source| SourceError::Io {
                path: entry.path().to_path_buf(),
                source,
            })?;
            let parent = entry.path().parent().unwrap_or(&root);
            if !stays_inside(&root, parent, &target) {
                return Err(SourceError::UnsafePath {
                    path: relative.display().to_string(),
                });
            }
            summary.files += 1;
        } else if entry.file_type().is_file() {
            summary.files += 1;
            summary.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    if root.join(".gitmodules").is_file() {
        summary
            .notes
            .push("Submodules (.gitmodules) are not fetched".to_string());
    }
    Ok(summary)
}

/// Whether a link in `dir` pointing at `target` resolves inside `root`, judged by its text
/// (no link is followed).
fn stays_inside(root: &Path, dir: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut path = dir.to_path_buf();
    let walked = target.components().all(|part| match part {
        std::path::Component::ParentDir => path.pop() && path.starts_with(root),
        std::path::Component::Normal(name) => {
            path.push(name);
            true
        }
        _ => true,
    });
    walked && path.starts_with(root)
}
