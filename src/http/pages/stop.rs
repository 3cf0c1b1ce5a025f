//! `POST /builds/<project>/<build-id>/stop`: the Stop button of a running build's page. It asks
//! the build to stop (as `pushbuild stop` does: see `lifecycle::ask_to_stop`) and shows the
//! build's page again, which follows it to its end.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::build_now::same_origin;
use super::{blocking, failed, html, not_found, params};
use crate::http::{Dispatch, FrontDoor};
use crate::lifecycle::{StopError, ask_to_stop};
use crate::names::{BuildId, ProjectName};
use crate::pages;

/// `POST /builds/<project>/<build-id>/stop`.
pub(crate) async fn stop<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let Some((project, build_id)) = path
        .trim_matches('/')
        .strip_suffix("/stop")
        .and_then(|p| p.rsplit_once('/'))
        .and_then(|(p, b)| Some((ProjectName::parse(p).ok()?, BuildId::parse(b).ok()?)))
    else {
        return not_found("no such build");
    };
    let form = params(Some(&String::from_utf8_lossy(&body)));
    if form.get("token").map(String::as_str) != Some(pages.form_token.as_str())
        || !same_origin(&headers)
    {
        return html(
            StatusCode::FORBIDDEN,
            pages::page(
                "Stop",
                "<h1>Stop</h1><p>The form did not come from this build's page: open the page and press Stop again.</p>",
            ),
        );
    }
    let who = if pages.login.is_some() {
        "asked from the build's page (logged in)"
    } else {
        "asked from the build's page"
    };
    let (store, index, codebuild) = (
        pages.store.clone(),
        front.index.clone(),
        pages.codebuild.clone(),
    );
    let href = pages::build_href(project.as_str(), build_id.as_str());
    let asked = blocking(move || {
        ask_to_stop(
            &*store,
            &*index,
            codebuild.as_deref(),
            &project,
            &build_id,
            who,
        )
    })
    .await;
    match asked {
        Some(Ok(_)) => (StatusCode::SEE_OTHER, [(header::LOCATION, href)]).into_response(),
        Some(Err(StopError::NotFound { .. })) => not_found("no such build"),
        Some(Err(err)) => failed(err),
        None => failed("the build could not be asked to stop"),
    }
}
