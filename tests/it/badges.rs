//! Badges under `serve`: `/badges/<project>/<branch>.svg` says `unknown`, then `failing`, then
//! `passing` as the branch's builds end, without a login even where the pages need one, cached
//! for a minute; refused without `PUSHBUILD_BADGES`; a build's page shows the Markdown.

use std::time::{Duration, Instant};

use crate::hooks;
use crate::pushed::Pushed;

const FAILING: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 3\n";
const GOOD: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo good\n";

/// The badge's word, its content type and its cache lifetime.
fn badge(url: &str) -> (u16, String, String, String) {
    let answer = reqwest::blocking::get(url).unwrap();
    let status = answer.status().as_u16();
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (kind, cache) = (header("content-type"), header("cache-control"));
    let body = answer.text().unwrap();
    let word = ["passing", "failing", "unknown"]
        .into_iter()
        .find(|w| body.contains(&format!("build: {w}")))
        .unwrap_or("none")
        .to_string();
    (status, word, kind, cache)
}

/// Waits for the badge at `url` to say `word`.
fn badge_says(url: &str, word: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, said, _, _) = badge(url);
        if status == 200 && said == word {
            return;
        }
        assert!(
            Instant::now() < until,
            "the badge says {said} ({status}), not {word}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_branch_badge_follows_its_builds_and_is_refused_without_the_setting() {
    let pushed = Pushed::successive(&[FAILING, GOOD]);
    let project = pushed.git.project(hooks::REPOSITORY);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut env = pushed.env();
    env.push(("PUSHBUILD_BADGES", "true".to_string()));
    env.push(("PUSHBUILD_PUBLIC_URL", "https://ci.example.com".to_string()));
    let served = crate::served::serve(
        store.path(),
        work.path(),
        &["--jobs", "1", "--token", "pages-token-1234567890"],
        &env,
    );
    let url = format!("{}/badges/{project}/main.svg", served.url);
    let (status, word, kind, cache) = badge(&url);
    assert_eq!((status, word.as_str()), (200, "unknown"));
    assert_eq!(kind, "image/svg+xml");
    assert_eq!(cache, "max-age=60");
    // The pages need the login; the badge does not.
    let list = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", served.url))
        .send()
        .unwrap();
    assert_ne!(list.status().as_u16(), 200);
    pushed.deliver_nth(&served.url, 0, "badge-0");
    badge_says(&url, "failing");
    pushed.deliver_nth(&served.url, 1, "badge-1");
    badge_says(&url, "passing");
    // A build's page (after the login) shows its branch's badge as Markdown.
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{}/login", served.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=pages-token-1234567890&next=%2F")
        .send()
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session")
        .to_string();
    let build = pushed.deliver_nth(&served.url, 1, "badge-2");
    let page_url = format!("{}/builds/{project}/{build}", served.url);
    let until = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let page = client
            .get(&page_url)
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .text()
            .unwrap();
        if page.contains("id=\"badge\"") {
            break page;
        }
        assert!(
            Instant::now() < until,
            "no badge on the build's page: {page}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        page.contains(&format!(
            "[![build](https://ci.example.com/badges/{project}/main.svg)](https://ci.example.com/?repository={project})"
        )),
        "{page}"
    );
    // Another branch (a `/` in its name written %2F) has no build.
    let (_, other, _, _) = badge(&format!("{}/badges/{project}/feature%2Fx.svg", served.url));
    assert_eq!(other, "unknown");
    drop(served);

    // Without the setting: not served.
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &pushed.env());
    let (status, _, _, _) = badge(&format!("{}/badges/{project}/main.svg", served.url));
    assert_eq!(status, 404);
}
