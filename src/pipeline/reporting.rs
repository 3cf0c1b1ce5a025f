//! A build's test and coverage reports, read after POST_BUILD whether the build succeeded or
//! failed: the buildspec's `reports` groups (the first five, as CodeBuild takes), or, without
//! any, JUnit XML the build wrote (auto-discovery, unless `CODEBUILD_CONFIG_AUTO_DISCOVER` is
//! `false`). Each group's whole report goes to the store before the record; the record keeps a
//! summary. Nothing here fails the build: a report that cannot be read or stored says so.

use std::path::Path;
use std::time::SystemTime;

use super::build_meta;
use crate::executor::env::BuildInfo;
use crate::executor::log::BuildLog;
use crate::reports::{self, GroupReport, ReportFiles, ReportSummary};
use crate::store::{Layout, Store};

/// Now, as the file system stamps a file written now. The kernel stamps files from a coarse
/// clock that may lag the precise one by a few milliseconds, so a file the build writes right
/// after `SystemTime::now()` can look older than it; a file written here is stamped by the same
/// clock as the build's. (The precise clock, a little earlier, when no file can be written.)
pub(super) fn file_clock_now(work_dir: &Path) -> SystemTime {
    let precise = SystemTime::now();
    let marker = work_dir.join("reports-since");
    std::fs::write(&marker, b"")
        .and_then(|()| std::fs::metadata(&marker)?.modified())
        .unwrap_or_else(|_| precise - std::time::Duration::from_millis(20))
}

/// The most groups a buildspec's `reports` may have.
pub const MAX_GROUPS: usize = 5;

/// What reading the reports needs.
pub(super) struct Reporting<'a> {
    pub spec: &'a crate::buildspec::BuildSpec,
    pub src_dir: &'a Path,
    pub env: &'a [(String, String)],
    pub info: &'a BuildInfo,
    pub store: &'a dyn Store,
    pub log: &'a BuildLog,
    /// When the build's commands began: discovery takes only files written since.
    pub since: SystemTime,
}

impl Reporting<'_> {
    /// Reads, stores and logs every group; their summaries, in the buildspec's order.
    pub fn run(&self) -> Vec<ReportSummary> {
        let mut groups: Vec<GroupReport> = self
            .spec
            .reports
            .iter()
            .take(MAX_GROUPS)
            .map(|(group, settings)| reports::collect(self.src_dir, group, settings))
            .collect();
        if self.spec.reports.len() > MAX_GROUPS {
            self.log.marker(&format!(
                "Warning: reports: {} groups; the first {MAX_GROUPS} are read",
                self.spec.reports.len()
            ));
        }
        if self.spec.reports.is_empty() && self.discovering() {
            groups.extend(self.discovered());
        }
        groups.into_iter().map(|report| self.keep(report)).collect()
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn discovering(&self) -> bool {
        !self
            .var("CODEBUILD_CONFIG_AUTO_DISCOVER")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
    }

    fn discovered(&self) -> Option<GroupReport> {
        let glob = self.var("CODEBUILD_CONFIG_AUTO_DISCOVER_DIR");
        let (files, note) = reports::discover(self.src_dir, self.since, glob);
        if let Some(note) = note {
            self.log.marker(&format!("Reports: {note}"));
        }
        if files.is_empty() {
            return None;
        }
        let group = format!("{}-JUNITXML-AutoDiscovered", self.info.project);
        let found = ReportFiles {
            group,
            format: reports::Format::Junitxml,
            files,
        };
        Some(reports::read_files(found))
    }

    /// Stores `report` and says what it holds in the log.
    fn keep(&self, mut report: GroupReport) -> ReportSummary {
        report.mask(&|text| self.log.mask(text));
        let layout = Layout::new(&self.info.project, self.info.build_id.as_str());
        let key = layout.report(&report.group);
        let uri = match serde_json::to_vec(&report) {
            Ok(bytes) => {
                let meta = build_meta(self.info, "application/json");
                match self.store.put(&key, &bytes, &meta) {
                    Ok(uri) => uri,
                    Err(err) => {
                        self.log.marker(&format!(
                            "Warning: report {} was not stored: {err}",
                            report.group
                        ));
                        String::new()
                    }
                }
            }
            Err(err) => {
                self.log
                    .marker(&format!("Warning: report {}: {err}", report.group));
                String::new()
            }
        };
        let summary = report.summary(uri);
        let line = ReportSummary::line(std::slice::from_ref(&summary)).unwrap_or_default();
        let status = format!("{:?}", report.status).to_uppercase();
        self.log.marker(&format!(
            "Report {} ({}): {status}; {line}; {} file(s)",
            report.group,
            report.format.as_str(),
            report.files.len()
        ));
        for name in &summary.failed {
            self.log.marker(&format!("  failed: {name}"));
        }
        for problem in &summary.problems {
            self.log.marker(&format!("  unreadable: {problem}"));
        }
        summary
    }
}
