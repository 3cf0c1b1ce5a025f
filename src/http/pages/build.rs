//! `GET /builds/<project>/<build-id>`: a build's page, from its record, log and report groups
//! once it has ended, else from its entry and its log so far (with the Stop button).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{blocking, failed, html, not_found};
use crate::http::{Dispatch, FrontDoor};
use crate::index::Index;
use crate::names::{BuildId, ProjectName};
use crate::pages::{self, Download};
use crate::record::BuildRecord;
use crate::store::{Layout, Store};

/// `<project>/<build-id>` of a build's address.
pub(super) fn build_path(path: &str) -> Option<(ProjectName, BuildId)> {
    let (project, build_id) = path.trim_matches('/').rsplit_once('/')?;
    Some((
        ProjectName::parse(project).ok()?,
        BuildId::parse(build_id).ok()?,
    ))
}

/// What a build's page shows besides the build.
struct Page<'a> {
    /// The token its Stop form carries.
    form_token: &'a str,
    /// The pages' address, when badges are served.
    badge_base: Option<&'a str>,
}

/// `GET /builds/<project>/<build-id>`.
pub(crate) async fn build<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    Path(path): Path<String>,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let Some((project, build_id)) = build_path(&path) else {
        return not_found("no such build");
    };
    let (store, index, token, badges) = (
        pages.store.clone(),
        front.index.clone(),
        pages.form_token.clone(),
        pages.badge_base.clone(),
    );
    let drawn = blocking(move || {
        let page = Page {
            form_token: &token,
            badge_base: badges.as_deref(),
        };
        draw_build(&*store, &*index, &project, &build_id, &page)
    })
    .await;
    match drawn {
        Some(Ok(Some(body))) => html(StatusCode::OK, body),
        Some(Ok(None)) => not_found("no such build"),
        Some(Err(err)) => failed(err),
        None => failed("the page could not be drawn"),
    }
}

fn draw_build(
    store: &dyn Store,
    index: &dyn Index,
    project: &ProjectName,
    build_id: &BuildId,
    page: &Page<'_>,
) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
    let layout = Layout::new(project, build_id.as_str());
    let log = store
        .get(&layout.log())?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let Some(record) = store.get(&layout.record())? else {
        // Not ended: its entry, and its log so far if one is there.
        let log = match log {
            Some(log) => Some(log),
            None => store
                .get(&layout.live_log())?
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        };
        return Ok(index
            .entry(project, build_id)?
            .map(|entry| pages::running_page(&entry, log.as_deref(), page.form_token)));
    };
    let record: BuildRecord = serde_json::from_slice(&record)?;
    let downloads: Vec<Download> = record
        .artifacts
        .iter()
        .filter_map(|a| {
            let key = store_key(store, &a.uri)?;
            Some(Download {
                name: a.name.clone(),
                href: format!("/download/{key}"),
                size: a.size,
            })
        })
        .collect();
    // Each group's whole report; one missing or unreadable shows the record's summary.
    let reports: Vec<crate::reports::GroupReport> = (record.reports.iter())
        .filter_map(|r| store.get(&layout.report(&r.group)).ok().flatten())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    // With badges served: the Markdown of its branch's badge.
    let badge = page.badge_base.and_then(|base| {
        let reference = record.reference.as_deref()?;
        let (kind, branch) = crate::names::split_ref(reference)?;
        (kind == crate::names::RefKind::Branch)
            .then(|| pages::badge_markdown(base, project.as_str(), branch))
    });
    Ok(Some(pages::build_page(
        &record,
        log.as_deref().unwrap_or(""),
        &downloads,
        &reports,
        badge.as_deref(),
        page.form_token,
    )))
}

/// The store's key of an object it named `uri`.
fn store_key(store: &dyn Store, uri: &str) -> Option<String> {
    let base = store.uri("");
    uri.strip_prefix(&base).map(str::to_string)
}
