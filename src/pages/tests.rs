use super::*;
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;

fn entry(project: &str, id: &str, state: BuildState, day: u32, minutes: u64) -> Entry {
    let start = DateTime::parse_from_rfc3339(&format!("2026-11-{day:02}T10:00:00Z"))
        .unwrap()
        .with_timezone(&Utc);
    Entry {
        project: ProjectName::parse(project).unwrap(),
        build_id: BuildId::parse(id).unwrap(),
        number: 1,
        state,
        start_time: start,
        deadline: None,
        expires_at: start,
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        reference: Some("refs/heads/main".into()),
        initiator: "tests".into(),
        reserved_minutes: minutes,
        billed_minutes: minutes,
        cost_usd: 0.0,
        duration_ms: 61_000,
        price_usd_per_minute: 0.0,
        price_basis: String::new(),
        reason: None,
        tests: None,
        batch: None,
    }
}

#[test]
fn text_is_escaped_everywhere_it_lands() {
    assert_eq!(
        escape("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
    // Names are checked (a project or a build id cannot hold markup), so the free texts carry
    // it: the reference, the commit, the initiator.
    let mut hostile = entry("demo", "b-1", BuildState::Failed, 3, 1);
    hostile.reference = Some("refs/heads/<script>alert(1)</script>".into());
    hostile.initiator = "<script>alert(2)</script>".into();
    let html = list_page(&[hostile], &Filters::default(), None);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no other host"
    );
}

#[test]
fn the_list_shows_each_build_with_its_status_and_links_to_its_page() {
    let entries = [
        entry("demo", "b-2", BuildState::Failed, 3, 2),
        entry("github.com/octo/app", "b-1", BuildState::Succeeded, 2, 1),
    ];
    let html = list_page(&entries, &Filters::default(), Some("b-1 demo"));
    assert_eq!(html.matches("<tr class=\"build\"").count(), 2);
    assert!(
        html.contains("href=\"/builds/demo/b-2\">FAILED</a>"),
        "{html}"
    );
    assert!(html.contains("href=\"/builds/github.com/octo/app/b-1\">SUCCEEDED</a>"));
    assert!(html.contains("<code>01234567</code>"));
    assert!(html.contains("1m 01s"));
    assert!(html.contains("href=\"/?after=b-1%20demo\""), "{html}");
}

#[test]
fn filters_keep_a_branch_and_a_status() {
    let filters = Filters {
        branch: Some("main".into()),
        status: Some("FAILED".into()),
        ..Filters::default()
    };
    assert!(filters.keep(&entry("demo", "a", BuildState::Failed, 1, 1)));
    assert!(!filters.keep(&entry("demo", "b", BuildState::Succeeded, 1, 1)));
    let mut other = entry("demo", "c", BuildState::Failed, 1, 1);
    other.reference = Some("refs/heads/dev".into());
    assert!(!filters.keep(&other));
}

#[test]
fn the_log_links_each_phase_and_marks_the_failing_command() {
    let log = "[Container] 2026/11/30 10:00:00.000000 Entering phase BUILD\n\
               compiling <main>\n\
               [Container] 2026/11/30 10:00:01.000000 Command did not exit successfully make exit status 2\n";
    let html = log_html(log);
    assert!(html.contains("<span id=\"phase-BUILD\">"), "{html}");
    assert!(html.contains("<span class=\"fail\">[Container]"), "{html}");
    assert!(html.contains("compiling &lt;main&gt;"));
}

#[test]
fn the_chart_has_one_bar_per_day_with_builds_and_the_cap() {
    let entries = [
        entry("demo", "a", BuildState::Succeeded, 3, 2),
        entry("app", "b", BuildState::Failed, 3, 1),
        entry("demo", "c", BuildState::Succeeded, 7, 4),
        entry("demo", "d", BuildState::Skipped, 9, 0),
    ];
    let days = minutes_per_day(&entries);
    let svg = chart_svg("2026-11", &days, Some(100));
    assert_eq!(svg.matches("<g class=\"day\"").count(), 2, "{svg}");
    assert!(svg.contains("data-day=\"3\" data-minutes=\"3\""));
    assert!(svg.contains("data-day=\"7\" data-minutes=\"4\""));
    assert_eq!(
        svg.matches("<rect").count(),
        3 + 2,
        "three bars' parts, two legend keys"
    );
    assert!(svg.contains("id=\"cap\""));
    assert!(!chart_svg("2026-11", &days, None).contains("id=\"cap\""));
}
