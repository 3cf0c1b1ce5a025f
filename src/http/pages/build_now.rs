//! "Build now": the form, and the build a manual request starts from it (`GET` and `POST
//! /build-now`); the new build's page follows.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{html, not_found, params};
use crate::http::{Dispatch, FrontDoor};
use crate::lifecycle::Accepted;
use crate::names::{ProjectName, SourceVersion};
use crate::pages;
use crate::trigger::BuildTarget;

/// `GET /build-now`: the form.
pub(crate) async fn build_now_form<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let params = params(query.as_deref());
    html(
        StatusCode::OK,
        pages::build_now_page(
            &pages.form_token,
            params.get("repository").map_or("", String::as_str),
            None,
        ),
    )
}

/// `POST /build-now`: starts the build a manual request starts, then shows its page.
pub(crate) async fn build_now<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let form = params(Some(&String::from_utf8_lossy(&body)));
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    // From another site: no form token (and, in browsers, an Origin that is not this host).
    if field("token") != pages.form_token || !same_origin(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            pages::page(
                "Build now",
                "<h1>Build now</h1><p>The form did not come from this page: open Build now and send it again.</p>",
            ),
        );
    }
    let refuse = |message: String| {
        html(
            StatusCode::BAD_REQUEST,
            pages::build_now_page(&pages.form_token, field("repository"), Some(&message)),
        )
    };
    let repository = match ProjectName::parse(field("repository")) {
        Ok(repository) => repository,
        Err(err) => return refuse(format!("repository: {err}")),
    };
    let Some(source) = front.webhooks.repo_of(&repository) else {
        return refuse(format!(
            "repository: no host configured here serves {repository} (its first part must be \
             a configured host's name, with its port if its URL has one)"
        ));
    };
    let asked = if field("version").is_empty() {
        "main"
    } else {
        field("version")
    };
    let version = match SourceVersion::parse(asked) {
        Ok(version) => version,
        Err(err) => return refuse(format!("branch or commit: {err}")),
    };
    let env_overrides = match variables(field("variables")) {
        Ok(vars) => vars,
        Err(message) => return refuse(message),
    };
    let target = BuildTarget {
        env_overrides,
        ..BuildTarget::new(
            repository.clone(),
            source,
            version,
            "pushbuild-pages/build-now",
        )
    };
    match super::super::hand_off(&front, target).await {
        Ok(Accepted {
            build_id: Some(id), ..
        }) => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                pages::build_href(repository.as_str(), id.as_str()),
            )],
        )
            .into_response(),
        // A build with no delivery is never a duplicate: it is always queued.
        Ok(skipped) => refuse(skipped.reason.unwrap_or_default()),
        Err(answer) => answer,
    }
}

/// Whether a form came from this host: a browser's `Origin` names it (a request without one, or
/// without a `Host`, is judged by its form token alone).
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://").map(|(_, h)| h.to_string()))
            .is_some_and(|o| Some(o.as_str()) == host.to_str().ok()),
        _ => true,
    }
}

/// `NAME=value` lines: a build's variables.
fn variables(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = crate::names::variable_assignment(line)
            .map_err(|err| format!("variables, line {}: {err}", i + 1))?;
        if name.starts_with("CODEBUILD_") {
            return Err(format!(
                "variables, line {}: `{name}` is not a variable name a build may set",
                i + 1
            ));
        }
        vars.push((name, value));
    }
    Ok(vars)
}
