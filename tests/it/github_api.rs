//! A stand-in for the parts of GitHub's REST API pushbuild calls, written from GitHub's public
//! reference: `POST /repos/{owner}/{repo}/statuses/{sha}` (recorded, answered 201) and
//! `GET /repos/{owner}/{repo}/pulls/{number}/files` (pages of `per_page`, with a `Link` header
//! to the next). It requires the bearer token, and can answer the next N status calls with 500.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

/// One status call as received.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCall {
    pub repository: String,
    pub commit: String,
    pub body: Value,
    /// The answer it got (201, or 500 when a fault was set).
    pub answered: u16,
}

pub struct GitHubApi {
    pub addr: SocketAddr,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct State {
    token: String,
    statuses: Mutex<Vec<StatusCall>>,
    /// Pull request files by `owner/repo#number`.
    files: Mutex<BTreeMap<String, Vec<String>>>,
    fail_statuses: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

impl GitHubApi {
    pub fn start(token: &str) -> GitHubApi {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("github-api")
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(State {
            token: token.to_string(),
            statuses: Mutex::new(Vec::new()),
            files: Mutex::new(BTreeMap::new()),
            fail_statuses: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        GitHubApi {
            addr,
            state,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The files pull request `number` of `repository` changes.
    pub fn set_files(&self, repository: &str, number: u64, files: &[&str]) {
        if let Ok(mut map) = self.state.files.lock() {
            map.insert(
                format!("{repository}#{number}"),
                files.iter().map(|f| f.to_string()).collect(),
            );
        }
    }

    /// Answers the next `n` status calls with 500.
    pub fn fail_statuses(&self, n: usize) {
        self.state.fail_statuses.store(n, Ordering::SeqCst);
    }

    /// The status calls for `commit`, in order.
    pub fn statuses(&self, commit: &str) -> Vec<StatusCall> {
        self.state
            .statuses
            .lock()
            .map(|calls| {
                calls
                    .iter()
                    .filter(|c| c.commit == commit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for GitHubApi {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    if let Ok(mut log) = state.requests.lock() {
        log.push(format!("{} {path}?{query}", parts.method));
    }
    let authorized = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", state.token));
    if !authorized {
        return Ok(answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication"}),
        ));
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (parts.method.as_str(), segments.as_slice()) {
        ("POST", ["repos", owner, repo, "statuses", sha]) => {
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let failing = state
                .fail_statuses
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let answered = if failing { 500 } else { 201 };
            if let Ok(mut calls) = state.statuses.lock() {
                calls.push(StatusCall {
                    repository: format!("{owner}/{repo}"),
                    commit: sha.to_string(),
                    body: body.clone(),
                    answered,
                });
            }
            if failing {
                return Ok(answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"message": "Server Error"}),
                ));
            }
            Ok(answer(StatusCode::CREATED, body))
        }
        ("GET", ["repos", owner, repo, "pulls", number, "files"]) => {
            let param = |name: &str| {
                query.split('&').find_map(|pair| {
                    pair.split_once('=')
                        .filter(|(k, _)| *k == name)
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                })
            };
            let per_page = param("per_page").unwrap_or(30).max(1);
            let page = param("page").unwrap_or(1).max(1);
            let files = state
                .files
                .lock()
                .ok()
                .and_then(|map| map.get(&format!("{owner}/{repo}#{number}")).cloned())
                .unwrap_or_default();
            let chunk: Vec<Value> = files
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|f| json!({"filename": f, "status": "modified"}))
                .collect();
            let mut response = answer(StatusCode::OK, Value::Array(chunk));
            if page * per_page < files.len() {
                let link = format!(
                    "<http://{}{path}?per_page={per_page}&page={}>; rel=\"next\"",
                    parts
                        .headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("127.0.0.1"),
                    page + 1
                );
                if let Ok(value) = link.parse() {
                    response.headers_mut().insert("link", value);
                }
            }
            Ok(response)
        }
        _ => Ok(answer(
            StatusCode::NOT_FOUND,
            json!({"message": "Not Found"}),
        )),
    }
}
