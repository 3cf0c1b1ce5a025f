//! Choosing the artifact files: `files` globs, `base-directory`, `discard-paths`,
//! `exclude-paths` and `enable-symlinks`, as CodeBuild's `artifacts` section describes them.
//!
//! Nothing outside the source directory is ever selected: absolute paths and `..` are refused,
//! the walk does not follow links, and a link that resolves outside the source is skipped.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use super::{ArtifactError, Entry, EntryKind, Selection};
use crate::buildspec::ArtifactSet;

/// Selects the files of `set` below `src_dir`.
///
/// `files` and `exclude-paths` are globs relative to `base-directory` (itself relative to
/// `src_dir`): `*` stays within one path component, `**` crosses any number of them, and a plain
/// path naming a directory selects everything below it. An `exclude-paths` glob that matches a
/// directory drops everything below it (the directory is not walked). Entries come back sorted
/// by zip path.
///
/// Links are never followed while walking. A link resolving outside `src_dir`, or dangling, is
/// skipped with a warning; one inside is kept as a link with `enable-symlinks`, otherwise its
/// target's content is taken as a regular file (a link to a directory is then skipped with a
/// warning, not descended into).
pub fn select(src_dir: &Path, set: &ArtifactSet) -> Result<Selection, ArtifactError> {
    let root = fs::canonicalize(src_dir).map_err(|source| ArtifactError::Read {
        path: src_dir.to_path_buf(),
        source,
    })?;
    let base = base_directory(&root, set)?;
    let mut warnings = Vec::new();
    let found = walk(&root, &base, set, &mut warnings)?;
    let entries = if set.discard_paths {
        discard_paths(found, &mut warnings)
    } else {
        found.into_iter().map(|(_, entry)| entry).collect()
    };
    Ok(Selection { entries, warnings })
}

/// The directory the patterns are relative to: `base-directory` inside the source, or the
/// source itself.
fn base_directory(root: &Path, set: &ArtifactSet) -> Result<PathBuf, ArtifactError> {
    let base_rel = match &set.base_directory {
        Some(dir) => normalize(dir)?,
        None => return Ok(root.to_path_buf()),
    };
    if base_rel.is_empty() {
        return Ok(root.to_path_buf());
    }
    let canonical = match fs::canonicalize(root.join(&base_rel)) {
        Ok(path) if path.is_dir() => path,
        _ => return Err(ArtifactError::NoBaseDirectory { path: base_rel }),
    };
    if !canonical.starts_with(root) {
        return Err(ArtifactError::OutsideSource { path: base_rel });
    }
    Ok(canonical)
}

/// Walks `base` for the files the patterns match and the exclusions leave, sorted by their
/// path relative to `base`; a pattern that matches nothing is an error.
/// A directory that could not be read during the walk.
fn walk_error(err: walkdir::Error, base: &Path) -> ArtifactError {
    let path = err.path().unwrap_or(base).to_path_buf();
    let source = err
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("directory walk failed"));
    ArtifactError::Read { path, source }
}

fn walk(
    root: &Path,
    base: &Path,
    set: &ArtifactSet,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, Entry)>, ArtifactError> {
    let include = include_set(base, &set.files)?;
    let exclude = glob_set(&set.exclude_paths)?;
    let mut matched = vec![false; set.files.len()];
    let mut skipped_only = vec![false; set.files.len()];
    let mut found: Vec<(String, Entry)> = Vec::new();
    let mut hits = Vec::new();
    let walk = WalkDir::new(base)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_entry(|entry| {
            // Prune excluded directories so that e.g. `node_modules` is never walked.
            !(entry.file_type().is_dir()
                && relative(base, entry.path()).is_some_and(|rel| exclude.is_match(rel)))
        });
    for item in walk {
        let item = item.map_err(|err| walk_error(err, base))?;
        if item.file_type().is_dir() {
            continue;
        }
        let Some(rel) = relative(base, item.path()) else {
            warnings.push(format!(
                "skipped `{}`: its name is not valid UTF-8",
                item.path().display()
            ));
            continue;
        };
        include.set.matches_into(rel, &mut hits);
        if hits.is_empty() {
            continue;
        }
        // A pattern has matched when a path it names is kept or deliberately excluded; one
        // whose every path was skipped (a link out of the source, a link loop) has not.
        let excluded = exclude.is_match(rel);
        let rel = rel.to_owned();
        let kind = if excluded {
            None
        } else {
            entry_kind(root, &item, &rel, set.enable_symlinks, warnings)?
        };
        for &hit in &hits {
            let pattern = include.pattern_of[hit];
            if excluded || kind.is_some() {
                matched[pattern] = true;
            } else {
                skipped_only[pattern] = true;
            }
        }
        if let Some(kind) = kind {
            let source = item.path().to_path_buf();
            found.push((
                rel.clone(),
                Entry {
                    source,
                    zip_path: rel,
                    kind,
                },
            ));
        }
    }
    if let Some(index) = matched.iter().position(|hit| !hit) {
        let pattern = set.files[index].clone();
        return Err(if skipped_only[index] {
            ArtifactError::OnlySkipped { pattern }
        } else {
            ArtifactError::NoMatch { pattern }
        });
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// What a walked file becomes in the zip; `None` when it is skipped (with a warning).
fn entry_kind(
    root: &Path,
    item: &walkdir::DirEntry,
    rel: &str,
    enable_symlinks: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<EntryKind>, ArtifactError> {
    let file_type = item.file_type();
    if file_type.is_file() {
        let meta = item.metadata().map_err(|err| ArtifactError::Read {
            path: item.path().to_path_buf(),
            source: err.into(),
        })?;
        Ok(Some(EntryKind::File {
            mode: meta.permissions().mode() & 0o7777,
        }))
    } else if file_type.is_symlink() {
        link_kind(root, item.path(), rel, enable_symlinks, warnings)
    } else {
        warnings.push(format!("skipped `{rel}`: not a regular file or a link"));
        Ok(None)
    }
}

/// `discard-paths: yes`: each file by its name alone; of two with one name, the first (by
/// path) is kept, with a warning.
fn discard_paths(found: Vec<(String, Entry)>, warnings: &mut Vec<String>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::with_capacity(found.len());
    let mut first_of: HashMap<String, String> = HashMap::new();
    for (rel, mut entry) in found {
        let name = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
        if let Some(first) = first_of.get(&name) {
            warnings.push(format!(
                "discard-paths: `{first}` and `{rel}` both become `{name}`; kept `{first}`"
            ));
            continue;
        }
        first_of.insert(name.clone(), rel);
        entry.zip_path = name;
        entries.push(entry);
    }
    entries.sort_by(|a, b| a.zip_path.cmp(&b.zip_path));
    entries
}

/// Decides what a symbolic link at `path` becomes; `None` means it is skipped (with a warning).
fn link_kind(
    root: &Path,
    path: &Path,
    rel: &str,
    enable_symlinks: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<EntryKind>, ArtifactError> {
    let read_err = |source| ArtifactError::Read {
        path: path.to_path_buf(),
        source,
    };
    let Ok(resolved) = fs::canonicalize(path) else {
        warnings.push(format!(
            "skipped symlink `{rel}`: its target does not exist"
        ));
        return Ok(None);
    };
    if !resolved.starts_with(root) {
        warnings.push(format!(
            "skipped symlink `{rel}`: it points outside the source directory"
        ));
        return Ok(None);
    }
    if enable_symlinks {
        let target = fs::read_link(path).map_err(read_err)?;
        let Some(target) = target.to_str() else {
            warnings.push(format!("skipped symlink `{rel}`: its target is not UTF-8"));
            return Ok(None);
        };
        return Ok(Some(EntryKind::Symlink {
            target: target.to_owned(),
        }));
    }
    let meta = fs::metadata(&resolved).map_err(read_err)?;
    if meta.is_dir() {
        warnings.push(format!(
            "skipped symlink `{rel}`: it points to a directory, which is not descended into \
             (set enable-symlinks to keep it as a link)"
        ));
        return Ok(None);
    }
    if !meta.is_file() {
        warnings.push(format!(
            "skipped symlink `{rel}`: it points to something that is not a regular file"
        ));
        return Ok(None);
    }
    Ok(Some(EntryKind::File {
        mode: meta.permissions().mode() & 0o7777,
    }))
}

/// The `files` globs, with a map from each glob back to the pattern it came from.
struct IncludeSet {
    set: GlobSet,
    pattern_of: Vec<usize>,
}

/// Builds the `files` globs: a plain path naming a directory selects everything below it.
fn include_set(base: &Path, patterns: &[String]) -> Result<IncludeSet, ArtifactError> {
    let mut builder = GlobSetBuilder::new();
    let mut pattern_of = Vec::new();
    for (index, pattern) in patterns.iter().enumerate() {
        let norm = normalize(pattern)?;
        let globs: Vec<String> = if norm.is_empty() {
            vec!["**".to_owned()]
        } else if has_glob(&norm) {
            vec![norm]
        } else {
            let literal = globset::escape(&norm);
            let is_dir = fs::symlink_metadata(base.join(&norm)).is_ok_and(|m| m.is_dir());
            if is_dir {
                vec![format!("{literal}/**")]
            } else {
                vec![literal]
            }
        };
        for glob in globs {
            builder.add(build_glob(&glob, pattern)?);
            pattern_of.push(index);
        }
    }
    let set = builder
        .build()
        .map_err(|source| ArtifactError::BadPattern {
            pattern: patterns.join(", "),
            source,
        })?;
    Ok(IncludeSet { set, pattern_of })
}

/// Builds the `exclude-paths` globs.
fn glob_set(patterns: &[String]) -> Result<GlobSet, ArtifactError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let norm = normalize(pattern)?;
        let glob = if norm.is_empty() {
            "**".to_owned()
        } else {
            norm
        };
        builder.add(build_glob(&glob, pattern)?);
    }
    builder.build().map_err(|source| ArtifactError::BadPattern {
        pattern: patterns.join(", "),
        source,
    })
}

fn build_glob(glob: &str, pattern: &str) -> Result<Glob, ArtifactError> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|source| ArtifactError::BadPattern {
            pattern: pattern.to_owned(),
            source,
        })
}

/// Cleans a relative path or pattern: drops `.` and empty components and a trailing `/`.
/// Absolute paths and `..` components are refused.
fn normalize(path: &str) -> Result<String, ArtifactError> {
    let outside = || ArtifactError::OutsideSource {
        path: path.to_owned(),
    };
    let trimmed = path.trim();
    if trimmed.starts_with('/') {
        return Err(outside());
    }
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(outside()),
            _ => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

fn has_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{', '\\'])
}

/// `path` relative to `base`, as a `/`-separated string (`None` if not UTF-8).
fn relative<'a>(base: &Path, path: &'a Path) -> Option<&'a str> {
    path.strip_prefix(base).ok()?.to_str()
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
