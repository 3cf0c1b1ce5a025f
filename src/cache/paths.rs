//! Which files a cache holds: `cache.paths` globs, in the source or absolute, mapped to the
//! build's roots.
//!
//! A relative path is in the source. An absolute one is under `$HOME` when it starts with the
//! home folder of CodeBuild's images (`/root`, `/home/codebuild-user`), with `~`, or with the
//! build's own `HOME`; one that starts with the build's source folder is in the source. Any
//! other absolute path is outside what a build may write on Lambda, and is left out, with a note.
//! Globs are the artifacts' (`*` within a part, `**` across parts); a folder a glob matches is
//! cached whole, empty folders included. Links are kept as links, never followed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use walkdir::WalkDir;

use super::archive::Roots;

/// The home folders of CodeBuild's images, which stand for the build's `HOME`.
pub const HOME_ALIASES: &[&str] = &["/root", "/home/codebuild-user", "~"];

/// One path of `cache.paths`, resolved: the root it lies in and the glob below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// `source` or `home`.
    pub root: &'static str,
    /// The glob relative to the root (`node_modules/**/*`, `.m2`).
    pub glob: String,
}

/// Resolves `path` against the build's roots; `Err` says why it is left out.
pub fn resolve(path: &str, roots: &Roots) -> Result<Resolved, String> {
    let trimmed = path.trim();
    let below = |prefix: &str| -> Option<String> {
        let rest = trimmed.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/').to_string())
    };
    let home_text = roots.home.as_ref().map(|h| h.display().to_string());
    let source_text = roots.source.display().to_string();
    let (root, rel) = if let Some(rel) = below(&source_text) {
        ("source", rel)
    } else if let Some(rel) = home_text.as_deref().and_then(below) {
        ("home", rel)
    } else if let Some(rel) = HOME_ALIASES.iter().find_map(|alias| below(alias)) {
        if roots.home.is_none() {
            return Err(format!(
                "`{path}` is under a home folder, and this build has none"
            ));
        }
        ("home", rel)
    } else if trimmed.starts_with('/') {
        return Err(format!(
            "`{path}` is outside the folders a cache may hold (the source and $HOME; /root, \
             /home/codebuild-user and ~ stand for $HOME)"
        ));
    } else {
        ("source", trimmed.trim_start_matches("./").to_string())
    };
    let rel = rel.trim_end_matches('/').to_string();
    if rel.split('/').any(|part| part == "..") {
        return Err(format!("`{path}` leaves its folder (`..`)"));
    }
    Ok(Resolved { root, glob: rel })
}

/// The members of a cache of `paths`: archive name (`<root>/<path>`) ─▶ path on disk, and
/// notes on the paths left out.
pub fn members(
    paths: &[String],
    roots: &Roots,
) -> Result<(BTreeMap<String, PathBuf>, Vec<String>), String> {
    let mut members = BTreeMap::new();
    let mut notes = Vec::new();
    for path in paths {
        let resolved = match resolve(path, roots) {
            Ok(resolved) => resolved,
            Err(note) => {
                notes.push(note);
                continue;
            }
        };
        let Some(root) = roots.get(resolved.root) else {
            continue;
        };
        collect(root, &resolved, &mut members)
            .map_err(|err| format!("cannot read `{path}`: {err}"))?;
    }
    Ok((members, notes))
}

/// Adds what `resolved` matches under `root` to `members`.
fn collect(
    root: &Path,
    resolved: &Resolved,
    members: &mut BTreeMap<String, PathBuf>,
) -> Result<(), String> {
    let (start, matcher) = match glob_matcher(&resolved.glob)? {
        Some((literal, matcher)) => (root.join(literal), Some(matcher)),
        None => (root.join(&resolved.glob), None),
    };
    if std::fs::symlink_metadata(&start).is_err() {
        return Ok(());
    }
    // A folder that matched is taken whole: what lies below it needs no more matching.
    let mut whole: Option<PathBuf> = None;
    for entry in WalkDir::new(&start).follow_links(false) {
        let entry = entry.map_err(|err| err.to_string())?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let inside_whole = whole.as_ref().is_some_and(|dir| path.starts_with(dir));
        let matched = inside_whole || matcher.as_ref().is_none_or(|m| m.is_match(rel));
        if !matched {
            continue;
        }
        if !inside_whole && entry.file_type().is_dir() {
            whole = Some(path.to_path_buf());
        }
        let Some(rel_text) = rel.to_str() else {
            return Err(format!("{} is not UTF-8", rel.display()));
        };
        members.insert(format!("{}/{rel_text}", resolved.root), path.to_path_buf());
    }
    Ok(())
}

/// The literal folder a glob starts from and its matcher; `None` for a plain path.
fn glob_matcher(glob: &str) -> Result<Option<(String, GlobMatcher)>, String> {
    let is_meta = |part: &str| part.contains(['*', '?', '[', '{']);
    if !glob.split('/').any(is_meta) {
        return Ok(None);
    }
    let literal: Vec<&str> = glob.split('/').take_while(|part| !is_meta(part)).collect();
    let matcher = GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|err| format!("`{glob}` is not a valid glob: {err}"))?
        .compile_matcher();
    Ok(Some((literal.join("/"), matcher)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Roots {
        Roots {
            source: PathBuf::from("/tmp/b/src"),
            home: Some(PathBuf::from("/tmp/b/home")),
        }
    }

    #[test]
    fn codebuilds_home_folders_map_to_the_builds_home() {
        let cases = [
            ("node_modules/**/*", "source", "node_modules/**/*"),
            ("./vendor/", "source", "vendor"),
            ("/root/.m2", "home", ".m2"),
            ("/root/.gradle/caches/**/*", "home", ".gradle/caches/**/*"),
            ("/home/codebuild-user/.npm/**/*", "home", ".npm/**/*"),
            ("~/.cache/pip", "home", ".cache/pip"),
            ("/tmp/b/home/.cargo", "home", ".cargo"),
            ("/tmp/b/src/target", "source", "target"),
        ];
        for (path, root, glob) in cases {
            let resolved = resolve(path, &roots()).unwrap();
            assert_eq!(
                (resolved.root, resolved.glob.as_str()),
                (root, glob),
                "{path}"
            );
        }
    }

    #[test]
    fn paths_outside_the_roots_are_left_out_with_a_reason() {
        for path in [
            "/usr/local/lib/**/*",
            "/rootless/x",
            "a/../../etc",
            "/root/../etc",
        ] {
            let err = resolve(path, &roots()).unwrap_err();
            assert!(err.contains(path), "{err}");
        }
    }
}
