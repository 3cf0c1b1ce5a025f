//! A CodeCommit stand-in: an HTTP server on loopback that speaks CodeCommit's JSON 1.1 wire
//! protocol for the read calls pushbuild makes (`GetBranch`, `GetCommit`, `GetFolder`,
//! `GetBlob`), answering from a real git repository through the `git` command line.
//!
//! Knobs for tests: latency added to every call, the next N calls failing with 503 or with
//! `ThrottlingException`, and counters (calls per operation, the most calls in flight at once).
#![allow(dead_code)] // The benchmark includes this file too and uses only part of it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codecommit::config::{BehaviorVersion, Credentials, Region};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use pushbuild::source::{BLOB_LIMIT_BYTES, CodeCommitSource};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const TARGET_PREFIX: &str = "CodeCommit_20150413.";

/// A running stand-in serving one repository; stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

struct State {
    repository: String,
    repo: PathBuf,
    latency_ms: AtomicU64,
    fail_503: AtomicUsize,
    throttle: AtomicUsize,
    calls: Mutex<BTreeMap<String, usize>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// A long-running `git cat-file --batch`, started on the first `GetBlob`.
    blobs: tokio::sync::Mutex<Option<CatFile>>,
}

/// An error answer: the exception's name and its message (always HTTP 400, as CodeCommit does).
type Fault = (&'static str, String);

impl StandIn {
    /// Serves the git repository at `repo` under the name `repository` on a free loopback port.
    pub async fn start(repository: &str, repo: &Path) -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            repository: repository.to_string(),
            repo: repo.to_path_buf(),
            latency_ms: AtomicU64::new(0),
            fail_503: AtomicUsize::new(0),
            throttle: AtomicUsize::new(0),
            calls: Mutex::new(BTreeMap::new()),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            blobs: tokio::sync::Mutex::new(None),
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
    if take(&state.throttle) {
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
            "GetBranch" => get_branch(&state, &input).await,
            "GetCommit" => get_commit(&state, &input).await,
            "GetFolder" => get_folder(&state, &input).await,
            "GetBlob" => get_blob(&state, &input).await,
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

fn field<'a>(input: &'a Value, name: &str) -> Result<&'a str, Fault> {
    input[name]
        .as_str()
        .ok_or(("InvalidRequestException", format!("{name} is required")))
}

async fn get_branch(state: &State, input: &Value) -> Result<Value, Fault> {
    let branch = field(input, "branchName")?;
    let commit = rev_parse(state, &format!("refs/heads/{branch}^{{commit}}"))
        .await
        .ok_or((
            "BranchDoesNotExistException",
            format!("branch {branch} does not exist"),
        ))?;
    Ok(json!({"branch": {"branchName": branch, "commitId": commit}}))
}

async fn get_commit(state: &State, input: &Value) -> Result<Value, Fault> {
    let id = field(input, "commitId")?;
    let missing = || {
        (
            "CommitIdDoesNotExistException",
            format!("commit {id} does not exist"),
        )
    };
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((
            "InvalidCommitIdException",
            format!("{id} is not a full commit id"),
        ));
    }
    let raw = git_async(&state.repo, &["cat-file", "commit", id])
        .await
        .ok_or_else(missing)?;
    let raw = String::from_utf8_lossy(&raw);
    let (headers, message) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let (mut tree, mut parents, mut author, mut committer) = ("", Vec::new(), json!({}), json!({}));
    for line in headers.lines() {
        match line.split_once(' ') {
            Some(("tree", t)) => tree = t,
            Some(("parent", p)) => parents.push(p),
            Some(("author", who)) => author = person(who),
            Some(("committer", who)) => committer = person(who),
            _ => {}
        }
    }
    Ok(json!({"commit": {
        "commitId": id, "treeId": tree, "parents": parents, "message": message,
        "author": author, "committer": committer, "additionalData": ""
    }}))
}

/// `Name <email> 1700000000 +0000` as CodeCommit's UserInfo.
fn person(who: &str) -> Value {
    let (name, rest) = who.split_once(" <").unwrap_or((who, ""));
    let (email, date) = rest.split_once("> ").unwrap_or((rest, ""));
    json!({"name": name, "email": email, "date": date})
}

async fn get_folder(state: &State, input: &Value) -> Result<Value, Fault> {
    let spec = field(input, "commitSpecifier")?;
    let folder_path = field(input, "folderPath")?;
    let commit = rev_parse(state, &format!("{spec}^{{commit}}"))
        .await
        .ok_or((
            "CommitDoesNotExistException",
            format!("{spec} does not exist"),
        ))?;
    let path = folder_path.trim_matches('/');
    let tree_spec = if path.is_empty() {
        format!("{commit}^{{tree}}")
    } else {
        format!("{commit}:{path}")
    };
    let no_folder = || {
        (
            "FolderDoesNotExistException",
            format!("{folder_path} does not exist"),
        )
    };
    let tree = rev_parse(state, &tree_spec).await.ok_or_else(no_folder)?;
    let kind = git_async(&state.repo, &["cat-file", "-t", &tree])
        .await
        .ok_or_else(no_folder)?;
    if kind.trim_ascii() != b"tree" {
        return Err(no_folder());
    }
    let listing = git_async(&state.repo, &["ls-tree", "-z", &tree])
        .await
        .ok_or_else(no_folder)?;
    let (mut folders, mut files, mut links, mut modules) = (vec![], vec![], vec![], vec![]);
    for entry in listing.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, name)) = entry.split_once('\t') else {
            continue;
        };
        let mut meta = meta.split(' ');
        let (mode, _kind, id) = (meta.next(), meta.next(), meta.next().unwrap_or_default());
        let absolute = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}/{name}")
        };
        let blob = |mode: &str| json!({"blobId": id, "absolutePath": absolute, "relativePath": name, "fileMode": mode});
        match mode {
            Some("040000") => {
                folders.push(json!({"treeId": id, "absolutePath": absolute, "relativePath": name}))
            }
            Some("100755") => files.push(blob("EXECUTABLE")),
            Some("120000") => links.push(blob("SYMLINK")),
            Some("160000") => modules
                .push(json!({"commitId": id, "absolutePath": absolute, "relativePath": name})),
            _ => files.push(blob("NORMAL")),
        }
    }
    Ok(json!({
        "commitId": commit, "folderPath": folder_path, "treeId": tree,
        "subFolders": folders, "files": files, "symbolicLinks": links, "subModules": modules
    }))
}

async fn get_blob(state: &State, input: &Value) -> Result<Value, Fault> {
    let id = field(input, "blobId")?;
    let missing = || {
        (
            "BlobIdDoesNotExistException",
            format!("blob {id} does not exist"),
        )
    };
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(("InvalidBlobIdException", format!("{id} is not a blob id")));
    }
    let mut blobs = state.blobs.lock().await;
    if blobs.is_none() {
        *blobs = Some(CatFile::start(&state.repo).map_err(|e| ("InternalError", e.to_string()))?);
    }
    let cat = blobs.as_mut().expect("started above");
    let (kind, content) = cat
        .read(id)
        .await
        .map_err(|e| ("InternalError", e.to_string()))?
        .ok_or_else(missing)?;
    drop(blobs);
    if kind != "blob" {
        return Err(missing());
    }
    if content.len() as u64 > BLOB_LIMIT_BYTES {
        return Err((
            "FileTooLargeException",
            format!("blob {id} is larger than 6 MB"),
        ));
    }
    Ok(json!({"content": base64::engine::general_purpose::STANDARD.encode(content)}))
}

async fn rev_parse(state: &State, spec: &str) -> Option<String> {
    let out = git_async(&state.repo, &["rev-parse", "--verify", "-q", spec]).await?;
    Some(String::from_utf8_lossy(&out).trim().to_string())
}

/// Runs git in `repo`; its standard output when it succeeds.
async fn git_async(repo: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// `git cat-file --batch`: one process answering object reads in turn.
struct CatFile {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CatFile {
    fn start(repo: &Path) -> std::io::Result<CatFile> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(CatFile {
            _child: child,
            stdin,
            stdout,
        })
    }

    /// The object's type and content, or `None` when the repository has no such object.
    async fn read(&mut self, id: &str) -> std::io::Result<Option<(String, Vec<u8>)>> {
        self.stdin.write_all(format!("{id}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).await?;
        let parts: Vec<&str> = header.split_whitespace().collect();
        let [_, kind, size] = parts[..] else {
            return Ok(None);
        };
        let size: usize = size.parse().map_err(std::io::Error::other)?;
        let mut content = vec![0; size + 1]; // The object, then a newline.
        self.stdout.read_exact(&mut content).await?;
        content.pop();
        Ok(Some((kind.to_string(), content)))
    }
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
