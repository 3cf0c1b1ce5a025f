//! Where builds' files land on the disk.
//!
//! On ext4 without a journal (this machine's disk, and a Firecracker guest's like it), the
//! inode allocator will not reuse an inode freed in the last 30 seconds, and finds that out by
//! walking past every such inode of the block group, from its first, on each file it creates.
//! A build that follows one whose files were just deleted in the same group pays for each of
//! them on each file it writes: about 1 ms a file after 3,000 deletions, where the same file
//! costs 35 µs in a group with none. ext4 places a directory's files in its own group and a
//! new subdirectory beside its parent, except under a directory marked as the top of a tree
//! (`chattr +T`): those subdirectories go to the group with the fewest directories and room
//! to spare, found from a point set by the name's hash. So the directory holding the builds'
//! directories is marked, and each build (a directory named by its unique id) lands in a group
//! of its own, away from the last build's deleted files.
//!
//! Nothing changes where the mark means nothing: another file system refuses it and is left
//! as it is; a journaled ext4 reuses inodes without walking; a file system of one group (flex
//! groups of 2 GB on a default ext4) has nowhere else to put a build.

use std::os::fd::AsRawFd;
use std::path::Path;

/// ext4's (and the generic file flags') "top of a directory hierarchy" flag, `FS_TOPDIR_FL`.
const TOPDIR: libc::c_int = 0x0002_0000;

/// Creates `dir` if it is missing and marks it so the file system spreads its subdirectories
/// over the disk. Whether the mark took is returned; a file system without it is not an error.
pub fn spread_subdirectories(dir: &Path) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let handle = std::fs::File::open(dir)?;
    let fd = handle.as_raw_fd();
    let mut flags: libc::c_int = 0;
    // SAFETY: `fd` is an open descriptor for the call's duration, and both requests read or
    // write one `int` at the pointer given, which points at `flags`.
    if unsafe { libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Ok(false);
    }
    if flags & TOPDIR != 0 {
        return Ok(true);
    }
    flags |= TOPDIR;
    // SAFETY: as above.
    Ok(unsafe { libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags) } == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory's flags as the file system keeps them.
    fn flags(dir: &Path) -> libc::c_int {
        let handle = std::fs::File::open(dir).unwrap();
        let mut flags: libc::c_int = 0;
        // SAFETY: as in `spread_subdirectories`.
        let read = unsafe { libc::ioctl(handle.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        assert_eq!(read, 0);
        flags
    }

    #[test]
    fn the_directory_is_made_and_marked_on_ext4() {
        let temp = tempfile::tempdir().unwrap();
        let builds = temp.path().join("builds");
        let marked = spread_subdirectories(&builds).unwrap();
        assert!(builds.is_dir());
        let fs = std::process::Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(&builds)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&fs.stdout).trim() == "ext2/ext3" {
            assert!(marked);
            assert_ne!(flags(&builds) & TOPDIR, 0);
        }
        // Marking again changes nothing and says the same.
        assert_eq!(spread_subdirectories(&builds).unwrap(), marked);
        // A subdirectory is not marked.
        std::fs::create_dir(builds.join("build-1")).unwrap();
        if marked {
            assert_eq!(flags(&builds.join("build-1")) & TOPDIR, 0);
        }
    }
}
