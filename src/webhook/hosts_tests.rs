//! GitLab's and Bitbucket's deliveries, one row per sample in `events/gitlab/` and
//! `events/bitbucket/`: authentication, the payload read, and the plan.

use super::*;

const HEAD: &str = "3f9c1a2b7d4e5f60718293a4b5c6d7e8f9012345";

#[track_caller]
fn gitlab(name: &str, want: &str) {
    let (headers, body) = sample_of("gitlab", name);
    assert_eq!(
        outcome_for(Host::GitLab, &settings(), &headers, &body),
        want,
        "{name}"
    );
}

#[track_caller]
fn bitbucket(name: &str, want: &str) {
    let (headers, body) = sample_of("bitbucket", name);
    assert_eq!(
        outcome_for(Host::Bitbucket, &settings(), &headers, &body),
        want,
        "{name}"
    );
}

#[test]
fn gitlab_deliveries_plan_as_codebuild_would() {
    let project = "gitlab.com/octo-group/platform/hello-app";
    gitlab(
        "push",
        &format!("build {project} {HEAD} at {HEAD} (PUSH, branch/main)"),
    );
    gitlab(
        "push-tag",
        &format!("build {project} {HEAD} at {HEAD} (PUSH, tag/v1.2.0)"),
    );
    gitlab(
        "push-branch-deleted",
        "skip (asked for: false): refs/heads/feature/old was deleted",
    );
    gitlab(
        "merge-request-open",
        &format!("build {project} pr/7 at {HEAD} (PULL_REQUEST_CREATED, pr/7)"),
    );
    gitlab(
        "merge-request-update",
        &format!("build {project} pr/7 at {HEAD} (PULL_REQUEST_UPDATED, pr/7)"),
    );
    gitlab(
        "merge-request-update-title",
        "ignored: merge request update without new commits does not build",
    );
    gitlab(
        "merge-request-reopen",
        &format!("build {project} pr/7 at {HEAD} (PULL_REQUEST_REOPENED, pr/7)"),
    );
    gitlab(
        "merge-request-merge",
        "ignored: no filter group matches PULL_REQUEST_MERGED of refs/heads/feature/greeting",
    );
    gitlab(
        "merge-request-close",
        "ignored: no filter group matches PULL_REQUEST_CLOSED of refs/heads/feature/greeting",
    );
    gitlab(
        "merge-request-fork",
        "skip (asked for: true): pull request #7 comes from a fork, whose code would run with \
         the function's role; PUSHBUILD_FORK_PULL_REQUESTS=build builds such pull requests",
    );
}

#[test]
fn gitlab_takes_its_token_or_its_standard_webhooks_signature() {
    let (_, body) = sample_of("gitlab", "push");
    // A wrong token.
    let wrong = Headers::new([
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Token", "not-the-token"),
        ("Idempotency-Key", "k-1"),
    ]);
    assert_eq!(
        outcome_for(Host::GitLab, &settings(), &wrong, &body),
        "401 unauthorized: X-Gitlab-Token is not the configured token"
    );
    let none = Headers::new([("X-Gitlab-Event", "Push Hook"), ("Idempotency-Key", "k-1")]);
    assert_eq!(
        outcome_for(Host::GitLab, &settings(), &none, &body),
        "401 unauthorized: no X-Gitlab-Token header"
    );

    // With a signing token, a signed delivery is judged by its signature alone.
    let mut signing = settings();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    signing.gitlab.signing_secret = Some(crate::secret::Secret::new(secret));
    signing.gitlab.webhook_secret = None;
    let now = chrono::Utc::now().timestamp().to_string();
    let signed = |timestamp: &str, body: &[u8]| {
        Headers::new([
            ("X-Gitlab-Event", "Push Hook".to_string()),
            ("Idempotency-Key", "k-2".to_string()),
            ("webhook-id", "msg_2".to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                signature::standard_webhook_header(secret, "msg_2", timestamp, body),
            ),
        ])
    };
    assert!(outcome_for(Host::GitLab, &signing, &signed(&now, &body), &body).starts_with("build "),);
    let mut tampered = body.clone();
    tampered[5] ^= 1;
    assert_eq!(
        outcome_for(Host::GitLab, &signing, &signed(&now, &body), &tampered),
        "401 unauthorized: webhook-signature does not match the body"
    );
    let old = (chrono::Utc::now().timestamp() - 600).to_string();
    assert_eq!(
        outcome_for(Host::GitLab, &signing, &signed(&old, &body), &body),
        "401 unauthorized: webhook-timestamp is more than five minutes from now"
    );
    // Unsigned, and no token to fall back on: the setting is named.
    let headers = Headers::new([("X-Gitlab-Event", "Push Hook"), ("Idempotency-Key", "k-3")]);
    assert_eq!(
        outcome_for(Host::GitLab, &signing, &headers, &body),
        "401 unauthorized: the webhook's secret is not configured (PUSHBUILD_GITLAB_SIGNING_TOKEN)"
    );
}

#[test]
fn gitlab_pushes_with_more_commits_than_listed_leave_their_files_to_the_api() {
    let (headers, body) = sample_of("gitlab", "push");
    let mut payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let Ok(Received::Events(events)) = receive(Host::GitLab, &settings(), &headers, &body) else {
        panic!("events");
    };
    assert_eq!(
        events[0].changed_files.as_deref(),
        Some(
            &[
                "README.md".to_string(),
                "docs/intro.md".to_string(),
                "src/greet.sh".to_string()
            ][..]
        )
    );
    assert_eq!(events[0].commit_message.as_deref(), Some("Add a greeting"));
    assert_eq!(events[0].delivery, "7d1c2b3a-1111-4000-8000-000000000000");
    payload["total_commits_count"] = serde_json::json!(25);
    let body = serde_json::to_vec(&payload).unwrap();
    let Ok(Received::Events(events)) = receive(Host::GitLab, &settings(), &headers, &body) else {
        panic!("events");
    };
    assert_eq!(events[0].changed_files, None);
}

#[test]
fn bitbucket_deliveries_plan_as_codebuild_would() {
    let project = "bitbucket.org/octo-ws/hello-app";
    bitbucket(
        "repo-push",
        &format!(
            "build {project} {HEAD} at {HEAD} (PUSH, branch/main); \
             build {project} {HEAD} at {HEAD} (PUSH, tag/v1.2.0)"
        ),
    );
    bitbucket(
        "repo-push-branch-deleted",
        "skip (asked for: false): refs/heads/feature/old was deleted",
    );
    bitbucket(
        "pullrequest-rejected",
        "ignored: no filter group matches PULL_REQUEST_CLOSED of refs/heads/feature/greeting",
    );
    // A pull request's payload abbreviates its head commit: the front door asks for the full
    // id before planning; read alone, the event names only the abbreviation.
    for (name, kind) in [
        ("pullrequest-created", EventKind::PullRequestCreated),
        ("pullrequest-updated", EventKind::PullRequestUpdated),
        ("pullrequest-fulfilled", EventKind::PullRequestMerged),
        ("pullrequest-fork", EventKind::PullRequestCreated),
    ] {
        let (headers, body) = sample_of("bitbucket", name);
        let Ok(Received::Events(events)) = receive(Host::Bitbucket, &settings(), &headers, &body)
        else {
            panic!("{name}: events");
        };
        let event = &events[0];
        assert_eq!(event.kind, kind, "{name}");
        assert_eq!(
            event.abbreviated_commit.as_deref(),
            Some(&HEAD[..12]),
            "{name}"
        );
        assert_eq!(event.commit, None, "{name}");
        assert_eq!(
            event.pull_request.as_ref().map(|p| p.from_fork),
            Some(name == "pullrequest-fork")
        );
        assert_eq!(event.base_ref.as_deref(), Some("refs/heads/main"));
    }
}

#[test]
fn bitbucket_signatures_are_checked_and_each_pushed_reference_is_its_own_delivery() {
    let (headers, body) = sample_of("bitbucket", "repo-push");
    let mut tampered = body.clone();
    tampered[3] ^= 1;
    assert_eq!(
        outcome_for(Host::Bitbucket, &settings(), &headers, &tampered),
        "401 unauthorized: X-Hub-Signature does not match the body"
    );
    let mut unconfigured = settings();
    unconfigured.bitbucket.webhook_secret = None;
    assert_eq!(
        outcome_for(Host::Bitbucket, &unconfigured, &headers, &body),
        "401 unauthorized: the webhook's secret is not configured (PUSHBUILD_BITBUCKET_WEBHOOK_SECRET)"
    );
    let Ok(Received::Events(events)) = receive(Host::Bitbucket, &settings(), &headers, &body)
    else {
        panic!("events");
    };
    let deliveries: Vec<&str> = events.iter().map(|e| e.delivery.as_str()).collect();
    assert_eq!(
        deliveries,
        [
            "4c3b2a19-2222-4000-8000-000000000000:refs/heads/main",
            "4c3b2a19-2222-4000-8000-000000000000:refs/tags/v1.2.0"
        ]
    );
    assert_eq!(
        events[0].prev_commit.as_deref(),
        Some("5e1d0c9b8a7f6e5d4c3b2a190817263544536271")
    );
    assert_eq!(events[0].changed_files, None, "a push lists no files");
    assert_eq!(
        events[0].actor_account_id.as_deref(),
        Some("557058:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    );
}

#[test]
fn every_gitlab_and_bitbucket_sample_authenticates() {
    for (host, dir, count) in [
        (Host::GitLab, "gitlab", 10),
        (Host::Bitbucket, "bitbucket", 7),
    ] {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("events")
            .join(dir);
        let mut checked = 0;
        for entry in std::fs::read_dir(&path).expect("the samples") {
            let file = entry.expect("an entry").path();
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(name) = name.strip_suffix(".headers.json") else {
                continue;
            };
            let (headers, body) = sample_of(dir, name);
            let outcome = outcome_for(host, &settings(), &headers, &body);
            assert!(!outcome.starts_with("401"), "{dir}/{name}: {outcome}");
            checked += 1;
        }
        assert_eq!(checked, count, "{dir}");
    }
}
