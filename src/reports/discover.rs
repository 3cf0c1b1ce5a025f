//! Auto-discovery, as CodeBuild has it for a buildspec without `reports`: JUnit XML files the
//! build wrote in its source folder, reported as the group `<project>-JUNITXML-AutoDiscovered`.
//! Only files written during the build count (a repository's own test fixtures are not the
//! build's results), only in `CODEBUILD_CONFIG_AUTO_DISCOVER_DIR` when it is set (a glob, as
//! `output/*.xml`), and the search is bounded: [`DISCOVER_MAX_VISITS`] entries looked at,
//! [`DISCOVER_MAX_FILES`] files taken, [`DISCOVER_MAX_SECONDS`] spent. `.git` and
//! `node_modules` are not searched.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use walkdir::WalkDir;

use super::MAX_FILE_BYTES;

/// The most directory entries the search looks at.
pub const DISCOVER_MAX_VISITS: usize = 50_000;
/// The most files it takes.
pub const DISCOVER_MAX_FILES: usize = 100;
/// The longest it searches.
pub const DISCOVER_MAX_SECONDS: u64 = 5;

/// The JUnit XML files under `src_dir` modified at or after `since` (and matching `dir_glob`,
/// relative to `src_dir`), by their path in the source; and a note when a bound stopped the
/// search.
pub fn discover(
    src_dir: &Path,
    since: SystemTime,
    dir_glob: Option<&str>,
) -> (Vec<(String, PathBuf)>, Option<String>) {
    let glob = dir_glob
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .and_then(|g| {
            globset::GlobBuilder::new(g.trim_start_matches("./"))
                .literal_separator(true)
                .build()
                .ok()
        })
        .map(|g| g.compile_matcher());
    let started = Instant::now();
    let mut found = Vec::new();
    let walk = WalkDir::new(src_dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !matches!(e.file_name().to_str(), Some(".git" | "node_modules"))
        });
    let mut visits = 0usize;
    let mut note = None;
    for entry in walk {
        visits += 1;
        if visits > DISCOVER_MAX_VISITS
            || started.elapsed() > Duration::from_secs(DISCOVER_MAX_SECONDS)
        {
            note = Some(format!(
                "auto-discovery stopped after {visits} entries and {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            break;
        }
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() || entry.path().extension().is_none_or(|e| e != "xml") {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(src_dir) else {
            continue;
        };
        if glob.as_ref().is_some_and(|g| !g.is_match(relative)) {
            continue;
        }
        let fresh = entry
            .metadata()
            .ok()
            .filter(|m| m.len() <= MAX_FILE_BYTES && m.modified().is_ok_and(|t| t >= since));
        if fresh.is_some() && is_junit(entry.path()) {
            found.push((relative.to_string_lossy().into_owned(), entry.into_path()));
            if found.len() == DISCOVER_MAX_FILES {
                note = Some(format!(
                    "auto-discovery took the first {DISCOVER_MAX_FILES} files"
                ));
                break;
            }
        }
    }
    (found, note)
}

/// Whether the file's first element is `<testsuites>` or `<testsuite>`.
fn is_junit(path: &Path) -> bool {
    let mut head = Vec::with_capacity(4096);
    let read = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut head));
    if read.is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    let mut rest = text.trim_start_matches('\u{feff}');
    // Past the declaration, comments and a DOCTYPE, to the first element.
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        let local = name.rsplit(':').next().unwrap_or_default();
        return local == "testsuites" || local == "testsuite";
    }
    false
}
