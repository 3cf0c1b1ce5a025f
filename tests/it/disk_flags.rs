//! A directory's file flags, read from the file system.

use std::os::fd::AsRawFd;
use std::path::Path;

/// `FS_TOPDIR_FL`: the directory's subdirectories are spread over the disk.
const TOPDIR: libc::c_int = 0x0002_0000;

/// Whether `dir` is on ext4 (`stat -f` says `ext2/ext3`).
pub fn is_ext4(dir: &Path) -> bool {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "ext2/ext3"
}

/// Whether `dir` carries the mark that spreads its subdirectories (`chattr +T`).
pub fn spreads_subdirectories(dir: &Path) -> bool {
    let handle = std::fs::File::open(dir).unwrap();
    let mut flags: libc::c_int = 0;
    // SAFETY: the descriptor is open for the call, which writes one `int` into `flags`.
    let read = unsafe { libc::ioctl(handle.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    assert_eq!(read, 0, "{}", std::io::Error::last_os_error());
    flags & TOPDIR != 0
}
