//! How fast `pushbuild serve` answers webhooks while their builds queue: 1,000 signed GitHub
//! pushes (each a new delivery) sent one after another to the real binary on 127.0.0.1, while
//! its two workers build the queued pushes (fetching from git's own `git http-backend`).
//! Prints the p50, p99 and worst time from sending a request to having its `202` answer.
//! Run: `cargo bench --bench webhook_bench` (WEBHOOK_BENCH_PUSHES sets the count).

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
#[allow(dead_code)]
mod codecommit_standin_ops;
#[path = "../tests/it/git_server.rs"]
mod git_server;
#[path = "../tests/it/github_api.rs"]
mod github_api;
#[path = "../tests/it/hooks.rs"]
mod hooks;
#[path = "../tests/it/loopback.rs"]
mod loopback;
#[path = "../tests/it/served.rs"]
mod served;

use std::time::{Duration, Instant};

fn main() {
    let pushes: usize = std::env::var("WEBHOOK_BENCH_PUSHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let repos = tempfile::tempdir().expect("temp dir");
    let commits = hooks::hosted_repository(repos.path());
    let git = git_server::GitServer::start(repos.path(), hooks::TOKEN);
    let api = github_api::GitHubApi::start(hooks::TOKEN);
    let store = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let queue = (pushes + 10).to_string();
    let served = served::serve(
        store.path(),
        work.path(),
        &["--jobs", "2", "--queue", &queue],
        &[
            ("PUSHBUILD_GITHUB_WEBHOOK_SECRET", hooks::SECRET.to_string()),
            ("PUSHBUILD_GITHUB_TOKEN", hooks::TOKEN.to_string()),
            ("PUSHBUILD_GITHUB_URL", git.url()),
            ("PUSHBUILD_GITHUB_API_URL", api.url()),
        ],
    );
    let url = served.url.clone();
    let client = reqwest::blocking::Client::new();
    let body = hooks::push("refs/heads/main", &commits.good, "A good build");
    let mut times = Vec::with_capacity(pushes);
    for i in 0..pushes {
        let (headers, bytes) = hooks::delivery("push", &body, &format!("bench-{i}"), hooks::SECRET);
        let mut request = client.post(format!("{url}/webhooks/github")).body(bytes);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let response = request.send().expect("an answer");
        let status = response.status().as_u16();
        let _ = response.bytes();
        times.push(started.elapsed());
        assert_eq!(status, 202, "push {i}");
    }
    let built = std::fs::read_dir(store.path().join("builds").join(git.project("octo/app")))
        .map(|dir| dir.count())
        .unwrap_or(0);
    drop(served);
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "pushbuild serve, {pushes} signed pushes answered 202 while builds queue ({built} built meanwhile): \
         p50 {:.2} ms, p99 {:.2} ms, worst {:.2} ms",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(times[times.len() - 1])
    );
}
