//! Where a benchmark puts its files, and what file system that is: a disk by default (Cargo's
//! directory for benchmarks' files, under `target/`), another place when `variable` names one
//! (`/dev/shm` for tmpfs). On a disk, creating files costs what Lambda's `/tmp` (a disk) costs;
//! on tmpfs, far less.

use std::path::PathBuf;

/// The benchmark's folder: `$variable`, else `target/tmp`.
pub fn bench_dir(variable: &str) -> PathBuf {
    let dir = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&dir).expect("the benchmark's folder");
    dir
}

/// The file system `dir` is on, as `stat -f` names it (`ext2/ext3` for ext4, `tmpfs`).
pub fn fs_type(dir: &std::path::Path) -> String {
    std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}
