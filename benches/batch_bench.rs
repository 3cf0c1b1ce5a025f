//! A test suite as one build and as a fan-out of eight, through the real function binary: 64
//! test files, each waiting 2 s (waiting, not computing, so this machine's two cores do not
//! decide it), run by `codebuild-tests-run`. The single build runs them all; the fan-out's
//! eight children run eight each, every child in an invocation of its own, as Lambda runs them:
//! eight function processes poll one Lambda Runtime API, and each asynchronous invocation the
//! function makes of itself is handed to whichever polls next.
//!
//! Prints the single build's wall time (the invocation), the fan-out's (from the push's
//! invocation to the batch's record in the store) and their ratio (target ≤ 0.2), with each
//! child's BUILD phase. Servers: s3s-fs and the CodeCommit stand-in on 127.0.0.1, moto's
//! DynamoDB for the index.
//!
//! Run: `cargo bench --bench batch_bench` (BATCH_BENCH_SECONDS, default 2, the wait per file).

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
#[allow(dead_code)]
mod codecommit_standin_ops;
#[path = "../tests/it/dynamo_server.rs"]
mod dynamo_server;
#[path = "../tests/it/runtime_api.rs"]
#[allow(dead_code)]
mod runtime_api;
#[path = "../tests/it/s3_server.rs"]
mod s3_server;
#[path = "../tests/it/tools.rs"]
mod tools;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codecommit_standin::{StandIn, git, init_repo};
use runtime_api::{Outcome, RuntimeApi};
use s3_server::S3Server;
use serde_json::{Value, json};

const REPO: &str = "suite";
const FILES: usize = 64;
const SHARDS: usize = 8;

const RUN: &str = "for f in \"$@\"; do bash \"$f\"; done\n";

fn buildspec(batch: bool) -> String {
    let fanout = if batch {
        format!("batch:\n  build-fanout:\n    parallelism: {SHARDS}\n")
    } else {
        String::new()
    };
    format!(
        "version: 0.2\n{fanout}phases:\n  build:\n    commands:\n      \
         - codebuild-tests-run --test-command 'bash run.sh' --files-search \
         \"codebuild-glob-search 'tests/*.sh'\"\n"
    )
}

/// One function process; every one of them shares `index_env` (one table, as one function's
/// instances share it).
fn spawn_function(
    api: &RuntimeApi,
    s3: &S3Server,
    standin: &StandIn,
    work: &Path,
    index_env: &[(&'static str, String)],
) -> Child {
    std::fs::create_dir_all(work).expect("a work folder");
    Command::new(env!("CARGO_BIN_EXE_pushbuild-lambda"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pushbuild")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_ENDPOINT_URL_LAMBDA",
            format!("http://{}", api.endpoint()),
        )
        .env("AWS_ENDPOINT_URL_CODECOMMIT", standin.endpoint())
        .env("PUSHBUILD_BUCKET", &s3.bucket)
        .env("PUSHBUILD_S3_PATH_STYLE", "true")
        .env("PUSHBUILD_WORK_DIR", work)
        .env("PUSHBUILD_CODECOMMIT_GIT", "false")
        .envs(s3.env())
        .envs(index_env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(work.with_extension("stderr")).map_or(Stdio::null(), Stdio::from),
        )
        .spawn()
        .expect("the function binary starts")
}

fn invoke(runtime: &tokio::runtime::Handle, api: &RuntimeApi, event: Value) -> Value {
    let outcome =
        runtime.block_on(api.invoke(event, Duration::from_secs(900), Duration::from_secs(60)));
    let Outcome::Response(response) = outcome else {
        panic!("the invocation failed: {outcome:?}");
    };
    response["builds"][0].clone()
}

fn record(s3: &S3Server, key: &str) -> Value {
    serde_json::from_slice(&s3.object(key)).expect("a record")
}

fn build_ms(record: &Value) -> u64 {
    record["phases"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["phase"] == "BUILD"))
        .and_then(|p| p["duration_ms"].as_u64())
        .unwrap_or(0)
}

fn main() {
    let seconds: u64 = std::env::var("BATCH_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let work = tempfile::tempdir().expect("temp dir");
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("tests")).expect("tree");
    init_repo(&tree);
    for n in 0..FILES {
        let test = format!("echo test {n}; sleep {seconds}\n");
        std::fs::write(tree.join(format!("tests/t_{n:02}.sh")), test).expect("a test");
    }
    std::fs::write(tree.join("run.sh"), RUN).expect("run.sh");
    std::fs::write(tree.join("buildspec.yml"), buildspec(false)).expect("buildspec");
    git(&tree, &["add", "-A"]);
    git(&tree, &["commit", "-q", "-m", "one build"]);
    let single = git(&tree, &["rev-parse", "HEAD"]);
    std::fs::write(tree.join("buildspec.yml"), buildspec(true)).expect("buildspec");
    git(&tree, &["commit", "-q", "-am", "a fan-out"]);
    let fanout = git(&tree, &["rev-parse", "HEAD"]);

    let s3 = S3Server::start();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let standin = runtime.block_on(StandIn::start(REPO, &tree));
    let api = Arc::new(runtime.block_on(RuntimeApi::start()));
    let index_env = dynamo_server::DynamoServer::shared().env_with_table();
    let mut functions: Vec<Child> = (0..SHARDS)
        .map(|i| {
            let dir = work.path().join(format!("fn{i}"));
            spawn_function(&api, &s3, &standin, &dir, &index_env)
        })
        .collect();
    let handle = runtime.handle().clone();
    let event =
        |commit: &str| json!({"repository": REPO, "sourceVersion": commit, "initiator": "bench"});

    let started = Instant::now();
    let one = invoke(&handle, &api, event(&single));
    let single_time = started.elapsed();
    assert_eq!(one["status"], "SUCCEEDED", "{one}");
    let one = record(
        &s3,
        &format!(
            "builds/{REPO}/{}/build.json",
            one["buildId"].as_str().unwrap()
        ),
    );

    let started = Instant::now();
    let parent = invoke(&handle, &api, event(&fanout));
    let batch_id = parent["batch"].as_str().expect("a batch").to_string();
    let key = format!("batches/{REPO}/{batch_id}/batch.json");
    let on_disk = s3.root().join(&s3.bucket).join(&key);
    let mut handed = 0;
    let mut children = Vec::new();
    while !on_disk.exists() {
        if started.elapsed() > Duration::from_secs(300) {
            for i in 0..SHARDS {
                let log = work.path().join(format!("fn{i}.stderr"));
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                eprintln!("function {i}: {tail:?}");
            }
            panic!("the batch never closed; {handed} children handed");
        }
        let invocations =
            runtime.block_on(api.async_invocations(handed + 1, Duration::from_millis(100)));
        for (_, payload) in invocations[handed..].iter().cloned() {
            let (handle, api) = (handle.clone(), api.clone());
            children.push(std::thread::spawn(move || invoke(&handle, &api, payload)));
        }
        handed = invocations.len();
    }
    let fanout_time = started.elapsed();
    for child in children {
        let _ = child.join();
    }
    let batch = record(&s3, &key);
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    let shards: Vec<String> = batch["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let r = record(
                &s3,
                &format!(
                    "builds/{REPO}/{}/build.json",
                    c["buildId"].as_str().unwrap()
                ),
            );
            format!("{:.1}", build_ms(&r) as f64 / 1000.0)
        })
        .collect();
    println!(
        "{FILES} test files of {seconds} s: one build {:.1} s (BUILD {:.1} s); a fan-out of {SHARDS} \
         {:.1} s (children's BUILD: {} s); ratio {:.2}",
        single_time.as_secs_f64(),
        build_ms(&one) as f64 / 1000.0,
        fanout_time.as_secs_f64(),
        shards.join(", "),
        fanout_time.as_secs_f64() / single_time.as_secs_f64()
    );
    for function in &mut functions {
        let _ = function.kill();
        let _ = function.wait();
    }
}
