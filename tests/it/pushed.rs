//! A repository pushed to GitHub for `serve`: its commits on branches of a git server (git's
//! own `git http-backend`), the GitHub API stand-in taking their statuses, and the signed push
//! deliveries that build them.

use serde_json::Value;

use crate::hooks;

/// A branch to push: its name, its buildspec, and its other files (path, text).
pub type Branch<'a> = (&'a str, &'a str, &'a [(String, String)]);

/// A repository on a git server, a commit of a buildspec on each of its branches, and the
/// GitHub API stand-in that takes their statuses.
pub struct Pushed {
    _repos: tempfile::TempDir,
    pub git: crate::git_server::GitServer,
    pub api: crate::github_api::GitHubApi,
    /// The first branch's commit.
    pub commit: String,
    /// Each branch and its commit.
    pub commits: Vec<(String, String)>,
}

impl Pushed {
    /// One commit of `spec`, on `main`.
    pub fn new(spec: &str) -> Pushed {
        Pushed::branches(&[("main", spec, &[])])
    }

    /// A commit on each branch, in order, each with its buildspec and other files; a branch named
    /// again gets another commit on top of its last.
    pub fn branches(branches: &[Branch<'_>]) -> Pushed {
        use crate::git_server::{GitServer, git, publish};
        let (repos, work_tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dir = work_tree.path();
        crate::codecommit_standin::init_repo(dir);
        let mut commits: Vec<(String, String)> = Vec::new();
        for (n, (branch, spec, files)) in branches.iter().enumerate() {
            if commits.last().is_some_and(|(last, _)| last != branch) {
                git(dir, &["checkout", "-q", "-B", branch]);
            }
            std::fs::write(dir.join("buildspec.yml"), spec).unwrap();
            for (path, text) in *files {
                std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
                std::fs::write(dir.join(path), text).unwrap();
            }
            git(dir, &["add", "-A"]);
            git(dir, &["commit", "-q", "-m", &format!("{branch} {n}")]);
            commits.push((branch.to_string(), git(dir, &["rev-parse", "HEAD"])));
        }
        publish(repos.path(), hooks::REPOSITORY, dir);
        let git = GitServer::start(repos.path(), hooks::TOKEN);
        let api = crate::github_api::GitHubApi::start(hooks::TOKEN);
        let all: Vec<&str> = commits.iter().map(|(_, c)| c.as_str()).collect();
        api.add_commits(&all);
        Pushed {
            _repos: repos,
            git,
            api,
            commit: commits[0].1.clone(),
            commits,
        }
    }

    /// Successive commits of `specs` on `main`; [`commits`](Self::commits) in order.
    pub fn successive(specs: &[&str]) -> Pushed {
        let branches: Vec<Branch<'_>> = specs.iter().map(|spec| ("main", *spec, &[][..])).collect();
        Pushed::branches(&branches)
    }

    /// Delivers the push of the `n`th commit (of [`successive`](Self::successive)) to `main`;
    /// its build's id.
    pub fn deliver_nth(&self, url: &str, n: usize, delivery: &str) -> String {
        deliver(url, "main", &self.commits[n].1, delivery)
    }

    /// `serve`'s settings for GitHub, here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PUSHBUILD_GITHUB_WEBHOOK_SECRET", hooks::SECRET.to_string()),
            ("PUSHBUILD_GITHUB_TOKEN", hooks::TOKEN.to_string()),
            ("PUSHBUILD_GITHUB_URL", self.git.url()),
            ("PUSHBUILD_GITHUB_API_URL", self.api.url()),
        ]
    }

    /// Delivers the push of the first branch's commit to `serve` at `url`; the batch's id.
    pub fn deliver(&self, url: &str, delivery: &str) -> String {
        self.deliver_branch(url, &self.commits[0].0, delivery)
    }

    /// Delivers the push of `branch`'s commit; the batch's id (its push's build's).
    pub fn deliver_branch(&self, url: &str, branch: &str, delivery: &str) -> String {
        let commit = &self.commits.iter().find(|(b, _)| b == branch).unwrap().1;
        deliver(url, branch, commit, delivery)
    }
}

/// Delivers a signed push of `commit` to `branch` to `serve` at `url`; the build's id.
fn deliver(url: &str, branch: &str, commit: &str, delivery: &str) -> String {
    let body = hooks::push(&format!("refs/heads/{branch}"), commit, "a push");
    let (headers, bytes) = hooks::delivery("push", &body, delivery, hooks::SECRET);
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{url}/webhooks/github"))
        .body(bytes);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer: Value = serde_json::from_str(&request.send().unwrap().text().unwrap()).unwrap();
    answer["builds"][0]["buildId"]
        .as_str()
        .expect("queued")
        .to_string()
}

/// A build's record in the local store at `store`, once written (at most a minute on).
pub fn record_in(store: &std::path::Path, project: &str, build_id: &str) -> Value {
    let path = store
        .join("builds")
        .join(project)
        .join(build_id)
        .join("build.json");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < until,
            "no record for {build_id}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A build's log in the local store at `store`, once its record is written.
pub fn log_in(store: &std::path::Path, project: &str, build_id: &str) -> String {
    std::fs::read_to_string(
        store
            .join("builds")
            .join(project)
            .join(build_id)
            .join("build.log"),
    )
    .unwrap()
}
