//! How long a stop takes to take effect: a build of ten minutes is started, and once it runs
//! (its live log is in the store) `pushbuild stop` asks it to stop; the time runs from the ask
//! stored to the build's end recorded. Under `pushbuild serve` (a signed GitHub push, git's own
//! `git http-backend`, the local store) and in the real function binary (the Lambda Runtime API,
//! s3s-fs, moto's DynamoDB, the CodeCommit stand-in), five rounds each, each asking at another
//! point of the build's 2 s cycle of looking for an ask (so the worst is 2 s, plus the kill and
//! the record; the target is under 5 s).
//!
//! Run: `cargo bench --bench stop_bench` (STOP_BENCH_ROUNDS, default 5).

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
#[allow(dead_code)]
mod codecommit_standin_ops;
#[path = "../tests/it/dynamo_server.rs"]
mod dynamo_server;
#[path = "../tests/it/git_server.rs"]
mod git_server;
#[path = "../tests/it/github_api.rs"]
mod github_api;
#[path = "../tests/it/hooks.rs"]
mod hooks;
#[path = "../tests/it/loopback.rs"]
mod loopback;
#[path = "../tests/it/runtime_api.rs"]
#[allow(dead_code)]
mod runtime_api;
#[path = "../tests/it/s3_server.rs"]
mod s3_server;
#[path = "../tests/it/served.rs"]
mod served;
#[path = "../tests/it/tools.rs"]
mod tools;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

/// A wait before round `round`'s ask, spread over the watch's 2 s so the rounds do not all ask
/// at the same point of its cycle.
fn spread(round: usize) -> Duration {
    Duration::from_millis((round as u64 * 410) % 2000)
}

/// `pushbuild stop` until it has asked (a build just handed off may not have begun).
fn stop(project: &str, build_id: &str, at: &[String], env: &[(&'static str, String)]) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .args(["stop", project, build_id])
            .args(at)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("pushbuild runs");
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < until,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(path: &Path) {
    let until = Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        assert!(Instant::now() < until, "{} never came", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn summary(name: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let secs: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2}", t.as_secs_f64()))
        .collect();
    println!(
        "{name}: ask to end recorded {} s (median {:.2} s, worst {:.2} s)",
        secs.join(", "),
        sorted[sorted.len() / 2].as_secs_f64(),
        sorted[sorted.len() - 1].as_secs_f64()
    );
}

fn under_serve(rounds: usize) -> Vec<Duration> {
    let repos = tempfile::tempdir().expect("temp dir");
    let commits = hooks::hosted_repository(repos.path());
    let git = git_server::GitServer::start(repos.path(), hooks::TOKEN);
    let api = github_api::GitHubApi::start(hooks::TOKEN);
    let (store, work) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let served = served::serve(
        store.path(),
        work.path(),
        &["--jobs", "2"],
        &[
            ("PUSHBUILD_GITHUB_WEBHOOK_SECRET", hooks::SECRET.to_string()),
            ("PUSHBUILD_GITHUB_TOKEN", hooks::TOKEN.to_string()),
            ("PUSHBUILD_GITHUB_URL", git.url()),
            ("PUSHBUILD_GITHUB_API_URL", api.url()),
            ("PUSHBUILD_LIVE_LOG_SECONDS", "1".to_string()),
        ],
    );
    let project = git.project("octo/app");
    let client = reqwest::blocking::Client::new();
    let at = vec!["--store".to_string(), store.path().display().to_string()];
    let mut times = Vec::new();
    for round in 0..rounds {
        let body = hooks::push("refs/heads/slow", &commits.slow, "ten minutes");
        let (headers, bytes) =
            hooks::delivery("push", &body, &format!("stop-{round}"), hooks::SECRET);
        let mut request = client
            .post(format!("{}/webhooks/github", served.url))
            .body(bytes);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let answer: Value = serde_json::from_str(&request.send().unwrap().text().unwrap()).unwrap();
        let id = answer["builds"][0]["buildId"]
            .as_str()
            .expect("queued")
            .to_string();
        let dir = store.path().join("builds").join(&project).join(&id);
        wait_for(&dir.join("live.log"));
        std::thread::sleep(spread(round));
        stop(&project, &id, &at, &[]);
        let asked = Instant::now();
        wait_for(&dir.join("build.json"));
        times.push(asked.elapsed());
    }
    times
}

fn in_the_function(rounds: usize) -> Vec<Duration> {
    const REPO: &str = "stopping";
    let work = tempfile::tempdir().expect("temp dir");
    let tree = work.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    codecommit_standin::init_repo(&tree);
    std::fs::write(
        tree.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo waiting\n      - sleep 600\n",
    )
    .expect("buildspec");
    codecommit_standin::git(&tree, &["add", "-A"]);
    codecommit_standin::git(&tree, &["commit", "-q", "-m", "ten minutes"]);
    let head = codecommit_standin::git(&tree, &["rev-parse", "HEAD"]);
    let s3 = s3_server::S3Server::start();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let standin = runtime.block_on(codecommit_standin::StandIn::start(REPO, &tree));
    let api = runtime.block_on(RuntimeApi::start());
    let dynamo = dynamo_server::DynamoServer::shared();
    let table = dynamo.new_table();
    let fn_dir = work.path().join("fn");
    std::fs::create_dir_all(&fn_dir).expect("fn dir");
    let mut function = Command::new(env!("CARGO_BIN_EXE_pushbuild-lambda"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pushbuild")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL_CODECOMMIT", standin.endpoint())
        .env("PUSHBUILD_BUCKET", &s3.bucket)
        .env("PUSHBUILD_S3_PATH_STYLE", "true")
        .env("PUSHBUILD_WORK_DIR", &fn_dir)
        .env("PUSHBUILD_CODECOMMIT_GIT", "false")
        .env("PUSHBUILD_LIVE_LOG_SECONDS", "1")
        .env("PUSHBUILD_INDEX_TABLE", &table)
        .envs(s3.env())
        .envs(dynamo.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the function binary starts");
    let mut env = s3.env();
    env.extend(dynamo.env());
    let at = vec![
        "--bucket".to_string(),
        s3.bucket.clone(),
        "--table".to_string(),
        table,
    ];
    let handle = runtime.handle().clone();
    let mut times = Vec::new();
    for round in 0..rounds {
        let event = json!({"repository": REPO, "sourceVersion": head, "initiator": format!("bench-{round}")});
        let builds = s3.root().join(&s3.bucket).join("builds").join(REPO);
        let before: Vec<_> = std::fs::read_dir(&builds)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        let (api, handle2) = (&api, handle.clone());
        let elapsed = std::thread::scope(|scope| {
            let invocation = scope.spawn(move || {
                handle2.block_on(api.invoke(
                    event,
                    Duration::from_secs(900),
                    Duration::from_secs(60),
                ))
            });
            // The new build's folder, once its live log is there.
            let until = Instant::now() + Duration::from_secs(60);
            let id = loop {
                let found = std::fs::read_dir(&builds).ok().and_then(|d| {
                    d.flatten()
                        .find(|e| {
                            !before.contains(&e.file_name()) && e.path().join("live.log").exists()
                        })
                        .map(|e| e.file_name().to_string_lossy().to_string())
                });
                if let Some(id) = found {
                    break id;
                }
                assert!(Instant::now() < until, "the build never ran");
                std::thread::sleep(Duration::from_millis(10));
            };
            std::thread::sleep(spread(round));
            stop(REPO, &id, &at, &env);
            let asked = Instant::now();
            let outcome = invocation.join().expect("the invocation");
            let elapsed = asked.elapsed();
            let Outcome::Response(answer) = outcome else {
                panic!("the invocation failed: {outcome:?}");
            };
            assert_eq!(answer["builds"][0]["status"], "STOPPED", "{answer}");
            elapsed
        });
        times.push(elapsed);
    }
    let _ = function.kill();
    let _ = function.wait();
    times
}

fn main() {
    let rounds: usize = std::env::var("STOP_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    summary("pushbuild serve", &under_serve(rounds));
    summary("the function binary", &in_the_function(rounds));
}
