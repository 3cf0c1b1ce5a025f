//! A CodeCommit stand-in: an HTTP server on loopback that speaks CodeCommit's JSON 1.1 wire
//! protocol for the read calls pushbuild makes (`GetBranch`, `GetCommit`, `GetFolder`,
//! `GetBlob`), answering from a real git repository (`codecommit_standin_ops`).
//!
//! Knobs for tests: latency added to every call, the next N calls failing with 503 or with
//! `ThrottlingException`, and counters (calls per operation, the most calls in flight at once).
#![allow(dead_code)] // The benchmark includes this file too and uses only part of it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codecommit::config::{BehaviorVersion, Credentials, Region};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use pushbuild::source::CodeCommitSource;
use serde_json::{Value, json};

use crate::codecommit_standin_ops::{Fault, GitRepo};

const TARGET_PREFIX: &str = "CodeCommit_20150413.";

/// A running stand-in serving one repository; stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

struct State {
    repository: String,
    repo: GitRepo,
    latency_ms: AtomicU64,
    fail_503: AtomicUsize,
    throttle: AtomicUsize,
    /// Calls beyond this many in flight answer `ThrottlingException` (0: no limit).
    rate_limit: AtomicUsize,
    throttled: AtomicUsize,
    calls: Mutex<BTreeMap<String, usize>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl StandIn {
    /// Serves the git repository at `repo` under the name `repository` on a free loopback port.
    pub async fn start(repository: &str, repo: &Path) -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            repository: repository.to_string(),
            repo: GitRepo::new(repo),
            latency_ms: AtomicU64::new(0),
            fail_503: AtomicUsize::new(0),
            throttle: AtomicUsize::new(0),
            rate_limit: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            calls: Mutex::new(BTreeMap::new()),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        let shared = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        StandIn {
            addr,
            state,
            server,
        }
    }

    /// The endpoint URL, as `AWS_ENDPOINT_URL_CODECOMMIT` would hold it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An SDK client for this stand-in: test credentials, us-east-1, pushbuild's retry settings.
    pub fn client(&self) -> aws_sdk_codecommit::Client {
        let conf = aws_sdk_codecommit::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIDSTANDIN",
                "stand-in-secret",
                None,
                None,
                "stand-in",
            ))
            .endpoint_url(self.endpoint())
            .retry_config(CodeCommitSource::retry_config())
            .build();
        aws_sdk_codecommit::Client::from_conf(conf)
    }

    /// Adds `latency` to every call, success or not.
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// The next `n` calls answer 503 Service Unavailable.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_503.store(n, Ordering::SeqCst);
    }

    /// The next `n` calls answer 400 `ThrottlingException`.
    pub fn throttle_next(&self, n: usize) {
        self.state.throttle.store(n, Ordering::SeqCst);
    }

    /// From now on, a call arriving while `n` calls are in flight answers `ThrottlingException`,
    /// as CodeCommit does when a caller goes over its rate.
    pub fn limit_in_flight(&self, n: usize) {
        self.state.rate_limit.store(n, Ordering::SeqCst);
    }

    /// Calls answered `ThrottlingException` for going over the limit in flight.
    pub fn throttled(&self) -> usize {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// Calls received for `operation` (`GetBlob`), failed ones included.
    pub fn calls(&self, operation: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Calls received, all operations.
    pub fn total_calls(&self) -> usize {
        self.state.calls.lock().unwrap().values().sum()
    }

    /// The most calls that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    /// Zeroes the call counters and the peak.
    pub fn reset_counts(&self) {
        self.state.calls.lock().unwrap().clear();
        self.state.peak.store(0, Ordering::SeqCst);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Decrements the in-flight count when a call ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Takes one from `counter` when it is above zero.
fn take(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let json_body = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/x-amz-json-1.1");
    let post_to_root = req.method() == hyper::Method::POST && req.uri().path() == "/";
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let op = target
        .strip_prefix(TARGET_PREFIX)
        .unwrap_or("?")
        .to_string();
    *state.calls.lock().unwrap().entry(op.clone()).or_default() += 1;
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak.fetch_max(now, Ordering::SeqCst);
    let _in_flight = InFlight(&state.in_flight);
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    if take(&state.fail_503) {
        return Ok(answer(
            503,
            json!({"__type": "ServiceUnavailableException", "message": "try again"}),
        ));
    }
    let limit = state.rate_limit.load(Ordering::SeqCst);
    let over = limit > 0 && now > limit;
    if over {
        state.throttled.fetch_add(1, Ordering::SeqCst);
    }
    if take(&state.throttle) || over {
        return Ok(answer(
            400,
            json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
        ));
    }
    if !post_to_root || !json_body {
        return Ok(error((
            "SerializationException",
            "expected a JSON 1.1 POST to /".into(),
        )));
    }
    let input: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return Ok(error(("SerializationException", e.to_string()))),
    };
    let result = match input["repositoryName"].as_str() {
        None => Err((
            "RepositoryNameRequiredException",
            "repositoryName is required".into(),
        )),
        Some(name) if name != state.repository => Err((
            "RepositoryDoesNotExistException",
            format!("{name} does not exist"),
        )),
        Some(_) => match op.as_str() {
            "GetBranch" => state.repo.get_branch(&input).await,
            "GetCommit" => state.repo.get_commit(&input).await,
            "GetFolder" => state.repo.get_folder(&input).await,
            "GetBlob" => state.repo.get_blob(&input).await,
            _ => Err((
                "UnknownOperationException",
                format!("{target} is not served here"),
            )),
        },
    };
    Ok(match result {
        Ok(value) => answer(200, value),
        Err(fault) => error(fault),
    })
}

fn answer(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn error((kind, message): Fault) -> Response<Full<Bytes>> {
    answer(400, json!({"__type": kind, "message": message}))
}

/// Runs git in `repo` for test setup (fixed author and dates); its trimmed output. Panics on failure.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "commit.gpgsign=false", "-c", "core.symlinks=true"])
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new repository in `dir` with `main` as its branch.
pub fn init_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
}
