//! Fetching a 2,000-file commit of a hosted repository over git's smart HTTP protocol, from git's
//! own `git http-backend` on 127.0.0.1 (requiring the token), with pushbuild's in-process client
//! (gix, depth 1) against `git clone --depth 1` of the same, runs interleaved. Prints both
//! medians and their ratio. Run: `cargo bench --bench hosted_fetch_bench`.

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
#[allow(dead_code)]
mod codecommit_standin_ops;
#[path = "../tests/it/git_server.rs"]
mod git_server;
#[path = "../tests/it/loopback.rs"]
mod loopback;

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
const RUNS: usize = 7;
const TOKEN: &str = "bench-token";

fn main() {
    let repos = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
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
    publish(repos.path(), "octo/reference", work.path());
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
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let dest = tempfile::tempdir().expect("temp dir");
        let started = Instant::now();
        let summary = runtime
            .block_on(source.fetch(&project, &commit, &dest.path().join("src")))
            .expect("pushbuild fetches");
        ours.push(started.elapsed());
        assert_eq!(summary.files, FILES);

        let dest = tempfile::tempdir().expect("temp dir");
        let started = Instant::now();
        let out = Command::new("git")
            .args([
                "-c",
                &format!("http.extraHeader=Authorization: Basic {basic}"),
            ])
            .args(["clone", "-q", "--depth", "1", &url])
            .arg(dest.path().join("src"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        theirs.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ours.sort();
    theirs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (a, b) = (ms(ours[RUNS / 2]), ms(theirs[RUNS / 2]));
    println!(
        "2,000-file commit over loopback git http-backend, median of {RUNS}: pushbuild (gix, depth 1) \
         {a:.0} ms, git clone --depth 1 {b:.0} ms: {:.2}x git's time",
        a / b
    );
}
