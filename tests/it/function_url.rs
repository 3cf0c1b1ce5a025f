//! The real function binary answering GitHub's webhooks through its Function URL: the event is
//! answered 202 once verified and handed off, the function's asynchronous invocation of itself
//! reaches the test's Lambda endpoint, and that invocation builds, from git's own
//! `git http-backend` into the S3 server, reporting statuses to the GitHub API stand-in.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::codebuild_standin::CodeBuildStandIn;
use crate::dynamo_server::DynamoServer;
use crate::git_server::GitServer;
use crate::github_api::GitHubApi;
use crate::hooks::{self, SECRET, TOKEN};
use crate::runtime_api::{Outcome, RuntimeApi};
use crate::s3_server::S3Server;

const SECRETS_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pushbuild-AbCdEf";

struct Harness {
    s3: S3Server,
    runtime: tokio::runtime::Runtime,
    lambda: RuntimeApi,
    git: GitServer,
    bitbucket_git: GitServer,
    api: GitHubApi,
    commits: hooks::Commits,
    child: Child,
    _repos: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Harness {
    /// The function with its servers; the webhook secret and token come from the environment,
    /// or (`from_secrets_manager`) from a Secrets Manager secret.
    fn start(from_secrets_manager: bool) -> Harness {
        Self::start_with(from_secrets_manager, &[])
    }

    /// [`start`](Self::start), with more settings (`{git}` in a value: the git server's host and
    /// port, as project names have them).
    fn start_with(from_secrets_manager: bool, settings: &[(&str, &str)]) -> Harness {
        let s3 = S3Server::start();
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let lambda = runtime.block_on(RuntimeApi::start());
        let repos = tempfile::tempdir().expect("temp dir");
        let commits = hooks::hosted_repository(repos.path());
        let git = GitServer::start(repos.path(), TOKEN);
        let bitbucket_git = GitServer::start_at("127.0.0.2", repos.path(), TOKEN);
        let api = GitHubApi::start(TOKEN);
        api.add_commits(&[&commits.good, &commits.failing]);
        let work = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_pushbuild-lambda"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", lambda.endpoint())
            .env("AWS_LAMBDA_FUNCTION_NAME", "pushbuild")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_ENDPOINT_URL_LAMBDA",
                format!("http://{}", lambda.endpoint()),
            )
            .env(
                "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                format!("http://{}", lambda.endpoint()),
            )
            .env("PUSHBUILD_BUCKET", &s3.bucket)
            .env("PUSHBUILD_S3_PATH_STYLE", "true")
            .env("PUSHBUILD_WORK_DIR", work.path())
            .env("PUSHBUILD_GITHUB_URL", git.url())
            .env("PUSHBUILD_GITHUB_API_URL", api.url())
            .env(
                "PUSHBUILD_GITLAB_URL",
                git.url().replace("127.0.0.1", "localhost"),
            )
            .env("PUSHBUILD_GITLAB_API_URL", format!("{}/api/v4", api.url()))
            .env("PUSHBUILD_BITBUCKET_URL", bitbucket_git.url())
            .env("PUSHBUILD_BITBUCKET_API_URL", api.url())
            .envs(s3.env())
            .envs(DynamoServer::shared().env_with_table())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(work.path().join("function.stderr"))
                    .map_or(Stdio::null(), Stdio::from),
            );
        if from_secrets_manager {
            let secret = json!({
                "ui_token": UI_TOKEN,
                "github_webhook_secret": SECRET, "github_token": TOKEN,
                "gitlab_webhook_token": hooks::GITLAB_TOKEN, "gitlab_token": TOKEN,
                "bitbucket_webhook_secret": SECRET, "bitbucket_token": TOKEN,
            });
            runtime.block_on(lambda.set_secret(SECRETS_ARN, &secret.to_string()));
            command.env("PUSHBUILD_SECRETS_ARN", SECRETS_ARN);
        } else {
            command
                .env("PUSHBUILD_GITHUB_WEBHOOK_SECRET", SECRET)
                .env("PUSHBUILD_GITHUB_TOKEN", TOKEN)
                .env("PUSHBUILD_GITLAB_WEBHOOK_TOKEN", hooks::GITLAB_TOKEN)
                .env("PUSHBUILD_GITLAB_TOKEN", TOKEN)
                .env("PUSHBUILD_BITBUCKET_WEBHOOK_SECRET", SECRET)
                .env("PUSHBUILD_BITBUCKET_TOKEN", TOKEN);
        }
        let git_host = git.url().trim_start_matches("http://").to_string();
        command.envs(
            settings
                .iter()
                .map(|(name, value)| (*name, value.replace("{git}", &git_host))),
        );
        let child = command.spawn().expect("the function starts");
        Harness {
            s3,
            runtime,
            lambda,
            git,
            bitbucket_git,
            api,
            commits,
            child,
            _repos: repos,
            work,
        }
    }

    fn invoke(&self, event: Value) -> Value {
        match self.runtime.block_on(self.lambda.invoke(
            event,
            Duration::from_secs(120),
            Duration::from_secs(30),
        )) {
            Outcome::Response(value) => value,
            Outcome::Error {
                error_type,
                message,
            } => panic!(
                "the invocation failed: {error_type}: {message}\n{}",
                std::fs::read_to_string(self.work.path().join("function.stderr"))
                    .unwrap_or_default()
            ),
        }
    }

    /// The asynchronous invocations so far (waiting up to a few seconds for `n`).
    fn async_invocations(&self, n: usize) -> Vec<(String, Value)> {
        self.runtime
            .block_on(self.lambda.async_invocations(n, Duration::from_secs(5)))
    }

    fn keys(&self) -> Vec<String> {
        let client = self.s3.client();
        let bucket = self.s3.bucket.clone();
        self.s3.handle().block_on(async move {
            let out = client
                .list_objects_v2()
                .bucket(bucket)
                .send()
                .await
                .expect("list");
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string))
                .collect()
        })
    }

    fn object(&self, key: &str) -> String {
        String::from_utf8_lossy(&self.s3.object(key)).into_owned()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Function URL event (payload format 2.0) carrying a delivery to GitHub's route.
fn url_event(headers: &[(String, String)], body: &[u8], base64: bool) -> Value {
    url_event_to("github", headers, body, base64)
}

/// A Function URL event carrying a delivery to `/webhooks/<host>`.
fn url_event_to(host: &str, headers: &[(String, String)], body: &[u8], base64: bool) -> Value {
    let path = format!("/webhooks/{host}");
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), json!(v)))
        .collect();
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        String::from_utf8(body.to_vec()).expect("a text body")
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefgh",
            "domainName": "abcdefgh.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefgh",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "GitHub-Hookshot/2a6b3c1"
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "30/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795996800000_u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// The token of the pages' login, from the secret.
const UI_TOKEN: &str = "pages-login-token";

/// A Function URL event asking for a page: `method` `path_and_query`, with `cookies` and a
/// form `body`.
fn page_event(method: &str, path_and_query: &str, cookies: &[String], body: &str) -> Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut event = url_event(
        &[(
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        )],
        body.as_bytes(),
        false,
    );
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!(query);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    event
}

fn answer_body(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null)
}

#[test]
fn a_signed_push_is_answered_202_then_built_by_the_functions_own_invocation() {
    let h = Harness::start(false);
    let commit = h.commits.good.clone();
    let body = hooks::push("refs/heads/main", &commit, "A good build");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-1", SECRET);
    let answer = h.invoke(url_event(&headers, &bytes, false));
    assert_eq!(answer["statusCode"], 202, "{answer}");
    let queued = answer_body(&answer);
    assert_eq!(queued["builds"][0]["status"], "QUEUED", "{queued}");
    let build_id = queued["builds"][0]["buildId"]
        .as_str()
        .expect("an id")
        .to_string();

    let invocations = h.async_invocations(1);
    assert_eq!(invocations.len(), 1, "{invocations:?}");
    let (function, payload) = &invocations[0];
    assert_eq!(function, "pushbuild");
    assert_eq!(payload["plannedBuild"]["buildId"], build_id.as_str());
    let built = h.invoke(payload.clone());
    assert_eq!(built["builds"][0]["status"], "SUCCEEDED", "{built}");
    assert_eq!(built["builds"][0]["buildId"], build_id.as_str());

    let record_key = format!("builds/{}/{build_id}/build.json", h.git.project("octo/app"));
    let record: Value = serde_json::from_str(&h.object(&record_key)).expect("a record");
    assert_eq!(record["commit"], commit.as_str());
    let log = h.object(&format!(
        "builds/{}/{build_id}/build.log",
        h.git.project("octo/app")
    ));
    assert!(log.contains("event=PUSH head=refs/heads/main"), "{log}");
    assert!(log.contains(&format!("git-head={commit}")), "{log}");
    assert!(!log.contains(TOKEN), "the token is not in the log");
    let states: Vec<String> = h
        .api
        .statuses(&commit)
        .iter()
        .map(|c| c.body["state"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(states, ["pending", "success"]);
    let target = h.api.statuses(&commit)[1].body["target_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        target.starts_with("https://s3.console.aws.amazon.com/s3/object/pushbuild-test?region=")
            && target.ends_with(&format!(
                "prefix=builds/{}/{build_id}/build.log",
                h.git.project("octo/app")
            )),
        "{target}"
    );
    for key in h.keys() {
        assert!(!h.object(&key).contains(TOKEN), "{key} holds the token");
    }

    // The same delivery again: answered as a duplicate, and nothing more is invoked.
    let again = h.invoke(url_event(&headers, &bytes, false));
    assert_eq!(answer_body(&again)["builds"][0]["status"], "SKIPPED");
    assert_eq!(h.async_invocations(2).len(), 1);
}

/// A pushed batch through the function: the push's invocation starts `a` in an invocation of
/// its own; `a`'s end starts `b` and `c`; the last to end closes the batch, whose record is in
/// S3; each child has its status, and the batch its own.
#[test]
fn a_pushed_batch_runs_each_child_in_an_invocation_of_its_own() {
    let h = Harness::start(false);
    let commit = h.commits.batch.clone();
    h.api.add_commits(&[&commit]);
    let body = hooks::push("refs/heads/batched", &commit, "A batch");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-batch", SECRET);
    assert_eq!(
        h.invoke(url_event(&headers, &bytes, false))["statusCode"],
        202
    );
    let (_, payload) = h.async_invocations(1).remove(0);
    let started = h.invoke(payload);
    assert_eq!(started["builds"][0]["status"], "IN_PROGRESS", "{started}");
    let batch_id = started["builds"][0]["batch"]
        .as_str()
        .expect("a batch")
        .to_string();
    // a: its own invocation, a child of the batch.
    let invocations = h.async_invocations(2);
    let a = invocations[1].1.clone();
    assert_eq!(a["plannedBuild"]["batch"]["identifier"], "a", "{a}");
    let built = h.invoke(a);
    assert_eq!(built["builds"][0]["status"], "SUCCEEDED", "{built}");
    // b and c, started by a's end; the second of them to end closes the batch.
    let invocations = h.async_invocations(4);
    let mut next: Vec<String> = invocations[2..]
        .iter()
        .map(|(_, p)| {
            p["plannedBuild"]["batch"]["identifier"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    next.sort();
    assert_eq!(next, ["b", "c"]);
    for (_, payload) in invocations[2..].iter().cloned() {
        assert_eq!(h.invoke(payload)["builds"][0]["status"], "SUCCEEDED");
    }
    let project = h.git.project("octo/app");
    let record: Value =
        serde_json::from_str(&h.object(&format!("batches/{project}/{batch_id}/batch.json")))
            .expect("the batch's record");
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    for child in record["children"].as_array().unwrap() {
        let log = h.object(&format!(
            "builds/{project}/{}/build.log",
            child["buildId"].as_str().unwrap()
        ));
        assert!(log.contains(&format!("child={}", child["identifier"].as_str().unwrap())));
    }
    assert_eq!(h.async_invocations(5).len(), 4, "nothing more was started");
    let last = h.api.statuses(&commit).pop().unwrap();
    assert_eq!(last.body["context"], "pushbuild", "{:?}", last.body);
    assert_eq!(
        last.body["description"],
        "Batch SUCCEEDED: 3 of 3 builds succeeded"
    );
}

/// A fan-out of four through the function: each shard an invocation of its own, every test
/// file run by exactly one of them; the last shard's end closes the batch.
#[test]
fn a_pushed_fanout_runs_each_test_file_once_over_four_invocations() {
    let h = Harness::start(false);
    let commit = h.commits.batch_fanout.clone();
    h.api.add_commits(&[&commit]);
    let body = hooks::push("refs/heads/batched-fanout", &commit, "A fan-out");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-fanout", SECRET);
    assert_eq!(
        h.invoke(url_event(&headers, &bytes, false))["statusCode"],
        202
    );
    let (_, payload) = h.async_invocations(1).remove(0);
    let started = h.invoke(payload);
    let batch_id = started["builds"][0]["batch"]
        .as_str()
        .expect("a batch")
        .to_string();
    // The four shards start at once, each in an invocation of its own.
    let shards: Vec<Value> = h.async_invocations(5)[1..]
        .iter()
        .map(|(_, p)| p.clone())
        .collect();
    let mut names: Vec<&str> = shards
        .iter()
        .map(|p| p["plannedBuild"]["batch"]["identifier"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["shard_0", "shard_1", "shard_2", "shard_3"]);
    for shard in shards.clone() {
        assert_eq!(h.invoke(shard)["builds"][0]["status"], "SUCCEEDED");
    }
    let project = h.git.project("octo/app");
    let record: Value =
        serde_json::from_str(&h.object(&format!("batches/{project}/{batch_id}/batch.json")))
            .expect("the batch's record");
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    let mut ran: Vec<String> = record["children"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            let log = h.object(&format!(
                "builds/{project}/{}/build.log",
                c["buildId"].as_str().unwrap()
            ));
            log.lines()
                .filter_map(|l| l.strip_prefix("ran ").map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    ran.sort();
    let mut want: Vec<String> = (0..9)
        .map(|n| format!("tests/group{}/{n}_test.sh", n % 2))
        .collect();
    want.sort();
    assert_eq!(ran, want);
    assert_eq!(h.async_invocations(6).len(), 5, "nothing more was started");
}

/// fast-fail through the function: `broken`'s invocation fails and asks the batch's running
/// children to stop; `slow`, handed off before and invoked after, finds the ask as it starts and
/// ends STOPPED at once; the batch is FAILED. A cycle fails the push's build, naming it, and no
/// child is invoked.
#[test]
fn fast_fail_stops_a_child_in_another_invocation_and_a_cycle_starts_none() {
    let h = Harness::start(false);
    let (fast, cycle) = (h.commits.batch_fast.clone(), h.commits.batch_cycle.clone());
    h.api.add_commits(&[&fast, &cycle]);
    let body = hooks::push("refs/heads/batched-fast", &fast, "fast-fail");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-fast", SECRET);
    assert_eq!(
        h.invoke(url_event(&headers, &bytes, false))["statusCode"],
        202
    );
    let (_, payload) = h.async_invocations(1).remove(0);
    let started = h.invoke(payload);
    let batch_id = started["builds"][0]["batch"]
        .as_str()
        .expect("a batch")
        .to_string();
    let children = h.async_invocations(3);
    let child = |id: &str| {
        children[1..]
            .iter()
            .find(|(_, p)| p["plannedBuild"]["batch"]["identifier"] == id)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(h.invoke(child("broken"))["builds"][0]["status"], "FAILED");
    let slow = h.invoke(child("slow"));
    assert_eq!(slow["builds"][0]["status"], "STOPPED", "{slow}");
    assert!(
        slow["builds"][0]["durationMs"].as_u64().unwrap() < 60_000,
        "{slow}"
    );
    let project = h.git.project("octo/app");
    let record: Value =
        serde_json::from_str(&h.object(&format!("batches/{project}/{batch_id}/batch.json")))
            .expect("the batch's record");
    assert_eq!(record["status"], "FAILED", "{record}");
    assert_eq!(record["children"][0]["status"], "STOPPED", "{record}");
    let last = h.api.statuses(&fast).pop().unwrap();
    assert_eq!(last.body["context"], "pushbuild", "{:?}", last.body);
    assert_eq!(last.body["state"], "failure", "{:?}", last.body);

    let body = hooks::push("refs/heads/batched-cycle", &cycle, "a cycle");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-cycle", SECRET);
    assert_eq!(
        h.invoke(url_event(&headers, &bytes, false))["statusCode"],
        202
    );
    let invocations = h.async_invocations(4);
    assert_eq!(invocations.len(), 4);
    let built = h.invoke(invocations[3].1.clone());
    assert_eq!(built["builds"][0]["status"], "FAILED", "{built}");
    let build_id = built["builds"][0]["buildId"].as_str().unwrap();
    let record: Value =
        serde_json::from_str(&h.object(&format!("builds/{project}/{build_id}/build.json")))
            .unwrap();
    let message = record["phases"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("a → b → a"), "{message}");
    assert_eq!(h.async_invocations(5).len(), 4, "no child was invoked");
}

/// A child whose self-invocation is refused ends FAILED saying why, and what depended on it is
/// skipped: the batch still closes (FAILED), with its status, rather than wait for a child that
/// never started.
#[test]
fn a_child_that_cannot_be_invoked_fails_and_the_batch_still_closes() {
    let proxy = crate::fault_proxy::FaultProxy::start("http://127.0.0.1:9");
    let h = Harness::start_with(false, &[("AWS_ENDPOINT_URL_LAMBDA", &proxy.endpoint())]);
    proxy.set_upstream(&format!("http://{}", h.lambda.endpoint()));
    let commit = h.commits.batch.clone();
    h.api.add_commits(&[&commit]);
    let body = hooks::push("refs/heads/batched", &commit, "A batch");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-batch-refused", SECRET);
    assert_eq!(
        h.invoke(url_event(&headers, &bytes, false))["statusCode"],
        202
    );
    let (_, payload) = h.async_invocations(1).remove(0);
    // The invocation of `a` is refused, as Lambda refuses a caller without the permission.
    proxy.answer(
        "\"identifier\":\"a\"",
        crate::fault_proxy::Answer::aws_json(403, "AccessDeniedException", "not allowed"),
        None,
    );
    let started = h.invoke(payload);
    let batch_id = started["builds"][0]["batch"]
        .as_str()
        .expect("a batch")
        .to_string();
    assert_eq!(proxy.answered(), 1);
    let project = h.git.project("octo/app");
    let record: Value =
        serde_json::from_str(&h.object(&format!("batches/{project}/{batch_id}/batch.json")))
            .expect("the batch's record");
    assert_eq!(record["status"], "FAILED", "{record}");
    assert_eq!(record["children"][0]["status"], "FAILED", "{record}");
    let reason = record["children"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("could not be started: "), "{reason}");
    assert!(reason.contains("AccessDenied"), "{reason}");
    for skipped in [1, 2] {
        assert_eq!(record["children"][skipped]["status"], "SKIPPED", "{record}");
    }
    assert_eq!(h.async_invocations(2).len(), 1, "no child was invoked");
    let last = h.api.statuses(&commit).pop().unwrap();
    assert_eq!(last.body["context"], "pushbuild", "{:?}", last.body);
    assert_eq!(last.body["state"], "failure", "{:?}", last.body);
}

/// A batch whose first task names a CodeBuild compute type: that child is handed to CodeBuild
/// with the type, and its end (CodeBuild's state-change event) goes into the batch like any
/// other child's: it starts `after`, whose end closes the batch.
#[test]
fn a_batch_child_handed_to_codebuild_is_part_of_the_batch() {
    let codebuild = CodeBuildStandIn::start("pushbuild-overflow");
    let endpoint = codebuild.endpoint();
    let h = Harness::start_with(
        false,
        &[
            ("PUSHBUILD_CODEBUILD_PROJECT", "pushbuild-overflow"),
            ("AWS_ENDPOINT_URL_CODEBUILD", &endpoint),
        ],
    );
    let commit = h.commits.batch_codebuild.clone();
    h.api.add_commits(&[&commit]);
    let body = hooks::push(
        "refs/heads/batched-big",
        &commit,
        "A batch with a big child",
    );
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-batch-big", SECRET);
    assert_eq!(
        h.invoke(url_event(&headers, &bytes, false))["statusCode"],
        202
    );
    let (_, payload) = h.async_invocations(1).remove(0);
    let started = h.invoke(payload);
    let batch_id = started["builds"][0]["batch"]
        .as_str()
        .expect("a batch")
        .to_string();
    // big: its own invocation, which hands it to CodeBuild with the task's compute type.
    let big = h.async_invocations(2)[1].1.clone();
    assert_eq!(big["plannedBuild"]["batch"]["identifier"], "big", "{big}");
    let handed = h.invoke(big);
    assert_eq!(handed["builds"][0]["status"], "IN_PROGRESS", "{handed}");
    let (codebuild_id, request) = codebuild.started().remove(0);
    assert_eq!(request["computeTypeOverride"], "BUILD_GENERAL1_LARGE");
    assert_eq!(request["imageOverride"], "aws/codebuild/standard:7.0");
    assert_eq!(h.async_invocations(2).len(), 2, "after waits for big");
    // CodeBuild's event ends big, which starts after.
    let done = h.invoke(codebuild.state_change(&codebuild_id, "SUCCEEDED", 30));
    assert_eq!(done["builds"][0]["status"], "SUCCEEDED", "{done}");
    let after = h.async_invocations(3)[2].1.clone();
    assert_eq!(
        after["plannedBuild"]["batch"]["identifier"], "after",
        "{after}"
    );
    assert_eq!(h.invoke(after)["builds"][0]["status"], "SUCCEEDED");
    let project = h.git.project("octo/app");
    let record: Value =
        serde_json::from_str(&h.object(&format!("batches/{project}/{batch_id}/batch.json")))
            .expect("the batch's record");
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    let big_build = record["children"][0]["buildId"].as_str().unwrap();
    let big_record: Value =
        serde_json::from_str(&h.object(&format!("builds/{project}/{big_build}/build.json")))
            .unwrap();
    assert_eq!(
        big_record["compute"]["service"], "codebuild",
        "{big_record}"
    );
    assert_eq!(big_record["batch"], batch_id.as_str());
    let last = h.api.statuses(&commit).pop().unwrap();
    assert_eq!(
        last.body["description"],
        "Batch SUCCEEDED: 2 of 2 builds succeeded"
    );
}

/// A failing push whose build leaves a JUnit report: the report is an object in S3 and the
/// commit's status says the tests first.
#[test]
fn a_failing_push_reports_its_tests_on_the_commit_and_in_s3() {
    let h = Harness::start(false);
    let commit = h.commits.failing.clone();
    let body = hooks::push("refs/heads/broken", &commit, "A failing build");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-tests", SECRET);
    assert_eq!(
        h.invoke(url_event(&headers, &bytes, false))["statusCode"],
        202
    );
    let (_, payload) = h.async_invocations(1).remove(0);
    let built = h.invoke(payload);
    assert_eq!(built["builds"][0]["status"], "FAILED", "{built}");
    assert_eq!(built["builds"][0]["tests"], "2 passed, 1 failed", "{built}");
    let build_id = built["builds"][0]["buildId"].as_str().unwrap().to_string();
    let report: Value = serde_json::from_str(&h.object(&format!(
        "reports/{}/{build_id}/unit.json",
        h.git.project("octo/app")
    )))
    .expect("the report object");
    assert_eq!(report["tests"]["cases"][0]["name"], "divides");
    assert_eq!(report["tests"]["cases"][0]["message"], "expected 2, got 3");
    let last = h.api.statuses(&commit).pop().expect("a status");
    assert_eq!(last.body["state"], "failure");
    let description = last.body["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("2 passed, 1 failed · FAILED in "),
        "{description}"
    );
}

#[test]
fn signatures_are_checked_over_the_exact_bytes_including_base64_bodies() {
    let h = Harness::start(true);
    let commit = h.commits.good.clone();
    let body = hooks::push("refs/heads/main", &commit, "A good build");

    // Wrong secret, then no signature: 401, nothing invoked, nothing stored.
    let (headers, bytes) = hooks::delivery("push", &body, "d-bad", "wrong-secret");
    let answer = h.invoke(url_event(&headers, &bytes, false));
    assert_eq!(answer["statusCode"], 401, "{answer}");
    let unsigned: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(n, _)| n != "X-Hub-Signature-256")
        .collect();
    assert_eq!(
        h.invoke(url_event(&unsigned, &bytes, false))["statusCode"],
        401
    );
    assert!(h.async_invocations(1).is_empty());
    assert!(h.keys().is_empty(), "{:?}", h.keys());

    // The secret read from Secrets Manager verifies a base64 body's decoded bytes.
    let (headers, bytes) = hooks::delivery("push", &body, "d-b64", SECRET);
    let answer = h.invoke(url_event(&headers, &bytes, true));
    assert_eq!(answer["statusCode"], 202, "{answer}");
    assert_eq!(h.async_invocations(1).len(), 1);

    let ping = hooks::delivery("ping", &hooks::sample("ping"), "d-ping", SECRET);
    let answer = h.invoke(url_event(&ping.0, &ping.1, false));
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer_body(&answer), json!({"pong": true}));

    // A body marked base64 that is not: a clear error, not a crash.
    let mut broken = url_event(&ping.0, &ping.1, false);
    broken["isBase64Encoded"] = json!(true);
    broken["body"] = json!("%%% not base64");
    match h.runtime.block_on(h.lambda.invoke(
        broken,
        Duration::from_secs(30),
        Duration::from_secs(10),
    )) {
        Outcome::Error {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "PushBuild.Permanent.BadEvent");
            assert!(message.contains("base64"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The function still serves.
    let answer = h.invoke(url_event(&ping.0, &ping.1, false));
    assert_eq!(answer["statusCode"], 200);
}

#[test]
fn gitlab_and_bitbucket_pushes_are_built_through_the_function_url_too() {
    let h = Harness::start(true);
    let good = h.commits.good.clone();
    let gitlab = hooks::gitlab_push("refs/heads/main", &good, "A good build");
    let (headers, bytes) =
        hooks::gitlab_delivery("Push Hook", &gitlab, "gl-url", hooks::GITLAB_TOKEN);
    let answer = h.invoke(url_event_to("gitlab", &headers, &bytes, false));
    assert_eq!(answer["statusCode"], 202, "{answer}");
    let bitbucket = hooks::bitbucket_push("main", &good, &h.commits.failing);
    let (headers, bytes) = hooks::bitbucket_delivery("repo:push", &bitbucket, "bb-url", SECRET);
    let answer = h.invoke(url_event_to("bitbucket", &headers, &bytes, false));
    assert_eq!(answer["statusCode"], 202, "{answer}");

    let invocations = h.async_invocations(2);
    assert_eq!(invocations.len(), 2, "{invocations:?}");
    for (_, payload) in &invocations {
        let built = h.invoke(payload.clone());
        assert_eq!(built["builds"][0]["status"], "SUCCEEDED", "{built}");
    }
    let projects: Vec<String> = invocations
        .iter()
        .map(|(_, p)| {
            p["plannedBuild"]["repository"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        projects,
        [
            h.git
                .project("octo-group/platform/app")
                .replace("127.0.0.1", "localhost"),
            h.bitbucket_git.project("octo-ws/app")
        ]
    );
    let states = |repo: &str| -> Vec<String> {
        h.api
            .statuses(&good)
            .iter()
            .filter(|c| c.repository == repo)
            .map(|c| c.body["state"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(states(hooks::GITLAB_REPOSITORY), ["running", "success"]);
    assert_eq!(
        states(hooks::BITBUCKET_REPOSITORY),
        ["INPROGRESS", "SUCCESSFUL"]
    );
}

#[test]
fn a_webhook_build_handed_to_codebuild_reports_pending_then_codebuilds_result() {
    let codebuild = CodeBuildStandIn::start("pushbuild-overflow");
    let endpoint = codebuild.endpoint();
    let h = Harness::start_with(
        false,
        &[
            ("PUSHBUILD_CODEBUILD_PROJECT", "pushbuild-overflow"),
            ("PUSHBUILD_CODEBUILD_REPOSITORIES", "{git}/octo/app"),
            ("AWS_ENDPOINT_URL_CODEBUILD", &endpoint),
        ],
    );
    let commit = h.commits.good.clone();
    let body = hooks::push("refs/heads/main", &commit, "A big build");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-codebuild", SECRET);
    let answer = h.invoke(url_event(&headers, &bytes, false));
    assert_eq!(answer["statusCode"], 202, "{answer}");
    let (_, payload) = h.async_invocations(1).remove(0);
    let built = h.invoke(payload);
    assert_eq!(built["builds"][0]["status"], "IN_PROGRESS", "{built}");
    let build_id = built["builds"][0]["buildId"].as_str().unwrap().to_string();
    let (codebuild_id, request) = codebuild.started().remove(0);
    assert!(
        !request.to_string().contains(TOKEN),
        "the token is not handed to CodeBuild"
    );
    let statuses = h.api.statuses(&commit);
    let seen: Vec<(String, String)> = statuses
        .iter()
        .map(|c| {
            (
                c.body["state"].as_str().unwrap_or_default().to_string(),
                c.body["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].0, "pending");
    assert!(seen[1].1.starts_with("Moved to AWS CodeBuild"), "{seen:?}");

    // The zipped source holds no token (not in .git/config, nowhere).
    let zip = h.s3.object(&format!(
        "handover/{}/{build_id}/source.zip",
        h.git.project("octo/app")
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.zip"), &zip).unwrap();
    let out = Command::new("unzip")
        .arg("-p")
        .arg(dir.path().join("s.zip"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));

    let done = h.invoke(codebuild.state_change(&codebuild_id, "SUCCEEDED", 70));
    assert_eq!(done["builds"][0]["status"], "SUCCEEDED", "{done}");
    let states: Vec<String> = h
        .api
        .statuses(&commit)
        .iter()
        .map(|c| c.body["state"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(states, ["pending", "pending", "success"]);
    let last = h.api.statuses(&commit).pop().unwrap();
    assert_eq!(
        last.body["description"], "SUCCEEDED in 70.0 s, 2 billed minutes",
        "{:?}",
        last.body
    );
    for key in h.keys() {
        assert!(!h.object(&key).contains(TOKEN), "{key} holds the token");
    }
}

#[test]
fn the_build_pages_through_the_function_url_need_the_login_from_the_secret() {
    let h = Harness::start(true);
    let commit = h.commits.good.clone();
    let body = hooks::push("refs/heads/main", &commit, "A good build");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-pages", SECRET);
    h.invoke(url_event(&headers, &bytes, false));
    let (_, payload) = h.async_invocations(1).remove(0);
    let built = h.invoke(payload);
    let build_id = built["builds"][0]["buildId"].as_str().unwrap().to_string();

    // No session: to the login form.
    let answer = h.invoke(page_event("GET", "/", &[], ""));
    assert_eq!(answer["statusCode"], 303, "{answer}");
    assert_eq!(answer["headers"]["location"], "/login?next=/");
    // A wrong token is refused; the right one gets a secure session cookie.
    let wrong = h.invoke(page_event("POST", "/login", &[], "token=nope&next=%2F"));
    assert_eq!(wrong["statusCode"], 401);
    assert!(
        wrong["body"]
            .as_str()
            .unwrap()
            .contains("That token is not right.")
    );
    assert!(wrong.get("cookies").is_none());
    let right = h.invoke(page_event(
        "POST",
        "/login",
        &[],
        &format!("token={UI_TOKEN}&next=%2F"),
    ));
    assert_eq!(right["statusCode"], 303, "{right}");
    let cookie = right["cookies"][0]
        .as_str()
        .expect("a session cookie")
        .to_string();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Max-Age="] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    assert!(
        !session.contains(UI_TOKEN),
        "the cookie does not carry the token"
    );

    // Signed in: the list and the build's page, from the index and the bucket.
    let list = h.invoke(page_event("GET", "/", std::slice::from_ref(&session), ""));
    assert_eq!(list["statusCode"], 200, "{list}");
    let html = list["body"].as_str().unwrap();
    assert!(
        html.contains(&format!("data-build=\"{build_id}\"")),
        "{html}"
    );
    assert!(html.contains(">SUCCEEDED</a>"));
    let page = h.invoke(page_event(
        "GET",
        &format!("/builds/{}/{build_id}", h.git.project("octo/app")),
        std::slice::from_ref(&session),
        "",
    ));
    assert_eq!(page["statusCode"], 200, "{page}");
    let html = page["body"].as_str().unwrap();
    assert!(html.contains("id=\"status\">SUCCEEDED</span>"), "{html}");
    assert!(html.contains("<span id=\"phase-BUILD\">"), "{html}");
    // A download is a pre-signed link to the bucket, which works on its own.
    let link = html
        .split("<a id=\"log-download\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the log's link")
        .to_string();
    let download = h.invoke(page_event("GET", &link, std::slice::from_ref(&session), ""));
    assert_eq!(download["statusCode"], 303, "{download}");
    let presigned = download["headers"]["location"].as_str().unwrap();
    assert!(presigned.contains("X-Amz-Signature="), "{presigned}");
    let fetched = reqwest::blocking::get(presigned).expect("the link answers");
    assert_eq!(fetched.status().as_u16(), 200);
    assert!(
        fetched
            .text()
            .unwrap()
            .contains(&format!("git-head={commit}"))
    );
    // A forged session is refused.
    let forged = h.invoke(page_event(
        "GET",
        "/",
        &["pushbuild_session=99999999999.00".to_string()],
        "",
    ));
    assert_eq!(forged["statusCode"], 303);
    for key in h.keys() {
        assert!(
            !h.object(&key).contains(UI_TOKEN),
            "{key} holds the pages' token"
        );
    }
}

/// Lambda throttling the function's hand-off of a webhook's build (429
/// `TooManyRequestsException` from its Invoke API): the Function URL answers 503 with
/// `Retry-After`, nothing is queued, and the delivery sent again once Lambda takes invocations is
/// handed off once; a third delivery of it builds nothing more.
#[test]
fn a_throttled_hand_off_answers_503_and_the_delivery_sent_again_is_built_once() {
    let proxy = crate::fault_proxy::FaultProxy::start("http://127.0.0.1:9");
    let h = Harness::start_with(false, &[("AWS_ENDPOINT_URL_LAMBDA", &proxy.endpoint())]);
    proxy.set_upstream(&format!("http://{}", h.lambda.endpoint()));
    let commit = h.commits.good.clone();
    let body = hooks::push("refs/heads/main", &commit, "A good build");
    let (headers, bytes) = hooks::delivery("push", &body, "d-url-throttled", SECRET);
    proxy.answer(
        "/invocations",
        crate::fault_proxy::Answer::aws_json(429, "TooManyRequestsException", "Rate exceeded"),
        None,
    );
    let refused = h.invoke(url_event(&headers, &bytes, false));
    assert_eq!(refused["statusCode"], 503, "{refused}");
    assert_eq!(refused["headers"]["retry-after"], "10", "{refused}");
    assert!(proxy.answered() >= 1);
    assert!(h.async_invocations(0).is_empty());
    // Lambda takes invocations again; GitHub's redelivery carries the same delivery id.
    proxy.clear();
    let accepted = h.invoke(url_event(&headers, &bytes, false));
    assert_eq!(accepted["statusCode"], 202, "{accepted}");
    assert_eq!(h.async_invocations(1).len(), 1);
    let again = h.invoke(url_event(&headers, &bytes, false));
    assert_eq!(
        answer_body(&again)["builds"][0]["status"],
        "SKIPPED",
        "{again}"
    );
    assert_eq!(h.async_invocations(2).len(), 1, "handed off once");
}
