//! Fetching and checking out a 2,000-file commit of a hosted repository over git's smart HTTP
//! protocol, from git's own `git http-backend` on 127.0.0.1 (requiring the token, the repository
//! packed as a host keeps it), with pushbuild's in-process client (gix, depth 1) against `git
//! clone --depth 1` of the same, sides taking turns, under two conditions:
//!
//! - **quiet**: the disk's pending writes flushed (`sync`) before each run;
//! - **after a build**: right after a previous build's files (its 2,000 source files and 1,000
//!   artifact files of 200 KB) were written and deleted beside the peer's clones, as each build
//!   on Lambda follows the last one's.
//!
//! Four sides: pushbuild where the product puts a build (its own directory in the builds'
//! directory, marked to spread builds over the disk: see `source::disk`), pushbuild beside the
//! peer's clones (the fetch alone, where the deleted files are), the peer, and the peer cloning
//! into a directory spread the same way (what the placement alone is worth).
//!
//! Everything lives on a disk by default (Cargo's `target/tmp`), or where `FETCH_BENCH_DIR`
//! says (`/dev/shm` for tmpfs); the file system is printed with the figures. Prints each side's
//! median and their ratios per condition, and the median of each of pushbuild's stages (the
//! pack's download and index, the checkout, the check of what was written). Run:
//! `cargo bench --bench hosted_fetch_bench` (FETCH_BENCH_RUNS, default 7).

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
use pushbuild::source::disk::spread_subdirectories;
use pushbuild::source::{GitHost, HostedSource, Source};

const FILES: usize = 2_000;
const FOLDERS: usize = 40;
const TOKEN: &str = "bench-token";
/// The sides: pushbuild in its builds' directory, pushbuild beside the peer's clones, the peer,
/// the peer in a directory spread as pushbuild's builds are.
const BUILDS: usize = 0;
const GIT: usize = 2;
const GIT_SPREAD: usize = 3;
const SIDES: usize = 4;

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
    // pushbuild's builds go where the product puts them: each in its own directory, named as
    // uniquely as a build's id, in a directory marked to spread them (see `source::disk`).
    let home = tempfile::tempdir_in(&base).expect("temp dir");
    let builds = home.path().join("builds");
    let spread = spread_subdirectories(&builds).expect("the builds' directory");
    let git_builds = home.path().join("clones");
    spread_subdirectories(&git_builds).expect("the clones' directory");
    println!(
        "2,000-file commit over loopback git http-backend, files under {} ({fs}; builds' directory spread: {spread}), median of {runs}:",
        base.display()
    );
    for condition in ["quiet", "after a build"] {
        let mut took: [Vec<Duration>; SIDES] = Default::default();
        let mut stages: Vec<(&str, Vec<Duration>)> = Vec::new();
        for round in 0..runs {
            for turn in 0..SIDES {
                let side = (round + turn) % SIDES;
                let parent = match side {
                    BUILDS => &builds,
                    GIT_SPREAD => &git_builds,
                    _ => &base,
                };
                let dest = tempfile::tempdir_in(parent).expect("temp dir");
                if condition == "quiet" {
                    sync();
                } else {
                    previous_build(&base);
                }
                let src = dest.path().join("src");
                if side == GIT || side == GIT_SPREAD {
                    took[side].push(theirs(&src));
                    continue;
                }
                let (ours_took, timed) = ours(&src);
                took[side].push(ours_took);
                if side == BUILDS {
                    for (stage, took) in timed {
                        match stages.iter_mut().find(|(name, _)| *name == stage) {
                            Some((_, runs)) => runs.push(took),
                            None => stages.push((stage, vec![took])),
                        }
                    }
                }
            }
        }
        let [builds_side, beside, git_side, git_spread] = took.map(median);
        println!(
            "  {condition:<14} pushbuild (gix, depth 1) {builds_side:>6.0} ms, git clone --depth 1 {git_side:>6.0} ms: {:.2}x git's time",
            builds_side / git_side
        );
        println!(
            "  {:<14} pushbuild beside git's clones (not spread) {beside:.0} ms: {:.2}x",
            "",
            beside / git_side
        );
        println!(
            "  {:<14} git clone --depth 1 into a spread directory {git_spread:.0} ms; pushbuild {:.2}x of that",
            "",
            builds_side / git_spread
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
