//! Running a build again (`pushbuild retry`, the Retry button of a build's page): what the
//! build was asked to build (its [`BuildTarget`], kept as `builds/<project>/<build-id>/target.json`
//! when it was taken) is asked for again, as a new build of the same commit, with the same
//! overrides and trigger, whose record names the build it retries (`retries`).

use super::{BuildIdentity, Builds};
use crate::names::{BuildId, ProjectName};
use crate::store::{Layout, ObjectMeta, Store, StoreError};
use crate::trigger::BuildTarget;

/// Why a build cannot be run again.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error(
        "build {build_id} of {project} cannot be run again: what it built was not kept (a build \
         of `pushbuild run`, or one from before retries)"
    )]
    NotKept {
        project: ProjectName,
        build_id: BuildId,
    },
    #[error("build {build_id}'s target.json: {message}")]
    Unreadable { build_id: BuildId, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The build that runs `build_id` of `project` again. Blocking.
pub fn retry_target(
    store: &dyn Store,
    project: &ProjectName,
    build_id: &BuildId,
) -> Result<BuildTarget, RetryError> {
    let Some(bytes) = store.get(&Layout::new(project, build_id.as_str()).target())? else {
        return Err(RetryError::NotKept {
            project: project.clone(),
            build_id: build_id.clone(),
        });
    };
    let target: BuildTarget =
        serde_json::from_slice(&bytes).map_err(|err| RetryError::Unreadable {
            build_id: build_id.clone(),
            message: err.to_string(),
        })?;
    Ok(BuildTarget {
        build_id: None,
        dedup_key: None,
        retries: Some(build_id.clone()),
        ..target
    })
}

impl<S> Builds<S> {
    /// Keeps what the build `identity` was asked to build, for a retry (one small object; a
    /// batch's children are not kept: a retry of the batch's push runs again its children that
    /// did not succeed).
    pub(super) async fn keep_target(&self, target: &BuildTarget, identity: &BuildIdentity) {
        if target.batch.is_some() {
            return;
        }
        let kept = BuildTarget {
            build_id: Some(identity.build_id.clone()),
            ..target.clone()
        };
        let Ok(bytes) = serde_json::to_vec(&kept) else {
            return;
        };
        let key = Layout::new(&identity.project, identity.build_id.as_str()).target();
        let store = self.store.clone();
        let put = tokio::task::spawn_blocking(move || {
            store.put(&key, &bytes, &ObjectMeta::new("application/json"))
        })
        .await;
        if !matches!(put, Ok(Ok(_))) {
            tracing::warn!(build_id = %identity.build_id, "what the build was asked for was not kept: it cannot be retried");
        }
    }
}
