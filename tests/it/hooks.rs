//! Shared by the webhook tests: a hosted repository on the test git server with a good and a
//! failing commit, and GitHub deliveries made from the samples in `events/github/`, edited to
//! name that repository and its commits, and signed with the test secret.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::codecommit_standin::init_repo;
use crate::git_server::{git, publish};

pub const SECRET: &str = "pushbuild-test-webhook-secret";
pub const TOKEN: &str = "ghp_testTokenNeverShown0123456789abcdef";
pub const REPOSITORY: &str = "octo/app";
/// The same repository's path on the test GitLab (nested groups) and on the test Bitbucket.
pub const GITLAB_REPOSITORY: &str = "octo-group/platform/app";
pub const BITBUCKET_REPOSITORY: &str = "octo-ws/app";
/// GitLab's webhook token in the tests.
pub const GITLAB_TOKEN: &str = "pushbuild-test-gitlab-token";

/// A buildspec that prints what the tests look for: the webhook variables, what git says of the
/// checkout, the git config and the whole environment.
pub const GOOD_SPEC: &str = r#"version: 0.2
phases:
  build:
    commands:
      - echo "event=$CODEBUILD_WEBHOOK_EVENT head=$CODEBUILD_WEBHOOK_HEAD_REF base=$CODEBUILD_WEBHOOK_BASE_REF actor=$CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID prev=$CODEBUILD_WEBHOOK_PREV_COMMIT"
      - echo "trigger=$CODEBUILD_WEBHOOK_TRIGGER version=$CODEBUILD_SOURCE_VERSION resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION"
      - echo "url=$CODEBUILD_SOURCE_REPO_URL"
      - echo "git-head=$(git rev-parse HEAD)"
      - git log -1 --format='git-message=%s'
      - cat .git/config
      - env | sort
"#;

/// Fails, leaving a JUnit report with one failed case of three.
const FAILING_SPEC: &str = r#"version: 0.2
phases:
  build:
    commands:
      - echo failing on purpose
      - mkdir -p out
      - printf '<testsuite name="app"><testcase classname="app.Calc" name="adds"/><testcase classname="app.Calc" name="subtracts"/><testcase classname="app.Calc" name="divides"><failure message="expected 2, got 3">at calc.sh line 3</failure></testcase></testsuite>' > out/TEST-app.xml
      - exit 3
reports:
  unit:
    files: ['out/*.xml']
"#;

/// A batch: `a`, then `b` and `c`, which wait on it.
const BATCH_SPEC: &str = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n    \
                          - identifier: b\n      depend-on: [a]\n    - identifier: c\n      \
                          depend-on: [a]\nphases:\n  build:\n    commands:\n      \
                          - echo \"child=$CODEBUILD_BATCH_BUILD_IDENTIFIER\"\n";

/// A batch whose first task asks for a CodeBuild compute type: `big` on CodeBuild, then
/// `after` here.
const BATCH_CODEBUILD_SPEC: &str = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: big\n      \
                                    env:\n        compute-type: BUILD_GENERAL1_LARGE\n        \
                                    image: aws/codebuild/standard:7.0\n    \
                                    - identifier: after\n      depend-on: [big]\nphases:\n  build:\n    \
                                    commands:\n      - echo \"child=$CODEBUILD_BATCH_BUILD_IDENTIFIER\"\n";

/// A fan-out of four over nine test files.
const BATCH_FANOUT_SPEC: &str = "version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 4\nphases:\n  build:\n    \
                                 commands:\n      - codebuild-tests-run --test-command 'bash run-tests.sh' \
                                 --files-search \"codebuild-glob-search 'tests/**/*_test.sh'\"\n";

/// fast-fail: `broken` fails at once, `slow` would run ten minutes.
const BATCH_FAST_SPEC: &str = "version: 0.2\nbatch:\n  fast-fail: true\n  build-list:\n    - identifier: slow\n      \
                               env:\n        variables:\n          WAIT: '600'\n    - identifier: broken\nphases:\n  \
                               build:\n    commands:\n      - sleep ${WAIT:-0}\n      \
                               - if [ -z \"$WAIT\" ]; then exit 1; fi\n";

/// A graph with a cycle.
const BATCH_CYCLE_SPEC: &str = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n    \
                                - identifier: b\n      depend-on: [a]\nphases:\n  build:\n    commands: [echo]\n";

/// The repository's commits.
pub struct Commits {
    /// On `main`: the good buildspec.
    pub good: String,
    /// On `broken`: a buildspec that fails.
    pub failing: String,
    /// On `batched`: a batch, `a` then `b` and `c`.
    pub batch: String,
    /// On `batched-big`: a batch, `big` (on CodeBuild) then `after`.
    pub batch_codebuild: String,
    /// On `batched-fanout`: a fan-out of four over `tests/group*/N_test.sh` (N from 0 to 8).
    pub batch_fanout: String,
    /// On `batched-fast`: fast-fail, `broken` failing while `slow` runs.
    pub batch_fast: String,
    /// On `batched-cycle`: a graph with a cycle.
    pub batch_cycle: String,
    /// On `slow`: a build of ten minutes (`echo waiting`, then `sleep 600`).
    pub slow: String,
}

/// Publishes `octo/app` under `root` (the git server's directory).
pub fn hosted_repository(root: &Path) -> Commits {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    init_repo(dir);
    std::fs::create_dir_all(dir.join("src")).expect("src");
    std::fs::write(dir.join("src/main.sh"), "echo main\n").expect("a file");
    std::fs::write(dir.join("buildspec.yml"), GOOD_SPEC).expect("buildspec");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "A good build"]);
    let good = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["checkout", "-q", "-b", "broken"]);
    std::fs::write(dir.join("buildspec.yml"), FAILING_SPEC).expect("buildspec");
    git(dir, &["commit", "-q", "-am", "A failing build"]);
    let failing = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["checkout", "-q", "-b", "batched"]);
    std::fs::write(dir.join("buildspec.yml"), BATCH_SPEC).expect("buildspec");
    git(dir, &["commit", "-q", "-am", "A batch"]);
    let batch = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["checkout", "-q", "-b", "batched-big"]);
    std::fs::write(dir.join("buildspec.yml"), BATCH_CODEBUILD_SPEC).expect("buildspec");
    git(dir, &["commit", "-q", "-am", "A batch with a big child"]);
    let batch_codebuild = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["checkout", "-q", "-b", "batched-fanout"]);
    std::fs::write(dir.join("buildspec.yml"), BATCH_FANOUT_SPEC).expect("buildspec");
    std::fs::write(
        dir.join("run-tests.sh"),
        "for f in \"$@\"; do echo \"ran $f\"; done\n",
    )
    .expect("a file");
    for n in 0..9 {
        let path = dir.join(format!("tests/group{}/{n}_test.sh", n % 2));
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("a folder");
        std::fs::write(path, "").expect("a file");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "A fan-out"]);
    let batch_fanout = git(dir, &["rev-parse", "HEAD"]);
    let branch = |name: &str, spec: &str| {
        git(dir, &["checkout", "-q", "-b", name]);
        std::fs::write(dir.join("buildspec.yml"), spec).expect("buildspec");
        git(dir, &["commit", "-q", "-am", name]);
        git(dir, &["rev-parse", "HEAD"])
    };
    let batch_fast = branch("batched-fast", BATCH_FAST_SPEC);
    let batch_cycle = branch("batched-cycle", BATCH_CYCLE_SPEC);
    let slow = branch(
        "slow",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo waiting\n      - sleep 600\n",
    );
    for path in [REPOSITORY, GITLAB_REPOSITORY, BITBUCKET_REPOSITORY] {
        publish(root, path, dir);
    }
    Commits {
        good,
        failing,
        batch,
        batch_codebuild,
        batch_fanout,
        batch_fast,
        batch_cycle,
        slow,
    }
}

/// A sample payload from `events/github/`.
pub fn sample(name: &str) -> Value {
    sample_of("github", name)
}

/// A sample payload from `events/<host>/`.
pub fn sample_of(host: &str, name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(host)
        .join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("the sample")).expect("JSON")
}

/// A GitLab push of `commit` to `git_ref` of the test repository (the commit listed, so its
/// files are known).
pub fn gitlab_push(git_ref: &str, commit: &str, message: &str) -> Value {
    let mut body = sample_of("gitlab", "push");
    body["ref"] = json!(git_ref);
    body["after"] = json!(commit);
    body["checkout_sha"] = json!(commit);
    body["commits"] = json!([{"id": commit, "message": message, "added": [], "modified": ["src/main.sh"], "removed": []}]);
    body["total_commits_count"] = json!(1);
    body["project"]["path_with_namespace"] = json!(GITLAB_REPOSITORY);
    body
}

/// A GitLab merge request event (`sample` names one) at `commit`.
pub fn gitlab_merge_request(sample_name: &str, commit: &str) -> Value {
    let mut body = sample_of("gitlab", sample_name);
    body["object_attributes"]["last_commit"]["id"] = json!(commit);
    body["project"]["path_with_namespace"] = json!(GITLAB_REPOSITORY);
    body
}

/// The headers and bytes of a GitLab delivery of `body` as `event`, with `token`.
pub fn gitlab_delivery(
    event: &str,
    body: &Value,
    id: &str,
    token: &str,
) -> (Vec<(String, String)>, Vec<u8>) {
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-Gitlab-Event".to_string(), event.to_string()),
        ("X-Gitlab-Token".to_string(), token.to_string()),
        ("Idempotency-Key".to_string(), id.to_string()),
    ];
    (headers, serde_json::to_vec(body).expect("JSON"))
}

/// A Bitbucket push of `commit` to branch `branch` (after `before`) of the test repository.
pub fn bitbucket_push(branch: &str, commit: &str, before: &str) -> Value {
    let mut body = sample_of("bitbucket", "repo-push");
    let mut change = body["push"]["changes"][0].clone();
    change["new"]["name"] = json!(branch);
    change["new"]["target"]["hash"] = json!(commit);
    change["old"]["name"] = json!(branch);
    change["old"]["target"]["hash"] = json!(before);
    body["push"]["changes"] = json!([change]);
    body["repository"]["full_name"] = json!(BITBUCKET_REPOSITORY);
    body
}

/// A Bitbucket pull request event (`sample` names one) at `commit`, abbreviated as Bitbucket
/// abbreviates it.
pub fn bitbucket_pull_request(sample_name: &str, commit: &str) -> Value {
    let mut body = sample_of("bitbucket", sample_name);
    body["pullrequest"]["source"]["commit"]["hash"] = json!(&commit[..12]);
    body["repository"]["full_name"] = json!(BITBUCKET_REPOSITORY);
    if body["pullrequest"]["source"]["repository"]["full_name"] == json!("octo-ws/hello-app") {
        body["pullrequest"]["source"]["repository"]["full_name"] = json!(BITBUCKET_REPOSITORY);
    }
    body["pullrequest"]["destination"]["repository"]["full_name"] = json!(BITBUCKET_REPOSITORY);
    body
}

/// The headers and bytes of a Bitbucket delivery of `body` as `event`, signed with `secret`.
pub fn bitbucket_delivery(
    event: &str,
    body: &Value,
    id: &str,
    secret: &str,
) -> (Vec<(String, String)>, Vec<u8>) {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let signature = pushbuild::webhook::signature::hmac_sha256_hex(secret.as_bytes(), &bytes);
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-Event-Key".to_string(), event.to_string()),
        ("X-Request-UUID".to_string(), id.to_string()),
        ("X-Hub-Signature".to_string(), format!("sha256={signature}")),
    ];
    (headers, bytes)
}

/// A push of `commit` to `git_ref` of the test repository.
pub fn push(git_ref: &str, commit: &str, message: &str) -> Value {
    let mut body = sample("push");
    body["ref"] = json!(git_ref);
    body["after"] = json!(commit);
    body["head_commit"]["id"] = json!(commit);
    body["head_commit"]["message"] = json!(message);
    body["commits"][0]["id"] = json!(commit);
    body["commits"][0]["message"] = json!(message);
    body["repository"]["full_name"] = json!(REPOSITORY);
    body
}

/// A pull request event (`sample` names one) at `commit`.
pub fn pull_request(sample_name: &str, commit: &str) -> Value {
    let mut body = sample(sample_name);
    body["pull_request"]["head"]["sha"] = json!(commit);
    body["repository"]["full_name"] = json!(REPOSITORY);
    if body["pull_request"]["head"]["repo"]["full_name"] == json!("octo-org/hello-app") {
        body["pull_request"]["head"]["repo"]["full_name"] = json!(REPOSITORY);
    }
    body
}

/// The headers and bytes of a delivery of `body` as GitHub's `event`, signed with `secret`.
pub fn delivery(
    event: &str,
    body: &Value,
    id: &str,
    secret: &str,
) -> (Vec<(String, String)>, Vec<u8>) {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let signature = pushbuild::webhook::signature::hmac_sha256_hex(secret.as_bytes(), &bytes);
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-GitHub-Event".to_string(), event.to_string()),
        ("X-GitHub-Delivery".to_string(), id.to_string()),
        ("X-GitHub-Hook-ID".to_string(), "77".to_string()),
        (
            "X-Hub-Signature-256".to_string(),
            format!("sha256={signature}"),
        ),
    ];
    (headers, bytes)
}

/// Every file under `dir` whose bytes hold `needle`.
pub fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(|e| e.path().display().to_string())
        .collect()
}

/// Every file under `dir`.
pub fn all_files(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .collect()
}
