//! A build's test and coverage reports on its page: each test group's counts, then its failed
//! and errored cases with their messages (first, since they are why anyone looks), then the
//! rest folded; each coverage group's lines as a bar, its branches, and its least covered files.

use std::fmt::Write;

use super::{duration_text, escape};
use crate::reports::{CoverageReport, GroupReport, ReportSummary, TestReport, case_name};

/// The reports' section: the whole reports where they could be read from the store, else the
/// record's summaries.
pub fn reports_html(summaries: &[ReportSummary], reports: &[GroupReport]) -> String {
    if summaries.is_empty() {
        return String::new();
    }
    let mut body = String::from("<section id=\"reports\"><h2>Reports</h2>");
    for summary in summaries {
        let status = format!("{:?}", summary.status).to_uppercase();
        let line = ReportSummary::line(std::slice::from_ref(summary)).unwrap_or_default();
        let _ = write!(
            body,
            "<h3 class=\"report\">{} <small>{}</small> <span class=\"s {status}\">{status}</span> \
             <span class=\"counts\">{}</span></h3>",
            escape(&summary.group),
            summary.format.as_str(),
            escape(&line)
        );
        for problem in &summary.problems {
            let _ = write!(
                body,
                "<p class=\"problem\">Unreadable: {}</p>",
                escape(problem)
            );
        }
        match reports.iter().find(|r| r.group == summary.group) {
            Some(GroupReport {
                tests: Some(tests), ..
            }) => body.push_str(&tests_html(tests)),
            Some(GroupReport {
                coverage: Some(coverage),
                ..
            }) => body.push_str(&coverage_html(coverage)),
            _ => {
                for name in &summary.failed {
                    let _ = write!(body, "<p class=\"failed-case\">{}</p>", escape(name));
                }
            }
        }
    }
    body.push_str("</section>");
    body
}

fn tests_html(tests: &TestReport) -> String {
    let (bad, rest): (Vec<_>, Vec<_>) = tests.cases.iter().partition(|c| c.status.is_bad());
    let mut body = String::new();
    if !bad.is_empty() {
        body.push_str("<table class=\"failed\"><tbody>");
        for case in bad {
            let status = format!("{:?}", case.status).to_uppercase();
            let _ = write!(
                body,
                "<tr class=\"failed-case\"><td class=\"s FAILED\">{status}</td><td><b>{}</b>\
                 <pre>{}</pre></td><td>{}</td></tr>",
                escape(&case_name(case)),
                escape(case.message.as_deref().unwrap_or("")),
                duration_text(case.duration_ms)
            );
        }
        body.push_str("</tbody></table>");
    }
    if !rest.is_empty() {
        let _ = write!(
            body,
            "<details><summary>{} other case(s){}</summary><table><tbody>",
            rest.len(),
            if tests.truncated {
                " (the report keeps 500 cases, the failed first)"
            } else {
                ""
            }
        );
        for case in rest {
            let status = format!("{:?}", case.status).to_uppercase();
            let _ = write!(
                body,
                "<tr><td class=\"s {status}\">{status}</td><td>{}</td><td>{}</td></tr>",
                escape(&case_name(case)),
                duration_text(case.duration_ms)
            );
        }
        body.push_str("</tbody></table></details>");
    }
    body
}

fn coverage_html(coverage: &CoverageReport) -> String {
    let pct = coverage.line_pct.unwrap_or(0.0);
    let mut body = format!(
        "<div class=\"cov\" title=\"{pct}% of lines\"><div style=\"width:{pct}%\"></div></div>\
         <p class=\"coverage\">Lines {pct}% ({} of {})",
        coverage.lines.covered,
        coverage.lines.total()
    );
    if let (Some(branches), Some(bpct)) = (coverage.branches, coverage.branch_pct) {
        let _ = write!(
            body,
            "; branches {bpct}% ({} of {})",
            branches.covered,
            branches.total()
        );
    }
    let _ = write!(body, "; {} file(s)</p>", coverage.files);
    if !coverage.least_covered.is_empty() {
        body.push_str("<table class=\"least\"><thead><tr><th>Least covered</th><th>Lines</th></tr></thead><tbody>");
        for file in &coverage.least_covered {
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td>{}% ({} missed)</td></tr>",
                escape(&file.file),
                file.line_pct.unwrap_or(0.0),
                file.lines.missed
            );
        }
        body.push_str("</tbody></table>");
    }
    body
}
