//! The UPLOAD_ARTIFACTS phase: each artifact (the primary one and every secondary one) selected,
//! zipped and stored on its own. An artifact the user's build got wrong (a pattern that matches
//! nothing) fails the phase; a store that cannot take the zip is pushbuild's failure.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use chrono::Utc;

use super::{PipelineError, build_meta};
use crate::artifacts::{self, ArtifactError};
use crate::buildspec::{ArtifactSet, Artifacts};
use crate::executor::env::BuildInfo;
use crate::executor::log::BuildLog;
use crate::executor::{ContextCode, PhaseContext, PhaseOutcome, RunStatus, millis};
use crate::record::{ArtifactRecord, Ending};
use crate::state::BuildState;
use crate::store::{Layout, ObjectMeta, Store, StoreError, check_key};

const PHASE: &str = "UPLOAD_ARTIFACTS";

/// Where artifacts come from and go.
pub(super) struct Target<'a> {
    pub info: &'a BuildInfo,
    pub src_dir: &'a Path,
    pub store: &'a dyn Store,
    pub log: &'a BuildLog,
}

/// What the phase gave.
pub(super) struct Uploaded {
    pub phase: PhaseOutcome,
    pub artifacts: Vec<ArtifactRecord>,
    /// Selection warnings, for the record (`artifacts: …`).
    pub warnings: Vec<String>,
}

impl Uploaded {
    /// Adds the phase and the artifacts to `ending` (a failed upload fails a build that had
    /// succeeded); gives back the warnings.
    pub fn add_to(self, ending: &mut Ending) -> Vec<String> {
        if self.phase.status == RunStatus::Failed && ending.status == BuildState::Succeeded {
            ending.status = BuildState::Failed;
        }
        ending.phases.push(self.phase);
        ending.artifacts = self.artifacts;
        self.warnings
    }
}

/// Runs the phase over the buildspec's `artifacts`; `expanded_names` are the names the build's
/// shell expanded.
pub(super) fn upload_artifacts(
    target: &Target<'_>,
    spec: &Artifacts,
    expanded_names: &[(Option<String>, String)],
) -> Result<Uploaded, PipelineError> {
    let started = Utc::now();
    let clock = Instant::now();
    let log = target.log;
    log.marker(&format!("Entering phase {PHASE}"));
    let mut sets: Vec<(Option<&str>, &ArtifactSet)> = vec![(None, &spec.primary)];
    sets.extend(
        spec.secondary
            .iter()
            .map(|(id, set)| (Some(id.as_str()), set)),
    );
    let mut uploaded = Uploaded {
        phase: PhaseOutcome {
            phase: PHASE.to_string(),
            status: RunStatus::Succeeded,
            started,
            duration_ms: 0,
            attempts: 1,
            context: None,
        },
        artifacts: Vec::new(),
        warnings: Vec::new(),
    };
    for (identifier, set) in sets {
        let name = artifact_name(
            target.info.project.as_str(),
            identifier,
            set,
            expanded_names,
        );
        match package_one(target, set, &name) {
            Ok((record, artifact_warnings)) => {
                for warning in artifact_warnings {
                    log.marker(&format!("Warning: {warning}"));
                    uploaded.warnings.push(format!("artifacts: {warning}"));
                }
                log.marker(&format!(
                    "Uploaded artifact {} ({} files, {} bytes) to {}",
                    record.name, record.files, record.size, record.uri
                ));
                uploaded.artifacts.push(ArtifactRecord {
                    identifier: identifier.map(str::to_string),
                    ..record
                });
            }
            Err(Packaging::Artifact(fault)) => fail(&mut uploaded.phase, log, identifier, &fault),
            // An artifact too big for the store is the build's fault, like any other.
            Err(Packaging::Store(err)) if err.too_big() => fail(
                &mut uploaded.phase,
                log,
                identifier,
                &ArtifactFault::Store(err),
            ),
            Err(Packaging::Store(err)) => return Err(err.into()),
        }
    }
    uploaded.phase.duration_ms = millis(clock.elapsed());
    log.phase_complete(
        PHASE,
        uploaded.phase.status,
        uploaded.phase.context.as_ref(),
    );
    Ok(uploaded)
}

/// One artifact failed: the log says which and why, and the phase fails (its context is the
/// first failure's).
fn fail(phase: &mut PhaseOutcome, log: &BuildLog, identifier: Option<&str>, fault: &ArtifactFault) {
    let what = identifier.map_or("primary artifact".to_string(), |id| {
        format!("secondary artifact {id}")
    });
    log.marker_failed(&format!("Skipping the {what}: {fault}"));
    phase.status = RunStatus::Failed;
    phase.context.get_or_insert_with(|| {
        PhaseContext::new(ContextCode::ClientError, format!("{what}: {fault}"))
    });
}

/// An artifact's file name: its `name` (shell-expanded), else the project's name for the primary
/// artifact and the identifier for a secondary one; `.zip` is added when missing.
fn artifact_name(
    project: &str,
    identifier: Option<&str>,
    set: &ArtifactSet,
    expanded: &[(Option<String>, String)],
) -> String {
    let given = expanded
        .iter()
        .find(|(id, _)| id.as_deref() == identifier)
        .map(|(_, name)| name.clone())
        .or_else(|| set.name.clone());
    let base = given.unwrap_or_else(|| identifier.unwrap_or(project).to_string());
    let base = base.trim_matches('/').to_string();
    if base.ends_with(".zip") {
        base
    } else {
        format!("{base}.zip")
    }
}

enum Packaging {
    /// The user's artifact is at fault: the phase fails, the build goes on to its end.
    Artifact(ArtifactFault),
    /// The store failed: pushbuild's failure.
    Store(StoreError),
}

/// What is wrong with one of the build's artifacts.
#[derive(Debug, thiserror::Error)]
enum ArtifactFault {
    #[error(transparent)]
    Select(#[from] ArtifactError),
    /// The store refused the artifact for its size.
    #[error(transparent)]
    Store(StoreError),
    /// The name (as the shell expanded it) or the `s3-prefix` makes a key the store refuses.
    #[error(
        "its name `{name}`{prefix} gives the object key `{key}`, which is not valid ({why}); \
         an artifact's name and s3-prefix must stay inside the build's folder"
    )]
    Key {
        name: String,
        /// `` and s3-prefix `…` `` when there is one.
        prefix: String,
        key: String,
        why: &'static str,
    },
}

fn package_one(
    target: &Target<'_>,
    set: &ArtifactSet,
    name: &str,
) -> Result<(ArtifactRecord, Vec<String>), Packaging> {
    let store = target.store;
    let key = Layout::new(&target.info.project, target.info.build_id.as_str())
        .artifact(set.s3_prefix.as_deref(), name);
    if let Err(StoreError::BadKey { why, .. }) = check_key(&key) {
        return Err(Packaging::Artifact(ArtifactFault::Key {
            name: name.to_string(),
            prefix: set
                .s3_prefix
                .as_ref()
                .map(|p| format!(" and s3-prefix `{p}`"))
                .unwrap_or_default(),
            key,
            why,
        }));
    }
    let selection =
        artifacts::select(target.src_dir, set).map_err(|e| Packaging::Artifact(e.into()))?;
    let meta: ObjectMeta = build_meta(target.info, "application/zip");
    let mut writer = store.writer(&key, &meta).map_err(Packaging::Store)?;
    let write_error = |source| {
        Packaging::Store(StoreError::Write {
            uri: store.uri(&key),
            source,
        })
    };
    let summary =
        artifacts::write_zip(&selection.entries, &mut writer).map_err(|err| match err {
            // The zip's only output is the store: a failed write is the store's failure (an S3
            // upload that gave up, a full disk), not the user's build's.
            ArtifactError::Write { source } => write_error(source),
            other => Packaging::Artifact(other.into()),
        })?;
    writer.flush().map_err(write_error)?;
    let uri = writer.commit().map_err(Packaging::Store)?;
    Ok((
        ArtifactRecord {
            identifier: None,
            name: name.to_string(),
            uri,
            size: summary.bytes_out,
            sha256: summary.sha256,
            files: summary.entries,
        },
        selection.warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_default_and_get_a_zip_suffix() {
        let set = ArtifactSet::default();
        let named = ArtifactSet {
            name: Some("app".into()),
            ..ArtifactSet::default()
        };
        assert_eq!(artifact_name("web", None, &set, &[]), "web.zip");
        assert_eq!(artifact_name("web", Some("docs"), &set, &[]), "docs.zip");
        assert_eq!(artifact_name("web", None, &named, &[]), "app.zip");
        let expanded = [(None, "app-42.zip".to_string())];
        assert_eq!(artifact_name("web", None, &named, &expanded), "app-42.zip");
    }
}
