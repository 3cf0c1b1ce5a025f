//! Asking a running build to stop. The ask is an object in the store: the build's own
//! (`builds/<project>/<build-id>/stop.json`, [`super::Layout::stop`]) or its batch's
//! (`batches/<project>/<batch-id>/stop.json`, when `fast-fail` stops the batch). A running build
//! looks for both every few seconds wherever it runs (the function, `serve`, `pushbuild run`),
//! so whoever can write to the store can stop it, and nothing else has to reach the build.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ObjectMeta, Store, StoreError};

/// Why a build is asked to stop, and when it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    /// `asked by alice`, `fast-fail: `b` ended FAILED`, `superseded by <build id>`.
    pub reason: String,
    pub asked_at: DateTime<Utc>,
}

/// Asks whatever builds look at `key` to stop, for `reason`. An earlier ask stays as it was.
pub fn ask(store: &dyn Store, key: &str, reason: &str) -> Result<(), StoreError> {
    let request = StopRequest {
        reason: reason.to_string(),
        asked_at: Utc::now(),
    };
    let bytes = serde_json::to_vec(&request).unwrap_or_default();
    store
        .put_if_absent(key, &bytes, &ObjectMeta::new("application/json"))
        .map(|_| ())
}

/// The ask at `key`, if there is one. An object there that is not an ask still asks (its
/// reason says so): a stop must not be lost to a damaged object.
pub fn asked(store: &dyn Store, key: &str) -> Result<Option<StopRequest>, StoreError> {
    let Some(bytes) = store.get(key)? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        StopRequest {
            reason: "asked to stop".into(),
            asked_at: Utc::now(),
        }
    })))
}
