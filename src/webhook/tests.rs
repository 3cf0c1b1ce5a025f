//! GitHub's deliveries, one table row per sample in `events/github/`: the signature check, the
//! payload read, and the plan.

use std::path::PathBuf;

use super::*;
use crate::secret::Secret;

const SECRET: &str = "pushbuild-sample-secret";
const HEAD: &str = "3f9c1a2b7d4e5f60718293a4b5c6d7e8f9012345";

fn sample(name: &str) -> (Headers, Vec<u8>) {
    sample_of("github", name)
}

/// A sample delivery from `events/<host>/`.
pub(super) fn sample_of(host: &str, name: &str) -> (Headers, Vec<u8>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(host);
    let body = std::fs::read(dir.join(format!("{name}.json"))).expect("the sample");
    let headers: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(
        &std::fs::read(dir.join(format!("{name}.headers.json"))).expect("its headers"),
    )
    .expect("headers are a JSON object");
    let headers = Headers::new(
        headers
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())),
    );
    (headers, body)
}

pub(super) fn settings() -> WebhookSettings {
    WebhookSettings {
        filter_groups: FilterGroups::default(),
        fork_pull_requests: false,
        github: HostSettings {
            host: Host::GitHub,
            url: "https://github.com".into(),
            api_url: "https://api.github.com".into(),
            webhook_secret: Some(Secret::new(SECRET)),
            signing_secret: None,
            token: None,
            repositories: Vec::new(),
        },
        gitlab: HostSettings {
            host: Host::GitLab,
            url: "https://gitlab.com".into(),
            api_url: "https://gitlab.com/api/v4".into(),
            webhook_secret: Some(Secret::new("pushbuild-sample-token")),
            signing_secret: None,
            token: None,
            repositories: Vec::new(),
        },
        bitbucket: HostSettings {
            host: Host::Bitbucket,
            url: "https://bitbucket.org".into(),
            api_url: "https://api.bitbucket.org".into(),
            webhook_secret: Some(Secret::new(SECRET)),
            signing_secret: None,
            token: None,
            repositories: Vec::new(),
        },
    }
}

/// What a GitHub delivery comes to, in one line.
fn outcome(settings: &WebhookSettings, headers: &Headers, body: &[u8]) -> String {
    outcome_for(Host::GitHub, settings, headers, body)
}

/// What a delivery comes to, in one line (a line per event, joined with `; `).
pub(super) fn outcome_for(
    host: Host,
    settings: &WebhookSettings,
    headers: &Headers,
    body: &[u8],
) -> String {
    let received = match receive(host, settings, headers, body) {
        Ok(received) => received,
        Err(err) => return format!("{} {err}", err.status()),
    };
    let events = match received {
        Received::Ping => return "ping".into(),
        Received::Ignored { reason } => return format!("ignored: {reason}"),
        Received::Events(events) => events,
    };
    events
        .iter()
        .map(|event| planned(event, settings))
        .collect::<Vec<_>>()
        .join("; ")
}

fn planned(event: &HostEvent, settings: &WebhookSettings) -> String {
    match plan(event, settings) {
        Ok(Plan::Ignored { reason }) => format!("ignored: {reason}"),
        Ok(Plan::Skip { skipped, asked_for }) => {
            format!("skip (asked for: {asked_for}): {}", skipped.reason)
        }
        Ok(Plan::Build(target)) => format!(
            "build {} {} at {} ({}, {})",
            target.project,
            target.version,
            target.commit.map(|c| c.to_string()).unwrap_or_default(),
            target.webhook.map(|w| w.event.as_str()).unwrap_or_default(),
            target.webhook_trigger.unwrap_or_default(),
        ),
        Err(err) => format!("{} {err}", err.status()),
    }
}

#[track_caller]
fn case(name: &str, want: &str) {
    let (headers, body) = sample(name);
    assert_eq!(outcome(&settings(), &headers, &body), want, "{name}");
}

#[test]
fn every_sample_is_signed_with_the_sample_secret() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/github");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("events/github") {
        let path = entry.expect("an entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(name) = name.strip_suffix(".headers.json") else {
            continue;
        };
        let (headers, body) = sample(name);
        assert_eq!(
            github::verify(&headers, &body, Some(SECRET.as_bytes())),
            Ok(()),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, 11);
}

#[test]
fn github_deliveries_plan_as_codebuild_would() {
    case("ping", "ping");
    case(
        "push",
        &format!("build github.com/octo-org/hello-app {HEAD} at {HEAD} (PUSH, branch/main)"),
    );
    case(
        "push-tag",
        &format!("build github.com/octo-org/hello-app {HEAD} at {HEAD} (PUSH, tag/v1.2.0)"),
    );
    case(
        "push-branch-deleted",
        "skip (asked for: false): refs/heads/feature/old was deleted",
    );
    case(
        "push-skip-ci",
        "skip (asked for: false): the commit message asks to skip CI ([skip ci] or [ci skip])",
    );
    case(
        "pull-request-opened",
        &format!("build github.com/octo-org/hello-app pr/7 at {HEAD} (PULL_REQUEST_CREATED, pr/7)"),
    );
    case(
        "pull-request-synchronize",
        &format!("build github.com/octo-org/hello-app pr/7 at {HEAD} (PULL_REQUEST_UPDATED, pr/7)"),
    );
    // Merged and closed pull requests build only when a filter group asks for them.
    case(
        "pull-request-closed-merged",
        "ignored: no filter group matches PULL_REQUEST_MERGED of refs/heads/feature/greeting",
    );
    case(
        "pull-request-closed",
        "ignored: no filter group matches PULL_REQUEST_CLOSED of refs/heads/feature/greeting",
    );
    case(
        "pull-request-labeled",
        "ignored: pull request action `labeled` does not build",
    );
    case(
        "pull-request-fork",
        "skip (asked for: true): pull request #7 comes from a fork, whose code would run with \
         the function's role; PUSHBUILD_FORK_PULL_REQUESTS=build builds such pull requests",
    );
}

#[test]
fn a_bad_or_missing_signature_is_refused_before_the_body_is_read() {
    let (headers, body) = sample("push");
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(
        outcome(&settings(), &headers, &tampered),
        "401 unauthorized: X-Hub-Signature-256 does not match the body"
    );
    let unsigned = Headers::new([("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d")]);
    assert_eq!(
        outcome(&settings(), &unsigned, &body),
        "401 unauthorized: no X-Hub-Signature-256 header"
    );
    // A signature over a body that is not JSON still stops at the signature when it is wrong.
    let junk = b"not json";
    assert_eq!(
        outcome(&settings(), &headers, junk),
        "401 unauthorized: X-Hub-Signature-256 does not match the body"
    );
    let mut unconfigured = settings();
    unconfigured.github.webhook_secret = None;
    assert_eq!(
        outcome(&unconfigured, &headers, &body),
        "401 unauthorized: the webhook's secret is not configured (PUSHBUILD_GITHUB_WEBHOOK_SECRET)"
    );
}

fn signed(event: &str, body: &[u8]) -> Headers {
    let signature = signature::hmac_sha256_hex(SECRET.as_bytes(), body);
    Headers::new([
        ("X-GitHub-Event", event.to_string()),
        ("X-GitHub-Delivery", "d-1".to_string()),
        ("X-Hub-Signature-256", format!("sha256={signature}")),
    ])
}

#[test]
fn a_signed_body_that_is_not_the_event_it_claims_names_the_field() {
    let body =
        br#"{"ref": "refs/heads/main", "after": "nope", "repository": {"full_name": "o/r"}}"#;
    assert_eq!(
        outcome(&settings(), &signed("push", body), body),
        "400 after: expected a commit id of 40 hexadecimal digits (64 in a SHA-256 repository), \
         found \"nope\""
    );
    let body =
        br#"{"ref": "refs/heads/main", "after": "3f9c1a2b7d4e5f60718293a4b5c6d7e8f9012345"}"#;
    assert_eq!(
        outcome(&settings(), &signed("push", body), body),
        "400 repository: required, expected the repository"
    );
    let body = b"payload=%7B%7D";
    assert!(
        outcome(&settings(), &signed("push", body), body).starts_with("400 the body: not JSON"),
    );
    let big = vec![b' '; BODY_LIMIT + 1];
    assert_eq!(
        outcome(&settings(), &signed("push", &big), &big),
        format!("413 the body is over the {BODY_LIMIT}-byte limit")
    );
    let body = b"{}";
    assert_eq!(
        outcome(&settings(), &signed("issues", body), body),
        "ignored: GitHub's `issues` event does not build"
    );
}

#[test]
fn settings_decide_forks_and_repositories() {
    let mut settings = settings();
    settings.fork_pull_requests = true;
    let (headers, body) = sample("pull-request-fork");
    assert!(outcome(&settings, &headers, &body).starts_with("build "));
    settings.github.repositories = vec!["other-org/*".into(), "octo-org/else".into()];
    let (headers, body) = sample("push");
    assert_eq!(
        outcome(&settings, &headers, &body),
        "ignored: repository octo-org/hello-app is not in PUSHBUILD_GITHUB_REPOSITORIES"
    );
    settings.github.repositories = vec!["OCTO-ORG/*".into()];
    assert!(outcome(&settings, &headers, &body).starts_with("build "));
}

#[test]
fn a_planned_build_carries_codebuilds_webhook_values() {
    let (headers, body) = sample("pull-request-synchronize");
    let Ok(Received::Events(events)) = receive(Host::GitHub, &settings(), &headers, &body) else {
        panic!("an event");
    };
    let Ok(Plan::Build(target)) = plan(&events[0], &settings()) else {
        panic!("a build");
    };
    let webhook = target.webhook.expect("webhook values");
    assert_eq!(webhook.head_ref, "refs/heads/feature/greeting");
    assert_eq!(webhook.base_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(webhook.actor_account_id.as_deref(), Some("583231"));
    assert_eq!(webhook.repository, "octo-org/hello-app");
    assert_eq!(target.reference.as_deref(), Some("refs/pull/7/head"));
    assert_eq!(target.initiator, "github/octocat");
    assert_eq!(
        target.dedup_key.as_deref(),
        Some("github:424242:6f1c2d3e-0000-4000-8000-000000000005")
    );
    let (headers, body) = sample("push");
    let Ok(Received::Events(events)) = receive(Host::GitHub, &settings(), &headers, &body) else {
        panic!("an event");
    };
    let event = &events[0];
    assert_eq!(
        event.changed_files.as_deref(),
        Some(&["README.md".to_string(), "src/greet.sh".to_string()][..])
    );
    assert_eq!(
        event.prev_commit.as_deref(),
        Some("5e1d0c9b8a7f6e5d4c3b2a190817263544536271")
    );
}

#[path = "hosts_tests.rs"]
mod hosts;
