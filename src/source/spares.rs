//! Spare files: a finished build's files, emptied and kept, for the next checkout to write into.
//!
//! On ext4 without a journal, the inode allocator will not reuse an inode freed in the last
//! minute or so: each file created walks past every such inode below the first older free one,
//! so a checkout that follows a build's deletions pays up to a millisecond a file
//! (`bench/recent_deletions.py`). A file moved and written frees and allocates no inode. So
//! where that walk happens, a build's files are not deleted but kept here: each one truncated,
//! given the mode a new file has (`rw-r--r--`) and renamed into the pool; the next checkout
//! renames spares to its files' places and writes them (`clone.rs`). Only what is exactly a new
//! empty file once emptied is kept: a regular file of this process's user with one link and no
//! extended attributes; anything else, and what is past the pool's size, is deleted as before.
//! With a journal the walk does not happen and moving costs more than creating, so the pool is
//! only made where it pays (the lifecycle decides, from the work directory's file system).

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The mode a file is kept with: a new file's under the usual umask (022).
const KEPT_MODE: u32 = 0o644;

/// Emptied files waiting to be checked out into, in one directory.
#[derive(Debug)]
pub struct Spares {
    dir: PathBuf,
    /// The files in `dir`, taken from the end.
    kept: Mutex<Vec<PathBuf>>,
    /// The most files kept at once.
    most: usize,
    /// This process's user, who owns the pool: only its files are kept.
    owner: u32,
    named: AtomicU64,
}

impl Spares {
    /// An empty pool in `dir` (what an earlier process left there is removed) keeping at most
    /// `most` files. `dir` must be on the same file system as the builds' directories.
    pub fn new(dir: PathBuf, most: usize) -> std::io::Result<Spares> {
        match std::fs::remove_dir_all(&dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        std::fs::create_dir_all(&dir)?;
        // Emptied as they are, the files are the pool's alone.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let owner = std::fs::metadata(&dir)?.uid();
        Ok(Spares {
            dir,
            kept: Mutex::new(Vec::new()),
            most,
            owner,
            named: AtomicU64::new(0),
        })
    }

    /// Files waiting.
    pub fn len(&self) -> usize {
        self.kept.lock().map_or(0, |kept| kept.len())
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps `file` (described by `meta`, not following links) when it is one to keep and the
    /// pool has room: emptied, made `rw-r--r--` and moved into the pool. `false`: left where it
    /// is, for the caller to delete.
    pub fn keep(&self, file: &Path, meta: &Metadata) -> bool {
        if !meta.is_file() || meta.nlink() != 1 || meta.uid() != self.owner {
            return false;
        }
        if self.len() >= self.most {
            return false;
        }
        let name = self
            .dir
            .join(self.named.fetch_add(1, Ordering::Relaxed).to_string());
        if empty(file).is_err() || std::fs::rename(file, &name).is_err() {
            return false;
        }
        match self.kept.lock() {
            Ok(mut kept) => kept.push(name),
            Err(_) => return std::fs::remove_file(&name).is_ok(),
        }
        true
    }

    /// Moves a spare to the place of each of `files` in turn (relative paths under `dest`,
    /// regular files the checkout will write), making their folders, until the pool runs out;
    /// returns how many were placed: the first that many of `files`. A path that is not plain
    /// (`..`, absolute, inside `.git`: the checkout refuses it) ends the placing.
    pub fn place<'a>(&self, dest: &Path, files: impl IntoIterator<Item = &'a Path>) -> usize {
        let mut placed = 0;
        let mut made: Option<PathBuf> = None;
        for file in files {
            if !plain(file) {
                break;
            }
            let Some(spare) = self.kept.lock().ok().and_then(|mut kept| kept.pop()) else {
                break;
            };
            let at = dest.join(file);
            let folder = at.parent().unwrap_or(dest);
            let ready = made.as_deref() == Some(folder) || std::fs::create_dir_all(folder).is_ok();
            made = Some(folder.to_path_buf());
            if !ready || std::fs::rename(&spare, &at).is_err() {
                let _ = std::fs::remove_file(&spare);
                break;
            }
            placed += 1;
        }
        placed
    }
}

/// `file` truncated, its mode a new file's and without extended attributes (refused when it
/// has any: they would outlive the build). Opened without following a link or waiting on a
/// pipe, in case something the build left running put one there since it was looked at.
fn empty(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)?;
    let meta = opened.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 {
        return Err(std::io::Error::other("no longer a file of its own"));
    }
    opened.set_permissions(std::fs::Permissions::from_mode(KEPT_MODE))?;
    if has_extended_attributes(&opened) {
        return Err(std::io::Error::other("extended attributes"));
    }
    Ok(())
}

fn has_extended_attributes(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a null buffer of size 0 asks only for the length of the names' list.
    let size = unsafe { libc::flistxattr(file.as_raw_fd(), std::ptr::null_mut(), 0) };
    size != 0
}

/// Whether `path` is relative, made of plain names only, and outside `.git`.
fn plain(path: &Path) -> bool {
    let mut parts = path.components().peekable();
    let outside_git = !matches!(parts.peek(), Some(Component::Normal(first))
        if first.eq_ignore_ascii_case(".git"));
    outside_git && parts.all(|part| matches!(part, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &Path) -> Metadata {
        std::fs::symlink_metadata(path).unwrap()
    }

    #[test]
    fn a_kept_file_is_emptied_made_rw_r_r_and_placed_where_the_checkout_writes() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::new(dir.path().join("spare"), 10).unwrap();
        let old = dir.path().join("old.sh");
        std::fs::write(&old, "secret output").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o750)).unwrap();
        let inode = meta(&old).ino();
        assert!(spares.keep(&old, &meta(&old)));
        assert!(!old.exists());
        assert_eq!(spares.len(), 1);

        let dest = dir.path().join("src");
        std::fs::create_dir(&dest).unwrap();
        let files = [Path::new("deep/er/a.rs"), Path::new("b.rs")];
        assert_eq!(spares.place(&dest, files), 1, "one spare, one place");
        let placed = dest.join("deep/er/a.rs");
        assert_eq!(meta(&placed).ino(), inode, "the same inode");
        assert_eq!(meta(&placed).len(), 0);
        assert_eq!(meta(&placed).mode() & 0o7777, KEPT_MODE);
        assert!(!dest.join("b.rs").exists(), "left to the checkout");
        assert!(spares.is_empty());
    }

    #[test]
    fn links_shared_files_and_what_is_past_the_pool_s_size_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::new(dir.path().join("spare"), 1).unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "t").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        let shared = dir.path().join("shared");
        std::fs::hard_link(&target, &shared).unwrap();
        for refused in [&link, &folder, &shared] {
            assert!(!spares.keep(refused, &meta(refused)), "{refused:?} kept");
        }
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "t",
            "not emptied"
        );
        std::fs::remove_file(&shared).unwrap();
        assert!(spares.keep(&target, &meta(&target)));
        let more = dir.path().join("more");
        std::fs::write(&more, "m").unwrap();
        assert!(!spares.keep(&more, &meta(&more)), "the pool is full");
        assert_eq!(std::fs::read_to_string(&more).unwrap(), "m");
    }

    #[test]
    fn paths_outside_the_source_or_inside_git_get_no_spare() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::new(dir.path().join("spare"), 10).unwrap();
        let old = dir.path().join("old");
        std::fs::write(&old, "o").unwrap();
        assert!(spares.keep(&old, &meta(&old)));
        let dest = dir.path().join("src");
        let refused = ["../escape", "/abs", ".git/config", ".GIT/hooks/x", "a/../b"];
        assert_eq!(spares.place(&dest, refused.iter().map(Path::new)), 0);
        assert_eq!(spares.len(), 1);
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn a_new_pool_removes_what_an_earlier_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let pool = dir.path().join("spare");
        std::fs::create_dir(&pool).unwrap();
        std::fs::write(pool.join("7"), "left").unwrap();
        let spares = Spares::new(pool.clone(), 10).unwrap();
        assert!(spares.is_empty());
        assert_eq!(std::fs::read_dir(&pool).unwrap().count(), 0);
        assert_eq!(meta(&pool).mode() & 0o777, 0o700, "the pool's alone");
    }
}
