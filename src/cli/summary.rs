//! The summary `pushbuild run` prints when a build ends: status, phases, artifacts, cost.

use std::fmt::Write;

use crate::record::BuildRecord;
use crate::state::BuildState;

/// The summary of `record`, stored at `record_uri`, as text (ANSI colours when `color`).
pub fn render(record: &BuildRecord, record_uri: &str, color: bool) -> String {
    let paint = |status: BuildState| {
        let text = status.as_str();
        if !color {
            return text.to_string();
        }
        let code = if status == BuildState::Succeeded {
            "32"
        } else {
            "1;31"
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Build {} (#{})  {}",
        record.codebuild_build_id,
        record.build_number,
        paint(record.status)
    );
    let _ = writeln!(out, "  {:<18} {:<10} {:>10}", "PHASE", "STATUS", "DURATION");
    for phase in &record.phases {
        let retries = if phase.attempts > 1 {
            format!("  ({} attempts)", phase.attempts)
        } else {
            String::new()
        };
        let status = format!("{:<10}", phase.status.as_str());
        let status = if color {
            status.replace(phase.status.as_str(), &paint(phase.status.into()))
        } else {
            status
        };
        let _ = writeln!(
            out,
            "  {:<18} {} {:>10}{retries}",
            phase.phase,
            status,
            seconds(phase.duration_ms)
        );
    }
    if !record.artifacts.is_empty() {
        let _ = writeln!(out, "Artifacts");
        for artifact in &record.artifacts {
            let _ = writeln!(
                out,
                "  {:<24} {:>10}  {} files  {}",
                artifact.name,
                bytes(artifact.size),
                artifact.files,
                artifact.uri
            );
        }
    }
    if !record.exported_variables.is_empty() {
        let _ = writeln!(out, "Exported variables");
        for (name, value) in &record.exported_variables {
            let _ = writeln!(out, "  {name}={value}");
        }
    }
    reports_text(&mut out, record, &paint);
    let _ = writeln!(out, "Log     {}", record.log_uri);
    let _ = writeln!(out, "Record  {record_uri}");
    let _ = writeln!(
        out,
        "Billed  {} minute(s) for {} at ${:.6}/min = ${:.6}  (CodeBuild general1.small: ${:.6})",
        record.billed_minutes,
        seconds(record.duration_ms),
        record.cost.price.usd_per_minute,
        record.cost.cost_usd,
        record.cost.codebuild_general1_small_usd
    );
    out
}

fn seconds(ms: u64) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The reports' lines: each group's counts and where it is, then its failed tests by name.
fn reports_text(out: &mut String, record: &BuildRecord, paint: &dyn Fn(BuildState) -> String) {
    if record.reports.is_empty() {
        return;
    }
    let _ = writeln!(out, "Reports");
    for report in &record.reports {
        let line = crate::reports::ReportSummary::line(std::slice::from_ref(report));
        let status = if report.status == crate::reports::ReportStatus::Succeeded {
            BuildState::Succeeded
        } else {
            BuildState::Failed
        };
        let _ = writeln!(
            out,
            "  {:<24} {:<13} {}  {}  {}",
            report.group,
            report.format.as_str(),
            paint(status),
            line.unwrap_or_default(),
            report.uri
        );
        for name in &report.failed {
            let _ = writeln!(out, "    failed: {name}");
        }
        for problem in &report.problems {
            let _ = writeln!(out, "    unreadable: {problem}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(200 * 1024 * 1024), "200.0 MiB");
        assert_eq!(seconds(1234), "1.23 s");
    }
}
