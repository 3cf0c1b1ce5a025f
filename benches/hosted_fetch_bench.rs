//! Fetching and checking out a 2,000-file commit of a hosted repository over git's smart HTTP
//! protocol, from git's own `git http-backend` on 127.0.0.1 (requiring the token, the repository
//! packed as a host keeps it): pushbuild's in-process client (gix, depth 1) against `git clone
//! --depth 1` of the same, taking turns, under two conditions:
//!
//! - **quiet**: the disk's pending writes flushed (`sync`) before each run;
//! - **after a build**: right after a previous build's files (its 2,000 source files and 1,000
//!   artifact files of 200 KB) were written beside the next one's folder and cleaned up, as
//!   each build on Lambda follows the last one's in the same folder: on ext4 without a journal,
//!   each file the next checkout creates walks past the inodes freed in the last minute (see
//!   `bench/recent_deletions.py`).
//!
//! pushbuild runs two ways: as it cleans up between builds where the disk has no journal (the
//! last build's files, its own checkout's and the previous build's, kept as spare files and
//! checked out into: `PUSHBUILD_SPARE_FILES`), and with every earlier folder deleted, as `git
//! clone`'s always are. The time the spare way's clean-up took (off the build's path: after its
//! answer) is printed too.
//!
//! Everything lives on a disk by default (Cargo's `target/tmp`), or where `FETCH_BENCH_DIR`
//! says (`/dev/shm` for tmpfs); the file system is printed with the figures. Prints each side's
//! median and its ratio to git's per condition, and the median of each of pushbuild's stages (the
//! pack's download and index, the checkout, the check of what was written). Run: `cargo bench
//! --bench hosted_fetch_bench` (FETCH_BENCH_RUNS, default 7).

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
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use codecommit_standin::init_repo;
use git_server::{GitServer, TOKEN_USER, git, publish};
use pushbuild::names::{CommitId, Host, Repo};
use pushbuild::secret::Secret;
use pushbuild::source::{GitHost, HostedSource, Source, Spares};

const FILES: usize = 2_000;
const FOLDERS: usize = 40;
const TOKEN: &str = "bench-token";

/// A previous build's files written under `dir` and cleaned up (kept in `spares` when given,
/// else deleted): 2,000 small source files and 1,000 artifact files of 200 KB.
fn previous_build(dir: &Path, spares: Option<&Spares>) {
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
    clean_up(&build, spares);
}

/// `dir` removed, its files kept in `spares` when given (as pushbuild's clean-up does).
fn clean_up(dir: &Path, spares: Option<&Spares>) {
    let Some(spares) = spares else {
        return std::fs::remove_dir_all(dir).expect("removed");
    };
    for entry in std::fs::read_dir(dir).expect("a folder") {
        let entry = entry.expect("an entry");
        let meta = entry.metadata().expect("its metadata");
        if meta.is_dir() {
            clean_up(&entry.path(), Some(spares));
        } else if !spares.keep(&entry.path(), &meta) {
            std::fs::remove_file(entry.path()).expect("removed");
        }
    }
    std::fs::remove_dir(dir).expect("removed");
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
    let pool = tempfile::tempdir_in(&base).expect("temp dir");
    let spares = Arc::new(Spares::new(pool.path().join("spare"), 20_000).expect("a pool"));
    let spared = source.clone().with_spares(Some(spares.clone()));
    let project = Repo::hosted(Host::GitHub, "octo/reference").expect("a repository");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_USER}:{TOKEN}"));
    let url = format!("{}/octo/reference.git", server.url());
    let ours = |source: &HostedSource, dest: &Path| {
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
    let names = [
        "pushbuild, spare files",
        "pushbuild, folders deleted",
        "git clone --depth 1",
    ];
    for condition in ["quiet", "after a build"] {
        let mut took: [Vec<Duration>; 3] = Default::default();
        let mut stages: [Vec<(&str, Vec<Duration>)>; 2] = Default::default();
        let mut cleaning = Vec::new();
        for round in 0..runs {
            for turn in 0..3 {
                let side = (round + turn) % 3;
                let kept = (side == 0).then_some(spares.as_ref());
                let dest = tempfile::tempdir_in(&base).expect("temp dir");
                if condition == "quiet" {
                    sync();
                } else {
                    // Beside the next build's folder, as builds follow each other in
                    // `<work dir>/builds/`: their files share a block group.
                    previous_build(dest.path(), kept);
                }
                let src = dest.path().join("src");
                if side == 2 {
                    took[2].push(theirs(&src));
                    continue;
                }
                let (ran, timed) = ours(if side == 0 { &spared } else { &source }, &src);
                took[side].push(ran);
                for (stage, ran) in timed {
                    match stages[side].iter_mut().find(|(name, _)| *name == stage) {
                        Some((_, runs)) => runs.push(ran),
                        None => stages[side].push((stage, vec![ran])),
                    }
                }
                if side == 0 {
                    let began = Instant::now();
                    clean_up(&src, kept);
                    cleaning.push(began.elapsed());
                }
            }
        }
        let medians = took.map(median);
        for (side, name) in names.iter().enumerate() {
            let ratio = medians[side] / medians[2];
            let label = if side == 0 { condition } else { "" };
            println!(
                "  {label:<14} {name:<27} {:>6.0} ms: {ratio:.2}x git's time",
                medians[side]
            );
        }
        for (side, timed) in stages.into_iter().enumerate() {
            let timed: Vec<String> = timed
                .into_iter()
                .map(|(stage, runs)| format!("{stage} {:.0} ms", median(runs)))
                .collect();
            println!(
                "  {:<14} {}'s stages: {}",
                "",
                names[side],
                timed.join(", ")
            );
        }
        println!(
            "  {:<14} the spare way's clean-up after each run (after the answer): {:.0} ms",
            "",
            median(cleaning)
        );
    }
}
