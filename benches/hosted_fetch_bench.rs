//! Fetching and checking out a 2,000-file commit of a hosted repository over git's smart HTTP
//! protocol, from git's own `git http-backend` on 127.0.0.1 (requiring the token, the repository
//! packed as a host keeps it), with pushbuild's in-process client (gix, depth 1) against `git
//! clone --depth 1` of the same, in alternating order, under two conditions:
//!
//! - **quiet**: the disk's pending writes flushed (`sync`) before each run;
//! - **after a build**: right after a previous build's files (its 2,000 source files and 1,000
//!   artifact files of 200 KB) were written and deleted, as each build on Lambda follows the last
//!   one's: on ext4 without a journal, each file the next checkout creates walks past the inodes
//!   freed in the last 30 seconds (see `bench/recent_deletions.py`).
//!
//! Everything lives on a disk by default (Cargo's `target/tmp`), or where `FETCH_BENCH_DIR`
//! says (`/dev/shm` for tmpfs); the file system is printed with the figures. Prints each side's
//! median and their ratio per condition, and the median of each of pushbuild's stages (the
//! pack's download and index, the checkout, the check of what was written). Run: `cargo bench --bench hosted_fetch_bench`
//! (FETCH_BENCH_RUNS, default 7).

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
#[allow(dead_code)]
mod codecommit_standin_ops;
#[path = "common/disk.rs"]
mod disk;
#[path = "../tests/it/git_server.rs"]
mod git_server;
#[path = "../tests/it/loopback.rs"]
mod loopback;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use codecommit_standin::init_repo;
use git_server::{GitServer, TOKEN_USER, git, publish};
use pushbuild::names::{CommitId, Host, Repo};
use pushbuild::secret::Secret;
use pushbuild::source::{GitHost, HostedSource, Source};

const FILES: usize = 2_000;
const FOLDERS: usize = 40;
const TOKEN: &str = "bench-token";

/// A previous build's files written and deleted under `dir`: 2,000 small source files and
/// 1,000 artifact files of 200 KB.
fn previous_build(dir: &Path) {
    let build = dir.join("previous-build");
    let artifact = vec![b'a'; 200_000];
    for i in 0..3_000 {
        let folder = build.join(format!("d{:02}", i % 40));
        std::fs::create_dir_all(&folder).expect("folder");
        let body: &[u8] = if i < 2_000 {
            b"// a source file\n"
        } else {
            &artifact
        };
        std::fs::write(folder.join(format!("f{i:04}")), body).expect("file");
    }
    std::fs::remove_dir_all(&build).expect("removed");
}

fn sync() {
    let _ = Command::new("sync").status();
}

fn median(mut runs: Vec<Duration>) -> f64 {
    runs.sort();
    runs[runs.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let base = disk::bench_dir("FETCH_BENCH_DIR");
    let fs = disk::fs_type(&base);
    let runs: usize = std::env::var("FETCH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let repos = tempfile::tempdir_in(&base).expect("temp dir");
    let work = tempfile::tempdir_in(&base).expect("temp dir");
    init_repo(work.path());
    for i in 0..FILES {
        let folder = work.path().join(format!("pkg{:02}", i % FOLDERS));
        std::fs::create_dir_all(&folder).expect("folder");
        let body = format!("// file {i}\n").repeat(1 + i % 200);
        std::fs::write(folder.join(format!("f{i:04}.rs")), body).expect("file");
    }
    git(work.path(), &["add", "-A"]);
    git(work.path(), &["commit", "-q", "-m", "2,000 files"]);
    let commit = CommitId::parse(&git(work.path(), &["rev-parse", "HEAD"])).expect("a commit");
    let bare = publish(repos.path(), "octo/reference", work.path());
    git(&bare, &["repack", "-a", "-d", "-q", "--write-bitmap-index"]);
    let server = GitServer::start(repos.path(), TOKEN);
    let source = HostedSource::new(
        vec![GitHost {
            host: Host::GitHub,
            url: server.url(),
            token: Some(Secret::new(TOKEN)),
        }],
        1,
        false,
    );
    let project = Repo::hosted(Host::GitHub, "octo/reference").expect("a repository");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_USER}:{TOKEN}"));
    let url = format!("{}/octo/reference.git", server.url());
    let ours = |dest: &Path| {
        let started = Instant::now();
        let summary = runtime
            .block_on(source.fetch(&project, &commit, dest))
            .expect("pushbuild fetches");
        let took = started.elapsed();
        assert_eq!(summary.files, FILES);
        (took, summary.stages)
    };
    let theirs = |dest: &Path| {
        let started = Instant::now();
        let out = Command::new("git")
            .args([
                "-c",
                &format!("http.extraHeader=Authorization: Basic {basic}"),
            ])
            .args(["clone", "-q", "--depth", "1", &url])
            .arg(dest)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    };
    println!(
        "2,000-file commit over loopback git http-backend, files under {} ({fs}), median of {runs}:",
        base.display()
    );
    for condition in ["quiet", "after a build"] {
        let (mut pushbuild, mut git_clone) = (Vec::new(), Vec::new());
        let mut stages: Vec<(&str, Vec<Duration>)> = Vec::new();
        for round in 0..runs {
            for side in [round % 2, 1 - round % 2] {
                let dest = tempfile::tempdir_in(&base).expect("temp dir");
                if condition == "quiet" {
                    sync();
                } else {
                    previous_build(&base);
                }
                if side == 0 {
                    let (took, timed) = ours(&dest.path().join("src"));
                    pushbuild.push(took);
                    for (stage, took) in timed {
                        match stages.iter_mut().find(|(name, _)| *name == stage) {
                            Some((_, runs)) => runs.push(took),
                            None => stages.push((stage, vec![took])),
                        }
                    }
                } else {
                    git_clone.push(theirs(&dest.path().join("src")));
                }
            }
        }
        let (a, b) = (median(pushbuild), median(git_clone));
        println!(
            "  {condition:<14} pushbuild (gix, depth 1) {a:>6.0} ms, git clone --depth 1 {b:>6.0} ms: {:.2}x git's time",
            a / b
        );
        let stages: Vec<String> = stages
            .into_iter()
            .map(|(stage, runs)| format!("{stage} {:.0} ms", median(runs)))
            .collect();
        println!(
            "  {:<14} pushbuild's stages, median: {}",
            "",
            stages.join(", ")
        );
    }
}
