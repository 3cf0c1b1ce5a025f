//! Fetching a 2,000-file commit from the CodeCommit stand-in with 20 ms added to every call,
//! against the sequential lower bound (calls × 20 ms). Run: `cargo bench --bench fetch_bench`.
//! `FETCH_BENCH_CONCURRENCY` overrides the number of calls in flight.

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
mod codecommit_standin_ops;

use std::time::{Duration, Instant};

use codecommit_standin::{StandIn, git, init_repo};
use pushbuild::names::{CommitId, Repo, RepositoryName};
use pushbuild::source::{CodeCommitSource, Source};

const FILES: usize = 2_000;
const FOLDERS: usize = 40;
const LATENCY: Duration = Duration::from_millis(20);
const RUNS: usize = 3;

fn main() {
    let concurrency = std::env::var("FETCH_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CodeCommitSource::DEFAULT_CONCURRENCY);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(concurrency));
}

async fn bench(concurrency: usize) {
    let repo = tempfile::tempdir().expect("temp dir");
    init_repo(repo.path());
    for i in 0..FILES {
        let folder = repo.path().join(format!("pkg{:02}", i % FOLDERS));
        std::fs::create_dir_all(&folder).expect("folder");
        let body = format!("// file {i}\n").repeat(1 + i % 200);
        std::fs::write(folder.join(format!("f{i:04}.rs")), body).expect("file");
    }
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "2,000 files"]);
    let commit = CommitId::parse(&git(repo.path(), &["rev-parse", "HEAD"])).expect("a commit id");
    let bench = Repo::CodeCommit(RepositoryName::parse("bench").expect("a name"));

    let standin = StandIn::start("bench", repo.path()).await;
    standin.set_latency(LATENCY);
    let source = CodeCommitSource::new(standin.client(), concurrency);

    let mut times = Vec::new();
    for run in 0..RUNS {
        standin.reset_counts();
        let dest = tempfile::tempdir().expect("temp dir");
        let start = Instant::now();
        let summary = source
            .fetch(&bench, &commit, dest.path())
            .await
            .expect("fetch");
        let took = start.elapsed();
        assert_eq!(summary.files, FILES);
        let calls = standin.total_calls();
        let bound = LATENCY * calls as u32;
        println!(
            "run {}: {} files, {} bytes, {calls} calls (peak {} in flight) in {:.3} s; \
             sequential lower bound {:.1} s; ratio {:.1}%",
            run + 1,
            summary.files,
            summary.bytes,
            standin.peak_in_flight(),
            took.as_secs_f64(),
            bound.as_secs_f64(),
            100.0 * took.as_secs_f64() / bound.as_secs_f64(),
        );
        times.push((took, bound));
    }
    times.sort();
    let (median, bound) = times[RUNS / 2];
    println!(
        "fetch_bench: concurrency {concurrency}, latency {} ms: median {:.3} s against {:.1} s \
         sequential = {:.1}% (target < 10%)",
        LATENCY.as_millis(),
        median.as_secs_f64(),
        bound.as_secs_f64(),
        100.0 * median.as_secs_f64() / bound.as_secs_f64()
    );
}
