//! A build's directories go after its answer, on a thread of their own, and never while another
//! build's source is being written: on a disk, deleting thousands of files slows each file the
//! next checkout creates meanwhile (on ext4 without a journal, the inode allocator walks past
//! every inode freed in the last minute; on Lambda, a removal the freeze interrupted goes on
//! when the sandbox thaws, which is when the next build begins). The removal gives way: before
//! each file it removes it looks whether a fetch is under way, and waits while one is (at most
//! [`MOST_WAIT`] in all, so a busy `serve` still frees its disk). Where the builds keep spare
//! files (`PUSHBUILD_SPARE_FILES`), the removal moves each file it can into the pool, emptied,
//! rather than deleting it, and frees no inode for the next checkout to walk past.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::source::Spares;

/// Fetches under way in this process.
static FETCHING: AtomicUsize = AtomicUsize::new(0);

/// The longest a removal waits for fetches, in all.
const MOST_WAIT: Duration = Duration::from_secs(60);

/// Held while a build's source is written: removals wait until it is dropped.
pub(super) struct Fetching(());

impl Fetching {
    pub fn begin() -> Fetching {
        FETCHING.fetch_add(1, Ordering::SeqCst);
        Fetching(())
    }
}

impl Drop for Fetching {
    fn drop(&mut self) {
        FETCHING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Removes `root` and everything under it on a thread of its own, giving way to fetches; the
/// files `spares` keeps are moved there rather than deleted.
pub(super) fn remove_in_background(root: PathBuf, spares: Option<Arc<Spares>>) {
    let removing = root.clone();
    let spawned = std::thread::Builder::new()
        .name("pushbuild-clean".to_string())
        .spawn(move || {
            let mut gentle = Gentle {
                waited: Duration::ZERO,
                spares,
            };
            if gentle.remove(&removing).is_err() {
                // What giving way could not remove (a read-only folder): as before.
                let _ = std::fs::remove_dir_all(&removing);
            }
        });
    if spawned.is_err() {
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// A removal that waits for fetches.
struct Gentle {
    waited: Duration,
    spares: Option<Arc<Spares>>,
}

impl Gentle {
    fn remove(&mut self, dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            self.give_way();
            let meta = entry.metadata()?;
            let path = entry.path();
            if meta.is_dir() {
                self.remove(&path)?;
            } else if !self
                .spares
                .as_ref()
                .is_some_and(|spares| spares.keep(&path, &meta))
            {
                std::fs::remove_file(&path)?;
            }
        }
        std::fs::remove_dir(dir)
    }

    /// Waits while a fetch is under way, until it ends or the removal has waited its most.
    fn give_way(&mut self) {
        while FETCHING.load(Ordering::SeqCst) > 0 && self.waited < MOST_WAIT {
            let began = Instant::now();
            std::thread::sleep(Duration::from_millis(10));
            self.waited += began.elapsed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removal_waits_while_a_fetch_is_under_way_then_removes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("build");
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::write(root.join("src/deep/a.txt"), "a").unwrap();
        std::fs::write(root.join("b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("b.txt", root.join("link")).unwrap();
        let fetching = Fetching::begin();
        remove_in_background(root.clone(), None);
        std::thread::sleep(Duration::from_millis(200));
        for kept in ["b.txt", "link", "src/deep/a.txt"] {
            assert!(
                root.join(kept).symlink_metadata().is_ok(),
                "{kept} removed while a fetch was under way"
            );
        }
        drop(fetching);
        let until = Instant::now() + Duration::from_secs(10);
        while root.exists() {
            assert!(Instant::now() < until, "never removed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_finished_build_s_regular_files_are_kept_as_spares_and_the_rest_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Arc::new(Spares::new(dir.path().join("spare"), 100).unwrap());
        let root = dir.path().join("build");
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::write(root.join("src/deep/a.txt"), "a").unwrap();
        std::fs::write(root.join("b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("b.txt", root.join("link")).unwrap();
        remove_in_background(root.clone(), Some(spares.clone()));
        let until = Instant::now() + Duration::from_secs(10);
        while root.exists() {
            assert!(Instant::now() < until, "never removed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            spares.len(),
            2,
            "the two files, not the link or the folders"
        );
        let pool: Vec<u64> = std::fs::read_dir(dir.path().join("spare"))
            .unwrap()
            .map(|entry| entry.unwrap().metadata().unwrap().len())
            .collect();
        assert_eq!(pool, [0, 0], "emptied");
    }
}
