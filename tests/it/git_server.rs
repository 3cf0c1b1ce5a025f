//! A git smart-HTTP server for tests: git's own `git http-backend` run as a CGI program behind a
//! small HTTP server on 127.0.0.1, serving the repositories under a directory the test makes,
//! and requiring HTTP basic auth with a token (with the user name each host takes with a token:
//! `x-access-token` for GitHub, `oauth2` for GitLab, `x-token-auth` for Bitbucket).
//! It runs on its own runtime, so sync and async tests alike can use it; it records every
//! request (method, path, whether it carried the right token).
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::io::AsyncWriteExt;

use crate::loopback::Loopback;

pub const TOKEN_USER: &str = "x-access-token";
/// The user names the hosts take with a token.
const TOKEN_USERS: [&str; 3] = ["x-access-token", "oauth2", "x-token-auth"];

/// A running server; dropping it stops it.
pub struct GitServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    _server: Loopback,
}

struct State {
    root: PathBuf,
    token: String,
    /// CodeCommit's way instead of a token: the access key, its secret key and the region.
    codecommit: Option<(String, String, String)>,
    requests: Mutex<Vec<String>>,
}

impl GitServer {
    /// Serves the repositories under `root` (`<root>/<owner>/<repo>.git`), requiring `token`.
    pub fn start(root: &Path, token: &str) -> GitServer {
        GitServer::start_at("127.0.0.1", root, token)
    }

    /// The same, on another loopback address (`127.0.0.2`): a second host name for tests that
    /// serve several hosts.
    pub fn start_at(ip: &str, root: &Path, token: &str) -> GitServer {
        GitServer::serve(
            ip,
            State {
                root: root.to_path_buf(),
                token: token.to_string(),
                codecommit: None,
                requests: Mutex::new(Vec::new()),
            },
        )
    }

    /// Serves `<root>/v1/repos/<repo>` as CodeCommit's git endpoint does: the user is the access
    /// key, the password `<timestamp>Z<signature>`, a SigV4 signature (service `codecommit`) of
    /// `GIT /v1/repos/<repo>` to this host, by `secret_key`, made within the last 15 minutes.
    pub fn start_codecommit(
        root: &Path,
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> GitServer {
        GitServer::serve(
            "127.0.0.1",
            State {
                root: root.to_path_buf(),
                token: String::new(),
                codecommit: Some((access_key.into(), secret_key.into(), region.into())),
                requests: Mutex::new(Vec::new()),
            },
        )
    }

    fn serve(ip: &str, state: State) -> GitServer {
        let state = Arc::new(state);
        let server = Loopback::serve(ip, "git-server", state.clone(), handle);
        GitServer {
            addr: server.addr,
            state,
            _server: server,
        }
    }

    /// The base URL repositories live under (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The project a repository at `path` here has in pushbuild: `127.0.0.1:<port>/<path>` (a
    /// host's name keeps its port).
    pub fn project(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }

    /// Every request so far: `METHOD /path?query [token|no token|bad token]`.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let verdict = match (&auth, &state.codecommit) {
        (None, _) => "no token",
        (Some(pair), Some(keys)) => {
            let host = req
                .headers()
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if signed_by(pair, keys, host, req.uri().path()) {
                "token"
            } else {
                "bad token"
            }
        }
        (Some(pair), None)
            if TOKEN_USERS
                .iter()
                .any(|user| *pair == format!("{user}:{}", state.token)) =>
        {
            "token"
        }
        (Some(_), None) => "bad token",
    };
    if let Ok(mut log) = state.requests.lock() {
        log.push(format!("{} {} [{verdict}]", req.method(), req.uri()));
    }
    if verdict != "token" {
        return Ok(Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", "Basic realm=\"pushbuild-test\"")
            .body(Full::new(Bytes::from_static(b"token required\n")))
            .unwrap_or_default());
    }
    Ok(cgi(&state.root, req).await.unwrap_or_else(|message| {
        Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Full::new(Bytes::from(message)))
            .unwrap_or_default()
    }))
}

/// Whether `user:password` is CodeCommit's git login for the repository of `request_path`
/// (`/v1/repos/<repo>/...`) on `host`, by the access key and secret key of `keys`.
fn signed_by(pair: &str, keys: &(String, String, String), host: &str, request_path: &str) -> bool {
    use hmac::Mac;
    use sha2::Digest;
    let (access_key, secret_key, region) = keys;
    let Some((user, password)) = pair.split_once(':') else {
        return false;
    };
    let Some((timestamp, signature)) = password.split_once('Z') else {
        return false;
    };
    let key_id = user.split('%').next().unwrap_or_default();
    let signed_at = chrono::NaiveDateTime::parse_from_str(timestamp, "%Y%m%dT%H%M%S");
    let fresh =
        signed_at.is_ok_and(|t| (chrono::Utc::now().naive_utc() - t).num_minutes().abs() <= 15);
    let repo_path: String = request_path
        .split('/')
        .take(4)
        .collect::<Vec<_>>()
        .join("/");
    if key_id != access_key || !fresh || !repo_path.starts_with("/v1/repos/") {
        return false;
    }
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mac = |key: &[u8], data: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let date = &timestamp[..8.min(timestamp.len())];
    let request = format!("GIT\n{repo_path}\n\nhost:{hostname}\n\nhost\n");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{date}/{region}/codecommit/aws4_request\n{}",
        hex(&sha2::Sha256::digest(request.as_bytes()))
    );
    let mut key = mac(format!("AWS4{secret_key}").as_bytes(), date);
    for part in [region.as_str(), "codecommit", "aws4_request"] {
        key = mac(&key, part);
    }
    hex(&mac(&key, &to_sign)) == signature
}

/// Runs `git http-backend` for one request, as a CGI program.
async fn cgi(root: &Path, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", root)
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", TOKEN_USER)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("git http-backend: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&body).await.map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    let out = output.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2)))
        .ok_or_else(|| {
            format!(
                "git http-backend said no headers: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let head = String::from_utf8_lossy(&out[..split.0]).into_owned();
    let mut response = Response::builder().status(StatusCode::OK);
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .unwrap_or(500);
            response = response.status(code);
        } else {
            response = response.header(name, value);
        }
    }
    response
        .body(Full::new(Bytes::copy_from_slice(&out[split.0 + split.1..])))
        .map_err(|e| e.to_string())
}

/// Runs git in `dir` (author and committer fixed), returning its trimmed output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    crate::codecommit_standin::git(dir, args)
}

/// Makes `<root>/<owner>/<repo>.git` a bare copy of the work tree `work`.
pub fn publish(root: &Path, owner_repo: &str, work: &Path) -> PathBuf {
    let bare = root.join(format!("{owner_repo}.git"));
    std::fs::create_dir_all(bare.parent().expect("a parent")).expect("owner dir");
    let out = std::process::Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(work)
        .arg(&bare)
        .output()
        .expect("git clone --bare");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bare
}
