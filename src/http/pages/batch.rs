//! `GET /batches/<project>/<batch-id>`: a batch's page, from its record once it has ended, or
//! from the index while it runs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{blocking, failed, html, not_found};
use crate::batch::BatchRecord;
use crate::http::{Dispatch, FrontDoor};
use crate::index::Index;
use crate::names::{BuildId, ProjectName};
use crate::pages;
use crate::store::Store;

/// `GET /batches/<project>/<batch-id>`.
pub(crate) async fn batch<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    Path(path): Path<String>,
) -> Response {
    let Some(pages) = &front.pages else {
        return not_found("pages are not served here");
    };
    let Some((project, batch_id)) = path
        .trim_matches('/')
        .rsplit_once('/')
        .and_then(|(p, b)| Some((ProjectName::parse(p).ok()?, BuildId::parse(b).ok()?)))
    else {
        return not_found("no such batch");
    };
    let (store, index) = (pages.store.clone(), front.index.clone());
    let record = blocking(move || read(&*store, &*index, &project, &batch_id)).await;
    match record {
        Some(Ok(Some(record))) => html(StatusCode::OK, pages::batch_page(&record)),
        Some(Ok(None)) => not_found("no such batch"),
        Some(Err(err)) => failed(err),
        None => failed("the page could not be drawn"),
    }
}

/// The batch's record: stored once it ended, else its state in the index.
fn read(
    store: &dyn Store,
    index: &dyn Index,
    project: &ProjectName,
    batch_id: &BuildId,
) -> Result<Option<BatchRecord>, Box<dyn std::error::Error + Send + Sync>> {
    let key = BatchRecord::key(project.as_str(), batch_id.as_str());
    if let Some(bytes) = store.get(&key)? {
        return Ok(Some(serde_json::from_slice(&bytes)?));
    }
    Ok(index.batch(project.as_str(), batch_id.as_str())?)
}
