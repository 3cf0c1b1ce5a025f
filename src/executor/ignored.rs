//! Buildspec keys pushbuild accepts but does not act on (`run-as`, `proxy`, `batch`, …): each
//! gets a line in the log saying why.

use super::log::BuildLog;
use crate::buildspec::{BuildSpec, PhaseName};

/// Logs each buildspec key that is accepted but not acted on, and why (`runtime-versions` is
/// acted on when the build runs on an image with runtimes).
pub(super) fn note_ignored_keys(spec: &BuildSpec, image_runtimes: bool, log: &BuildLog) {
    let mut notes: Vec<String> = Vec::new();
    if spec.run_as.is_some() {
        notes.push("run-as: commands run as the function's own user".into());
    }
    if spec.proxy.is_some() {
        notes.push("proxy: builds run with the function's own network access".into());
    }
    if spec.batch.is_some() {
        notes.push(
            "batch: not run as a batch here (PUSHBUILD_BATCH=off, or nothing here can start \
             its builds): the buildspec runs as one build"
                .into(),
        );
    }
    if spec.env.git_credential_helper {
        notes.push("env.git-credential-helper: no credential helper is configured".into());
    }
    for name in PhaseName::ALL {
        if let Some(phase) = spec.phases.get(name) {
            if phase.run_as.is_some() {
                notes.push(format!(
                    "phases.{}.run-as: commands run as the function's own user",
                    name.key()
                ));
            }
            if !phase.runtime_versions.is_empty() && !image_runtimes {
                let wanted: Vec<String> = phase
                    .runtime_versions
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                notes.push(format!(
                    "phases.{}.runtime-versions ({}): the runtime is the function's own",
                    name.key(),
                    wanted.join(", ")
                ));
            }
        }
    }
    for note in notes {
        log.marker(&format!("Ignoring {note}"));
    }
}
