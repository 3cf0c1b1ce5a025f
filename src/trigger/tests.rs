//! Event mapping, one table row per case: the event (a sample from `events/` with one field
//! changed, or written inline) and the plan or error it gives.

use serde_json::{Value, json};

use super::events_tests::{edit, sample, summary};
use super::*;
use crate::names::{Host, Repo, RepositoryName};

const C1: &str = "3f9c1a2b7d4e5f60718293a4b5c6d7e8f9012345";
const C2: &str = "1111111111111111111111111111111111111111";

#[track_caller]
fn case(event: Value, want: &str) {
    assert_eq!(summary(&plan(&event)), want, "{event}");
}

/// The push sample with its `references` replaced.
fn push(references: Value) -> Value {
    edit(
        "codecommit-push.json",
        "/Records/0/codecommit/references",
        Some(references),
    )
}

/// The push sample with its `customData` replaced.
fn custom(data: &str) -> Value {
    edit(
        "codecommit-push.json",
        "/Records/0/customData",
        Some(json!(data)),
    )
}

/// The only build of an event.
#[track_caller]
fn only_build(event: Value) -> BuildTarget {
    match plan(&event) {
        Ok(planned) => match planned.as_slice() {
            [Planned::Build(target)] => (**target).clone(),
            other => panic!("one build expected, got {other:?}"),
        },
        Err(err) => panic!("one build expected, got {err}"),
    }
}

#[test]
fn codecommit_references() {
    case(
        push(json!([{"ref": "refs/heads/a", "commit": C1}, {"ref": "refs/tags/v1", "commit": C2}])),
        &format!("build pushbuild-demo@{C1}; build pushbuild-demo@{C2}"),
    );
    case(
        push(
            json!([{"ref": "refs/heads/a", "commit": C1, "deleted": true}, {"ref": "refs/tags/v1", "commit": C2}]),
        ),
        &format!(
            "skip pushbuild-demo refs/heads/a: branch a was deleted; build pushbuild-demo@{C2}"
        ),
    );
    case(
        push(json!([{"ref": "refs/tags/v2", "deleted": true}])),
        "skip pushbuild-demo refs/tags/v2: tag v2 was deleted",
    );
    case(
        push(json!([{"ref": "refs/tags/v2", "deleted": true, "commit": ""}])),
        "skip pushbuild-demo refs/tags/v2: tag v2 was deleted",
    );
    case(
        push(json!([{"ref": "refs/notes/commits", "commit": C1}])),
        "skip pushbuild-demo refs/notes/commits: refs/notes/commits is neither a branch nor a tag",
    );
    case(
        push(json!([{"ref": "refs/heads/main"}])),
        "build pushbuild-demo@refs/heads/main",
    );
    case(
        push(json!([{"ref": "refs/heads/x", "created": true, "deleted": false, "commit": C1}])),
        &format!("build pushbuild-demo@{C1}"),
    );
    case(push(json!([])), "");
    case(json!({"Records": []}), "");
    case(
        push(json!([{"ref": "main", "commit": C1}])),
        "error: Records[0].codecommit.references[0].ref: expected a full reference name \
         (`refs/heads/<branch>` or `refs/tags/<tag>`), found \"main\"",
    );
    case(
        push(json!([{"ref": "refs/heads/", "commit": C1}])),
        "error: Records[0].codecommit.references[0].ref: expected a reference with a name after \
         the prefix, found \"refs/heads/\"",
    );
    case(
        push(json!([{"ref": "refs/heads/a b", "commit": C1}])),
        "error: Records[0].codecommit.references[0].ref: expected a full reference name, but it \
         holds a space or a control character",
    );
    case(
        push(json!([{"commit": C1}])),
        "error: Records[0].codecommit.references[0].ref: required, expected a string",
    );
    case(
        push(json!([{"ref": "refs/heads/a", "commit": "HEAD"}])),
        "error: Records[0].codecommit.references[0].commit: expected a commit id of 40 \
         hexadecimal digits (64 in a SHA-256 repository), found \"HEAD\"",
    );
    case(
        push(json!([{"ref": "refs/heads/a", "deleted": "yes"}])),
        "error: Records[0].codecommit.references[0].deleted: expected true or false, found a string",
    );
    case(
        push(json!({"ref": "refs/heads/a"})),
        "error: Records[0].codecommit.references: expected an array, found an object",
    );
}

#[test]
fn codecommit_records() {
    let push = || sample("codecommit-push.json");
    let record = push()["Records"][0].clone();
    case(
        json!({"Records": [record.clone(), record]}),
        &format!("build pushbuild-demo@{C1}; build pushbuild-demo@{C1}"),
    );
    let field = |pointer: &str, value: Option<Value>| edit("codecommit-push.json", pointer, value);
    case(
        field("/Records/0/eventSource", Some(json!("aws:s3"))),
        "error: Records[0].eventSource: expected \"aws:codecommit\", found \"aws:s3\"",
    );
    case(
        field(
            "/Records/0/eventSourceARN",
            Some(json!("arn:aws:codecommit:us-east-1:42:r")),
        ),
        "error: Records[0].eventSourceARN: expected a CodeCommit repository ARN \
         (`arn:aws:codecommit:<region>:<account>:<repository>`), \
         found \"arn:aws:codecommit:us-east-1:42:r\"",
    );
    case(
        field("/Records/0/codecommit", None),
        "error: Records[0].codecommit: required, expected an object with `references`",
    );
    case(
        field("/Records", Some(json!({}))),
        "error: Records: expected an array, found an object",
    );
    case(
        field("/Records/0", Some(json!("x"))),
        "error: Records[0]: expected an object, found a string",
    );
    assert_eq!(
        only_build(field("/Records/0/eventTriggerName", None)).initiator,
        "codecommit/trigger"
    );
    assert_eq!(
        only_build(field("/Records/0/eventId", None)).dedup_key,
        None
    );
}

#[test]
fn codecommit_custom_data() {
    let overrides = |event: Value| {
        let target = only_build(event);
        (target.buildspec, target.env_overrides)
    };
    let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        overrides(custom(
            r#"{"buildspec": "ci/b.yml", "environmentVariables": {"B": "2", "A": "1"}}"#
        )),
        (Some("ci/b.yml".into()), vars(&[("A", "1"), ("B", "2")]))
    );
    assert_eq!(
        overrides(custom(
            r#"{"environmentVariables": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}"#
        )),
        (None, vars(&[("B", "2"), ("A", "1")]))
    );
    for ignored in [
        "deploy to staging",
        "42",
        "\"text\"",
        "[1, 2]",
        "{not json",
        "",
        "{}",
    ] {
        assert_eq!(overrides(custom(ignored)), (None, vec![]), "{ignored}");
    }
    assert_eq!(
        overrides(custom(r#"{"owner": "web-team"}"#)),
        (None, vec![]),
        "other keys are left to other tools"
    );
    let bad = |data: &str, want: &str| case(custom(data), &format!("error: {want}"));
    bad(
        r#"{"buildspec": 5}"#,
        "Records[0].customData.buildspec: expected a string, found a number",
    );
    bad(
        r#"{"buildspec": "../secrets.yml"}"#,
        "Records[0].customData.buildspec: expected a relative path in the repository such as \
         `buildspec.yml`, but the path leaves the repository with `..`",
    );
    bad(
        r#"{"environmentVariables": "A=1"}"#,
        "Records[0].customData.environmentVariables: expected an object of names to strings, \
         or [{name, value}], found a string",
    );
    bad(
        r#"{"environmentVariables": {"A": 1}}"#,
        "Records[0].customData.environmentVariables.A: expected a string, found a number",
    );
    bad(
        r#"{"environmentVariables": {"1A": "x"}}"#,
        "Records[0].customData.environmentVariables.1A: expected a variable name of letters, \
         digits and `_` not starting with a digit, found \"1A\"",
    );
    bad(
        r#"{"environmentVariables": [{"name": "A-B", "value": "x"}]}"#,
        "Records[0].customData.environmentVariables[0].name: expected a variable name of \
         letters, digits and `_` not starting with a digit, found \"A-B\"",
    );
    bad(
        r#"{"environmentVariables": [{"name": "A"}]}"#,
        "Records[0].customData.environmentVariables[0].value: required, expected a string",
    );
}

#[test]
fn eventbridge_state_changes() {
    let updated = |pointer: &str, value: Option<Value>| {
        edit("eventbridge-reference-updated.json", pointer, value)
    };
    case(
        updated("/detail/event", Some(json!("referenceCreated"))),
        "build pushbuild-demo@7c6b5a4938271605f4e3d2c1b0a9f8e7d6c5b4a3",
    );
    let tag = only_build(updated("/detail/referenceType", Some(json!("tag"))));
    assert_eq!(tag.reference.as_deref(), Some("refs/tags/main"));
    assert_eq!(tag.webhook_trigger.as_deref(), Some("tag/main"));
    case(
        updated("/detail/event", Some(json!("referenceDeleted"))),
        "skip pushbuild-demo refs/heads/main: branch main was deleted",
    );
    case(
        updated("/detail/event", Some(json!("referenceMerged"))),
        "error: detail.event: expected referenceCreated, referenceUpdated or referenceDeleted, \
         found \"referenceMerged\"",
    );
    case(
        updated("/detail/referenceType", Some(json!("note"))),
        "error: detail.referenceType: expected \"branch\" or \"tag\", found \"note\"",
    );
    case(
        updated("/detail/commitId", None),
        "error: detail.commitId: required, expected the commit id the reference now points to",
    );
    case(
        updated("/detail", None),
        "error: detail: required, expected an object",
    );
    case(
        updated("/detail/referenceName", Some(json!("-x"))),
        "error: detail.referenceName: expected a branch or tag name, but it starts with `-`",
    );
    case(
        updated("/id", Some(json!(7))),
        "error: the EventBridge envelope does not parse: invalid type: integer `7`, \
         expected a string",
    );
    case(
        updated(
            "/detail-type",
            Some(json!("CodeCommit Pull Request State Change")),
        ),
        "error: unrecognised event (an EventBridge event from \"aws.codecommit\" of type \
         \"CodeCommit Pull Request State Change\"); pushbuild accepts a CodeCommit trigger event \
         (`Records[]` with eventSource `aws:codecommit`), an EventBridge `CodeCommit Repository \
         State Change` event, a build request `{\"repository\": ..., \"sourceVersion\": ...}` \
         (sent as is, or as the detail of an EventBridge `Scheduled Event`), a webhook's \
         planned build `{\"plannedBuild\": ...}`, or (in the function) a `CodePipeline.job`",
    );
}

#[test]
fn eventbridge_scheduled_events() {
    let scheduled = |pointer: &str, value: Option<Value>| {
        edit("eventbridge-scheduled-build.json", pointer, value)
    };
    assert_eq!(
        only_build(scheduled("/resources", None)).initiator,
        "eventbridge/schedule"
    );
    assert_eq!(
        only_build(scheduled("/detail/initiator", Some(json!("nightly")))).initiator,
        "nightly"
    );
    case(
        scheduled("/detail", Some(json!({}))),
        "error: detail: empty: a schedule must send a build request (`{\"repository\": ..., \
         \"sourceVersion\": ...}`), as the rule's constant input or as this detail",
    );
    case(
        scheduled("/detail/sourceversion", Some(json!("dev"))),
        "error: detail.sourceversion: unknown key; expected one of repository, sourceVersion, \
         buildspecOverride, environmentVariablesOverride, initiator",
    );
}

#[test]
fn build_requests() {
    case(json!({"repository": "r"}), "build r@refs/heads/main");
    case(
        json!({"repository": "r", "sourceVersion": "dev"}),
        "build r@dev",
    );
    case(
        json!({"repository": "r", "sourceVersion": null}),
        "build r@refs/heads/main",
    );
    let target = only_build(json!({"repository": "r", "sourceVersion": C2}));
    assert_eq!(
        (
            target.version.commit().map(|c| c.as_str()),
            target.reference
        ),
        (Some(C2), None)
    );
    // A SHA-256 repository's commit id (64 digits) is a commit too.
    let long = "ab".repeat(32);
    let target = only_build(json!({"repository": "r", "sourceVersion": long}));
    assert_eq!(
        target.version.commit().map(|c| c.as_str()),
        Some(long.as_str())
    );
    let target = only_build(json!({"repository": "r", "sourceVersion": "refs/tags/v1"}));
    assert_eq!(
        (target.version.commit(), target.reference.as_deref()),
        (None, Some("refs/tags/v1"))
    );
    let target = only_build(json!({"repository": "r"}));
    assert_eq!((target.initiator.as_str(), target.region), ("manual", None));

    let bad = |event: Value, want: &str| case(event, &format!("error: {want}"));
    bad(
        json!({"repository": 3}),
        "repository: expected a string, found a number",
    );
    bad(
        json!({"repository": ""}),
        "repository: expected a non-empty string",
    );
    bad(
        json!({"repository": "a/b"}),
        "repository: expected a repository name of 1 to 100 letters, digits, `.`, `_` or `-`, \
         found \"a/b\"",
    );
    bad(
        json!({"repository": "r", "sourceVersion": "--upload-pack=x"}),
        "sourceVersion: expected a branch, a `refs/...` name or a commit id, but it starts with `-`",
    );
    bad(
        json!({"repository": "r", "buildspecOverride": "/etc/b.yml"}),
        "buildspecOverride: expected a relative path in the repository such as `buildspec.yml`, \
         but the path is absolute",
    );
    bad(
        json!({"repository": "r", "buildspecOverride": "version: 0.2\nphases: {}"}),
        "buildspecOverride: expected a relative path in the repository such as `buildspec.yml`, \
         but the path holds a control character (an inline buildspec is not supported)",
    );
    bad(
        json!({"repository": "r", "environmentVariablesOverride": {"A": "1"}}),
        "environmentVariablesOverride: expected an array, found an object",
    );
    bad(
        json!({"repository": "r", "environmentVariablesOverride": [{"name": "", "value": "1"}]}),
        "environmentVariablesOverride[0].name: expected a variable name of letters, digits and \
         `_` not starting with a digit, found \"\"",
    );
    bad(
        json!({"repository": "r", "environmentVariablesOverride": [{"name": "T", "value": "s", "type": "PARAMETER_STORE"}]}),
        "environmentVariablesOverride[0].type: only PLAINTEXT is supported, found \"PARAMETER_STORE\"",
    );
    bad(
        json!({"repository": "r", "projectName": "p"}),
        "projectName: unknown key; expected one of repository, sourceVersion, buildspecOverride, \
         environmentVariablesOverride, initiator",
    );
}

#[test]
fn unknown_shapes_say_what_is_accepted() {
    #[track_caller]
    fn unknown(event: Value, found: &str) {
        let message = summary(&plan(&event));
        assert!(
            message.starts_with(&format!(
                "error: unrecognised event ({found}); pushbuild accepts"
            )),
            "{message}"
        );
        assert!(
            message.contains("CodeCommit Repository State Change"),
            "{message}"
        );
    }
    unknown(json!([1]), "an array instead of an object");
    unknown(json!("build"), "a string instead of an object");
    unknown(json!({}), "an empty object");
    unknown(
        json!({"repo": "r", "branch": "main"}),
        "an object with keys branch, repo",
    );
    unknown(
        json!({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1}),
        "an object with keys a, b, c, d, e, ...",
    );
    unknown(
        json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
        "an EventBridge event from \"aws.s3\" of type \"Object Created\"",
    );
}

#[test]
fn planned_builds_carry_their_source_and_older_ones_get_it_from_what_they_say() {
    let id = "0123456789abcdef0123456789abcdef01234567";
    let planned = |fields: Value| {
        let mut build = json!({
            "version": id, "commit": id, "reference": "refs/heads/main", "buildspec": null,
            "envOverrides": [], "initiator": "gitlab/octocat", "webhookTrigger": "branch/main",
            "dedupKey": null, "region": null, "account": null,
        });
        for (key, value) in fields.as_object().unwrap() {
            build[key] = value.clone();
        }
        only_build(json!({ "plannedBuild": build }))
    };
    let source = json!({"hosted": {"host": "bitbucket", "path": "team/app"}});
    let with = planned(json!({"repository": "git.example.com:7990/team/app", "source": source}));
    assert_eq!(
        with.source,
        Repo::hosted(Host::Bitbucket, "team/app").unwrap()
    );
    // Planned before builds named their source: from the webhook, or CodeCommit's name.
    let webhook = json!({"host": "gitlab", "event": "PUSH", "repository": "team/app", "headRef": "refs/heads/main"});
    let older = planned(json!({"repository": "git.example.com:8443/team/app", "webhook": webhook}));
    assert_eq!(
        older.source,
        Repo::hosted(Host::GitLab, "team/app").unwrap()
    );
    let plain = planned(json!({"repository": "pushbuild-demo"}));
    assert_eq!(
        plain.source,
        Repo::CodeCommit(RepositoryName::parse("pushbuild-demo").unwrap())
    );
    // A hosted project with nothing to say where it lives is refused, naming the field.
    let mut build = json!({"repository": "github.com/o/r", "version": id, "initiator": "x"});
    build["envOverrides"] = json!([]);
    let err = plan(&json!({ "plannedBuild": build }))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plannedBuild") && err.contains("source"),
        "{err}"
    );
}
