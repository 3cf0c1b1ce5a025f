//! What a build's record keeps of each report group, and the reports in a line.

use serde::{Deserialize, Serialize};

use super::model::{Case, CounterPair, Counts, Format, GroupReport, Kind, ReportStatus};

impl GroupReport {
    /// What the build's record keeps of it; `uri` is where the whole report is.
    pub fn summary(&self, uri: String) -> ReportSummary {
        let failed: Vec<String> = self
            .tests
            .iter()
            .flat_map(|t| t.cases.iter())
            .filter(|c| c.status.is_bad())
            .take(SUMMARY_FAILED)
            .map(case_name)
            .collect();
        ReportSummary {
            group: self.group.clone(),
            kind: self.kind,
            format: self.format,
            status: self.status,
            uri,
            counts: self.tests.as_ref().map(|t| t.counts),
            duration_ms: self.tests.as_ref().map(|t| t.duration_ms),
            lines: self.coverage.as_ref().map(|c| c.lines),
            line_pct: self.coverage.as_ref().and_then(|c| c.line_pct),
            branch_pct: self.coverage.as_ref().and_then(|c| c.branch_pct),
            failed,
            problems: self
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.file, p.reason))
                .collect(),
        }
    }
}

/// How many failed cases a summary names.
pub const SUMMARY_FAILED: usize = 10;

/// `suite › name`, or the name alone.
pub fn case_name(case: &Case) -> String {
    if case.suite.is_empty() {
        case.name.clone()
    } else {
        format!("{} › {}", case.suite, case.name)
    }
}

/// What a build's record says of one report group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub group: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub format: Format,
    pub status: ReportStatus,
    /// The whole report in the store.
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<CounterPair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_pct: Option<f64>,
    /// The first failed and errored cases, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// The files that could not be read, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl ReportSummary {
    /// The reports in a line (`412 passed, 3 failed · 81% lines`), for a commit status and
    /// the command line's summary; `None` without reports.
    pub fn line(reports: &[ReportSummary]) -> Option<String> {
        let counts = reports
            .iter()
            .filter_map(|r| r.counts)
            .reduce(|a, b| a.plus(&b));
        let lines = reports
            .iter()
            .filter_map(|r| r.lines)
            .reduce(|a, b| a.plus(&b));
        let mut parts = Vec::new();
        if let Some(c) = counts {
            let mut tests = format!("{} passed", c.succeeded);
            if c.failed + c.error > 0 {
                tests.push_str(&format!(", {} failed", c.failed + c.error));
            }
            if c.skipped > 0 {
                tests.push_str(&format!(", {} skipped", c.skipped));
            }
            parts.push(tests);
        }
        if let Some(pct) = lines.and_then(|l| l.pct()) {
            parts.push(format!("{}% lines", pct.floor() as u64));
        }
        let unread = reports.iter().filter(|r| !r.problems.is_empty()).count();
        if unread > 0 {
            parts.push(format!("{unread} report(s) unreadable"));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }

    /// Failed and errored cases across the reports.
    pub fn failed_total(reports: &[ReportSummary]) -> u64 {
        reports
            .iter()
            .filter_map(|r| r.counts)
            .map(|c| c.failed + c.error)
            .sum()
    }
}
