//! What a build on CodeBuild is started with: its fetched source as a zip in the bucket, and
//! pushbuild's identity of it as `PUSHBUILD_*` variables.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::super::build_meta;
use crate::artifacts::{self, Entry, EntryKind};
use crate::codebuild::{BUILD_ID_VAR, PROJECT_VAR};
use crate::store::{Store, StoreError};

/// The variables CodeBuild gives the build: the caller's overrides and pushbuild's identity of
/// the build. CodeBuild reserves `CODEBUILD_` for its own (it sets `CODEBUILD_BUILD_ID` and the
/// rest itself), so pushbuild's values go as `PUSHBUILD_*`, and an override with that prefix is
/// left out.
pub(super) fn environment(
    info: &crate::executor::env::BuildInfo,
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = overrides
        .iter()
        .filter(|(name, _)| !name.starts_with("CODEBUILD_") && !name.starts_with("PUSHBUILD_"))
        .cloned()
        .collect();
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            env.push((name.to_string(), value));
        }
    };
    set(PROJECT_VAR, Some(info.project.to_string()));
    set(BUILD_ID_VAR, Some(info.build_id.to_string()));
    set(
        "PUSHBUILD_BUILD_NUMBER",
        Some(info.build_number.to_string()),
    );
    set("PUSHBUILD_INITIATOR", Some(info.initiator.clone()));
    set("PUSHBUILD_SOURCE_VERSION", info.source_version.clone());
    set(
        "PUSHBUILD_RESOLVED_SOURCE_VERSION",
        info.resolved_source_version
            .as_ref()
            .map(ToString::to_string),
    );
    set("PUSHBUILD_SOURCE_REPO_URL", info.source_repo_url.clone());
    set("PUSHBUILD_WEBHOOK_TRIGGER", info.webhook_trigger.clone());
    if let Some(webhook) = &info.webhook {
        set("PUSHBUILD_WEBHOOK_EVENT", Some(webhook.event.clone()));
        set("PUSHBUILD_WEBHOOK_HEAD_REF", Some(webhook.head_ref.clone()));
        set("PUSHBUILD_WEBHOOK_BASE_REF", webhook.base_ref.clone());
    }
    env
}

/// Zips the fetched source (every file, links kept as links) and stores it at `key`.
pub(super) fn upload_source(
    src_dir: &Path,
    work: &Path,
    key: &str,
    info: &crate::executor::env::BuildInfo,
    store: &dyn Store,
) -> Result<(), StoreError> {
    let io_error = |message: String| StoreError::Write {
        uri: store.uri(key),
        source: std::io::Error::other(message),
    };
    let mut entries = Vec::new();
    for item in walkdir::WalkDir::new(src_dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let item = item.map_err(|err| io_error(format!("reading the source: {err}")))?;
        let Ok(relative) = item.path().strip_prefix(src_dir) else {
            continue;
        };
        let zip_path = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if zip_path.is_empty() {
            continue;
        }
        let kind = if item.path_is_symlink() {
            let target = std::fs::read_link(item.path())
                .map_err(|err| io_error(format!("reading a link in the source: {err}")))?;
            EntryKind::Symlink {
                target: target.to_string_lossy().into_owned(),
            }
        } else if item.file_type().is_file() {
            use std::os::unix::fs::PermissionsExt;
            let mode = item
                .metadata()
                .map_or(0o644, |m| m.permissions().mode() & 0o7777);
            EntryKind::File { mode }
        } else {
            continue;
        };
        entries.push(Entry {
            source: item.path().to_path_buf(),
            zip_path,
            kind,
        });
    }
    let zip_path = work.join("source.zip");
    let file = File::create(&zip_path).map_err(|err| io_error(err.to_string()))?;
    artifacts::write_zip(&entries, BufWriter::new(file))
        .map_err(|err| io_error(format!("zipping the source: {err}")))?;
    store.put_file(key, &zip_path, &build_meta(info, "application/zip"))?;
    Ok(())
}
