//! Build pages: server-rendered HTML for the list of builds, one build (its phases as a
//! timeline, its log with a link to each phase and the failing command marked, its artifacts,
//! variables and cost) and the month's billing with a chart of billed minutes per day (SVG,
//! drawn here), and the "Build now" form. Plain HTML and a small stylesheet in the page, a few
//! lines of script only where a running build's page follows its log; no request to any other
//! host; readable on a phone.
//!
//! These functions only render; `http::pages` reads the index and the store.

mod badge;
mod batch;
mod build;
mod chart;
mod reports;

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

pub use badge::{Badge, badge_markdown, badge_svg};
pub use batch::{batch_href, batch_page};
pub use build::{Download, build_page, log_html, running_page};
pub use chart::{DayMinutes, chart_svg};

use crate::index::{Entry, Sums};
use crate::names::{RefKind, split_ref};
use crate::state::BuildState;

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query-string value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b':' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2125}\
header{background:#24292f;color:#fff;padding:.6em 1em;display:flex;gap:1em;flex-wrap:wrap;align-items:center}\
header a{color:#fff;text-decoration:none}main{padding:1em;max-width:80em}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #d0d7de;white-space:nowrap}\
.wrap{overflow-x:auto}.s{font-weight:600}.SUCCEEDED{color:#1a7f37}.FAILED,.TIMED_OUT{color:#cf222e}\
.IN_PROGRESS,.QUEUED{color:#9a6700}.SKIPPED,.STOPPED{color:#57606a}\
pre{background:#f6f8fa;padding:.5em;overflow-x:auto;font-size:.85em;line-height:1.35}\
pre .fail{background:#ffebe9;color:#82071e;font-weight:600;display:inline-block;width:100%}\
.timeline{display:flex;height:1.4em;border:1px solid #d0d7de;margin:.5em 0}.timeline span{display:block;overflow:hidden;font-size:.7em;color:#fff;padding:0 .2em}\
.bar-SUCCEEDED{background:#2da44e}.bar-FAILED,.bar-TIMED_OUT{background:#cf222e}.bar-STOPPED{background:#57606a}\
.cov{height:.8em;width:20em;max-width:100%;background:#ffebe9;border:1px solid #d0d7de}.cov div{height:100%;background:#2da44e}\
.failed pre{margin:.2em 0;white-space:pre-wrap}.failed td{vertical-align:top;white-space:normal}\
form.filters{display:flex;gap:.5em;flex-wrap:wrap;margin-bottom:1em}";

/// A whole page: `title`, then `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · pushbuild</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/\"><b>pushbuild</b></a><a href=\"/\">Builds</a>\
         <a href=\"/billing\">Billing</a><a href=\"/build-now\" id=\"build-now\">Build now</a>\
         </header><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// The list's filters, as the query gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub status: Option<String>,
}

impl Filters {
    /// Whether `entry` passes the branch and status filters (the repository one chooses the
    /// index query).
    pub fn keep(&self, entry: &Entry) -> bool {
        let branch_ok = self.branch.as_deref().is_none_or(|b| {
            entry
                .reference
                .as_deref()
                .is_some_and(|r| r == b || split_ref(r) == Some((RefKind::Branch, b)))
        });
        let status_ok = self
            .status
            .as_deref()
            .is_none_or(|s| entry.state.as_str() == s);
        branch_ok && status_ok
    }

    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("repository", &self.repository),
            ("branch", &self.branch),
            ("status", &self.status),
        ] {
            if let Some(value) = value {
                parts.push(format!("{name}={}", encode(value)));
            }
        }
        parts.join("&")
    }
}

/// The link to a build's page.
pub fn build_href(project: &str, build_id: &str) -> String {
    format!("/builds/{}/{}", encode(project), encode(build_id))
}

fn short_ref(reference: Option<&str>) -> &str {
    reference.map_or("", crate::names::short_ref)
}

fn duration_text(ms: u64) -> String {
    let seconds = ms / 1000;
    if seconds >= 60 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn time_text(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `/`: builds newest first, with the filters and the next page's link.
pub fn list_page(entries: &[Entry], filters: &Filters, next: Option<&str>) -> String {
    let mut body =
        String::from("<h1>Builds</h1><form class=\"filters\" method=\"get\" action=\"/\">");
    for (name, value, hint) in [
        ("repository", &filters.repository, "repository"),
        ("branch", &filters.branch, "branch"),
    ] {
        let _ = write!(
            body,
            "<input name=\"{name}\" placeholder=\"{hint}\" value=\"{}\">",
            escape(value.as_deref().unwrap_or(""))
        );
    }
    body.push_str("<select name=\"status\"><option value=\"\">any status</option>");
    for state in [
        BuildState::Succeeded,
        BuildState::Failed,
        BuildState::TimedOut,
        BuildState::Stopped,
        BuildState::InProgress,
        BuildState::Queued,
        BuildState::Skipped,
    ] {
        let selected = if filters.status.as_deref() == Some(state.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option{selected}>{}</option>", state.as_str());
    }
    body.push_str("</select><button>Filter</button></form>");
    if entries.is_empty() {
        body.push_str("<p id=\"empty\">No builds.</p>");
    } else {
        body.push_str(
            "<div class=\"wrap\"><table id=\"builds\"><thead><tr><th>Status</th><th>Repository</th>\
             <th>Ref</th><th>Commit</th><th>Initiator</th><th>Start</th><th>Duration</th>\
             <th>Billed</th><th>Tests</th></tr></thead><tbody>",
        );
        for e in entries {
            let href = build_href(e.project.as_str(), e.build_id.as_str());
            let state = e.state.as_str();
            let commit = e.commit.as_deref().map_or("", |c| &c[..c.len().min(8)]);
            let _ = write!(
                body,
                "<tr class=\"build\" data-build=\"{}\"><td><a class=\"s {state}\" href=\"{href}\">{state}</a></td>\
                 <td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td class=\"tests\">{}</td></tr>",
                escape(e.build_id.as_str()),
                escape(e.project.as_str()),
                escape(short_ref(e.reference.as_deref())),
                escape(commit),
                escape(&e.initiator),
                time_text(e.start_time),
                if e.state.is_open() {
                    String::new()
                } else {
                    duration_text(e.duration_ms)
                },
                e.billed_minutes.max(if e.state.is_open() {
                    e.reserved_minutes
                } else {
                    0
                }),
                escape(e.tests.as_deref().unwrap_or(""))
            );
        }
        body.push_str("</tbody></table></div>");
    }
    if let Some(next) = next {
        let query = filters.query();
        let sep = if query.is_empty() { "" } else { "&" };
        let _ = write!(
            body,
            "<p><a id=\"next\" href=\"/?{query}{sep}after={}\">Older builds</a></p>",
            encode(next)
        );
    }
    page("Builds", &body)
}

/// `/build-now`: the form that starts a build (a repository, a branch, tag or commit, and
/// variables), with `error` above it when the last one was refused.
pub fn build_now_page(token: &str, repository: &str, error: Option<&str>) -> String {
    let mut body = String::from("<h1>Build now</h1>");
    if let Some(error) = error {
        let _ = write!(
            body,
            "<p class=\"s FAILED\" id=\"error\">{}</p>",
            escape(error)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/build-now\" id=\"build-now-form\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\
         <p><label>Repository<br><input name=\"repository\" required size=\"40\" value=\"{}\" \
         placeholder=\"github.com/owner/repo\"></label></p>\
         <p><label>Branch, tag or commit<br><input name=\"version\" size=\"40\" placeholder=\"main\"></label></p>\
         <p><label>Variables (NAME=value, one a line)<br><textarea name=\"variables\" rows=\"4\" cols=\"40\"></textarea></label></p>\
         <p><button type=\"submit\">Build now</button></p></form>",
        escape(token),
        escape(repository)
    );
    page("Build now", &body)
}

/// `/billing?month=YYYY-MM`: the month's sums per repository and the chart.
pub fn billing_page(month: &str, sums: &[Sums], days: &[DayMinutes], cap: Option<u64>) -> String {
    let mut body = format!("<h1>Billing, {}</h1>", escape(month));
    body.push_str(&chart_svg(month, days, cap));
    body.push_str(
        "<div class=\"wrap\"><table id=\"sums\"><thead><tr><th>Repository</th><th>Builds</th>\
         <th>Failures</th><th>Skipped</th><th>Billed minutes</th><th>Cost (USD)</th></tr></thead><tbody>",
    );
    let mut rows: Vec<&Sums> = sums.iter().filter(|s| !s.repository.is_empty()).collect();
    rows.sort_by(|a, b| a.repository.cmp(&b.repository));
    rows.extend(sums.iter().filter(|s| s.repository.is_empty()));
    for s in rows {
        let name = if s.repository.is_empty() {
            "<b>Total</b>".to_string()
        } else {
            escape(&s.repository)
        };
        let _ = write!(
            body,
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td></tr>",
            s.builds,
            s.failures,
            s.skipped,
            s.minutes,
            s.cost_e7 as f64 / 1e7
        );
    }
    body.push_str("</tbody></table></div>");
    page(&format!("Billing {month}"), &body)
}

/// Billed minutes per day and repository, from a month's entries.
pub fn minutes_per_day(entries: &[Entry]) -> Vec<DayMinutes> {
    let mut days: BTreeMap<(u32, String), u64> = BTreeMap::new();
    for e in entries {
        use chrono::Datelike;
        let minutes = if e.state.is_open() {
            e.reserved_minutes
        } else {
            e.billed_minutes
        };
        if minutes > 0 {
            *days
                .entry((e.start_time.day(), e.project.to_string()))
                .or_default() += minutes;
        }
    }
    days.into_iter()
        .map(|((day, repository), minutes)| DayMinutes {
            day,
            repository,
            minutes,
        })
        .collect()
}

#[cfg(test)]
mod tests;
