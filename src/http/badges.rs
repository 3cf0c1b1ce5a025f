//! `GET /badges/<project>/<branch>.svg`: the build badge of a branch's latest ended build
//! (`passing`, `failing`, else `unknown`), served without a login only with
//! `PUSHBUILD_BADGES=true` (it tells anyone one word about the branch), cached for a minute.
//! A `/` in a branch's name is written `%2F`. The latest build is looked for among the
//! project's newest 200 builds (four pages of the index), never further back.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::pages::percent_decode;
use super::{Dispatch, FrontDoor};
use crate::index::Index;
use crate::names::ProjectName;
use crate::pages::{Badge, badge_svg};
use crate::state::BuildState;

/// How many of the index's pages (50 builds each) are looked through.
const PAGES: usize = 4;

/// `GET /badges/<project>/<branch>.svg`.
pub(super) async fn badge<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    uri: Uri,
) -> Response {
    let not_found = |why: &str| (StatusCode::NOT_FOUND, why.to_string()).into_response();
    if !front.badges {
        return not_found("badges are not served here (PUSHBUILD_BADGES)");
    }
    let Some((project, branch)) = uri
        .path()
        .strip_prefix("/badges/")
        .and_then(|p| p.strip_suffix(".svg"))
        .and_then(|p| p.rsplit_once('/'))
        .map(|(p, b)| (percent_decode(p), percent_decode(b)))
    else {
        return not_found("expected /badges/<project>/<branch>.svg");
    };
    let Ok(project) = ProjectName::parse(&project) else {
        return not_found("no such project");
    };
    let index = front.index.clone();
    let badge = tokio::task::spawn_blocking(move || latest(&*index, &project, &branch))
        .await
        .unwrap_or(Badge::Unknown);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        badge_svg(badge),
    )
        .into_response()
}

/// What the latest ended build of `branch` says: SUCCEEDED passes; FAILED and TIMED_OUT fail;
/// skipped and stopped builds say nothing.
fn latest(index: &dyn Index, project: &ProjectName, branch: &str) -> Badge {
    let reference = format!("refs/heads/{branch}");
    let mut after: Option<String> = None;
    for _ in 0..PAGES {
        let page = match index.project_builds(project, after.as_deref(), 50) {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "a badge's builds could not be read");
                return Badge::Unknown;
            }
        };
        let found = page
            .entries
            .iter()
            .filter(|e| e.reference.as_deref() == Some(reference.as_str()))
            .filter(|e| {
                matches!(
                    e.state,
                    BuildState::Succeeded | BuildState::Failed | BuildState::TimedOut
                )
            })
            .max_by_key(|e| e.start_time);
        if let Some(entry) = found {
            return if entry.state == BuildState::Succeeded {
                Badge::Passing
            } else {
                Badge::Failing
            };
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Badge::Unknown
}
