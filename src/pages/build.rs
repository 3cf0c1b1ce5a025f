//! One build's page: what was built and what it cost, its phases as a timeline and a table, its
//! artifacts and exported variables, and its log with each phase marked and the failing command
//! shown; a running build's page follows its log.

use std::fmt::Write;

use super::{duration_text, encode, escape, page, short_ref, time_text};
use crate::index::Entry;
use crate::record::BuildRecord;

/// One artifact's download link and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub name: String,
    pub href: String,
    pub size: u64,
}

/// `/builds/<project>/<build-id>` of a build that has ended: its record and log.
pub fn build_page(
    record: &BuildRecord,
    log: &str,
    downloads: &[Download],
    reports: &[crate::reports::GroupReport],
    badge: Option<&str>,
    form_token: &str,
) -> String {
    let status = record.status.as_str();
    let mut body = format!(
        "<h1>{} <span class=\"s {status}\" id=\"status\">{status}</span></h1>",
        escape(&format!("{} #{}", record.repository, record.build_number))
    );
    body.push_str(&about(record));
    // Retry: the same build again.
    let href = super::build_href(record.repository.as_str(), record.build_id.as_str());
    body.push_str(&action_form(&href, "retry", "Retry", form_token));
    if let Some(retried) = &record.retries {
        let _ = write!(
            body,
            "<p id=\"retries\">Runs build <a href=\"{}\">{}</a> again.</p>",
            escape(&super::build_href(record.repository.as_str(), retried)),
            escape(retried)
        );
    }
    if let Some(markdown) = badge {
        let _ = write!(
            body,
            "<p id=\"badge\">Its branch's badge, for a README: <code>{}</code></p>",
            escape(markdown)
        );
    }
    body.push_str(&super::reports::reports_html(&record.reports, reports));
    body.push_str(&phases_html(record));
    body.push_str(&outputs_html(record, downloads));
    let log_key = crate::store::Layout::new(&record.repository, record.build_id.as_str()).log();
    let _ = write!(
        body,
        "<h2>Log</h2><p><a id=\"log-download\" href=\"/download/{}\">Download the whole log</a></p>",
        escape(&log_key)
    );
    body.push_str(&log_html(log));
    page(
        &format!("{} #{}", record.repository, record.build_number),
        &body,
    )
}

/// What was built, by whom, how long it took and what it cost; why it was skipped, and where
/// it ran when not here.
fn about(record: &BuildRecord) -> String {
    let mut body = format!(
        "<p>Build <code>{}</code> of <code>{}</code> at <code>{}</code>, started by {} at {}; \
         {}, {} billed minute(s), ${:.4}.</p>",
        escape(record.build_id.as_str()),
        escape(short_ref(record.reference.as_deref())),
        escape(
            &record
                .commit
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
        escape(&record.initiator),
        time_text(record.start_time),
        duration_text(record.duration_ms),
        record.billed_minutes,
        record.cost.cost_usd
    );
    if let Some(reason) = &record.skip_reason {
        let _ = write!(body, "<p>Skipped: {}</p>", escape(reason));
    }
    if let Some(batch) = &record.batch {
        let _ = write!(
            body,
            "<p id=\"batch\">Part of batch <a href=\"{}\">{}</a>.</p>",
            escape(&super::batch_href(record.repository.as_str(), batch)),
            escape(batch)
        );
    }
    if let Some(compute) = &record.compute {
        let _ = write!(
            body,
            "<p>Ran on AWS CodeBuild ({}) as <code>{}</code>: {}</p>",
            escape(&compute.compute_type),
            escape(&compute.codebuild_id),
            escape(&compute.why)
        );
    }
    if let Some(cache) = &record.cache {
        body.push_str(&cache_html(cache));
    }
    body
}

/// What the build restored from its cache and saved to it, and why not.
fn cache_html(cache: &crate::cache::CacheRecord) -> String {
    let mut body = String::from("<p id=\"cache\">Cache");
    if let Some(key) = &cache.key {
        let _ = write!(body, " <code>{}</code>", escape(key));
    }
    body.push(':');
    for (what, used) in [("restored", &cache.restored), ("saved", &cache.saved)] {
        if let Some(used) = used {
            let _ = write!(body, " {what} {};", escape(&crate::cache::summary(used)));
        }
    }
    for note in &cache.notes {
        let _ = write!(body, " {};", escape(note));
    }
    body.push_str("</p>");
    body
}

/// The phases: a timeline, then a table.
fn phases_html(record: &BuildRecord) -> String {
    let total: u64 = record
        .phases
        .iter()
        .map(|p| p.duration_ms)
        .sum::<u64>()
        .max(1);
    let mut body = String::from("<h2>Phases</h2><div class=\"timeline\" id=\"timeline\">");
    for phase in &record.phases {
        let width = (phase.duration_ms as f64 * 100.0 / total as f64).max(0.5);
        let _ = write!(
            body,
            "<span class=\"bar-{}\" style=\"width:{width:.2}%\" title=\"{} {} {}\">{}</span>",
            phase.status,
            escape(&phase.phase),
            phase.status,
            duration_text(phase.duration_ms),
            escape(&phase.phase)
        );
    }
    body.push_str("</div><div class=\"wrap\"><table id=\"phases\"><tbody>");
    for phase in &record.phases {
        let _ = write!(
            body,
            "<tr class=\"phase\"><td><a href=\"#phase-{0}\">{0}</a></td><td class=\"s {1}\">{1}</td>\
             <td>{2}</td><td>{3}</td></tr>",
            escape(&phase.phase),
            phase.status,
            duration_text(phase.duration_ms),
            escape(
                &phase
                    .context
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        );
    }
    body.push_str("</tbody></table></div>");
    body
}

/// The artifacts to download and the exported variables, when there are any.
fn outputs_html(record: &BuildRecord, downloads: &[Download]) -> String {
    let mut body = String::new();
    if !downloads.is_empty() {
        body.push_str("<h2>Artifacts</h2><ul id=\"artifacts\">");
        for d in downloads {
            let _ = write!(
                body,
                "<li><a href=\"{}\">{}</a> ({} bytes)</li>",
                escape(&d.href),
                escape(&d.name),
                d.size
            );
        }
        body.push_str("</ul>");
    }
    if !record.exported_variables.is_empty() {
        body.push_str("<h2>Exported variables</h2><table id=\"variables\"><tbody>");
        for (name, value) in &record.exported_variables {
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(name),
                escape(value)
            );
        }
        body.push_str("</tbody></table>");
    }
    body
}

/// The running page's script: every 2 seconds it asks `/live/<project>/<build-id>` for the
/// build's state and the log so far, shows them, and stops once the build has ended.
const FOLLOW: &str = "<script>(function(){var url=document.getElementById('log').dataset.live;\
function tick(){fetch(url,{cache:'no-store'}).then(function(r){return r.json()}).then(function(b){\
var s=document.getElementById('status');s.textContent=b.status;s.className='s '+b.status;\
var t=document.createElement('div');t.innerHTML=b.log;var pre=t.firstChild;\
var log=document.getElementById('log');log.innerHTML=pre.innerHTML;\
if(b.status==='IN_PROGRESS'||b.status==='QUEUED'){setTimeout(tick,2000)}\
else{var f=document.getElementById('stop');if(f)f.remove()}}).catch(function(){setTimeout(tick,4000)})}\
setTimeout(tick,1000)})()</script>";

/// `/builds/<project>/<build-id>` of a build that has not ended: its entry, its log so far,
/// and a script that follows both until it ends.
pub fn running_page(entry: &Entry, log: Option<&str>, form_token: &str) -> String {
    let state = entry.state.as_str();
    let mut body = format!(
        "<h1>{} <span class=\"s {state}\" id=\"status\">{state}</span></h1>\
         <p>Build <code>{}</code>, started by {} at {}; {} minute(s) reserved so far.</p>",
        escape(&format!("{} #{}", entry.project, entry.number)),
        escape(entry.build_id.as_str()),
        escape(&entry.initiator),
        time_text(entry.start_time),
        entry.reserved_minutes
    );
    let href = super::build_href(entry.project.as_str(), entry.build_id.as_str());
    body.push_str(&action_form(&href, "stop", "Stop", form_token));
    body.push_str("<h2>Log so far</h2>");
    let live = format!(
        "/live/{}/{}",
        encode(entry.project.as_str()),
        encode(entry.build_id.as_str())
    );
    body.push_str(&log_html(log.unwrap_or("")).replacen(
        "<pre id=\"log\">",
        &format!("<pre id=\"log\" data-live=\"{}\">", escape(&live)),
        1,
    ));
    body.push_str(FOLLOW);
    page(&format!("{} #{}", entry.project, entry.number), &body)
}

/// A build page's button: a form posted to `<href>/<action>` that only the pages can send (it
/// carries their form token).
fn action_form(href: &str, action: &str, label: &str, form_token: &str) -> String {
    format!(
        "<form method=\"post\" id=\"{action}\" action=\"{}/{action}\"><input type=\"hidden\" \
         name=\"token\" value=\"{}\"><button type=\"submit\">{label}</button></form>",
        escape(href),
        escape(form_token)
    )
}

/// The log as HTML: each line, each phase's first line an anchor, the failing command marked.
pub fn log_html(log: &str) -> String {
    let mut out = String::from("<pre id=\"log\">");
    for line in log.lines() {
        let text = escape(line);
        if let Some(phase) = line
            .split_once("Entering phase ")
            .map(|(_, p)| p.trim())
            .filter(|p| line.starts_with("[Container]") && !p.is_empty())
        {
            let _ = writeln!(out, "<span id=\"phase-{}\">{text}</span>", escape(phase));
        } else if line.starts_with("[Container]")
            && line.contains("Command did not exit successfully")
        {
            let _ = writeln!(out, "<span class=\"fail\">{text}</span>");
        } else {
            out.push_str(&text);
            out.push('\n');
        }
    }
    out.push_str("</pre>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheRecord, CacheUse};

    #[test]
    fn the_page_says_what_the_cache_restored_and_why_it_did_not_save() {
        let cache = CacheRecord {
            key: Some("npm-<b>".into()),
            restored: Some(CacheUse {
                key: Some("npm-<a>".into()),
                scope: "branch/main".into(),
                uri: "s3://b/cache/x".into(),
                size: 3 << 20,
                entries: 20_000,
                bytes: 300 << 20,
                duration_ms: 1_840,
            }),
            saved: None,
            notes: vec!["not saved: the build did not succeed".into()],
        };
        let html = cache_html(&cache);
        assert!(html.contains("Cache <code>npm-&lt;b&gt;</code>:"), "{html}");
        assert!(
            html.contains("restored key `npm-&lt;a&gt;` (branch/main): 20000 entries, 300.0 MB (3.0 MB stored) in 1.84 s"),
            "{html}"
        );
        assert!(
            html.contains("not saved: the build did not succeed"),
            "{html}"
        );
        assert!(!html.contains("<a>") && !html.contains("<b>"));
    }
}
