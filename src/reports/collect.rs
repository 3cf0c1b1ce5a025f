//! One report group's files: chosen as artifacts are (`files` globs under `base-directory`,
//! never outside the source), each read up to [`MAX_FILE_BYTES`] into the group's report.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::model::{Format, GroupReport};
use super::{MAX_FILE_BYTES, MAX_FILES};
use crate::artifacts;
use crate::buildspec::{ArtifactSet, Report};

/// A group's files, found: each as the report names it and where it is.
pub struct ReportFiles {
    pub group: String,
    pub format: Format,
    pub files: Vec<(String, PathBuf)>,
}

/// Reads the group `group` of the buildspec's `reports` in `src_dir`. Whatever is wrong (a
/// format that does not exist, no file matched, a file that cannot be read) is in the report,
/// which is then FAILED.
pub fn collect(src_dir: &Path, group: &str, settings: &Report) -> GroupReport {
    let format = match settings.file_format.as_deref().map(Format::parse) {
        None => Format::Junitxml,
        Some(Ok(format)) => format,
        Some(Err(err)) => {
            let mut report = GroupReport::new(group, Format::Junitxml);
            report.problem("", format!("reports.{group}.file-format: {err}"));
            report.finish();
            return report;
        }
    };
    let set = ArtifactSet {
        files: settings.files.clone(),
        base_directory: settings.base_directory.clone(),
        ..ArtifactSet::default()
    };
    let prefix = settings
        .base_directory
        .as_deref()
        .map(|b| b.trim_matches('/'))
        .filter(|b| !b.is_empty() && *b != ".")
        .map(|b| format!("{b}/"))
        .unwrap_or_default();
    match artifacts::select(src_dir, &set) {
        Ok(selection) => {
            let files = selection
                .entries
                .into_iter()
                .map(|e| (format!("{prefix}{}", e.zip_path), e.source))
                .collect();
            read_files(ReportFiles {
                group: group.to_string(),
                format,
                files,
            })
        }
        Err(err) => {
            let mut report = GroupReport::new(group, format);
            report.problem("", format!("reports.{group}.files: {err}"));
            report.finish();
            report
        }
    }
}

/// Reads `files` into one report.
pub fn read_files(found: ReportFiles) -> GroupReport {
    let mut report = GroupReport::new(&found.group, found.format);
    let total = found.files.len();
    for (name, path) in found.files.into_iter().take(MAX_FILES) {
        match read_one(found.format, &path, &mut report) {
            Ok(()) => report.files.push(name),
            Err(reason) => report.problem(&name, reason),
        }
    }
    if total > MAX_FILES {
        report.problem(
            "",
            format!("{total} files matched; the first {MAX_FILES} were read"),
        );
    }
    report.finish();
    report
}

fn read_one(format: Format, path: &Path, report: &mut GroupReport) -> Result<(), String> {
    let file = File::open(path).map_err(|err| format!("cannot open: {err}"))?;
    let size = file
        .metadata()
        .map_err(|err| format!("cannot read: {err}"))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "{size} bytes, over the limit of {MAX_FILE_BYTES} bytes a report file may have"
        ));
    }
    // Read into a copy, so a file that fails halfway adds nothing to the report.
    let mut scratch = GroupReport::new(&report.group, format);
    let input = BufReader::with_capacity(256 << 10, file.take(MAX_FILE_BYTES));
    super::read(format, input, &mut scratch)?;
    report.merge(scratch);
    Ok(())
}
