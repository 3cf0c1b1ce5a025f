//! Every sample event in `events/` gives the plan it documents; each shape broken in one field
//! gives the error that names that field.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::names::{CommitId, ProjectName, Repo, RepositoryName, SourceVersion};

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The sample event `name` from `events/`.
pub(super) fn sample(name: &str) -> Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A plan in one line: `build <repo>@<version>` or `skip <repo> <ref>: <reason>` per entry, or
/// `error: <message>`.
pub(super) fn summary(result: &Result<Vec<Planned>, EventError>) -> String {
    match result {
        Err(err) => format!("error: {err}"),
        Ok(plan) => plan
            .iter()
            .map(|planned| match planned {
                Planned::Build(b) => format!("build {}@{}", b.project, b.version),
                Planned::Skip(s) => format!(
                    "skip {} {}: {}",
                    s.repository,
                    s.reference.as_deref().unwrap_or("-"),
                    s.reason
                ),
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

const MAIN_COMMIT: &str = "3f9c1a2b7d4e5f60718293a4b5c6d7e8f9012345";
const RELEASE_COMMIT: &str = "5e1d0c9b8a7f6e5d4c3b2a190817263544536271";

/// What each file in `events/` plans to. A file missing here fails the test.
const EXPECTED: &[(&str, &str)] = &[
    (
        "codecommit-push.json",
        "build pushbuild-demo@3f9c1a2b7d4e5f60718293a4b5c6d7e8f9012345",
    ),
    (
        "codecommit-two-refs.json",
        "build pushbuild-demo@5e1d0c9b8a7f6e5d4c3b2a190817263544536271; \
         build pushbuild-demo@5e1d0c9b8a7f6e5d4c3b2a190817263544536271",
    ),
    (
        "codecommit-branch-deleted.json",
        "skip pushbuild-demo refs/heads/feature/login-form: branch feature/login-form was deleted",
    ),
    (
        "eventbridge-reference-updated.json",
        "build pushbuild-demo@7c6b5a4938271605f4e3d2c1b0a9f8e7d6c5b4a3",
    ),
    (
        "eventbridge-reference-deleted.json",
        "skip pushbuild-demo refs/tags/v0.9.0-rc1: tag v0.9.0-rc1 was deleted",
    ),
    (
        "eventbridge-scheduled-build.json",
        "build pushbuild-demo@refs/tags/v1.4.0",
    ),
    (
        "manual-build.json",
        "build pushbuild-demo@refs/heads/feature/login-form",
    ),
    ("scheduled-build.json", "build pushbuild-demo@main"),
];

#[test]
fn every_sample_event_plans_as_documented() {
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|entry| entry.expect("readable entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        // Not a request for a build but a result of one: `codebuild/tests.rs` reads it.
        .filter(|name| name != "codebuild-build-state-change.json")
        // A job for the function, not a plan: `codepipeline_tests.rs` reads it.
        .filter(|name| name != "codepipeline-job.json")
        .collect();
    files.sort();
    let mut listed: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every file in events/ has an expectation here"
    );
    for (name, want) in EXPECTED {
        assert_eq!(summary(&plan(&sample(name))), *want, "{name}");
    }
}

#[test]
fn codecommit_samples_are_codecommit_events_for_aws_lambda_events_too() {
    use aws_lambda_events::code_commit::CodeCommitEvent;
    for name in [
        "codecommit-push.json",
        "codecommit-two-refs.json",
        "codecommit-branch-deleted.json",
    ] {
        let parsed: Result<CodeCommitEvent, _> = serde_json::from_value(sample(name));
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
    }
}

/// The plan of a sample that must plan without error.
fn planned(name: &str) -> Vec<Planned> {
    plan(&sample(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

#[test]
fn sample_builds_carry_what_the_event_says() {
    let push_plan = planned("codecommit-push.json");
    let [Planned::Build(push)] = push_plan.as_slice() else {
        panic!("one build expected");
    };
    assert_eq!(
        &**push,
        &BuildTarget {
            project: ProjectName::parse("pushbuild-demo").unwrap(),
            source: Repo::CodeCommit(RepositoryName::parse("pushbuild-demo").unwrap()),
            version: SourceVersion::parse(MAIN_COMMIT).unwrap(),
            commit: Some(CommitId::parse(MAIN_COMMIT).unwrap()),
            reference: Some("refs/heads/main".into()),
            buildspec: Some("ci/buildspec.yml".into()),
            env_overrides: vec![("STAGE".into(), "dev".into())],
            initiator: "codecommit/pushbuild-on-push".into(),
            webhook_trigger: Some("branch/main".into()),
            dedup_key: Some("8d5b6f3e-1c2a-4b7d-9e0f-a1b2c3d4e5f6:refs/heads/main".into()),
            region: Some("us-east-1".into()),
            account: Some("123456789012".into()),
            webhook: None,
            build_id: None,
            batch: None,
            retries: None,
        }
    );

    let two_plan = planned("codecommit-two-refs.json");
    let [Planned::Build(branch), Planned::Build(tag)] = two_plan.as_slice() else {
        panic!("two builds expected");
    };
    assert_eq!(
        branch.webhook_trigger.as_deref(),
        Some("branch/release/1.4")
    );
    assert_eq!(tag.webhook_trigger.as_deref(), Some("tag/v1.4.0"));
    assert_eq!(
        tag.version.commit().map(|c| c.as_str()),
        Some(RELEASE_COMMIT)
    );
    assert_eq!(tag.buildspec, None, "free-text customData is ignored");
    assert_ne!(branch.dedup_key, tag.dedup_key);

    let updated_plan = planned("eventbridge-reference-updated.json");
    let [Planned::Build(updated)] = updated_plan.as_slice() else {
        panic!("one build expected");
    };
    assert_eq!(updated.reference.as_deref(), Some("refs/heads/main"));
    assert_eq!(updated.initiator, "eventbridge/codecommit");
    assert_eq!(updated.webhook_trigger.as_deref(), Some("branch/main"));
    assert_eq!(updated.region.as_deref(), Some("us-east-1"));
    assert_eq!(updated.account.as_deref(), Some("123456789012"));

    let manual_plan = planned("manual-build.json");
    let [Planned::Build(manual)] = manual_plan.as_slice() else {
        panic!("one build expected");
    };
    assert_eq!(manual.initiator, "manual/alice");
    assert_eq!(
        manual.buildspec.as_deref(),
        Some("ci/buildspec-integration.yml")
    );
    assert_eq!(
        manual.env_overrides,
        vec![
            ("STAGE".to_string(), "test".to_string()),
            ("LOG_LEVEL".to_string(), "debug".to_string())
        ]
    );
    assert_eq!(
        (manual.webhook_trigger.as_ref(), manual.dedup_key.as_ref()),
        (None, None)
    );

    let nightly_plan = planned("eventbridge-scheduled-build.json");
    let [Planned::Build(nightly)] = nightly_plan.as_slice() else {
        panic!("one build expected");
    };
    assert_eq!(nightly.initiator, "eventbridge/pushbuild-nightly");
    assert_eq!(
        nightly.dedup_key.as_deref(),
        Some("e4d3c2b1-a0f9-4e8d-9c7b-6a5f4e3d2c1b:refs/tags/v1.4.0")
    );
}

/// `sample` with the value at JSON pointer `pointer` replaced (`None`: removed).
pub(super) fn edit(name: &str, pointer: &str, value: Option<Value>) -> Value {
    let mut event = sample(name);
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let parent = event.pointer_mut(parent).expect("the parent exists");
    match (parent, value) {
        (Value::Object(map), Some(value)) => {
            map.insert(key.to_string(), value);
        }
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Array(items), Some(value)) => items[key.parse::<usize>().unwrap()] = value,
        (Value::Array(items), None) => {
            items.remove(key.parse::<usize>().unwrap());
        }
        (other, _) => panic!("cannot edit inside {other}"),
    }
    event
}

#[track_caller]
fn broken(name: &str, pointer: &str, value: Option<Value>, want: &str) {
    let event = edit(name, pointer, value);
    assert_eq!(
        summary(&plan(&event)),
        format!("error: {want}"),
        "{name} {pointer}"
    );
}

#[test]
fn a_sample_broken_in_one_field_names_that_field() {
    broken(
        "codecommit-two-refs.json",
        "/Records/0/codecommit/references/1/ref",
        Some(json!(5)),
        "Records[0].codecommit.references[1].ref: expected a string, found a number",
    );
    broken(
        "codecommit-push.json",
        "/Records/0/eventSourceARN",
        None,
        "Records[0].eventSourceARN: required, expected a CodeCommit repository ARN",
    );
    broken(
        "eventbridge-reference-updated.json",
        "/detail/repositoryName",
        None,
        "detail.repositoryName: required, expected a string",
    );
    broken(
        "manual-build.json",
        "/environmentVariablesOverride/0/type",
        Some(json!("SECRETS_MANAGER")),
        "environmentVariablesOverride[0].type: only PLAINTEXT is supported, \
         found \"SECRETS_MANAGER\"",
    );
    broken(
        "eventbridge-scheduled-build.json",
        "/detail/repository",
        None,
        "detail.repository: required, expected a string",
    );
    broken(
        "manual-build.json",
        "/environmentVariablesOverride/0/value",
        Some(json!("a\u{0}b")),
        "environmentVariablesOverride[0].value: a variable's value cannot hold a NUL byte",
    );
}
