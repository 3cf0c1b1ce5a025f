//! The build pages, through the real `pushbuild serve` over a store that `pushbuild run` filled:
//! the list, a failed build's page (phases, the failing line, artifacts), the billing page and
//! its chart, and downloads.

use std::path::Path;
use std::process::Command;

use crate::served::serve;

/// Builds `buildspec` in a project directory named `name` into `store`.
fn run_build(store: &Path, work: &Path, name: &str, buildspec: &str) {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("buildspec.yml"), buildspec).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("run")
        .arg(&dir)
        .arg("--store")
        .arg(store)
        .output()
        .expect("pushbuild run");
    assert!(
        out.status.code().is_some(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get(url: &str) -> (u16, String) {
    let answer = reqwest::blocking::get(url).expect("the page answers");
    let status = answer.status().as_u16();
    (status, answer.text().unwrap_or_default())
}

const GOOD: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out && echo hello > out/hello.txt\nartifacts:\n  files: ['out/**/*']\n";
const BAD: &str = "version: 0.2\nphases:\n  install:\n    commands:\n      - echo installing\n  build:\n    commands:\n      - echo about to fail\n      - exit 3\n";

#[test]
fn the_pages_show_the_builds_a_failed_build_and_the_months_billing() {
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    run_build(store.path(), work.path(), "good-app", GOOD);
    run_build(store.path(), work.path(), "bad-app", BAD);
    let served = serve(store.path(), work.path(), &[], &[]);

    let (status, list) = get(&format!("{}/", served.url));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.matches("<tr class=\"build\"").count(), 2, "{list}");
    assert!(
        list.contains(">SUCCEEDED</a>") && list.contains(">FAILED</a>"),
        "{list}"
    );
    let (_, failed_only) = get(&format!("{}/?status=FAILED", served.url));
    assert_eq!(failed_only.matches("<tr class=\"build\"").count(), 1);
    assert!(failed_only.contains("bad-app"));
    let (_, one_repo) = get(&format!("{}/?repository=good-app", served.url));
    assert_eq!(one_repo.matches("<tr class=\"build\"").count(), 1);
    assert!(one_repo.contains("good-app") && !one_repo.contains("bad-app"));

    // The failed build's page: its phases, the failing command marked, its log.
    let href = failed_only
        .split("href=\"/builds/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the failed build");
    let (status, page) = get(&format!("{}/builds/{href}", served.url));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"status\">FAILED</span>"), "{page}");
    assert!(
        page.contains("<a href=\"#phase-BUILD\">BUILD</a></td><td class=\"s FAILED\">FAILED</td>"),
        "{page}"
    );
    assert!(page.contains("<span id=\"phase-BUILD\">"), "{page}");
    assert!(
        page.contains("<span class=\"fail\">[Container]") && page.contains("exit 3"),
        "{page}"
    );
    assert!(page.contains("COMMAND_EXECUTION_ERROR"), "{page}");

    // The good build's page links its artifact, which downloads.
    let good_href = one_repo
        .split("href=\"/builds/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let (_, good) = get(&format!("{}/builds/{good_href}", served.url));
    let download = good
        .split("<ul id=\"artifacts\"><li><a href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an artifact link");
    let answer = reqwest::blocking::get(format!("{}{download}", served.url)).unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer.bytes().unwrap().starts_with(b"PK"), "a zip");
    let (status, _) = get(&format!("{}/download/index.sqlite", served.url));
    assert_eq!(status, 404, "only artifacts and logs are served");
    let (status, _) = get(&format!("{}/builds/good-app/no-such-build", served.url));
    assert_eq!(status, 404);

    // Billing: this month's two builds, a bar for today.
    let (status, billing) = get(&format!("{}/billing", served.url));
    assert_eq!(status, 200, "{billing}");
    assert!(billing.contains("<svg id=\"chart\""), "{billing}");
    assert_eq!(billing.matches("<g class=\"day\"").count(), 1, "{billing}");
    assert!(billing.contains("<td>good-app</td>") && billing.contains("<td>bad-app</td>"));
    let (status, _) = get(&format!("{}/billing?month=2026-13", served.url));
    assert_eq!(status, 400);
}
