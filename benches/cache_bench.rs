//! The cache of a `node_modules`-like folder: a build whose INSTALL fetches and unpacks 1,000
//! packages (20,000 files, about 300 MB) when `node_modules` is missing, built cold (no cache:
//! INSTALL does the work, then the cache is saved) and warm (the cache restored, INSTALL finds
//! the folder), by the real function binary through the Lambda Runtime API, against one S3
//! server (s3s-fs on 127.0.0.1).
//!
//! The cold INSTALL is a package manager's work with the network taken out: each package is a
//! gzipped tar fetched with `curl` from a local HTTP registry (`python3 -m http.server`) and
//! unpacked with `tar`, four at a time (npm fetches in parallel too). Real installs also wait on
//! the network and resolve versions, so this INSTALL is a lower bound of a real one's time.
//!
//! Beside them, the peer: a hand-written save and restore of the same folder, `tar | zstd` into
//! `aws s3 cp -` and `aws s3 cp - | zstd -d | tar -x`, against the same server in the same run.
//!
//! Prints, per round: the cold INSTALL, the warm INSTALL plus restore (and its ratio to the cold
//! INSTALL: target ≤ 0.3), pushbuild's save and restore against the peer's (target ≤ 1.0), and the
//! function's peak memory (VmHWM; target < 64 MiB). Files live under `CACHE_BENCH_DIR` (default:
//! the system's temporary folder); its file system is printed.
//!
//! Run: `cargo bench --bench cache_bench` (CACHE_BENCH_ROUNDS, default 2; needs `python3`,
//! `curl`, `tar`, `zstd` and the AWS CLI: `pip install awscli`).

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
#[allow(dead_code)]
mod codecommit_standin_ops;
#[path = "../tests/it/dynamo_server.rs"]
mod dynamo_server;
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
use std::time::{Duration, Instant};

use codecommit_standin::{StandIn, git, init_repo};
use memory::status_mib;
use runtime_api::{Outcome, RuntimeApi};
use s3_server::S3Server;
use serde_json::{Value, json};

const REPO: &str = "cached";
const PACKAGES: usize = 1_000;
const FILES_PER_PACKAGE: usize = 20;
/// About 15 KiB a file: 20,000 files, about 300 MB.
const FILE_BYTES: usize = 15_000;

const BUILDSPEC: &str = "version: 0.2
phases:
  install:
    commands:
      - if [ -d node_modules ]; then echo cached; else sh install.sh; fi
  build:
    commands:
      - test $(ls node_modules | wc -l) -eq 1000
cache:
  key: npm-$(codebuild-hash-files package-lock.json)
  paths:
    - node_modules/**/*
";

/// What a package manager does, with the network taken out.
const INSTALL: &str = "set -e
mkdir -p node_modules
seq 0 999 | xargs -P 4 -I{} sh -c 'mkdir -p node_modules/p{} && curl -sf \"$REGISTRY/p{}.tgz\" | tar -xzf - -C node_modules/p{}'
";

/// The registry's packages: 1,000 gzipped tars of 20 text files, as JavaScript packages hold
/// (words from a small vocabulary, so they compress as source does).
fn registry(dir: &Path) {
    std::fs::create_dir_all(dir).expect("registry");
    let words = [
        "function",
        "return",
        "const",
        "module",
        "exports",
        "require",
        "this",
        "value",
        "object",
        "undefined",
        "null",
        "if",
        "else",
        "for",
        "let",
        "new",
        "prototype",
        "call",
        "arguments",
        "length",
        "index",
        "options",
        "callback",
        "error",
        "result",
        "string",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for p in 0..PACKAGES {
        let package = dir.join(format!("p{p}"));
        std::fs::create_dir_all(package.join("lib")).expect("package");
        for f in 0..FILES_PER_PACKAGE {
            let mut text = String::with_capacity(FILE_BYTES + 64);
            while text.len() < FILE_BYTES {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(words[(seed % words.len() as u64) as usize]);
                text.push(if seed.is_multiple_of(11) { '\n' } else { ' ' });
                if seed.is_multiple_of(5) {
                    text.push_str(&format!("{}", seed % 100_000));
                }
            }
            std::fs::write(package.join("lib").join(format!("f{f}.js")), text).expect("file");
        }
        run(Command::new("tar")
            .arg("-czf")
            .arg(dir.join(format!("p{p}.tgz")))
            .arg("-C")
            .arg(&package)
            .arg("."));
        std::fs::remove_dir_all(&package).expect("clean");
    }
}

fn run(command: &mut Command) {
    let status = command.status().expect("the command starts");
    assert!(status.success(), "{command:?} failed");
}

/// A registry served over HTTP on 127.0.0.1, ready when it answers.
fn serve_registry(dir: &Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 serves the registry");
    let url = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "the registry does not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, url)
}

fn spawn_function(
    api: &RuntimeApi,
    s3: &S3Server,
    standin: &StandIn,
    work: &Path,
    registry: &str,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pushbuild-lambda"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pushbuild")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL_CODECOMMIT", standin.endpoint())
        .env("PUSHBUILD_BUCKET", &s3.bucket)
        .env("PUSHBUILD_S3_PATH_STYLE", "true")
        .env("PUSHBUILD_WORK_DIR", work)
        .env("PUSHBUILD_CODECOMMIT_GIT", "false")
        .env("REGISTRY", registry)
        .envs(s3.env())
        .envs(dynamo_server::DynamoServer::shared().env_with_table())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the function binary starts")
}

/// One build: its record.
fn build(
    runtime: &tokio::runtime::Runtime,
    api: &RuntimeApi,
    s3: &S3Server,
    commit: &str,
) -> Value {
    let event = json!({"repository": REPO, "sourceVersion": commit, "initiator": "bench"});
    let outcome =
        runtime.block_on(api.invoke(event, Duration::from_secs(900), Duration::from_secs(60)));
    let Outcome::Response(response) = outcome else {
        panic!("the invocation failed: {outcome:?}");
    };
    let summary = &response["builds"][0];
    assert_eq!(summary["status"], "SUCCEEDED", "{summary}");
    let id = summary["buildId"].as_str().expect("a build id");
    let record = s3.object(&format!("builds/{REPO}/{id}/build.json"));
    serde_json::from_slice(&record).expect("a record")
}

fn ms(value: &Value) -> Duration {
    Duration::from_millis(
        value
            .as_u64()
            .unwrap_or_else(|| panic!("a duration: {value}")),
    )
}

fn install(record: &Value) -> Duration {
    ms(&record["phases"]
        .as_array()
        .and_then(|phases| phases.iter().find(|p| p["phase"] == "INSTALL"))
        .expect("an INSTALL phase")["duration_ms"])
}

/// The peer's save and restore of `folder` (under `dir`), timed.
fn peer(s3: &S3Server, aws_config: &Path, dir: &Path, round: usize) -> (Duration, Duration) {
    let object = format!("s3://{}/peer/{round}/node_modules.tar.zst", s3.bucket);
    let aws = |args: &str| {
        format!(
            "AWS_CONFIG_FILE={} aws s3 cp --quiet --endpoint-url {} {args}",
            aws_config.display(),
            s3.endpoint
        )
    };
    let started = Instant::now();
    run(Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e -o pipefail; tar -C {} -cf - node_modules | zstd -q -3 | {}",
            dir.display(),
            aws(&format!("- {object}"))
        ))
        .envs(s3.env()));
    let save = started.elapsed();
    let restored = dir.join("restored");
    std::fs::create_dir_all(&restored).expect("mkdir");
    let started = Instant::now();
    run(Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e -o pipefail; {} | zstd -dq | tar -C {} -xf -",
            aws(&format!("{object} -")),
            restored.display()
        ))
        .envs(s3.env()));
    let restore = started.elapsed();
    let packages = std::fs::read_dir(restored.join("node_modules")).map_or(0, |d| d.count());
    assert_eq!(packages, PACKAGES, "the peer restored every package");
    std::fs::remove_dir_all(&restored).expect("clean");
    (save, restore)
}

fn main() {
    let rounds: usize = std::env::var("CACHE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let base = std::env::var_os("CACHE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    // SAFETY: no other thread runs yet; every file after this lives under `base`.
    unsafe { std::env::set_var("TMPDIR", &base) };
    let fs = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&base)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("files under {} ({fs})", base.display());
    let work = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    registry(&work.path().join("registry"));
    println!(
        "registry of {PACKAGES} packages made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (mut registry_server, registry_url) = serve_registry(&work.path().join("registry"));
    let tree = work.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    init_repo(&tree);
    std::fs::write(tree.join("buildspec.yml"), BUILDSPEC).expect("buildspec");
    std::fs::write(tree.join("install.sh"), INSTALL).expect("install.sh");
    std::fs::write(tree.join("package-lock.json"), "{\"lockfileVersion\": 3}\n").expect("lock");
    git(&tree, &["add", "-A"]);
    git(&tree, &["commit", "-q", "-m", "a node project"]);
    let commit = git(&tree, &["rev-parse", "HEAD"]);
    let s3 = S3Server::start();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let standin = runtime.block_on(StandIn::start(REPO, &tree));
    let aws_config = work.path().join("aws-config");
    std::fs::write(&aws_config, "[default]\ns3 =\n  addressing_style = path\n")
        .expect("aws config");
    // The peer's copy of the folder: one cold INSTALL by hand.
    let peer_dir = work.path().join("peer");
    std::fs::create_dir_all(&peer_dir).expect("peer");
    std::fs::copy(tree.join("install.sh"), peer_dir.join("install.sh")).expect("copy");
    run(Command::new("sh")
        .arg("install.sh")
        .current_dir(&peer_dir)
        .env("REGISTRY", &registry_url));

    println!(
        "{:>5} {:>12} {:>14} {:>7} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7} {:>9}",
        "round",
        "cold INSTALL",
        "warm INST+rst",
        "ratio",
        "save",
        "peer save",
        "ratio",
        "restore",
        "peer rst",
        "ratio",
        "peak MiB"
    );
    for round in 0..rounds {
        // A fresh function each round, so its peak is this round's.
        let api = runtime.block_on(RuntimeApi::start());
        let function_dir = work.path().join(format!("function-{round}"));
        std::fs::create_dir_all(&function_dir).expect("function dir");
        let mut function = spawn_function(&api, &s3, &standin, &function_dir, &registry_url);
        // Cold: no cache under the key (each round removes the last round's).
        let store = s3.store();
        for key in pushbuild::store::Store::list(&store, "cache/").expect("list") {
            pushbuild::store::Store::delete(&store, &key).expect("delete");
        }
        let cold = build(&runtime, &api, &s3, &commit);
        assert!(cold["cache"]["restored"].is_null(), "{}", cold["cache"]);
        let save = ms(&cold["cache"]["saved"]["duration_ms"]);
        let warm = build(&runtime, &api, &s3, &commit);
        let restore = ms(&warm["cache"]["restored"]["duration_ms"]);
        let peak = status_mib(function.id(), "VmHWM:");
        let _ = function.kill();
        let _ = function.wait();
        let (peer_save, peer_restore) = peer(&s3, &aws_config, &peer_dir, round);
        let (cold_install, warm_install) = (install(&cold), install(&warm));
        let warm_total = warm_install + restore;
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "{round:>5} {:>11.2}s {:>13.2}s {:>7.2} {:>9.2}s {:>9.2}s {:>7.2} {:>9.2}s {:>9.2}s {:>7.2} {peak:>9.1}",
            cold_install.as_secs_f64(),
            warm_total.as_secs_f64(),
            ratio(warm_total, cold_install),
            save.as_secs_f64(),
            peer_save.as_secs_f64(),
            ratio(save, peer_save),
            restore.as_secs_f64(),
            peer_restore.as_secs_f64(),
            ratio(restore, peer_restore)
        );
        println!(
            "      cache: {} entries, {:.1} MB, {:.1} MB stored",
            cold["cache"]["saved"]["entries"],
            cold["cache"]["saved"]["bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
            cold["cache"]["saved"]["size"].as_f64().unwrap_or(0.0) / 1_048_576.0
        );
    }
    let _ = registry_server.kill();
    let _ = registry_server.wait();
}
