//! What the work directory's file system is, said once when the function or `serve` starts, and
//! whether finished builds' files are kept there as spare files.
//!
//! What a build's files cost depends on it: on ext4 without a journal, the inode allocator will
//! not reuse an inode freed in the last minute and walks past each such inode on every file
//! created, so a build that follows another's deletions can pay up to a millisecond a file
//! (`bench/recent_deletions.py`). Whether Lambda's `/tmp` keeps a journal is not published; the
//! function's log says, for the sandbox it runs in.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::source::Spares;

/// The most spare files kept: a large repository's checkout.
const MOST_SPARES: u64 = 20_000;

/// Where a finished build's files are kept, emptied, for the next checkout to write into
/// (`<work dir>/spare`): where `PUSHBUILD_SPARE_FILES` says, by default where the work directory
/// is on ext4 without a journal (where creating a file after deletions is what costs). At most
/// 20,000 files, and an eighth of the file system's inodes (Lambda's smallest `/tmp` has 32,768).
pub fn spare_files(config: &Config) -> Option<Arc<Spares>> {
    let work_dir = &config.work_dir;
    let existing = work_dir.ancestors().find(|dir| dir.exists())?;
    let wanted = config.git.spare_files.unwrap_or_else(|| {
        describe(existing).is_some_and(|disk| disk.kind == "ext4" && disk.journal == Some(false))
    });
    if !wanted {
        return None;
    }
    let inodes = nix::sys::statvfs::statvfs(existing).map_or(0, |stats| stats.files());
    // A file system that counts no inodes (btrfs) has no limit to keep to.
    let most = match inodes {
        0 => MOST_SPARES,
        inodes => MOST_SPARES.min(inodes / 8),
    };
    let dir = work_dir.join("spare");
    match Spares::new(dir.clone(), usize::try_from(most).unwrap_or(usize::MAX)) {
        Ok(spares) => {
            tracing::info!(dir = %dir.display(), most, "finished builds' files are kept for the next checkout");
            Some(Arc::new(spares))
        }
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "no spare files: the folder could not be made");
            None
        }
    }
}

/// The work directory's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WorkDisk {
    /// `ext4`, `tmpfs`, `xfs`, `overlay`, or the file system's magic number in hex.
    pub kind: String,
    /// For ext4, whether it keeps a journal, when the system says (`/sys/fs/ext4`).
    pub journal: Option<bool>,
}

/// The file system `dir` is on; `None` when it cannot be read (the directory is missing).
pub(super) fn describe(dir: &Path) -> Option<WorkDisk> {
    use nix::sys::statfs;
    let found = statfs::statfs(dir).ok()?.filesystem_type();
    let kind = match found {
        statfs::EXT4_SUPER_MAGIC => "ext4".to_string(),
        statfs::TMPFS_MAGIC => "tmpfs".to_string(),
        statfs::XFS_SUPER_MAGIC => "xfs".to_string(),
        statfs::OVERLAYFS_SUPER_MAGIC => "overlay".to_string(),
        other => format!("{:#x}", other.0),
    };
    let journal = if kind == "ext4" {
        let dev = std::fs::metadata(dir).ok()?.dev();
        ext4_journal(nix::sys::stat::major(dev), nix::sys::stat::minor(dev))
    } else {
        None
    };
    Some(WorkDisk { kind, journal })
}

/// Whether the ext4 file system on block device `major:minor` keeps a journal: its journal
/// thread, as `/sys/fs/ext4/<device>/journal_task` names it (`<none>` without one).
fn ext4_journal(major: u64, minor: u64) -> Option<bool> {
    let device = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    let name = device.file_name()?.to_str()?.to_string();
    let task = std::fs::read_to_string(format!("/sys/fs/ext4/{name}/journal_task")).ok()?;
    Some(has_journal(&task))
}

/// Whether a `journal_task` file's text names a journal thread.
fn has_journal(task: &str) -> bool {
    task.trim() != "<none>"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(work_dir: &Path, spare_files: &str) -> Config {
        let (work_dir, spare_files) = (work_dir.display().to_string(), spare_files.to_string());
        Config::from_vars(|name| match name {
            "PUSHBUILD_BUCKET" => Some("bucket".to_string()),
            "PUSHBUILD_WORK_DIR" => Some(work_dir.clone()),
            "PUSHBUILD_SPARE_FILES" => Some(spare_files.clone()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn spare_files_are_kept_where_the_setting_says_and_none_when_the_pool_cannot_be_made() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let spares = spare_files(&config(&work, "true")).expect("a pool");
        assert!(spares.is_empty());
        assert!(work.join("spare").is_dir());
        assert!(spare_files(&config(&work, "false")).is_none());
        // `spare` taken by a file: no pool, and the builds go on without one.
        std::fs::remove_dir(work.join("spare")).unwrap();
        std::fs::write(work.join("spare"), "not a folder").unwrap();
        assert!(spare_files(&config(&work, "true")).is_none());
        assert_eq!(
            std::fs::read_to_string(work.join("spare")).unwrap(),
            "not a folder"
        );
    }

    #[test]
    fn a_journal_task_of_none_means_no_journal() {
        assert!(!has_journal("<none>\n"));
        assert!(has_journal("jbd2/vda-8\n"));
    }

    #[test]
    fn the_work_directory_s_file_system_is_named_as_stat_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let disk = describe(dir.path()).unwrap();
        let out = std::process::Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(dir.path())
            .output()
            .unwrap();
        let named = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let expected = match named.as_str() {
            "ext2/ext3" => "ext4",
            other => other,
        };
        assert_eq!(disk.kind, expected);
        if disk.kind != "ext4" {
            assert_eq!(disk.journal, None);
        } else if Path::new("/sys/fs/ext4").is_dir() {
            assert!(disk.journal.is_some(), "{disk:?}");
        }
        assert_eq!(describe(&dir.path().join("missing")), None);
    }
}
