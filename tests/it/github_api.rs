//! A stand-in for the parts of the hosts' REST APIs pushbuild calls, written from their public
//! references, on one port:
//! - GitHub: `POST /repos/{owner}/{repo}/statuses/{sha}` and
//!   `GET /repos/{owner}/{repo}/pulls/{number}/files` (pages, a `Link` header to the next);
//! - GitLab (under `/api/v4`): `POST /projects/:id/statuses/:sha`,
//!   `GET /projects/:id/merge_requests/:iid/diffs` (pages, `Link`), `GET …/repository/compare`;
//! - Bitbucket (under `/2.0`): `POST /repositories/{ws}/{repo}/commit/{sha}/statuses/build`,
//!   `GET …/pullrequests/{id}/diffstat` and `GET …/diffstat/{spec}` (pages, `next`),
//!   `GET …/commit/{hash}` (the full hash of an abbreviated one).
//!
//! Status calls are recorded (answered 201); the token is required (a bearer token, or GitLab's
//! `PRIVATE-TOKEN`), and the next N status calls can be answered 500.
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

use crate::loopback::Loopback;

/// One status call as received (`repository` decoded: `group/sub/project`).
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
    _server: Loopback,
}

struct State {
    token: String,
    statuses: Mutex<Vec<StatusCall>>,
    /// Changed files by `owner/repo#number` (pull requests) or `owner/repo#push` (pushes).
    files: Mutex<BTreeMap<String, Vec<String>>>,
    /// Full commit ids, for abbreviated ones.
    commits: Mutex<Vec<String>>,
    fail_statuses: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

impl GitHubApi {
    pub fn start(token: &str) -> GitHubApi {
        let state = Arc::new(State {
            token: token.to_string(),
            statuses: Mutex::new(Vec::new()),
            files: Mutex::new(BTreeMap::new()),
            commits: Mutex::new(Vec::new()),
            fail_statuses: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let server = Loopback::serve("127.0.0.1", "hosts-api", state.clone(), handle);
        GitHubApi {
            addr: server.addr,
            state,
            _server: server,
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

    /// The files a push to `repository` changes (GitLab's compare, Bitbucket's diffstat).
    pub fn set_push_files(&self, repository: &str, files: &[&str]) {
        if let Ok(mut map) = self.state.files.lock() {
            map.insert(
                format!("{repository}#push"),
                files.iter().map(|f| f.to_string()).collect(),
            );
        }
    }

    /// Commits whose full id an abbreviation can be asked for.
    pub fn add_commits(&self, ids: &[&str]) {
        if let Ok(mut commits) = self.state.commits.lock() {
            commits.extend(ids.iter().map(|id| id.to_string()));
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
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let authorized = header("authorization") == format!("Bearer {}", state.token)
        || header("private-token") == state.token;
    if !authorized {
        return Ok(answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication"}),
        ));
    }
    let host = header("host");
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    };
    let number = |name: &str, default: usize| {
        param(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
            .max(1)
    };
    let files_of = |key: String| {
        state
            .files
            .lock()
            .ok()
            .and_then(|map| map.get(&key).cloned())
            .unwrap_or_default()
    };
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("%2F", "/"))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let status_call = |repository: String, commit: &str, body: Value| {
        let failing = state
            .fail_statuses
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let answered = if failing { 500 } else { 201 };
        if let Ok(mut calls) = state.statuses.lock() {
            calls.push(StatusCall {
                repository,
                commit: commit.to_string(),
                body: body.clone(),
                answered,
            });
        }
        if failing {
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "Server Error"}),
            )
        } else {
            answer(StatusCode::CREATED, body)
        }
    };
    let read_body = || async {
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)
    };
    match (parts.method.as_str(), segments.as_slice()) {
        // GitHub
        ("POST", ["repos", owner, repo, "statuses", sha]) => {
            let body = read_body().await;
            Ok(status_call(format!("{owner}/{repo}"), sha, body))
        }
        ("GET", ["repos", owner, repo, "pulls", n, "files"]) => {
            let files = files_of(format!("{owner}/{repo}#{n}"));
            let (per_page, page) = (number("per_page", 30), number("page", 1));
            let items = page_of(&files, per_page, page, |f| json!({"filename": f}));
            let mut response = answer(StatusCode::OK, Value::Array(items));
            if page * per_page < files.len() {
                link_next(&mut response, &host, &path, per_page, page + 1);
            }
            Ok(response)
        }
        // GitLab
        ("POST", ["api", "v4", "projects", project, "statuses", sha]) => {
            let body = read_body().await;
            Ok(status_call(project.to_string(), sha, body))
        }
        (
            "GET",
            [
                "api",
                "v4",
                "projects",
                project,
                "merge_requests",
                iid,
                "diffs",
            ],
        ) => {
            let files = files_of(format!("{project}#{iid}"));
            let (per_page, page) = (number("per_page", 20), number("page", 1));
            let items = page_of(
                &files,
                per_page,
                page,
                |f| json!({"new_path": f, "old_path": f}),
            );
            let mut response = answer(StatusCode::OK, Value::Array(items));
            if page * per_page < files.len() {
                let encoded = path.clone();
                link_next(&mut response, &host, &encoded, per_page, page + 1);
            }
            Ok(response)
        }
        ("GET", ["api", "v4", "projects", project, "repository", "compare"]) => {
            let diffs: Vec<Value> = files_of(format!("{project}#push"))
                .iter()
                .map(|f| json!({"new_path": f, "old_path": f}))
                .collect();
            Ok(answer(StatusCode::OK, json!({"diffs": diffs})))
        }
        // Bitbucket
        (
            "POST",
            [
                "2.0",
                "repositories",
                ws,
                repo,
                "commit",
                sha,
                "statuses",
                "build",
            ],
        ) => {
            let body = read_body().await;
            Ok(status_call(format!("{ws}/{repo}"), sha, body))
        }
        (
            "GET",
            [
                "2.0",
                "repositories",
                ws,
                repo,
                "pullrequests",
                id,
                "diffstat",
            ],
        ) => {
            let files = files_of(format!("{ws}/{repo}#{id}"));
            Ok(diffstat_page(&files, &host, &path, number("page", 1)))
        }
        ("GET", ["2.0", "repositories", ws, repo, "diffstat", _spec]) => {
            let files = files_of(format!("{ws}/{repo}#push"));
            Ok(diffstat_page(&files, &host, &path, number("page", 1)))
        }
        ("GET", ["2.0", "repositories", _ws, _repo, "commit", short]) => {
            let full = state
                .commits
                .lock()
                .ok()
                .and_then(|c| c.iter().find(|id| id.starts_with(short)).cloned());
            Ok(match full {
                Some(hash) => answer(StatusCode::OK, json!({"hash": hash, "type": "commit"})),
                None => answer(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"message": "not found"}}),
                ),
            })
        }
        _ => Ok(answer(
            StatusCode::NOT_FOUND,
            json!({"message": "Not Found"}),
        )),
    }
}

/// Page `page` (from 1) of `items`, `per_page` to a page.
fn page_of(
    items: &[String],
    per_page: usize,
    page: usize,
    each: impl Fn(&str) -> Value,
) -> Vec<Value> {
    items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|f| each(f))
        .collect()
}

fn link_next(
    response: &mut Response<Full<Bytes>>,
    host: &str,
    path: &str,
    per_page: usize,
    page: usize,
) {
    let link = format!("<http://{host}{path}?per_page={per_page}&page={page}>; rel=\"next\"");
    if let Ok(value) = link.parse() {
        response.headers_mut().insert("link", value);
    }
}

/// A page of Bitbucket's diffstat: ten entries, and the next page's URL in `next`.
fn diffstat_page(files: &[String], host: &str, path: &str, page: usize) -> Response<Full<Bytes>> {
    const PAGELEN: usize = 10;
    let values = page_of(
        files,
        PAGELEN,
        page,
        |f| json!({"new": {"path": f}, "status": "modified"}),
    );
    let mut body = json!({"values": values, "page": page, "pagelen": PAGELEN});
    if page * PAGELEN < files.len() {
        body["next"] = json!(format!("http://{host}{path}?page={}", page + 1));
    }
    answer(StatusCode::OK, body)
}
