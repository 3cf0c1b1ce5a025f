//! `pushbuild serve`, the real binary, answering GitHub's webhooks: it fetches from git's own
//! `git http-backend` (requiring the token), builds into its local store, and reports commit
//! statuses to the GitHub API stand-in.

use pushbuild::names::{BuildId, ProjectName};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::git_server::GitServer;
use crate::github_api::GitHubApi;
use crate::hooks::{self, REPOSITORY, SECRET, TOKEN};

/// Pushes build unless the message says `[no build]`; pull requests (merged ones too) build when
/// they touch `src/` or the buildspec.
const FILTER_GROUPS: &str = r#"[
  [{"type": "EVENT", "pattern": "PUSH"},
   {"type": "COMMIT_MESSAGE", "pattern": "\\[no build\\]", "excludeMatchedPattern": true}],
  [{"type": "EVENT", "pattern": "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED, PULL_REQUEST_MERGED"},
   {"type": "FILE_PATH", "pattern": "^(src/|buildspec\\.yml$)"}]
]"#;

/// A git server with the test repository, the API stand-in, and `pushbuild serve` over them.
struct Harness {
    git: GitServer,
    /// The same repositories on a second loopback address: the Bitbucket host's own name.
    bitbucket_git: GitServer,
    api: GitHubApi,
    commits: hooks::Commits,
    serve: Child,
    url: String,
    store: tempfile::TempDir,
    _repos: tempfile::TempDir,
    _work: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
    client: reqwest::blocking::Client,
}

impl Harness {
    fn start() -> Harness {
        let repos = tempfile::tempdir().expect("temp dir");
        let commits = hooks::hosted_repository(repos.path());
        let git = GitServer::start(repos.path(), TOKEN);
        let bitbucket_git = GitServer::start_at("127.0.0.2", repos.path(), TOKEN);
        let api = GitHubApi::start(TOKEN);
        api.add_commits(&[&commits.good, &commits.failing]);
        let gitlab_url = git.url().replace("127.0.0.1", "localhost");
        let store = tempfile::tempdir().expect("temp dir");
        let work = tempfile::tempdir().expect("temp dir");
        let mut serve = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .args(["serve", "--listen", "127.0.0.1:0", "--jobs", "2", "--store"])
            .arg(store.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", work.path())
            .env("PUSHBUILD_WORK_DIR", work.path())
            .env("PUSHBUILD_GITHUB_WEBHOOK_SECRET", SECRET)
            .env("PUSHBUILD_GITHUB_TOKEN", TOKEN)
            .env("PUSHBUILD_GITHUB_URL", git.url())
            .env("PUSHBUILD_GITHUB_API_URL", api.url())
            .env("PUSHBUILD_GITLAB_WEBHOOK_TOKEN", hooks::GITLAB_TOKEN)
            .env("PUSHBUILD_GITLAB_TOKEN", TOKEN)
            .env("PUSHBUILD_GITLAB_URL", &gitlab_url)
            .env("PUSHBUILD_GITLAB_API_URL", format!("{}/api/v4", api.url()))
            .env("PUSHBUILD_BITBUCKET_WEBHOOK_SECRET", SECRET)
            .env("PUSHBUILD_BITBUCKET_TOKEN", TOKEN)
            .env("PUSHBUILD_BITBUCKET_URL", bitbucket_git.url())
            .env("PUSHBUILD_BITBUCKET_API_URL", api.url())
            .env("PUSHBUILD_FILTER_GROUPS", FILTER_GROUPS)
            .env(
                "PUSHBUILD_STATUS_TARGET_URL",
                "https://ci.example.com/${PUSHBUILD_PROJECT}/${PUSHBUILD_BUILD_ID}",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pushbuild serve starts");
        // Its first line says where it listens; the rest is kept for failure messages.
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = serve.stderr.take().expect("stderr");
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(
                        url.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
                if let Ok(mut text) = kept.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("pushbuild serve says where it listens");
        Harness {
            git,
            bitbucket_git,
            api,
            commits,
            serve,
            url,
            store,
            _repos: repos,
            _work: work,
            stderr,
            client: reqwest::blocking::Client::new(),
        }
    }

    fn post(&self, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
        self.post_to("github", headers, body)
    }

    fn post_to(&self, host: &str, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/webhooks/{host}", self.url))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().expect("serve answers");
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(json!({ "text": text })),
        )
    }

    /// Delivers `body` as GitHub's `event`, signed with the right secret.
    fn deliver(&self, event: &str, body: &Value, id: &str) -> (u16, Value) {
        let (headers, bytes) = hooks::delivery(event, body, id, SECRET);
        self.post(&headers, &bytes)
    }

    fn project_dir(&self) -> PathBuf {
        self.project_dir_of(&self.git.project(REPOSITORY))
    }

    fn project_dir_of(&self, project: &str) -> PathBuf {
        self.store.path().join("builds").join(project)
    }

    /// The build's record, once it is written (polled: builds run in the background).
    fn record(&self, build_id: &str) -> Value {
        self.record_of(&self.git.project(REPOSITORY), build_id)
    }

    fn record_of(&self, project: &str, build_id: &str) -> Value {
        let path = self
            .project_dir_of(project)
            .join(build_id)
            .join("build.json");
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Ok(bytes) = std::fs::read(&path) {
                return serde_json::from_slice(&bytes).expect("a record");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no record for {build_id}; pushbuild serve said:\n{}",
            self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
        );
    }

    fn log(&self, build_id: &str) -> String {
        std::fs::read_to_string(self.project_dir().join(build_id).join("build.log"))
            .expect("the log")
    }

    /// The states posted for `commit`, once `count` of them arrived.
    fn states(&self, commit: &str, count: usize) -> Vec<String> {
        self.states_in(None, commit, count)
    }

    /// The states posted for `commit` of `repository` (any, when `None`).
    fn states_in(&self, repository: Option<&str>, commit: &str, count: usize) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let calls: Vec<_> = self
                .api
                .statuses(commit)
                .into_iter()
                .filter(|c| repository.is_none_or(|r| c.repository == r))
                .collect();
            if calls.len() >= count || Instant::now() > until {
                return calls
                    .iter()
                    .map(|c| c.body["state"].as_str().unwrap_or_default().to_string())
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The one build a 202 answer queued.
    fn queued(&self, answer: &(u16, Value)) -> String {
        assert_eq!(answer.0, 202, "{}", answer.1);
        let build = &answer.1["builds"][0];
        assert_eq!(build["status"], "QUEUED", "{}", answer.1);
        build["buildId"].as_str().expect("a build id").to_string()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
    }
}

#[test]
fn serve_answers_health_and_ping_and_refuses_what_is_not_signed() {
    let h = Harness::start();
    let health = h
        .client
        .get(format!("{}/health", h.url))
        .send()
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    let ping = h.deliver("ping", &hooks::sample("ping"), "d-ping");
    assert_eq!(ping, (200, json!({"pong": true})));

    let body = hooks::push("refs/heads/main", &h.commits.good, "A good build");
    let (headers, bytes) = hooks::delivery("push", &body, "d-bad", "not-the-secret");
    let (status, answer) = h.post(&headers, &bytes);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("does not match")
    );
    let unsigned: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(name, _)| name != "X-Hub-Signature-256")
        .collect();
    assert_eq!(h.post(&unsigned, &bytes).0, 401);
    let (headers, _) = hooks::delivery("push", &body, "d-big", SECRET);
    let big = vec![b' '; pushbuild::webhook::BODY_LIMIT + 10];
    let (status, answer) = h.post(&headers, &big);
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("byte limit")
    );
    // Nothing was built, claimed or stored: the store holds only its index, and the index no
    // claim and no build.
    let files = hooks::all_files(h.store.path());
    assert!(
        files.iter().all(|f| f.contains("index.sqlite")),
        "{files:?}"
    );
    let index = rusqlite::Connection::open(h.store.path().join("index.sqlite")).expect("the index");
    for table in ["claims", "builds", "counters", "sums"] {
        let rows: i64 = index
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .expect("a count");
        assert_eq!(rows, 0, "{table}");
    }
    assert!(h.api.requests().is_empty());
}

#[test]
fn a_push_builds_its_commit_and_the_commit_shows_pending_then_success() {
    let h = Harness::start();
    let commit = h.commits.good.clone();
    let body = hooks::push("refs/heads/main", &commit, "A good build");
    let answer = h.deliver("push", &body, "d-push");
    let build_id = h.queued(&answer);
    assert_eq!(answer.1["builds"][0]["commit"], commit.as_str());
    assert_eq!(
        answer.1["builds"][0]["repository"],
        h.git.project("octo/app")
    );

    let record = h.record(&build_id);
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    assert_eq!(record["commit"], commit.as_str());
    // Queued when handed off, then the build itself in the store's index.
    let index = pushbuild::index::SqliteIndex::open(&h.store.path().join("index.sqlite"))
        .expect("the store's index");
    let entry =
        pushbuild::index::Index::entry(&index, &pn(&h.git.project("octo/app")), &bid(&build_id))
            .expect("read")
            .expect("the build's entry");
    assert_eq!(entry.state, pushbuild::state::BuildState::Succeeded);
    assert_eq!((entry.number, entry.billed_minutes), (1, 1));
    assert_eq!(entry.commit.as_deref(), Some(commit.as_str()));
    let log = h.log(&build_id);
    let before = body["before"].as_str().unwrap_or_default();
    for line in [
        format!("event=PUSH head=refs/heads/main base= actor=583231 prev={before}"),
        format!("trigger=branch/main version={commit} resolved={commit}"),
        format!("url={}/octo/app.git", h.git.url()),
        format!("git-head={commit}"),
        "git-message=A good build".to_string(),
    ] {
        assert!(log.contains(&line), "{line} missing from:\n{log}");
    }
    assert_eq!(h.states(&commit, 2), ["pending", "success"]);
    let last = h.api.statuses(&commit).pop().expect("a status");
    assert_eq!(last.body["context"], "pushbuild");
    assert_eq!(
        last.body["target_url"],
        format!(
            "https://ci.example.com/{}/{build_id}",
            h.git.project("octo/app")
        )
        .as_str()
    );
    let description = last.body["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("SUCCEEDED in ") && description.ends_with("1 billed minute"),
        "{description}"
    );
    // The token is in no log, record, claim or anything else in the store.
    assert!(log.contains("[core]"), "the build saw .git/config: {log}");
    assert!(hooks::files_holding(h.store.path(), TOKEN).is_empty());

    // A redelivery of the same delivery builds nothing.
    let again = h.deliver("push", &body, "d-push");
    assert_eq!(again.0, 202);
    assert_eq!(again.1["builds"][0]["status"], "SKIPPED", "{}", again.1);
    assert!(
        again.1["builds"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("duplicate delivery")
    );
}

#[test]
fn a_failing_build_shows_failure_and_a_status_api_that_fails_changes_nothing() {
    let h = Harness::start();
    let failing = h.commits.failing.clone();
    let answer = h.deliver(
        "push",
        &hooks::push("refs/heads/broken", &failing, "A failing build"),
        "d-fail",
    );
    let build_id = h.queued(&answer);
    assert_eq!(h.record(&build_id)["status"], "FAILED");
    assert_eq!(h.states(&failing, 2), ["pending", "failure"]);
    // The tests first in the description: the host cuts it at its end.
    let last = h.api.statuses(&failing).pop().unwrap();
    let description = last.body["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("2 passed, 1 failed · FAILED in "),
        "{description}"
    );

    // Every status call fails: the build still succeeds, and each status was tried again.
    h.api.fail_statuses(1000);
    let good = h.commits.good.clone();
    let answer = h.deliver(
        "push",
        &hooks::push("refs/heads/main", &good, "A good build"),
        "d-api-down",
    );
    let build_id = h.queued(&answer);
    assert_eq!(h.record(&build_id)["status"], "SUCCEEDED");
    let tries = pushbuild::status::ATTEMPTS as usize;
    let states = h.states(&good, 2 * tries);
    assert_eq!(states.len(), 2 * tries, "{states:?}");
    assert!(h.api.statuses(&good).iter().all(|c| c.answered == 500));
}

#[test]
fn tags_deletes_skip_ci_and_excluded_messages_as_codebuild_does() {
    let h = Harness::start();
    let good = h.commits.good.clone();
    let build_id = h.queued(&h.deliver(
        "push",
        &hooks::push("refs/tags/v1.0.0", &good, "A good build"),
        "d-tag",
    ));
    assert_eq!(h.record(&build_id)["status"], "SUCCEEDED");
    assert!(
        h.log(&build_id)
            .contains(&format!("trigger=tag/v1.0.0 version={good}"))
    );

    let mut deleted = hooks::push("refs/heads/old", &good, "");
    deleted["deleted"] = json!(true);
    deleted["after"] = json!("0".repeat(40));
    let (status, answer) = h.deliver("push", &deleted, "d-delete");
    assert_eq!(status, 202);
    assert_eq!(answer["builds"][0]["status"], "SKIPPED");
    assert_eq!(answer["builds"][0]["reason"], "refs/heads/old was deleted");

    let (status, answer) = h.deliver(
        "push",
        &hooks::push("refs/heads/main", &good, "Docs only [skip ci]"),
        "d-skip",
    );
    assert_eq!(status, 202);
    assert_eq!(answer["builds"][0]["status"], "SKIPPED", "{answer}");

    let (status, answer) = h.deliver(
        "push",
        &hooks::push("refs/heads/main", &good, "Work in progress [no build]"),
        "d-nobuild",
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["builds"], json!([]));
    assert!(
        answer["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no filter group")
    );
    assert!(h.api.statuses(&good).iter().all(|c| {
        c.body["description"]
            .as_str()
            .is_some_and(|d| !d.contains("SKIPPED"))
    }));
}

#[test]
fn pull_requests_build_by_their_files_and_forks_are_refused() {
    let h = Harness::start();
    let good = h.commits.good.clone();
    h.api
        .set_files(REPOSITORY, 7, &["README.md", "src/main.sh"]);
    let build_id = h.queued(&h.deliver(
        "pull_request",
        &hooks::pull_request("pull-request-opened", &good),
        "d-pr-open",
    ));
    assert_eq!(h.record(&build_id)["status"], "SUCCEEDED");
    let log = h.log(&build_id);
    for line in [
        "event=PULL_REQUEST_CREATED head=refs/heads/feature/greeting base=refs/heads/main",
        &format!("trigger=pr/7 version=pr/7 resolved={good}"),
    ] {
        assert!(log.contains(line), "{line} missing from:\n{log}");
    }
    assert_eq!(h.states(&good, 2), ["pending", "success"]);

    // A pull request whose files the filters do not want builds nothing; the files were read
    // page by page.
    let docs: Vec<String> = (0..150).map(|i| format!("docs/page-{i}.md")).collect();
    let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
    h.api.set_files(REPOSITORY, 7, &docs);
    let (status, answer) = h.deliver(
        "pull_request",
        &hooks::pull_request("pull-request-synchronize", &good),
        "d-pr-docs",
    );
    assert_eq!(status, 200, "{answer}");
    let pages = h
        .api
        .requests()
        .iter()
        .filter(|r| r.contains("/pulls/7/files"))
        .count();
    assert!(
        pages >= 3,
        "one page for the first request, two for 150 files: {pages}"
    );

    // Merged builds (the filters ask for it); closed without merging does not.
    h.api.set_files(REPOSITORY, 7, &["src/main.sh"]);
    let build_id = h.queued(&h.deliver(
        "pull_request",
        &hooks::pull_request("pull-request-closed-merged", &good),
        "d-pr-merged",
    ));
    assert!(
        h.log_eventually(&build_id)
            .contains("event=PULL_REQUEST_MERGED")
    );
    let (status, _) = h.deliver(
        "pull_request",
        &hooks::pull_request("pull-request-closed", &good),
        "d-pr-closed",
    );
    assert_eq!(status, 200);

    // A fork's pull request is refused, and its commit is told so.
    let fork_commit = h.commits.failing.clone();
    let (status, answer) = h.deliver(
        "pull_request",
        &hooks::pull_request("pull-request-fork", &fork_commit),
        "d-fork",
    );
    assert_eq!(status, 202);
    assert_eq!(answer["builds"][0]["status"], "SKIPPED");
    assert!(
        answer["builds"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("fork")
    );
    assert_eq!(h.states(&fork_commit, 1), ["error"]);
    let builds: Vec<_> = std::fs::read_dir(h.project_dir())
        .expect("builds")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(
        builds.len(),
        2,
        "the opened and the merged pull request built"
    );
}

impl Harness {
    fn log_eventually(&self, build_id: &str) -> String {
        self.record(build_id);
        self.log(build_id)
    }
}

impl Harness {
    /// GitLab's project: its URL names the git server as `localhost`.
    fn gitlab_project(&self) -> String {
        self.git
            .project(hooks::GITLAB_REPOSITORY)
            .replace("127.0.0.1", "localhost")
    }

    /// Bitbucket's project: its own git server, on 127.0.0.2.
    fn bitbucket_project(&self) -> String {
        self.bitbucket_git.project(hooks::BITBUCKET_REPOSITORY)
    }
}

#[test]
fn gitlab_pushes_and_merge_requests_build_and_report_back() {
    let h = Harness::start();
    let (good, failing) = (h.commits.good.clone(), h.commits.failing.clone());
    let deliver = |event: &str, body: &Value, id: &str| {
        let (headers, bytes) = hooks::gitlab_delivery(event, body, id, hooks::GITLAB_TOKEN);
        h.post_to("gitlab", &headers, &bytes)
    };

    // A wrong token builds nothing.
    let body = hooks::gitlab_push("refs/heads/main", &good, "A good build");
    let (headers, bytes) = hooks::gitlab_delivery("Push Hook", &body, "gl-bad", "wrong-token");
    assert_eq!(h.post_to("gitlab", &headers, &bytes).0, 401);

    // A push builds; the commit shows running, then success.
    let build_id = h.queued(&deliver("Push Hook", &body, "gl-push"));
    let record = h.record_of(&h.gitlab_project(), &build_id);
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    let log = std::fs::read_to_string(
        h.project_dir_of(&h.gitlab_project())
            .join(&build_id)
            .join("build.log"),
    )
    .expect("the log");
    assert!(log.contains(&format!("git-head={good}")), "{log}");
    assert!(log.contains("event=PUSH head=refs/heads/main"), "{log}");
    let repo = Some(hooks::GITLAB_REPOSITORY);
    assert_eq!(h.states_in(repo, &good, 2), ["running", "success"]);
    // The same delivery again is a duplicate.
    let again = deliver("Push Hook", &body, "gl-push");
    assert_eq!(again.1["builds"][0]["status"], "SKIPPED", "{}", again.1);

    // A failing push: running, then failed.
    let fail = hooks::gitlab_push("refs/heads/broken", &failing, "A failing build");
    let build_id = h.queued(&deliver("Push Hook", &fail, "gl-fail"));
    assert_eq!(
        h.record_of(&h.gitlab_project(), &build_id)["status"],
        "FAILED"
    );
    assert_eq!(h.states_in(repo, &failing, 2), ["running", "failed"]);

    // A deleted branch is skipped.
    let mut deleted = hooks::gitlab_push("refs/heads/old", &good, "");
    deleted["after"] = json!("0".repeat(40));
    deleted["checkout_sha"] = Value::Null;
    let (status, answer) = deliver("Push Hook", &deleted, "gl-delete");
    assert_eq!(
        (status, answer["builds"][0]["status"].clone()),
        (202, json!("SKIPPED"))
    );

    // A merge request builds when its files (from GitLab's API) pass the filter; a fork's is
    // refused and its commit told so.
    h.api
        .set_files(hooks::GITLAB_REPOSITORY, 7, &["src/main.sh"]);
    let build_id = h.queued(&deliver(
        "Merge Request Hook",
        &hooks::gitlab_merge_request("merge-request-open", &good),
        "gl-mr-open",
    ));
    assert_eq!(
        h.record_of(&h.gitlab_project(), &build_id)["status"],
        "SUCCEEDED"
    );
    let (status, _) = deliver(
        "Merge Request Hook",
        &hooks::gitlab_merge_request("merge-request-update-title", &good),
        "gl-mr-title",
    );
    assert_eq!(status, 200);
    let (status, answer) = deliver(
        "Merge Request Hook",
        &hooks::gitlab_merge_request("merge-request-fork", &failing),
        "gl-mr-fork",
    );
    assert_eq!(status, 202);
    assert_eq!(answer["builds"][0]["status"], "SKIPPED");
    assert!(
        h.states_in(repo, &failing, 3)
            .ends_with(&["canceled".to_string()])
    );
}

#[test]
fn bitbucket_pushes_and_pull_requests_build_and_report_back() {
    let h = Harness::start();
    let (good, failing) = (h.commits.good.clone(), h.commits.failing.clone());
    let deliver = |event: &str, body: &Value, id: &str| {
        let (headers, bytes) = hooks::bitbucket_delivery(event, body, id, SECRET);
        h.post_to("bitbucket", &headers, &bytes)
    };
    let body = hooks::bitbucket_push("main", &good, &failing);
    let (headers, bytes) = hooks::bitbucket_delivery("repo:push", &body, "bb-bad", "wrong");
    assert_eq!(h.post_to("bitbucket", &headers, &bytes).0, 401);

    let build_id = h.queued(&deliver("repo:push", &body, "bb-push"));
    assert_eq!(
        h.record_of(&h.bitbucket_project(), &build_id)["status"],
        "SUCCEEDED"
    );
    let repo = Some(hooks::BITBUCKET_REPOSITORY);
    assert_eq!(h.states_in(repo, &good, 2), ["INPROGRESS", "SUCCESSFUL"]);
    let status = h.api.statuses(&good).pop().expect("a status");
    assert_eq!(status.body["key"], "pushbuild");
    assert!(
        status.body["url"]
            .as_str()
            .unwrap_or_default()
            .contains(&build_id),
        "{}",
        status.body
    );
    let again = deliver("repo:push", &body, "bb-push");
    assert_eq!(again.1["builds"][0]["status"], "SKIPPED", "{}", again.1);

    let fail = hooks::bitbucket_push("broken", &failing, &good);
    let build_id = h.queued(&deliver("repo:push", &fail, "bb-fail"));
    assert_eq!(
        h.record_of(&h.bitbucket_project(), &build_id)["status"],
        "FAILED"
    );
    assert_eq!(h.states_in(repo, &failing, 2), ["INPROGRESS", "FAILED"]);

    // A pull request names its head commit abbreviated: its full id comes from the API, and
    // its files (for the FILE_PATH filter) too, page by page.
    let docs: Vec<String> = (0..25).map(|i| format!("docs/{i}.md")).collect();
    let mut files: Vec<&str> = docs.iter().map(String::as_str).collect();
    files.push("src/main.sh");
    h.api.set_files(hooks::BITBUCKET_REPOSITORY, 7, &files);
    let answer = deliver(
        "pullrequest:created",
        &hooks::bitbucket_pull_request("pullrequest-created", &good),
        "bb-pr",
    );
    let build_id = h.queued(&answer);
    assert_eq!(answer.1["builds"][0]["commit"], good.as_str());
    let record = h.record_of(&h.bitbucket_project(), &build_id);
    assert_eq!(record["commit"], good.as_str());
    let diffstat_pages = h
        .api
        .requests()
        .iter()
        .filter(|r| r.contains("/pullrequests/7/diffstat"))
        .count();
    assert_eq!(diffstat_pages, 3, "26 files, ten to a page");

    let (status, answer) = deliver(
        "pullrequest:created",
        &hooks::bitbucket_pull_request("pullrequest-fork", &failing),
        "bb-fork",
    );
    assert_eq!(status, 202);
    assert_eq!(answer["builds"][0]["status"], "SKIPPED");
    assert!(
        h.states_in(repo, &failing, 3)
            .ends_with(&["STOPPED".to_string()])
    );
}

/// A repository at `team/app` whose build says which host it came from; its commit.
fn team_app(root: &std::path::Path, host: &str) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    crate::codecommit_standin::init_repo(dir);
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"built from {host} number $CODEBUILD_BUILD_NUMBER\"\n"
    );
    std::fs::write(dir.join("buildspec.yml"), spec).expect("buildspec");
    crate::git_server::git(dir, &["add", "-A"]);
    crate::git_server::git(dir, &["commit", "-q", "-m", &format!("{host}'s app")]);
    crate::git_server::publish(root, "team/app", dir);
    crate::git_server::git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn gitlab_and_bitbucket_on_one_machine_build_from_their_own_host_under_their_own_project() {
    // Given: self-hosted GitLab and Bitbucket on 127.0.0.1, on two ports, each with its own
    // `team/app`.
    let (gitlab_repos, bitbucket_repos) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gitlab_commit = team_app(gitlab_repos.path(), "gitlab");
    let bitbucket_commit = team_app(bitbucket_repos.path(), "bitbucket");
    let gitlab = GitServer::start(gitlab_repos.path(), TOKEN);
    let bitbucket = GitServer::start(bitbucket_repos.path(), TOKEN);
    let api = GitHubApi::start(TOKEN);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(
        store.path(),
        work.path(),
        &[],
        &[
            (
                "PUSHBUILD_GITLAB_WEBHOOK_TOKEN",
                hooks::GITLAB_TOKEN.to_string(),
            ),
            ("PUSHBUILD_GITLAB_TOKEN", TOKEN.to_string()),
            ("PUSHBUILD_GITLAB_URL", gitlab.url()),
            ("PUSHBUILD_GITLAB_API_URL", format!("{}/api/v4", api.url())),
            ("PUSHBUILD_BITBUCKET_WEBHOOK_SECRET", SECRET.to_string()),
            ("PUSHBUILD_BITBUCKET_TOKEN", TOKEN.to_string()),
            ("PUSHBUILD_BITBUCKET_URL", bitbucket.url()),
            ("PUSHBUILD_BITBUCKET_API_URL", api.url()),
        ],
    );
    let client = reqwest::blocking::Client::new();
    let post = |host: &str, (headers, body): (Vec<(String, String)>, Vec<u8>)| -> Value {
        let mut request = client
            .post(format!("{}/webhooks/{host}", served.url))
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let text = request
            .send()
            .expect("serve answers")
            .text()
            .expect("a body");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(answer["builds"][0]["status"], "QUEUED", "{answer}");
        answer["builds"][0].clone()
    };

    // When: each host delivers a push of its own `team/app`.
    let mut push = hooks::gitlab_push("refs/heads/main", &gitlab_commit, "gitlab's app");
    push["project"]["path_with_namespace"] = json!("team/app");
    let from_gitlab = post(
        "gitlab",
        hooks::gitlab_delivery("Push Hook", &push, "two-hosts-gl", hooks::GITLAB_TOKEN),
    );
    let mut push = hooks::bitbucket_push("main", &bitbucket_commit, &"0".repeat(40));
    push["repository"]["full_name"] = json!("team/app");
    let from_bitbucket = post(
        "bitbucket",
        hooks::bitbucket_delivery("repo:push", &push, "two-hosts-bb", SECRET),
    );

    // Then: two projects that keep the ports, each built from its own host, numbered apart.
    let gitlab_project = gitlab.project("team/app");
    let bitbucket_project = bitbucket.project("team/app");
    assert_ne!(gitlab_project, bitbucket_project);
    assert_eq!(from_gitlab["repository"], gitlab_project.as_str());
    assert_eq!(from_bitbucket["repository"], bitbucket_project.as_str());
    for (project, answer, commit, host) in [
        (&gitlab_project, &from_gitlab, &gitlab_commit, "gitlab"),
        (
            &bitbucket_project,
            &from_bitbucket,
            &bitbucket_commit,
            "bitbucket",
        ),
    ] {
        let build_id = answer["buildId"].as_str().expect("a build id");
        let dir = store.path().join("builds").join(project).join(build_id);
        let until = Instant::now() + Duration::from_secs(60);
        while !dir.join("build.json").exists() {
            assert!(Instant::now() < until, "no record of {project}'s build");
            std::thread::sleep(Duration::from_millis(50));
        }
        let record: Value =
            serde_json::from_slice(&std::fs::read(dir.join("build.json")).unwrap()).unwrap();
        assert_eq!(record["status"], "SUCCEEDED", "{record}");
        assert_eq!(record["commit"], commit.as_str());
        assert_eq!(
            record["build_number"], 1,
            "each project counts its own builds"
        );
        let log = std::fs::read_to_string(dir.join("build.log")).unwrap();
        assert!(
            log.contains(&format!("built from {host} number 1")),
            "{log}"
        );
    }
    let fetched = |server: &GitServer| {
        server
            .requests()
            .iter()
            .any(|r| r.contains("/team/app.git/git-upload-pack"))
    };
    assert!(
        fetched(&gitlab) && fetched(&bitbucket),
        "each host served its own fetch"
    );
}

/// A project name the test knows is valid.
fn pn(name: &str) -> ProjectName {
    ProjectName::parse(name).expect("a project name")
}

/// A build id the test knows is valid.
fn bid(id: &str) -> BuildId {
    BuildId::parse(id).expect("a build id")
}
