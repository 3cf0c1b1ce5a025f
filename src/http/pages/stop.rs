//! The buttons of a build's page: `POST /builds/<project>/<build-id>/stop` (a running build's
//! Stop: it asks the build to stop, as `pushbuild stop` does, see `lifecycle::ask_to_stop`, and
//! shows its page again, which follows it to its end) and `POST …/retry` (an ended build's
//! Retry: the same build again, see `lifecycle::retry_target`, whose page follows).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::build_now::same_origin;
use super::{blocking, failed, html, not_found, params};
use crate::http::{Dispatch, FrontDoor};
use crate::lifecycle::{Accepted, RetryError, StopError, ask_to_stop, retry_target};
use crate::names::{BuildId, ProjectName};
use crate::pages;

/// `POST /builds/<project>/<build-id>/stop` and `…/retry`.
pub(crate) async fn act<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let path = path.trim_matches('/');
    let (path, retry) = match (path.strip_suffix("/stop"), path.strip_suffix("/retry")) {
        (Some(path), _) => (path, false),
        (_, Some(path)) => (path, true),
        _ => return not_found("no such action"),
    };
    let Some((project, build_id)) = Some(path)
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
                "Not sent",
                "<h1>Not sent</h1><p>The form did not come from this build's page: open the page and press its button again.</p>",
            ),
        );
    }
    if retry {
        return run_again(&front, project, build_id).await;
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

/// The Retry button: the build again, then its page.
async fn run_again<D: Dispatch>(
    front: &FrontDoor<D>,
    project: ProjectName,
    build_id: BuildId,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let store = pages.store.clone();
    let target = blocking(move || retry_target(&*store, &project, &build_id)).await;
    let target = match target {
        Some(Ok(target)) => target,
        Some(Err(err @ RetryError::NotKept { .. })) => return not_found(&err.to_string()),
        Some(Err(err)) => return failed(err),
        None => return failed("the build could not be run again"),
    };
    let repository = target.project.clone();
    match super::super::hand_off(front, target).await {
        Ok(Accepted {
            build_id: Some(id), ..
        }) => {
            let href = pages::build_href(repository.as_str(), id.as_str());
            (StatusCode::SEE_OTHER, [(header::LOCATION, href)]).into_response()
        }
        Ok(accepted) => failed(format!(
            "the build was not run again: {}",
            accepted.reason.unwrap_or_default()
        )),
        Err(response) => response,
    }
}
