//! pushbuild's overhead against a hand-written build script's, on the reference workload: a git
//! repository of 2,000 source files (about 10 MB) whose buildspec writes 1,000 artifact files
//! (200 MB, half random and half text) into `dist/` and packages `dist/**/*`. Four sides, two
//! runs of each per round (the second counted), each round starting one side later, against
//! one S3 server (s3s-fs on 127.0.0.1):
//!
//! - **peer**: `git clone --depth 1` from git's own `git http-backend` (with the token), the
//!   build, `zip -r -q -1`, and the zip and the log uploaded with the AWS CLI;
//! - **pushbuild, git**: the function binary through the Lambda Runtime API, building the same
//!   commit from the same git server (the webhook path: a planned build);
//! - **pushbuild, CodeCommit**: the same, with the commit resolved by the CodeCommit stand-in
//!   (20 ms added to every call) and fetched, as the function does by default, over a loopback
//!   stand-in of CodeCommit's git endpoint (the SigV4 login checked);
//! - **pushbuild, CodeCommit's API**: the same with `PUSHBUILD_CODECOMMIT_GIT=false`: the tree
//!   walked with `GetFolder` and `GetBlob`, 20 ms a call.
//!
//! Prints min/median/max of the total, getting the source (the peer's clone; pushbuild's time
//! from the build's start to its first phase), the BUILD phase, the packaging and upload of the
//! artifacts (the peer's `zip` and `aws s3 cp`; pushbuild's UPLOAD_ARTIFACTS) and the overhead
//! (total − BUILD) per side, the ratios of the medians, and the function's peak memory (VmHWM).
//! Everything (the servers' files, each side's work, the zips) lives on a disk by default
//! (Cargo's `target/tmp`), as on Lambda, whose `/tmp` is a disk, or where `PIPELINE_BENCH_DIR`
//! says (`/dev/shm` for tmpfs); the folder's file system is printed with the figures. On a disk,
//! the writeback of one side's 400 MB and its deleted files land in whichever side runs next (on
//! ext4 without a journal, each file created walks past the inodes freed in the last minute), so
//! each side runs twice in a row and only its second run counts: it follows its own previous
//! build, as builds follow each other in a Lambda sandbox. The git repositories are packed, as a
//! host keeps them, so the server streams its pack rather than compressing 2,000 loose objects
//! for every clone.
//!
//! Run: `cargo bench --bench pipeline_bench` (PIPELINE_BENCH_ROUNDS, default 4; the AWS CLI, `git`
//! and `zip` must be installed: `pip install awscli`).

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
#[allow(dead_code)]
mod codecommit_standin_ops;
#[path = "common/disk.rs"]
mod disk;
#[path = "../tests/it/dynamo_server.rs"]
mod dynamo_server;
#[path = "../tests/it/git_server.rs"]
mod git_server;
#[path = "../tests/it/loopback.rs"]
mod loopback;
#[path = "common/memory.rs"]
mod memory;
#[path = "../tests/it/runtime_api.rs"]
#[allow(dead_code)]
mod runtime_api;
#[path = "../tests/it/s3_server.rs"]
mod s3_server;
#[path = "../tests/it/tools.rs"]
mod tools;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use codecommit_standin::{StandIn, init_repo};
use git_server::{GitServer, TOKEN_USER, git, publish};
use memory::status_mib;
use runtime_api::{Outcome, RuntimeApi};
use s3_server::S3Server;
use serde_json::{Value, json};

const FILES: usize = 2_000;
const FOLDERS: usize = 40;
const TOKEN: &str = "bench-token";
const REPO: &str = "reference";

/// The build: 500 random files and 500 text files of 200 KiB each under `dist/`.
const GENERATE: &str = "set -e
mkdir -p dist/random dist/text
head -c 102400000 /dev/urandom | split -b 204800 -a 3 - dist/random/r
yes 'pushbuild reference artifact: a line of text that compresses well, over and over' | head -c 102400000 | split -b 204800 -a 3 - dist/text/t
";

const BUILDSPEC: &str = "version: 0.2
phases:
  build:
    commands:
      - sh generate.sh
artifacts:
  files:
    - 'dist/**/*'
";

/// The source: 2,000 files of about 5 KB in 40 folders, the build script and the buildspec.
fn workload(work: &Path) -> String {
    init_repo(work);
    for i in 0..FILES {
        let folder = work.join(format!("pkg{:02}", i % FOLDERS));
        std::fs::create_dir_all(&folder).expect("folder");
        let line = format!("// reference source file {i}: some code that is not compiled\n");
        std::fs::write(
            folder.join(format!("f{i:04}.rs")),
            line.repeat(5_000 / line.len()),
        )
        .expect("file");
    }
    std::fs::write(work.join("generate.sh"), GENERATE).expect("script");
    std::fs::write(work.join("buildspec.yml"), BUILDSPEC).expect("buildspec");
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "the reference workload"]);
    git(work, &["rev-parse", "HEAD"])
}

/// One run of a side: its total, its BUILD phase, and its packaging and upload.
#[derive(Clone, Copy)]
struct Run {
    total: Duration,
    build: Duration,
    package: Duration,
    /// Getting the source: the peer's `git clone`; pushbuild's time from the build's start to its
    /// first phase (the fetch and the buildspec).
    fetch: Duration,
    /// pushbuild's stages as wall-clock windows (from its record), to place memory samples in.
    stages: Option<Stages>,
}

/// When a pushbuild build's stages ran: start, first phase, BUILD's end, UPLOAD_ARTIFACTS' start
/// and end, and the invocation's answer.
#[derive(Clone, Copy)]
struct Stages([SystemTime; 6]);

const STAGE_NAMES: [&str; 5] = ["fetch", "phases", "between", "package", "tail"];

/// The function processes' resident memory, sampled every 5 ms.
struct Sampler {
    samples: Arc<Mutex<Vec<(u32, SystemTime, f64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pids: Vec<u32>) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for &pid in &pids {
                        let rss = status_mib(pid, "VmRSS:");
                        samples.lock().unwrap().push((pid, SystemTime::now(), rss));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Sampler {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// The highest sample of `pid` in each stage of `stages`.
    fn peaks(&self, pid: u32, stages: &Stages) -> [f64; 5] {
        let samples = self.samples.lock().unwrap();
        let mut peaks = [0.0f64; 5];
        for &(_, at, rss) in samples.iter().filter(|(p, ..)| *p == pid) {
            for (k, peak) in peaks.iter_mut().enumerate() {
                if stages.0[k] <= at && at < stages.0[k + 1] {
                    *peak = peak.max(rss);
                }
            }
        }
        peaks
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One SDK `PutObject` of the peer's finished zip (the yardstick for packaging and uploading).
fn put_object(s3: &S3Server, zip: &Path, round: usize) -> Duration {
    let client = s3.client();
    let (bucket, zip) = (s3.bucket.clone(), zip.to_path_buf());
    s3.handle().block_on(async move {
        let started = Instant::now();
        let body = aws_sdk_s3::primitives::ByteStream::from_path(&zip)
            .await
            .expect("the zip");
        client
            .put_object()
            .bucket(bucket)
            .key(format!("yardstick/{round}/app.zip"))
            .body(body)
            .send()
            .await
            .expect("PutObject");
        started.elapsed()
    })
}

/// The peer: a hand-written Lambda build script, step by step.
fn peer(git_url: &str, s3: &S3Server, aws_config: &Path, round: usize) -> (Run, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    let started = Instant::now();
    let url = git_url.replace("http://", &format!("http://{TOKEN_USER}:{TOKEN}@"));
    run(Command::new("git")
        .args(["clone", "-q", "--depth", "1", &url])
        .arg(&src)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0"));
    let fetch = started.elapsed();
    let log = std::fs::File::create(dir.path().join("build.log")).expect("log");
    let build_started = Instant::now();
    run(Command::new("sh")
        .arg("generate.sh")
        .current_dir(&src)
        .stdout(log.try_clone().expect("log"))
        .stderr(log));
    let build = build_started.elapsed();
    let package_started = Instant::now();
    run(Command::new("zip")
        .args(["-r", "-q", "-1"])
        .arg(dir.path().join("app.zip"))
        .arg("dist")
        .current_dir(&src));
    for (file, key) in [("app.zip", "app.zip"), ("build.log", "build.log")] {
        run(Command::new("aws")
            .args(["s3", "cp", "--quiet", "--endpoint-url", &s3.endpoint])
            .arg(dir.path().join(file))
            .arg(format!("s3://{}/peer/{round}/{key}", s3.bucket))
            .env("AWS_CONFIG_FILE", aws_config)
            .envs(s3.env()));
    }
    let run = Run {
        total: started.elapsed(),
        build,
        package: package_started.elapsed(),
        fetch,
        stages: None,
    };
    (run, put_object(s3, &dir.path().join("app.zip"), round))
}

/// Packs a bare repository's objects, as a host keeps them.
fn repack(bare: &Path) {
    run(Command::new("git")
        .args(["repack", "-a", "-d", "-q"])
        .current_dir(bare));
}

fn run(command: &mut Command) {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// From the build's start to its first phase: the source fetched and the buildspec read.
fn before_first_phase(record: &Value) -> Duration {
    let time = |value: &Value| {
        chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time")).expect("RFC 3339")
    };
    let gap = time(&record["phases"][0]["started"]) - time(&record["start_time"]);
    gap.to_std().unwrap_or_default()
}

/// One invocation of the function: its total, and the BUILD phase from its record.
fn function_run(
    runtime: &tokio::runtime::Runtime,
    api: &RuntimeApi,
    s3: &S3Server,
    event: Value,
) -> Run {
    let started = Instant::now();
    let outcome =
        runtime.block_on(api.invoke(event, Duration::from_secs(900), Duration::from_secs(60)));
    let total = started.elapsed();
    let phase = |record: &Value, name: &str| {
        record["phases"]
            .as_array()
            .and_then(|phases| phases.iter().find(|p| p["phase"] == name))
            .and_then(|p| p["duration_ms"].as_u64())
            .map(Duration::from_millis)
            .unwrap_or_else(|| panic!("the {name} phase"))
    };
    let answered = SystemTime::now();
    let (build, package, fetch, stages) = match outcome {
        Outcome::Response(response) => {
            let summary = &response["builds"][0];
            assert_eq!(summary["status"], "SUCCEEDED", "{summary}");
            let project = summary["repository"].as_str().expect("a repository");
            let id = summary["buildId"].as_str().expect("a build id");
            let record = s3.object(&format!("builds/{project}/{id}/build.json"));
            let record: Value = serde_json::from_slice(&record).expect("a record");
            let at = |value: &Value| -> SystemTime {
                chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
                    .expect("RFC 3339")
                    .into()
            };
            let phase_at = |name: &str, end: bool| {
                record["phases"]
                    .as_array()
                    .and_then(|phases| phases.iter().find(|p| p["phase"] == name))
                    .map(|p| {
                        let ms = if end {
                            p["duration_ms"].as_u64().unwrap_or(0)
                        } else {
                            0
                        };
                        at(&p["started"]) + Duration::from_millis(ms)
                    })
                    .unwrap_or_else(|| panic!("the {name} phase"))
            };
            let stages = Stages([
                at(&record["start_time"]),
                at(&record["phases"][0]["started"]),
                phase_at("BUILD", true),
                phase_at("UPLOAD_ARTIFACTS", false),
                phase_at("UPLOAD_ARTIFACTS", true),
                answered,
            ]);
            (
                phase(&record, "BUILD"),
                phase(&record, "UPLOAD_ARTIFACTS"),
                before_first_phase(&record),
                stages,
            )
        }
        Outcome::Error {
            error_type,
            message,
        } => panic!("the invocation failed: {error_type}: {message}"),
    };
    Run {
        total,
        build,
        package,
        fetch,
        stages: Some(stages),
    }
}

fn spawn_function(
    api: &RuntimeApi,
    s3: &S3Server,
    standin: &StandIn,
    git_server: &GitServer,
    work: &Path,
    settings: &[(&str, String)],
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushbuild-lambda"));
    command.env_clear();
    // glibc's allocator settings pass through, to see their effect on the peak, and whether
    // finished builds' files are kept for the next checkout.
    for name in [
        "PUSHBUILD_SPARE_FILES",
        "MALLOC_ARENA_MAX",
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_MMAP_THRESHOLD_",
    ] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pushbuild")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL_CODECOMMIT", standin.endpoint())
        .env("PUSHBUILD_BUCKET", &s3.bucket)
        .env("PUSHBUILD_S3_PATH_STYLE", "true")
        .env("PUSHBUILD_WORK_DIR", work)
        .env("PUSHBUILD_GITHUB_URL", git_server.url())
        .env("PUSHBUILD_GITHUB_TOKEN", TOKEN)
        .envs(s3.env())
        .envs(dynamo_server::DynamoServer::shared().env_with_table())
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the function binary starts")
}

/// The function's peak resident memory so far, in MiB.
fn peak_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

fn stats(label: &str, runs: &[Run]) -> (Duration, Duration) {
    let line = |what: &str, mut values: Vec<Duration>| {
        values.sort_unstable();
        let s = |d: Duration| d.as_secs_f64();
        println!(
            "  {what:<9} min {:6.2} s  median {:6.2} s  max {:6.2} s",
            s(values[0]),
            s(values[values.len() / 2]),
            s(values[values.len() - 1])
        );
        values[values.len() / 2]
    };
    println!("{label}");
    let total = line("total", runs.iter().map(|r| r.total).collect());
    line("fetch", runs.iter().map(|r| r.fetch).collect());
    line("BUILD", runs.iter().map(|r| r.build).collect());
    line("package", runs.iter().map(|r| r.package).collect());
    let overhead = line(
        "overhead",
        runs.iter()
            .map(|r| r.total.saturating_sub(r.build))
            .collect(),
    );
    (total, overhead)
}

fn main() {
    let rounds: usize = std::env::var("PIPELINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let base = disk::bench_dir("PIPELINE_BENCH_DIR");
    let fs = disk::fs_type(&base);
    // SAFETY: no other thread runs yet; everything after (temp dirs, servers, the sides'
    // processes) puts its files under `base`.
    unsafe { std::env::set_var("TMPDIR", &base) };
    println!("files under {} ({fs})", base.display());
    let work = tempfile::tempdir().expect("temp dir");
    let tree = work.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    let commit = workload(&tree);
    let repos = work.path().join("repos");
    let bare = publish(&repos, "octo/reference", &tree);
    repack(&bare);
    let git_server = GitServer::start(&repos, TOKEN);
    let git_url = format!("{}/octo/reference.git", git_server.url());
    let s3 = S3Server::start();
    let aws_config = work.path().join("aws-config");
    std::fs::write(&aws_config, "[default]\ns3 =\n  addressing_style = path\n")
        .expect("the AWS CLI's settings");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let standin = runtime.block_on(StandIn::start(REPO, &tree));
    standin.set_latency(Duration::from_millis(20));
    // CodeCommit's git endpoint, on loopback, serving the same repository.
    let codecommit_root = work.path().join("codecommit");
    std::fs::create_dir_all(codecommit_root.join("v1/repos")).expect("mkdir");
    run(Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&tree)
        .arg(codecommit_root.join("v1/repos").join(REPO)));
    repack(&codecommit_root.join("v1/repos").join(REPO));
    let codecommit_git = GitServer::start_codecommit(
        &codecommit_root,
        s3_server::ACCESS_KEY,
        s3_server::SECRET_KEY,
        s3_server::REGION,
    );
    let api = runtime.block_on(RuntimeApi::start());
    let function_dir = work.path().join("function");
    std::fs::create_dir_all(&function_dir).expect("function dir");
    let mut function = spawn_function(
        &api,
        &s3,
        &standin,
        &git_server,
        &function_dir,
        &[("PUSHBUILD_CODECOMMIT_GIT_URL", codecommit_git.url())],
    );
    let api_only = runtime.block_on(RuntimeApi::start());
    let api_only_dir = work.path().join("function-api");
    std::fs::create_dir_all(&api_only_dir).expect("function dir");
    let mut api_function = spawn_function(
        &api_only,
        &s3,
        &standin,
        &git_server,
        &api_only_dir,
        &[("PUSHBUILD_CODECOMMIT_GIT", "false".to_string())],
    );
    let planned = json!({"plannedBuild": {
        "repository": git_server.project("octo/reference"),
        "source": {"hosted": {"host": "github", "path": "octo/reference"}},
        "version": commit,
        "commit": commit,
        "reference": "refs/heads/main",
        "buildspec": null,
        "envOverrides": [],
        "initiator": "bench",
        "webhookTrigger": "branch/main",
        "dedupKey": null,
        "region": null,
        "account": null,
    }});
    let codecommit = json!({"repository": REPO, "sourceVersion": commit, "initiator": "bench"});

    let mut sampler = Sampler::start(vec![function.id(), api_function.id()]);

    let (mut theirs, mut ours_git, mut ours_codecommit) = (Vec::new(), Vec::new(), Vec::new());
    let mut ours_api = Vec::new();
    let mut put_objects = Vec::new();
    // Each side runs twice in a row and only the second run counts: it follows its own previous
    // build, as builds follow each other in a Lambda sandbox (on a disk, the writeback of the run
    // before and its deleted files land in the next run's time, so following another side would
    // bill one side for another's files). Each round starts one side later.
    for round in 0..rounds {
        for k in 0..4 {
            for counted in [false, true] {
                match (round + k) % 4 {
                    0 => {
                        let (run, put) = peer(&git_url, &s3, &aws_config, round);
                        if counted {
                            theirs.push(run);
                            put_objects.push(put);
                        }
                    }
                    1 => {
                        let run = function_run(&runtime, &api, &s3, planned.clone());
                        if counted {
                            ours_git.push(run);
                        }
                    }
                    2 => {
                        let run = function_run(&runtime, &api, &s3, codecommit.clone());
                        if counted {
                            ours_codecommit.push(run);
                        }
                    }
                    _ => {
                        let run = function_run(&runtime, &api_only, &s3, codecommit.clone());
                        if counted {
                            ours_api.push(run);
                        }
                    }
                }
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    sampler.stop();
    let peaks = (peak_mib(function.id()), peak_mib(api_function.id()));
    let stage_peaks = |pid: u32, runs: &[Run]| {
        let mut peaks = [0.0f64; 5];
        for stages in runs.iter().filter_map(|r| r.stages.as_ref()) {
            for (peak, p) in peaks.iter_mut().zip(sampler.peaks(pid, stages)) {
                *peak = peak.max(p);
            }
        }
        STAGE_NAMES
            .iter()
            .zip(peaks)
            .map(|(name, mib)| format!("{name} {mib:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Before its first build, after the peer's first run: the function started and waiting.
    let first_run = ours_git
        .iter()
        .chain(&ours_codecommit)
        .chain(&ours_api)
        .filter_map(|r| r.stages.map(|s| s.0[0]))
        .min()
        .unwrap_or_else(SystemTime::now);
    let idle = |pid: u32| {
        sampler.peaks(
            pid,
            &Stages([
                SystemTime::UNIX_EPOCH,
                first_run,
                first_run,
                first_run,
                first_run,
                first_run,
            ]),
        )[0]
    };
    let memory_lines = [
        format!(
            "idle, before the first build: {:.1} (git), {:.1} (API)",
            idle(function.id()),
            idle(api_function.id())
        ),
        format!("(b) {}", stage_peaks(function.id(), &ours_git)),
        format!("(c) {}", stage_peaks(function.id(), &ours_codecommit)),
        format!("(d) {}", stage_peaks(api_function.id(), &ours_api)),
    ];
    for child in [&mut function, &mut api_function] {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "{rounds} rounds, each side twice in turn (the second run counted: it follows its own \
         build), each round starting one side later:"
    );
    let (_, peer_overhead) = stats(
        "(a) peer: git clone --depth 1, build, zip -r -q -1, aws s3 cp",
        &theirs,
    );
    let (_, git_overhead) = stats("(b) pushbuild, source from the git server", &ours_git);
    let (_, cc_overhead) = stats(
        "(c) pushbuild, CodeCommit over its git endpoint (resolved with 20 ms a call)",
        &ours_codecommit,
    );
    let (_, api_overhead) = stats(
        "(d) pushbuild, CodeCommit through its API (20 ms a call)",
        &ours_api,
    );
    let ratio = |ours: Duration| ours.as_secs_f64() / peer_overhead.as_secs_f64();
    println!(
        "overhead, median, against the peer's: (b) {:.2}x  (c) {:.2}x  (d) {:.2}x",
        ratio(git_overhead),
        ratio(cc_overhead),
        ratio(api_overhead)
    );
    put_objects.sort_unstable();
    let put = put_objects[put_objects.len() / 2];
    let mut packages: Vec<Duration> = ours_git.iter().map(|r| r.package).collect();
    packages.sort_unstable();
    let package = packages[packages.len() / 2];
    println!(
        "packaging and upload, median: pushbuild {:.2} s, one SDK PutObject of the peer's finished zip {:.2} s: {:.2}x",
        package.as_secs_f64(),
        put.as_secs_f64(),
        package.as_secs_f64() / put.as_secs_f64()
    );
    println!(
        "the function's peak memory: {:.1} MiB (git and CodeCommit over git), {:.1} MiB (CodeCommit's API)",
        peaks.0, peaks.1
    );
    println!("resident memory by stage, highest sample every 5 ms (MiB):");
    for line in memory_lines {
        println!("  {line}");
    }
    // PUSHBUILD_SPARE_FILES is `auto` unless the bench's environment says otherwise.
    let spares = std::fs::read_dir(function_dir.join("spare")).map(|dir| dir.count());
    match spares {
        Ok(kept) => println!("the function's spare files (git sides): {kept} kept at the end"),
        Err(_) => println!("the function's spare files (git sides): none kept"),
    }
}
