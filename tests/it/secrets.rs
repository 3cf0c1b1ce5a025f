//! A build's secret variables through the real function binary, from moto's Systems Manager
//! and Secrets Manager (the same moto server as the tests' DynamoDB): a SecureString parameter,
//! a JSON secret by its json key, an earlier version by its stage; what is missing fails the
//! build in DOWNLOAD_SOURCE with CodeBuild's words; the values never reach a stored object.

use std::sync::atomic::{AtomicUsize, Ordering};

use pushbuild::state::BuildState;

use crate::dynamo_server::DynamoServer;
use crate::function::{Harness, MINUTE, builds, sample};

const TOKEN: &str = "ssm-s3cret-value-1";
const PASSWORD: &str = "sm-p4ss-value-2";
const OLD_PASSWORD: &str = "sm-old-value-0";

/// A prefix no other test uses (moto's server is shared by the test process).
fn prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "pushbuild-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// `<prefix>/token` in Parameter Store (a SecureString) and `<prefix>/db` in Secrets Manager, a
/// JSON secret whose earlier version (AWSPREVIOUS) held another password.
fn seed(prefix: &str) {
    let server = DynamoServer::shared();
    let config = server.sdk_config();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let ssm = aws_sdk_ssm::Client::new(&config);
        ssm.put_parameter()
            .name(format!("/{prefix}/token"))
            .value(TOKEN)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("a parameter");
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        secrets
            .create_secret()
            .name(format!("{prefix}/db"))
            .secret_string(format!(
                r#"{{"user": "app", "password": "{OLD_PASSWORD}"}}"#
            ))
            .send()
            .await
            .expect("a secret");
        secrets
            .put_secret_value()
            .secret_id(format!("{prefix}/db"))
            .secret_string(format!(r#"{{"user": "app", "password": "{PASSWORD}"}}"#))
            .send()
            .await
            .expect("its new version");
    });
}

/// The function, with moto's endpoints for both services, over a repository holding `spec`.
fn function(spec: &str) -> Harness {
    let endpoint = DynamoServer::shared().endpoint.clone();
    Harness::start(
        &[("ci/buildspec.yml", spec.as_bytes())],
        "secrets",
        &[
            ("AWS_ENDPOINT_URL_SSM", &endpoint),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint),
        ],
    )
}

#[test]
fn parameters_and_secrets_reach_the_build_masked_and_are_stored_nowhere() {
    let prefix = prefix();
    seed(&prefix);
    let spec = format!(
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /{prefix}/token\n  secrets-manager:\n    \
         PASSWORD: {prefix}/db:password\n    OLD: {prefix}/db:password:AWSPREVIOUS\n    \
         WHOLE: {prefix}/db\nphases:\n  build:\n    commands:\n      \
         - echo \"token=$TOKEN password=$PASSWORD old=$OLD\"\n      \
         - test \"$TOKEN\" = {TOKEN}\n      - test \"$PASSWORD\" = {PASSWORD}\n      \
         - test \"$OLD\" = {OLD_PASSWORD}\n      - echo \"$WHOLE\" | grep -q '\"user\"'\n\
         artifacts:\n  files: [ci/buildspec.yml]\n"
    );
    let h = function(&spec);
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    let build_id = answer[0]["buildId"]
        .as_str()
        .expect("a build id")
        .to_string();
    let log = h.log(&build_id);
    assert_eq!(answer[0]["status"], BuildState::Succeeded.as_str(), "{log}");
    assert!(log.contains("token=*** password=*** old=***"), "{log}");
    assert!(
        log.contains("Resolved 4 secret variable(s): TOKEN, PASSWORD, OLD, WHOLE"),
        "{log}"
    );
    for key in h.keys() {
        let text = String::from_utf8_lossy(&h.object(&key)).into_owned();
        for value in [TOKEN, PASSWORD, OLD_PASSWORD] {
            assert!(!text.contains(value), "{key} holds a secret's value");
        }
    }
}

#[test]
fn a_missing_parameter_or_secret_fails_the_build_before_it_runs_in_codebuilds_words() {
    let prefix = prefix();
    seed(&prefix);
    for (section, name, words) in [
        (
            "parameter-store",
            format!("/{prefix}/nope"),
            format!("Decrypted Variables Error Message: parameter does not exist: /{prefix}/nope"),
        ),
        (
            "secrets-manager",
            format!("{prefix}/nope"),
            "Secrets Manager Error: ResourceNotFoundException".to_string(),
        ),
    ] {
        let spec = format!(
            "version: 0.2\nenv:\n  {section}:\n    MISSING: {name}\nphases:\n  build:\n    \
             commands:\n      - echo never runs\n"
        );
        let h = function(&spec);
        // A normal answer (not an invocation error): the build is FAILED, and not retried.
        let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
        assert_eq!(answer[0]["status"], "FAILED", "{answer:?}");
        let record = h.record(answer[0]["buildId"].as_str().expect("a build id"));
        assert_eq!(
            record["phases"].as_array().map(Vec::len),
            Some(1),
            "{record}"
        );
        assert_eq!(record["phases"][0]["phase"], "DOWNLOAD_SOURCE");
        let message = record["phases"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&words), "{message}");
    }
}

/// Access denied, as IAM refuses a call outside the function's prefixes: a proxy in front of
/// moto answers `GetParameters` and `GetSecretValue` with `AccessDeniedException`, and the build
/// fails in DOWNLOAD_SOURCE with the service's code and message, not retried.
#[test]
fn a_refused_call_fails_the_build_with_the_services_access_denied() {
    use crate::fault_proxy::{Answer, FaultProxy};
    let prefix = prefix();
    seed(&prefix);
    let proxy = FaultProxy::start(&DynamoServer::shared().endpoint);
    let denied = "User: arn:aws:sts::123456789012:assumed-role/pushbuild/fn is not authorized";
    for target in ["AmazonSSM.GetParameters", "secretsmanager.GetSecretValue"] {
        proxy.answer(
            target,
            Answer::aws_json(400, "AccessDeniedException", denied),
            None,
        );
    }
    for (section, name, words) in [
        (
            "parameter-store",
            format!("/{prefix}/token"),
            "Decrypted Variables Error Message: AccessDeniedException: User: arn:aws:sts",
        ),
        (
            "secrets-manager",
            format!("{prefix}/db:password"),
            "Secrets Manager Error: AccessDeniedException: User: arn:aws:sts",
        ),
    ] {
        let spec = format!(
            "version: 0.2\nenv:\n  {section}:\n    DENIED: {name}\nphases:\n  build:\n    \
             commands:\n      - echo never runs\n"
        );
        let h = Harness::start(
            &[("ci/buildspec.yml", spec.as_bytes())],
            "secrets",
            &[
                ("AWS_ENDPOINT_URL_SSM", &proxy.endpoint()),
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &proxy.endpoint()),
            ],
        );
        let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
        assert_eq!(answer[0]["status"], "FAILED", "{answer:?}");
        let record = h.record(answer[0]["buildId"].as_str().expect("a build id"));
        assert_eq!(record["phases"][0]["phase"], "DOWNLOAD_SOURCE", "{record}");
        let message = record["phases"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{message}");
    }
    assert_eq!(proxy.answered(), 2, "each build's one call was refused");
}

#[test]
fn an_exported_secret_is_refused_as_on_codebuild() {
    let prefix = prefix();
    seed(&prefix);
    let spec = format!(
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /{prefix}/token\n  exported-variables:\n    \
         - TOKEN\nphases:\n  build:\n    commands:\n      - echo never runs\n"
    );
    let h = function(&spec);
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "FAILED", "{answer:?}");
    let record = h.record(answer[0]["buildId"].as_str().expect("a build id"));
    let message = record["phases"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("env.exported-variables: TOKEN is a secret variable"),
        "{message}"
    );
    assert!(!record.to_string().contains(TOKEN));
}

#[test]
fn under_serve_a_webhook_build_reads_its_secrets_from_the_same_services() {
    use crate::git_server::{GitServer, git, publish};
    use crate::hooks;
    let prefix = prefix();
    seed(&prefix);
    // A repository on the git server whose build checks its secrets.
    let (repos, work_tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    crate::codecommit_standin::init_repo(work_tree.path());
    let spec = format!(
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /{prefix}/token\n  secrets-manager:\n    \
         PASSWORD: {prefix}/db:password\nphases:\n  build:\n    commands:\n      \
         - echo \"token=$TOKEN password=$PASSWORD\"\n      - test \"$TOKEN\" = {TOKEN}\n      \
         - test \"$PASSWORD\" = {PASSWORD}\n"
    );
    std::fs::write(work_tree.path().join("buildspec.yml"), spec).unwrap();
    git(work_tree.path(), &["add", "-A"]);
    git(work_tree.path(), &["commit", "-q", "-m", "uses secrets"]);
    let commit = git(work_tree.path(), &["rev-parse", "HEAD"]);
    publish(repos.path(), hooks::REPOSITORY, work_tree.path());
    let git_server = GitServer::start(repos.path(), hooks::TOKEN);
    let moto = DynamoServer::shared();
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut env = vec![
        ("PUSHBUILD_GITHUB_WEBHOOK_SECRET", hooks::SECRET.to_string()),
        ("PUSHBUILD_GITHUB_TOKEN", hooks::TOKEN.to_string()),
        ("PUSHBUILD_GITHUB_URL", git_server.url()),
        // No status API here: reporting fails quietly, as it may.
        ("PUSHBUILD_GITHUB_API_URL", "http://127.0.0.1:9".to_string()),
        ("AWS_ENDPOINT_URL_SSM", moto.endpoint.clone()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint.clone()),
    ];
    env.extend(moto.env());
    let served = crate::served::serve(store.path(), work.path(), &[], &env);
    let body = hooks::push("refs/heads/main", &commit, "uses secrets");
    let (headers, bytes) = hooks::delivery("push", &body, "secrets-1", hooks::SECRET);
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{}/webhooks/github", served.url))
        .body(bytes);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer: serde_json::Value =
        serde_json::from_str(&request.send().unwrap().text().unwrap()).unwrap();
    let build_id = answer["builds"][0]["buildId"]
        .as_str()
        .expect("queued")
        .to_string();
    let dir = store
        .path()
        .join("builds")
        .join(git_server.project(hooks::REPOSITORY))
        .join(&build_id);
    let until = std::time::Instant::now() + MINUTE;
    while !dir.join("build.json").exists() {
        assert!(std::time::Instant::now() < until, "no record");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("build.json")).unwrap()).unwrap();
    let log = std::fs::read_to_string(dir.join("build.log")).unwrap();
    assert_eq!(record["status"], "SUCCEEDED", "{log}");
    assert!(log.contains("token=*** password=***"), "{log}");
    for file in walkdir::WalkDir::new(store.path()) {
        let file = file.unwrap();
        if file.file_type().is_file() {
            let bytes = std::fs::read(file.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for value in [TOKEN, PASSWORD] {
                assert!(
                    !text.contains(value),
                    "{} holds a secret",
                    file.path().display()
                );
            }
        }
    }
}
