//! The smaller top-level sections: `artifacts`, `reports`, `cache` and `proxy`.

use super::{Cx, Entry, Res};
use crate::buildspec::{ArtifactSet, Artifacts, Cache, Proxy, Report};

const ARTIFACT_KEYS: &[&str] = &[
    "files",
    "name",
    "base-directory",
    "discard-paths",
    "exclude-paths",
    "enable-symlinks",
    "s3-prefix",
    "secondary-artifacts",
];
const REPORT_KEYS: &[&str] = &["files", "base-directory", "discard-paths", "file-format"];
const CACHE_KEYS: &[&str] = &["paths", "key", "fallback-keys", "action"];
const PROXY_KEYS: &[&str] = &["upload-artifacts", "logs"];

/// Parses `artifacts`: the primary artifact's keys plus `secondary-artifacts`.
pub(super) fn artifacts(cx: &mut Cx, e: &Entry) -> Res<Artifacts> {
    let mut secondary = Vec::new();
    let primary = artifact_set(cx, e, Some(&mut secondary))?;
    Ok(Artifacts { primary, secondary })
}

/// One artifact's keys; `secondary` collects `secondary-artifacts`, which only the primary
/// artifact may have.
fn artifact_set(
    cx: &mut Cx,
    e: &Entry,
    mut secondary: Option<&mut Vec<(String, ArtifactSet)>>,
) -> Res<ArtifactSet> {
    let known = match secondary {
        Some(_) => ARTIFACT_KEYS,
        None => &ARTIFACT_KEYS[..ARTIFACT_KEYS.len() - 1],
    };
    let mut set = ArtifactSet::default();
    let mut has_files = false;
    for f in cx.fields(e.value, &e.path, "a mapping with `files`", known)? {
        match f.key {
            "files" => {
                has_files = true;
                set.files = cx.strings(&f)?;
            }
            "name" => set.name = cx.opt_string(&f)?,
            "base-directory" => set.base_directory = cx.opt_string(&f)?,
            "discard-paths" => set.discard_paths = cx.boolean(&f)?,
            "exclude-paths" => set.exclude_paths = cx.strings(&f)?,
            "enable-symlinks" => set.enable_symlinks = cx.boolean(&f)?,
            "s3-prefix" => set.s3_prefix = cx.opt_string(&f)?,
            _ => {
                let expected = "a mapping of artifact identifiers to artifacts";
                for s in cx.pairs(f.value, &f.path, expected)? {
                    let set = artifact_set(cx, &s, None)?;
                    if let Some(out) = secondary.as_deref_mut() {
                        out.push((s.key.to_string(), set));
                    }
                }
            }
        }
    }
    if !has_files {
        let found = "no `files` key";
        return Err(cx.invalid(&e.path, e.line, "a `files` list (the paths to keep)", found));
    }
    Ok(set)
}

/// Parses `reports`: report group name or ARN ─▶ report settings.
pub(super) fn reports(cx: &mut Cx, e: &Entry) -> Res<Vec<(String, Report)>> {
    let mut out = Vec::new();
    for g in cx.pairs(
        e.value,
        &e.path,
        "a mapping of report group names to reports",
    )? {
        let mut report = Report::default();
        for f in cx.fields(g.value, &g.path, "a mapping with `files`", REPORT_KEYS)? {
            match f.key {
                "files" => report.files = cx.strings(&f)?,
                "base-directory" => report.base_directory = cx.opt_string(&f)?,
                "discard-paths" => report.discard_paths = cx.boolean(&f)?,
                _ => report.file_format = cx.opt_string(&f)?,
            }
        }
        out.push((g.key.to_string(), report));
    }
    Ok(out)
}

/// Parses `cache`.
pub(super) fn cache(cx: &mut Cx, e: &Entry) -> Res<Cache> {
    let mut cache = Cache::default();
    for f in cx.fields(e.value, &e.path, "a mapping with `paths`", CACHE_KEYS)? {
        match f.key {
            "paths" => cache.paths = cx.strings(&f)?,
            "key" => cache.key = cx.opt_string(&f)?,
            "fallback-keys" => cache.fallback_keys = cx.strings(&f)?,
            _ => cache.action = cx.opt_string(&f)?,
        }
    }
    Ok(cache)
}

/// Parses `proxy`.
pub(super) fn proxy(cx: &mut Cx, e: &Entry) -> Res<Proxy> {
    let mut proxy = Proxy::default();
    for f in cx.fields(e.value, &e.path, "a mapping of proxy settings", PROXY_KEYS)? {
        match f.key {
            "upload-artifacts" => proxy.upload_artifacts = cx.boolean(&f)?,
            _ => proxy.logs = cx.boolean(&f)?,
        }
    }
    Ok(proxy)
}
