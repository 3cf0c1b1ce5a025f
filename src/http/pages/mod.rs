//! The build pages' routes: `GET /` (the builds, newest first, 50 a page, filtered by
//! repository, branch and status), `GET /builds/<project>/<build-id>`, `GET /batches/<project>/
//! <batch-id>`, `GET /billing?month=` and `GET /download/<key>` (an artifact or log from the
//! store). Lists come from the index, one build's page from its objects, so drawing `/` does not
//! grow with the number of builds. Served where [`FrontDoor::pages`] is set: by `pushbuild serve`
//! (the local store) and by the function behind its login (the bucket; pre-signed downloads).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

mod batch;
mod build;
mod build_now;
mod stop;

pub(crate) use batch::batch;
pub(crate) use build::build;
use build::build_path;
pub(crate) use build_now::{build_now, build_now_form};
pub(crate) use stop::act;

use super::{Dispatch, FrontDoor};
use crate::billing::Budget;
use crate::index::{Entry, month_of};
use crate::names::ProjectName;
use crate::pages::{self, Filters};
use crate::record::BuildRecord;
use crate::store::{Layout, Store};

/// What the pages read besides the index.
pub struct Pages {
    pub store: Arc<dyn Store>,
    /// The caps, for the billing chart's line.
    pub budget: Budget,
    /// The token every "Build now" form carries (drawn from the login's token, or random per
    /// process without a login): a form posted from another site does not have it.
    pub form_token: String,
    /// The login every page needs, when one is set.
    pub login: Option<super::Login>,
    /// AWS CodeBuild, to stop a build that runs there (the function's, when it has a project).
    pub codebuild: Option<Arc<dyn crate::codebuild::CodeBuild>>,
    /// With `PUSHBUILD_BADGES`, the pages' address (empty: unknown) for the badge's Markdown.
    pub badge_base: Option<String>,
}

impl Pages {
    pub fn new(store: Arc<dyn Store>, budget: Budget, login: Option<super::Login>) -> Pages {
        Pages {
            store,
            budget,
            form_token: login.as_ref().map_or_else(
                || uuid::Uuid::new_v4().simple().to_string(),
                super::Login::form_token,
            ),
            login,
            codebuild: None,
            badge_base: None,
        }
    }

    /// With badges served, under `base` (the pages' address; empty: unknown).
    pub fn with_badges(mut self, base: Option<String>) -> Pages {
        self.badge_base = base;
        self
    }

    /// With AWS CodeBuild, to stop builds that run there.
    pub fn with_codebuild(
        mut self,
        codebuild: Option<Arc<dyn crate::codebuild::CodeBuild>>,
    ) -> Pages {
        self.codebuild = codebuild;
        self
    }
}

/// Builds on a page of the list.
pub const PAGE_SIZE: usize = 50;

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    html(
        StatusCode::NOT_FOUND,
        pages::page(
            "Not found",
            &format!("<h1>Not found</h1><p>{}</p>", pages::escape(what)),
        ),
    )
}

fn failed(err: impl std::fmt::Display) -> Response {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::page(
            "Error",
            &format!("<h1>Error</h1><p>{}</p>", pages::escape(&err.to_string())),
        ),
    )
}

/// `text` with each `%XX` decoded (a `%` not followed by two hex digits stays as it is).
pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query's parameters (`+` and `%XX` decoded); blank ones dropped.
pub(super) fn params(query: Option<&str>) -> HashMap<String, String> {
    let decode = |text: &str| percent_decode(&text.replace('+', " "));
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .map(|(k, v)| (decode(k), decode(v).trim().to_string()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect()
}

/// The answer for a page drawn off the async threads: the page, or what went wrong.
fn drawn<E: std::fmt::Display>(page: Option<Result<String, E>>) -> Response {
    match page {
        Some(Ok(body)) => html(StatusCode::OK, body),
        Some(Err(err)) => failed(err),
        None => failed("the page could not be drawn"),
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// `GET /`.
pub(super) async fn list<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    RawQuery(query): RawQuery,
) -> Response {
    if front.pages.is_none() {
        return not_found("pages are not served here");
    }
    let params = params(query.as_deref());
    let filters = Filters {
        repository: params.get("repository").cloned(),
        branch: params.get("branch").cloned(),
        status: params.get("status").map(|s| s.to_ascii_uppercase()),
    };
    let after = params.get("after").cloned();
    let month = params
        .get("month")
        .cloned()
        .unwrap_or_else(|| month_of(Utc::now()));
    let index = front.index.clone();
    let query_filters = filters.clone();
    let page = blocking(move || {
        let page = match &query_filters.repository {
            Some(repository) => match ProjectName::parse(repository) {
                Ok(project) => index.project_builds(&project, after.as_deref(), PAGE_SIZE),
                // No project has that name: no builds.
                Err(_) => Ok(crate::index::Page {
                    entries: Vec::new(),
                    next: None,
                }),
            },
            None => index.month_builds(&month, after.as_deref(), PAGE_SIZE),
        }?;
        let entries: Vec<Entry> = page
            .entries
            .into_iter()
            .filter(|e| query_filters.keep(e))
            .collect();
        Ok::<_, crate::index::IndexError>((entries, page.next))
    })
    .await;
    drawn(page.map(|page| {
        page.map(|(entries, next)| pages::list_page(&entries, &filters, next.as_deref()))
    }))
}

/// `GET /download/<key>`: an artifact or a log (keys under `artifacts/` and `builds/` only).
pub(super) async fn download<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    Path(key): Path<String>,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    if !(key.starts_with("artifacts/") || key.starts_with("builds/"))
        || key.split('/').any(|part| part == ".." || part == ".")
    {
        return not_found("no such object");
    }
    let (store, wanted) = (pages.store.clone(), key.clone());
    let link = blocking(move || store.download_url(&wanted)).await;
    if let Some(Ok(Some(url))) = link {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
    }
    let (store, wanted) = (pages.store.clone(), key.clone());
    match blocking(move || store.get(&wanted)).await {
        Some(Ok(Some(bytes))) => {
            let name = key
                .rsplit('/')
                .next()
                .unwrap_or("download")
                .replace('"', "");
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Some(Ok(None)) => not_found("no such object"),
        Some(Err(err)) => failed(err),
        None => failed("the object could not be read"),
    }
}

/// `GET /billing?month=YYYY-MM` (default: this month).
pub(super) async fn billing<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let month = params(query.as_deref())
        .get("month")
        .cloned()
        .unwrap_or_else(|| month_of(Utc::now()));
    if chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").is_err() {
        return html(
            StatusCode::BAD_REQUEST,
            pages::page(
                "Billing",
                "<h1>Billing</h1><p>month: expected YYYY-MM, such as 2026-11</p>",
            ),
        );
    }
    let (index, cap) = (front.index.clone(), pages.budget.monthly_minutes);
    let page = blocking(move || {
        let sums = index.month_sums(&month)?;
        // The chart reads the month's entries, a page at a time: it grows with the month's
        // builds, not with all of them.
        let mut entries = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = index.month_builds(&month, after.as_deref(), 500)?;
            entries.extend(page.entries);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let days = pages::minutes_per_day(&entries);
        Ok::<_, crate::index::IndexError>(pages::billing_page(&month, &sums, &days, cap))
    })
    .await;
    drawn(page)
}

/// `GET /live/<project>/<build-id>`: a running build's state and the end of its log, as JSON,
/// for its page's script.
pub(super) async fn live<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    Path(path): Path<String>,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let Some((project, build_id)) = build_path(&path) else {
        return not_found("no such build");
    };
    let (store, index) = (pages.store.clone(), front.index.clone());
    let state = blocking(move || {
        let layout = Layout::new(&project, build_id.as_str());
        let state = match store.get(&layout.record())? {
            Some(record) => serde_json::from_slice::<BuildRecord>(&record)?
                .status
                .as_str()
                .to_string(),
            None => match index.entry(&project, &build_id)? {
                Some(entry) => entry.state.as_str().to_string(),
                None => return Ok(None),
            },
        };
        let log = match store.get(&layout.log())? {
            Some(log) => Some(log),
            None => store.get(&layout.live_log())?,
        };
        let log = log.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Some((state, log)))
    })
    .await;
    match state {
        Some(Ok(Some((state, log)))) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            serde_json::json!({"status": state, "log": pages::log_html(log.as_deref().unwrap_or(""))})
                .to_string(),
        )
            .into_response(),
        Some(Ok(None)) => not_found("no such build"),
        Some(Err(err)) => failed(err),
        None => failed("the build could not be read"),
    }
}
