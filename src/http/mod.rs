//! The HTTP front door: one application (axum routes and handlers) served two ways, locally by
//! `pushbuild serve` and on AWS by the function through its Function URL.
//!
//! Routes: `POST /webhooks/github`, `POST /webhooks/gitlab`, `POST /webhooks/bitbucket`,
//! `GET /health`, and the build pages (`pages.rs`: `/`, `/builds/…`, `/billing`, `/download/…`). A webhook is answered as soon as it is
//! verified, planned and its build queued and handed off ([`lifecycle::queue`]), never after the
//! build runs:
//! `202` with the builds (`QUEUED` or `SKIPPED`), `200` for a ping or an event that builds
//! nothing, `401` for a missing or wrong signature (nothing is built or stored), `400` for a body
//! that is not the event it claims to be, `413` above the body limit.

#[cfg(feature = "aws")]
mod badges;
pub mod lambda;
mod local;
mod login;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use local::LocalQueue;
pub use login::Login;
pub use pages::Pages;

use crate::index::Index;
use crate::lifecycle::{self, Accepted, Dispatch};
use crate::source::GitHost;
use crate::status::{
    self, BitbucketApi, Change, CommitStatus, GitHubApi, GitLabApi, HostApi, State as StatusState,
};
use crate::trigger::{BuildTarget, Host, Skipped};
use crate::webhook::{self, BODY_LIMIT, Headers, HostEvent, Plan, Received, WebhookError};

/// What the front door needs.
pub struct FrontDoor<D> {
    pub webhooks: webhook::WebhookSettings,
    /// Where delivery claims are kept.
    pub index: Arc<dyn Index>,
    pub dispatch: D,
    /// The hosts' APIs: a pull request's files (for `FILE_PATH` filters), and the status of a
    /// build that was asked for but refused (a fork's pull request).
    pub apis: Vec<(Host, Arc<dyn HostApi>)>,
    /// The commit status's context template, for refused builds.
    pub status_context: String,
    /// The build pages, where they are served (`pushbuild serve`); `None`: the pages' routes
    /// answer 404.
    pub pages: Option<Pages>,
    /// `PUSHBUILD_SUPERSEDE`: a push's older builds of its reference are asked to stop.
    pub superseding: Option<lifecycle::Superseding>,
    /// `PUSHBUILD_BADGES`: whether `/badges/…` is served, without a login.
    pub badges: bool,
}

impl<D> FrontDoor<D> {
    fn api(&self, host: Host) -> Option<Arc<dyn HostApi>> {
        self.apis
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, api)| api.clone())
    }
}

/// What the hosts' settings give: a git host for each (to fetch from) and each host's API (to
/// report to). Made once, when the function or `serve` starts.
pub struct HostClients {
    pub git: Vec<GitHost>,
    pub apis: Vec<(Host, Arc<dyn HostApi>)>,
}

impl HostClients {
    pub fn new(settings: &webhook::WebhookSettings) -> HostClients {
        let git = Host::ALL
            .into_iter()
            .map(|host| {
                let host_settings = settings.host(host);
                GitHost {
                    host,
                    url: host_settings.url.clone(),
                    token: host_settings.token.clone(),
                }
            })
            .collect();
        let (github, gitlab, bitbucket) = (&settings.github, &settings.gitlab, &settings.bitbucket);
        let apis: Vec<(Host, Arc<dyn HostApi>)> = vec![
            (
                Host::GitHub,
                Arc::new(GitHubApi::new(&github.api_url, github.token.clone())),
            ),
            (
                Host::GitLab,
                Arc::new(GitLabApi::new(&gitlab.api_url, gitlab.token.clone())),
            ),
            (
                Host::Bitbucket,
                Arc::new(BitbucketApi::new(
                    &bitbucket.api_url,
                    &bitbucket.url,
                    bitbucket.token.clone(),
                )),
            ),
        ];
        HostClients { git, apis }
    }
}

/// The routes, over `front`.
pub fn router<D: Dispatch>(front: Arc<FrontDoor<D>>) -> Router {
    // The pages, behind the login when there is one.
    let pages = Router::new()
        .route("/", get(pages::list::<D>))
        .route(
            "/builds/{*path}",
            get(pages::build::<D>).post(pages::act::<D>),
        )
        .route("/batches/{*path}", get(pages::batch::<D>))
        .route("/billing", get(pages::billing::<D>))
        .route("/download/{*key}", get(pages::download::<D>))
        .route("/live/{*path}", get(pages::live::<D>))
        .route(
            "/build-now",
            get(pages::build_now_form::<D>).post(pages::build_now::<D>),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            front.clone(),
            login::require::<D>,
        ));
    Router::new()
        .merge(pages)
        .route("/login", get(login::form::<D>).post(login::submit::<D>))
        .route("/health", get(health))
        .route("/badges/{*path}", get(badges::badge::<D>))
        .route("/webhooks/github", post(webhook::<D, GitHubRoute>))
        .route("/webhooks/gitlab", post(webhook::<D, GitLabRoute>))
        .route("/webhooks/bitbucket", post(webhook::<D, BitbucketRoute>))
        .with_state(front)
}

/// Which host a route serves (one handler for all of them).
trait HostRoute: Send + Sync + 'static {
    const HOST: Host;
}

struct GitHubRoute;
struct GitLabRoute;
struct BitbucketRoute;

impl HostRoute for GitHubRoute {
    const HOST: Host = Host::GitHub;
}
impl HostRoute for GitLabRoute {
    const HOST: Host = Host::GitLab;
}
impl HostRoute for BitbucketRoute {
    const HOST: Host = Host::Bitbucket;
}

async fn health() -> Response {
    json_answer(StatusCode::OK, json!({"status": "ok"}))
}

async fn webhook<D: Dispatch, R: HostRoute>(
    State(front): State<Arc<FrontDoor<D>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The limit is checked while reading, so a huge body is never held whole.
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => return refuse(&WebhookError::TooLarge { limit: BODY_LIMIT }),
    };
    receive(&front, R::HOST, &headers, &body).await
}

/// Verifies, reads, plans and hands off one delivery (one build per event it holds).
pub async fn receive<D: Dispatch>(
    front: &FrontDoor<D>,
    host: Host,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let headers = Headers::new(
        headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?.to_string()))),
    );
    let events = match webhook::receive(host, &front.webhooks, &headers, body) {
        Ok(Received::Ping) => return json_answer(StatusCode::OK, json!({"pong": true})),
        Ok(Received::Ignored { reason }) => return ignored(reason),
        Ok(Received::Events(events)) => events,
        Err(err) => return refuse(&err),
    };
    let mut builds = Vec::new();
    let mut reasons = Vec::new();
    for mut event in events {
        if let Err(answer) = complete(front, &mut event).await {
            return answer;
        }
        let plan = match webhook::plan(&event, &front.webhooks) {
            Ok(plan) => plan,
            Err(err) => return refuse(&err),
        };
        match plan {
            Plan::Ignored { reason } => reasons.push(reason),
            Plan::Skip { skipped, asked_for } => {
                if asked_for {
                    refused_status(front, &event, &skipped).await;
                }
                builds.push(Accepted::skipped(&skipped));
            }
            Plan::Build(target) => match hand_off(front, *target).await {
                Ok(entry) => builds.push(entry),
                Err(answer) => return answer,
            },
        }
    }
    if builds.is_empty() {
        ignored(reasons.join("; "))
    } else {
        accepted(builds)
    }
}

/// What a payload leaves out and the host's API can say: a full commit id where the payload
/// abbreviates it, and the files a change touches when a filter group looks at them and the
/// payload does not list them all.
async fn complete<D>(front: &FrontDoor<D>, event: &mut HostEvent) -> Result<(), Response> {
    let needs_files = event.changed_files.is_none() && front.webhooks.filter_groups.needs_files();
    if event.abbreviated_commit.is_none() && !needs_files {
        return Ok(());
    }
    let Some(api) = front.api(event.host) else {
        return Ok(());
    };
    let failed = |what: &str, err: &dyn std::fmt::Display| {
        tracing::warn!(repository = event.repository, error = %err, "{what} could not be read");
        json_answer(
            StatusCode::BAD_GATEWAY,
            json!({"error": format!("{what} could not be read from the host's API: {err}")}),
        )
    };
    if let Some(short) = event.abbreviated_commit.clone() {
        match api.full_commit_id(&event.repository, &short).await {
            Ok(id) => {
                event.commit = Some(id);
                event.abbreviated_commit = None;
            }
            Err(err) => return Err(failed("the head commit's full id", &err)),
        }
    }
    if needs_files {
        let change = match (&event.pull_request, &event.commit) {
            (Some(pr), _) => Change::PullRequest(pr.number),
            (None, Some(after)) => Change::Push {
                before: event.prev_commit.as_deref().filter(|b| !is_zeros(b)),
                after,
            },
            (None, None) => return Ok(()),
        };
        match api.changed_files(&event.repository, change).await {
            Ok(files) => event.changed_files = Some(files),
            Err(err) => return Err(failed("the changed files (for FILE_PATH filters)", &err)),
        }
    }
    Ok(())
}

/// A commit id of zeros: no commit (a new reference's `before`).
fn is_zeros(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

/// Queues one build (see [`lifecycle::queue`]): its entry in the answer, or the answer that
/// says why it could not be queued (503: the host may deliver again).
async fn hand_off<D: Dispatch>(
    front: &FrontDoor<D>,
    target: BuildTarget,
) -> Result<Accepted, Response> {
    lifecycle::queue(
        &front.index,
        &front.dispatch,
        target,
        front.superseding.as_ref(),
    )
    .await
    .map_err(|err| unavailable(&err))
}

/// Tells the commit that the build it asked for was refused (`error`).
async fn refused_status<D>(front: &FrontDoor<D>, event: &HostEvent, skipped: &Skipped) {
    let (Some(api), Some(commit)) = (front.api(event.host), event.commit.as_ref()) else {
        return;
    };
    let status = CommitStatus::new(
        StatusState::Error,
        status::expand(&front.status_context, &[]),
        None,
        &format!("SKIPPED: {}", skipped.reason),
    );
    status::report(&*api, &event.repository, commit, &status).await;
}

fn accepted(builds: Vec<Accepted>) -> Response {
    json_answer(StatusCode::ACCEPTED, json!({ "builds": builds }))
}

fn ignored(reason: String) -> Response {
    json_answer(StatusCode::OK, json!({ "builds": [], "reason": reason }))
}

fn refuse(err: &WebhookError) -> Response {
    if let WebhookError::SecretNotConfigured { setting } = err {
        tracing::warn!(
            setting,
            "a webhook was refused: its secret is not configured; set the setting"
        );
    }
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    json_answer(status, json!({ "error": err.to_string() }))
}

/// How long a host is asked to wait before delivering a refused webhook again.
const RETRY_AFTER_SECONDS: &str = "10";

fn unavailable(err: &dyn std::fmt::Display) -> Response {
    let mut answer = json_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "error": format!("the build could not be queued: {err}") }),
    );
    answer.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    answer
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
