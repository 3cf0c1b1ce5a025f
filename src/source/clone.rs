//! One commit of a remote repository into a directory: a shallow fetch of the commit by its id
//! over git's smart HTTP protocol, then its tree checked out beside a real `.git` (`HEAD` at the
//! commit, the pack and its index, the index of the work tree), so `git rev-parse HEAD`,
//! `git log -1` and `git status` work in the build. Used for hosted repositories and for
//! CodeCommit's git endpoint.
//!
//! What it costs on a disk (Lambda's `/tmp` is one): the pack's download and its index, then one
//! file created per entry. Creating files is what a disk makes slow: on ext4 without a journal
//! (this machine's disk), the inode allocator will not reuse an inode freed in the last
//! minute and walks past each such inode below the first free older one on every creation, so
//! a checkout right after a build deleted thousands of files pays up to a millisecond a file.
//! Where that walk happens, the last build's files are kept, emptied ([`Spares`]), and moved to
//! the checkout's places before it writes: a rename allocates no inode. The walk is also work
//! for the processor, and a creation waiting on it or on the disk leaves its thread idle: the
//! checkout writes on several threads (gix's parallel checkout, at least [`CHECKOUT_WORKERS`],
//! more on a machine with more cores). What was checked out is counted
//! from the index the checkout wrote (no walk over the files), and only the symbolic links are
//! read back, to refuse one that leaves the source. The stages' times are returned for the
//! build's log.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::retrying::classify;
use super::spares::Spares;
use super::{FetchSummary, SourceError};
use crate::names::CommitId;
use crate::secret::Secret;

/// The fewest threads the checkout writes files on: creations that wait on the disk overlap.
pub const CHECKOUT_WORKERS: usize = 8;

/// A shallow clone (`depth` commits; 0: all) of `commit` from `url` into `dest`, with
/// `credentials` given when the server asks, its files written into `spares` where there are
/// any. Blocks: run it off the async threads.
pub(crate) fn clone_commit(
    url: String,
    credentials: Option<(String, Secret)>,
    commit: &CommitId,
    dest: &Path,
    depth: u32,
    spares: Option<Arc<Spares>>,
) -> Result<FetchSummary, SourceError> {
    ShallowClone {
        url,
        credentials,
        commit: commit.clone(),
        dest: dest.to_path_buf(),
        depth,
        spares,
    }
    .run()
}

/// One shallow clone of one commit.
pub(super) struct ShallowClone {
    pub url: String,
    /// (user, token), given to the host only when it asks.
    pub credentials: Option<(String, Secret)>,
    pub commit: CommitId,
    pub dest: PathBuf,
    pub depth: u32,
    /// Emptied files to write the checkout into, where the disk makes creating files slow.
    pub spares: Option<Arc<Spares>>,
}

impl ShallowClone {
    pub fn run(self) -> Result<FetchSummary, SourceError> {
        let interrupt = AtomicBool::new(false);
        let failed = |err: gix::Error| classify(&self.url, self.commit.as_str(), err);
        let shallow = match NonZeroU32::new(self.depth) {
            Some(depth) => gix::remote::fetch::Shallow::DepthAtRemote(depth),
            None => gix::remote::fetch::Shallow::NoChange,
        };
        let credentials = self.credentials.clone();
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .max(CHECKOUT_WORKERS);
        let open = gix::open::Options::isolated()
            .config_overrides([format!("checkout.workers={workers}")]);
        let began = Instant::now();
        let mut prepare = gix::clone::PrepareFetch::new(
            self.url.as_str(),
            &self.dest,
            gix::create::Kind::WithWorktree,
            gix::create::Options::default(),
            open,
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
        let (checkout, _fetched) = prepare
            .fetch_then_checkout(gix::progress::Discard, &interrupt)
            .map_err(failed)?;
        let fetched = began.elapsed();
        let repo = checkout.persist();
        let outcome = check_out(&repo, self.spares.as_deref(), &interrupt)?;
        let checked_out = began.elapsed() - fetched;
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
        let mut summary = summarize(&self.dest, &repo)?;
        summary.stages = vec![
            ("fetch", fetched),
            ("checkout", checked_out),
            ("check", began.elapsed() - fetched - checked_out),
        ];
        Ok(summary)
    }
}

/// Writes the commit's tree beside `repo`'s `.git` and the index of what was written: into spare
/// files moved to their places first when there are any, the rest on several threads.
fn check_out(
    repo: &gix::Repository,
    spares: Option<&Spares>,
    interrupt: &AtomicBool,
) -> Result<gix::worktree::state::checkout::Outcome, SourceError> {
    let workdir = repo
        .workdir()
        .ok_or_else(|| checkout_failed("the clone has no work tree"))?;
    let tree = repo.head_tree_id().map_err(checkout_failed)?;
    let mut index = repo.index_from_tree(&tree).map_err(checkout_failed)?;
    // Where no attributes could change a file (no `.gitattributes`: the repository is opened
    // without the system's or the user's settings), blobs are written as they are.
    let plain = !index
        .entries()
        .iter()
        .any(|entry| entry.path(&index).ends_with(b".gitattributes"));
    if let Some(spares) = spares.filter(|_| plain) {
        write_into_spares(repo, &mut index, workdir, spares)?;
    }
    let options = repo
        .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
        .map_err(checkout_failed)?;
    let objects = repo.objects.clone().into_arc().map_err(checkout_failed)?;
    let outcome = gix::worktree::state::checkout(
        &mut index,
        workdir,
        objects,
        &gix::progress::Discard,
        &gix::progress::Discard,
        interrupt,
        gix::worktree::state::checkout::Options {
            destination_is_initially_empty: true,
            ..options
        },
    )
    .map_err(checkout_failed)?;
    for entry in index.entries_mut() {
        entry.flags.remove(gix::index::entry::Flags::SKIP_WORKTREE);
    }
    index.write(Default::default()).map_err(checkout_failed)?;
    Ok(outcome)
}

/// Writes the commit's regular files, in the index's order, into spares moved to their places
/// while there are any (on as many threads as there are cores), each as its blob is (no filter
/// applies) with its mode, its stat taken into the index and the entry marked for the checkout
/// to skip.
fn write_into_spares(
    repo: &gix::Repository,
    index: &mut gix::index::File,
    workdir: &Path,
    spares: &Spares,
) -> Result<(), SourceError> {
    use gix::index::entry::{Flags, Mode};
    let regular: Vec<Spared> = index
        .entries()
        .iter()
        .enumerate()
        .filter(|(_, entry)| matches!(entry.mode, Mode::FILE | Mode::FILE_EXECUTABLE))
        .map_while(|(at, entry)| {
            Some(Spared {
                at,
                path: gix::path::from_bstr(entry.path(index)).ok()?.into_owned(),
                blob: entry.id,
                executable: entry.mode == Mode::FILE_EXECUTABLE,
            })
        })
        .collect();
    let placed = spares.place(workdir, regular.iter().map(|file| file.path.as_path()));
    let placed = &regular[..placed];
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let written: Vec<Result<Vec<(usize, gix::index::entry::Stat)>, SourceError>> =
        std::thread::scope(|scope| {
            let writers: Vec<_> = placed
                .chunks(placed.len().div_ceil(threads).max(1))
                .map(|part| {
                    let repo = repo.clone();
                    scope
                        .spawn(move || part.iter().map(|file| file.write(&repo, workdir)).collect())
                })
                .collect();
            writers
                .into_iter()
                .map(|writer| {
                    writer
                        .join()
                        .unwrap_or_else(|_| Err(checkout_failed("a writer failed")))
                })
                .collect()
        });
    for part in written {
        for (at, stat) in part? {
            let entry = &mut index.entries_mut()[at];
            entry.stat = stat;
            entry.flags.insert(Flags::SKIP_WORKTREE);
        }
    }
    Ok(())
}

/// A regular file of the commit that goes into a spare: its entry, path, blob and mode.
struct Spared {
    at: usize,
    path: PathBuf,
    blob: gix::ObjectId,
    executable: bool,
}

impl Spared {
    /// Writes the blob into the spare at the file's place, without truncating it (it was emptied
    /// when kept: on ext4, truncating a file to nothing makes its close start writing it out);
    /// the entry's index and the file's stat.
    fn write(
        &self,
        repo: &gix::Repository,
        workdir: &Path,
    ) -> Result<(usize, gix::index::entry::Stat), SourceError> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = workdir.join(&self.path);
        let io = |source: std::io::Error| SourceError::Io {
            path: path.clone(),
            source,
        };
        let blob = repo.find_blob(self.blob).map_err(checkout_failed)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        file.write_all(&blob.data).map_err(io)?;
        if self.executable {
            file.set_permissions(std::fs::Permissions::from_mode(0o755))
                .map_err(io)?;
        }
        let mut meta = gix::index::fs::Metadata::from_file(&file).map_err(io)?;
        if meta.len() > blob.data.len() as u64 {
            file.set_len(blob.data.len() as u64).map_err(io)?;
            meta = gix::index::fs::Metadata::from_file(&file).map_err(io)?;
        }
        let stat = gix::index::entry::Stat::from_fs(&meta).map_err(checkout_failed)?;
        Ok((self.at, stat))
    }
}

/// A checkout that could not be done, and why.
fn checkout_failed(message: impl std::fmt::Display) -> SourceError {
    SourceError::Api {
        operation: "git checkout",
        message: message.to_string(),
    }
}

/// Counts what was checked out from the index the checkout wrote, refuses links that leave the
/// source (only they are read back), and notes submodules, which are not fetched.
fn summarize(dest: &Path, repo: &gix::Repository) -> Result<FetchSummary, SourceError> {
    let io = |source: std::io::Error| SourceError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let index = repo.open_index().map_err(|err| SourceError::Api {
        operation: "git checkout",
        message: err.to_string(),
    })?;
    let root = std::fs::canonicalize(dest).map_err(io)?;
    let mut summary = FetchSummary::default();
    let mut submodules = false;
    for entry in index.entries() {
        let path = entry.path(&index);
        let mode = entry.mode;
        if mode == gix::index::entry::Mode::COMMIT {
            submodules = true;
        } else if mode == gix::index::entry::Mode::SYMLINK {
            let relative = gix::path::from_bstr(path).map_err(|_| SourceError::UnsafePath {
                path: path.to_string(),
            })?;
            let at = root.join(&relative);
            let target = std::fs::read_link(&at).map_err(io)?;
            if !stays_inside(&root, at.parent().unwrap_or(&root), &target) {
                return Err(SourceError::UnsafePath {
                    path: relative.display().to_string(),
                });
            }
            summary.files += 1;
        } else {
            summary.files += 1;
            summary.bytes += u64::from(entry.stat.size);
        }
    }
    if submodules || root.join(".gitmodules").is_file() {
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

/// What the git client is told when the host asks who it is: the (user, token), when there is
/// one. No token: the host's refusal is the answer; never a prompt.
pub(super) fn give_credentials(
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
