//! How long the function takes to start: from spawning `pushbuild-lambda` to its first request
//! for an event on the Lambda Runtime API (served here on 127.0.0.1). Prints the median, best
//! and worst of 20 starts. Run: `cargo bench --bench function_start_bench`.
//!
//! `START_BENCH_BASELINE=/path/to/pushbuild-lambda` times another build of the function (an
//! earlier commit's, say) in the same run, start for start, so the two can be compared on a
//! noisy machine: `bench/function_start_baseline.sh` builds one and does this.

#[path = "../tests/it/runtime_api.rs"]
#[allow(dead_code)]
mod runtime_api;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let runs: usize = std::env::var("START_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let baseline = std::env::var("START_BENCH_BASELINE").ok();
    let current = Path::new(env!("CARGO_BIN_EXE_pushbuild-lambda"));
    let mut times = Vec::with_capacity(runs);
    let mut base_times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(start_once(&runtime, current));
        if let Some(baseline) = &baseline {
            base_times.push(start_once(&runtime, Path::new(baseline)));
        }
    }
    print(
        &format!("function start ({})", current.display()),
        &mut times,
    );
    if let Some(baseline) = &baseline {
        print(&format!("baseline ({baseline})"), &mut base_times);
        let median = |t: &[Duration]| t[t.len() / 2].as_secs_f64() * 1000.0;
        println!(
            "difference of the medians: {:+.1} ms",
            median(&times) - median(&base_times)
        );
    }
}

/// Spawns `binary` and waits for its first `/invocation/next`.
fn start_once(runtime: &tokio::runtime::Runtime, binary: &Path) -> Duration {
    let api = runtime.block_on(runtime_api::RuntimeApi::start());
    let work = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pushbuild")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDSTARTBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "start-bench")
        .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_CODECOMMIT", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")
        .env("PUSHBUILD_BUCKET", "start-bench")
        .env("PUSHBUILD_WORK_DIR", work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the function starts");
    let polled = runtime.block_on(api.wait_for_polls(1, Duration::from_secs(10)));
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(polled, "{} never asked for an event", binary.display());
    elapsed
}

fn print(what: &str, times: &mut [Duration]) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let runs = times.len();
    println!(
        "{what}, spawn to first /invocation/next, {runs} runs: median {:.1} ms, best {:.1} ms, worst {:.1} ms",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1])
    );
}
