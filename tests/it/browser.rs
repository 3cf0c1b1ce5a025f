//! The build pages in a real browser: Debian's headless Chromium, driven over WebDriver by
//! `chromedriver`, against the real `pushbuild serve` building from git's own `git http-backend`
//! (with a token). "Build now" starts builds; their pages follow the log as it grows; the list,
//! a failed build, the billing chart and the login (`--token`) are checked; the screenshots in
//! `docs/` are taken here (`PUSHBUILD_UPDATE_SCREENSHOTS=1 cargo test browser` replaces them).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::codecommit_standin::{git, init_repo};
use crate::git_server::{GitServer, publish};
use crate::served::Served;

const TOKEN: &str = "pages-git-token";
const ELEMENT: &str = "element-6066-11e4-a52f-4ae7-4ae7-4ae7";

/// A build that would run ten minutes.
const FOREVER: &str =
    "version: 0.2\nphases:\n  build:\n    commands:\n      - echo waiting\n      - sleep 600\n";
const SLOW: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - for i in 1 2 3 4 5 6; do echo \"tick $i\"; sleep 1; done\nartifacts:\n  files: [buildspec.yml]\n";
/// Fails, leaving a JUnit report whose failed case comes last in the file.
const BROKEN: &str = r#"version: 0.2
phases:
  install:
    commands:
      - echo installing
  build:
    commands:
      - echo about to fail
      - printf '<testsuite name="web"><testcase classname="web.Home" name="renders"/><testcase classname="web.Home" name="links"/><testcase classname="web.Home" name="greets"><failure message="expected Hello, got Bye">home.js line 9</failure></testcase></testsuite>' > TEST-web.xml
      - exit 3
reports:
  web:
    files: [TEST-web.xml]
"#;

/// A WebDriver session on a headless Chromium.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian's chromium-driver; .ci/run installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|r| r.text().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("/usr/bin/chromium");
        let created: Value = http
            .post(format!("{base}/session"))
            .header("content-type", "application/json")
            .body(
                json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
                "goog:chromeOptions": {"binary": binary, "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1100,900", "--no-first-run", "--disable-extensions"]}}}})
                .to_string(),
            )
            .send()
            .and_then(|r| r.text())
            .map(|t| serde_json::from_str(&t).expect("JSON"))
            .expect("a session");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let text = request
            .send()
            .and_then(|r| r.text())
            .expect("WebDriver answers");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        answer["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})));
    }

    fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| {
                        // W3C's web element key (older drivers use another: take its one value).
                        e[ELEMENT]
                            .as_str()
                            .or_else(|| e.as_object()?.values().next()?.as_str())
                    })
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn find(&self, css: &str) -> String {
        self.find_all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css} on {}", self.url()))
    }

    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn type_in(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        );
    }

    fn run_script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Waits (up to a minute) until `check` holds.
    fn wait_for(&self, what: &str, check: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "never: {what} (at {})",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Takes a screenshot of the page; with `PUSHBUILD_UPDATE_SCREENSHOTS=1` it replaces
    /// `docs/<name>` (the pictures the README and docs/pages.md show).
    fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a PNG");
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 1000,
            "a picture"
        );
        if std::env::var("PUSHBUILD_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(name), bytes).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `pushbuild serve` building from `git`, its store in `store`.
fn serve(git: &GitServer, store: &Path, work: &Path, extra: &[&str]) -> Served {
    crate::served::serve(
        store,
        work,
        extra,
        &[
            ("PUSHBUILD_GITHUB_URL", git.url()),
            ("PUSHBUILD_GITHUB_TOKEN", TOKEN.to_string()),
            (
                "PUSHBUILD_GITHUB_WEBHOOK_SECRET",
                "pages-webhook-secret".to_string(),
            ),
            ("PUSHBUILD_LIVE_LOG_SECONDS", "1".to_string()),
        ],
    )
}

/// A repository with a slow build on `main`, a failing one on `broken` and one of ten minutes on
/// `forever`, served by git.
fn repository(repos: &Path) {
    let work = tempfile::tempdir().unwrap();
    init_repo(work.path());
    std::fs::write(work.path().join("buildspec.yml"), SLOW).unwrap();
    git(work.path(), &["add", "-A"]);
    git(work.path(), &["commit", "-q", "-m", "A slow build"]);
    git(work.path(), &["checkout", "-q", "-b", "broken"]);
    std::fs::write(work.path().join("buildspec.yml"), BROKEN).unwrap();
    git(work.path(), &["commit", "-q", "-am", "A failing build"]);
    git(work.path(), &["checkout", "-q", "-b", "forever"]);
    std::fs::write(work.path().join("buildspec.yml"), FOREVER).unwrap();
    git(
        work.path(),
        &["commit", "-q", "-am", "A build that would run ten minutes"],
    );
    git(work.path(), &["checkout", "-q", "main"]);
    publish(repos, "octo/pages", work.path());
}

/// Builds `version` with the "Build now" form; the build's page is open after.
fn build_now(browser: &Browser, served: &Served, project: &str, version: &str) {
    browser.go(&format!("{}/", served.url));
    browser.click("#build-now");
    browser.type_in("input[name=repository]", project);
    browser.type_in("input[name=version]", version);
    browser.click("#build-now-form button");
    browser.wait_for("the build's page", |b| {
        b.url().contains(&format!("/builds/{project}/"))
    });
}

#[test]
fn the_pages_in_a_browser_list_follow_and_chart_builds() {
    let repos = tempfile::tempdir().unwrap();
    repository(repos.path());
    let git_server = GitServer::start(repos.path(), TOKEN);
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let served = serve(&git_server, store.path(), work.path(), &[]);
    let browser = Browser::start();
    let project = git_server.project("octo/pages");

    // A failing build: its page shows its phases and the failing line.
    build_now(&browser, &served, &project, "broken");
    browser.wait_for("FAILED", |b| b.text("#status") == "FAILED");
    let failed_page = browser.url();
    browser.go(&failed_page);
    let phases = browser.text("#phases");
    assert!(
        phases.contains("BUILD") && phases.contains("FAILED"),
        "{phases}"
    );
    let failing = browser.text("#log .fail");
    assert!(failing.contains("exit 3"), "{failing}");
    // The report: its failed test first, with its message, the passing ones folded below.
    let first = browser.text("#reports tr.failed-case");
    assert!(
        first.contains("web.Home › greets") && first.contains("expected Hello, got Bye"),
        "{first}"
    );
    assert!(browser.text("#reports h3").contains("2 passed, 1 failed"));
    browser.screenshot("pages-reports.png");

    // A running build's page shows new log lines without a reload, then its end.
    build_now(&browser, &served, &project, "main");
    browser.run_script("window.pushbuildPageMark = 42; return true;");
    browser.wait_for("a log line while it runs", |b| {
        b.text("#log").contains("tick 2") && b.text("#status") == "IN_PROGRESS"
    });
    browser.wait_for("a later line", |b| b.text("#log").contains("tick 5"));
    browser.wait_for("SUCCEEDED", |b| b.text("#status") == "SUCCEEDED");
    assert_eq!(
        browser.run_script("return window.pushbuildPageMark;"),
        json!(42),
        "the page was not reloaded"
    );
    let build_page = browser.url();
    browser.go(&build_page);
    browser.screenshot("pages-build.png");

    // The list: both builds with their statuses.
    browser.go(&format!("{}/", served.url));
    let rows = browser.find_all("tr.build");
    assert_eq!(rows.len(), 2);
    let table = browser.text("#builds");
    assert!(
        table.contains("SUCCEEDED") && table.contains("FAILED"),
        "{table}"
    );
    assert!(table.contains(&project), "{table}");
    // The failed build's tests, in its row.
    assert!(
        !browser.find_all("#builds td.tests").is_empty() && table.contains("2 passed, 1 failed"),
        "{table}"
    );
    browser.screenshot("pages-list.png");

    // Billing: one bar for today, both repositories' builds summed.
    browser.go(&format!("{}/billing", served.url));
    assert_eq!(browser.find_all("#chart g.day").len(), 1);
    assert!(browser.text("#sums").contains(&project));
    browser.screenshot("pages-billing.png");
}

/// A running build's Stop button: the build ends STOPPED, its page following it there.
#[test]
fn the_stop_button_stops_a_running_build() {
    let repos = tempfile::tempdir().unwrap();
    repository(repos.path());
    let git_server = GitServer::start(repos.path(), TOKEN);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = serve(&git_server, store.path(), work.path(), &[]);
    let browser = Browser::start();
    let project = git_server.project("octo/pages");
    build_now(&browser, &served, &project, "forever");
    browser.wait_for("the build running", |b| {
        b.text("#status") == "IN_PROGRESS" && b.text("#log").contains("waiting")
    });
    browser.click("#stop button");
    // The page is left and shown again (the form's answer): read the status without asking
    // for an element that may be between pages.
    browser.wait_for("STOPPED", |b| {
        b.run_script("var s = document.getElementById('status'); return s ? s.textContent : '';")
            == json!("STOPPED")
    });
    let page = browser.url();
    browser.go(&page);
    let phases = browser.text("#phases");
    assert!(phases.contains("STOPPED"), "{phases}");
    assert!(
        browser
            .text("#log")
            .contains("Build stopped during phase BUILD: asked from the build's page"),
        "{}",
        browser.text("#log")
    );
}

#[test]
fn with_a_token_the_pages_need_a_login_and_a_wrong_token_is_refused() {
    let repos = tempfile::tempdir().unwrap();
    repository(repos.path());
    let git_server = GitServer::start(repos.path(), TOKEN);
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let served = serve(
        &git_server,
        store.path(),
        work.path(),
        &["--token", "the-ui-token"],
    );
    let browser = Browser::start();
    browser.go(&format!("{}/billing", served.url));
    assert!(
        browser.url().contains("/login?next=/billing"),
        "{}",
        browser.url()
    );
    browser.type_in("input[name=token]", "not-the-token");
    browser.click("#login-form button");
    browser.wait_for("the refusal", |b| !b.find_all("#error").is_empty());
    assert_eq!(browser.text("#error"), "That token is not right.");
    browser.type_in("input[name=token]", "the-ui-token");
    browser.click("#login-form button");
    browser.wait_for("the billing page", |b| b.url().ends_with("/billing"));
    assert!(!browser.find_all("#chart").is_empty());
    // Signed in: "Build now" works.
    build_now(
        &browser,
        &served,
        &git_server.project("octo/pages"),
        "broken",
    );
    browser.wait_for("FAILED", |b| b.text("#status") == "FAILED");
    // Without the session cookie, a form post is refused.
    let answer = reqwest::blocking::Client::new()
        .post(format!("{}/build-now", served.url))
        .body("repository=127.0.0.1%2Focto%2Fpages")
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
}
