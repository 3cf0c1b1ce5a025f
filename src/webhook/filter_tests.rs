//! Filter groups: the setting's errors, and which events each group lets through.

use super::*;
use crate::names::CommitId;
use crate::webhook::event::{Host, PullRequest};

fn push(head_ref: &str, message: &str, files: &[&str]) -> HostEvent {
    HostEvent {
        host: Host::GitHub,
        delivery: "1:d".into(),
        repository: "octo-org/hello-app".into(),
        kind: EventKind::Push,
        head_ref: head_ref.into(),
        base_ref: None,
        actor_account_id: Some("583231".into()),
        actor_name: Some("octocat".into()),
        commit: CommitId::parse(&"a".repeat(40)).ok(),
        abbreviated_commit: None,
        prev_commit: None,
        commit_message: Some(message.into()),
        changed_files: Some(files.iter().map(|f| f.to_string()).collect()),
        pull_request: None,
    }
}

fn pull_request(kind: EventKind, base: &str) -> HostEvent {
    HostEvent {
        kind,
        head_ref: "refs/heads/feature".into(),
        base_ref: Some(base.into()),
        commit_message: None,
        changed_files: None,
        pull_request: Some(PullRequest {
            number: 7,
            from_fork: false,
        }),
        ..push("refs/heads/feature", "", &[])
    }
}

#[track_caller]
fn error(setting: &str, want: &str) {
    match FilterGroups::parse(setting) {
        Ok(_) => panic!("{setting}: accepted"),
        Err(err) => assert_eq!(err.to_string(), want, "{setting}"),
    }
}

#[test]
fn a_bad_setting_names_the_group_the_filter_and_the_problem() {
    error(
        "{}",
        "expected a JSON array of filter groups (arrays of filters): found an object",
    );
    error(
        "[]",
        "the setting: no filter group: nothing would ever build",
    );
    error(
        r#"[[{"type": "HEAD_REF", "pattern": "main"}]]"#,
        "group 1: a group needs an EVENT filter (as CodeBuild's do)",
    );
    error(
        r#"[[{"type": "EVENT", "pattern": "PUSH"}], [{"type": "EVENT", "pattern": "PUSH"}, {"type": "HEAD_REF", "pattern": "(main"}]]"#,
        "group 2, filter 2 (HEAD_REF): the pattern is not a regular expression: regex parse \
         error:\n    (main\n    ^\nerror: unclosed group",
    );
    error(
        r#"[[{"type": "EVENT", "pattern": "PUSH, PULL_REQUEST_OPENED"}]]"#,
        "group 1, filter 1 (EVENT): unknown event `PULL_REQUEST_OPENED`; expected a \
         comma-separated list of PUSH, PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, \
         PULL_REQUEST_REOPENED, PULL_REQUEST_MERGED, PULL_REQUEST_CLOSED",
    );
    error(
        r#"[[{"type": "EVENT", "pattern": "PUSH"}, {"type": "BRANCH", "pattern": "x"}]]"#,
        "group 1, filter 2 (BRANCH): unknown type `BRANCH`; expected one of EVENT, HEAD_REF, \
         BASE_REF, ACTOR_ACCOUNT_ID, FILE_PATH, COMMIT_MESSAGE, TAG_NAME, REPOSITORY_NAME",
    );
    error(
        r#"[[{"type": "EVENT", "pattern": "PUSH", "exclude": true}]]"#,
        "group 1, filter 1: unknown key `exclude`; expected type, pattern, excludeMatchedPattern",
    );
    error(
        r#"[[{"type": "EVENT"}]]"#,
        "group 1, filter 1: `pattern` is required",
    );
}

#[test]
fn filters_of_a_group_all_match_and_any_group_builds() {
    let groups = FilterGroups::parse(
        r#"[
          [{"type": "EVENT", "pattern": "PUSH"},
           {"type": "HEAD_REF", "pattern": "^refs/heads/main$"},
           {"type": "COMMIT_MESSAGE", "pattern": "\\[wip\\]", "excludeMatchedPattern": true}],
          [{"type": "EVENT", "pattern": "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED"},
           {"type": "BASE_REF", "pattern": "^refs/heads/main$"}]
        ]"#,
    )
    .expect("parses");
    assert!(groups.matches(&push("refs/heads/main", "fix", &[])));
    assert!(!groups.matches(&push("refs/heads/main", "[wip] fix", &[])));
    assert!(!groups.matches(&push("refs/heads/dev", "fix", &[])));
    assert!(groups.matches(&pull_request(
        EventKind::PullRequestCreated,
        "refs/heads/main"
    )));
    assert!(!groups.matches(&pull_request(
        EventKind::PullRequestCreated,
        "refs/heads/dev"
    )));
    assert!(!groups.matches(&pull_request(
        EventKind::PullRequestMerged,
        "refs/heads/main"
    )));
    assert!(!groups.needs_files());
}

#[test]
fn file_paths_match_any_changed_file_and_exclude_only_when_all_match() {
    let only = FilterGroups::parse(
        r#"[[{"type": "EVENT", "pattern": "PUSH"}, {"type": "FILE_PATH", "pattern": "^src/"}]]"#,
    )
    .expect("parses");
    assert!(only.needs_files());
    assert!(only.matches(&push("refs/heads/main", "", &["README.md", "src/a.rs"])));
    assert!(!only.matches(&push("refs/heads/main", "", &["README.md"])));
    assert!(!only.matches(&push("refs/heads/main", "", &[])));
    let not_docs = FilterGroups::parse(
        r#"[[{"type": "EVENT", "pattern": "PUSH"},
             {"type": "FILE_PATH", "pattern": "^docs/", "excludeMatchedPattern": true}]]"#,
    )
    .expect("parses");
    assert!(!not_docs.matches(&push("refs/heads/main", "", &["docs/a.md", "docs/b.md"])));
    assert!(not_docs.matches(&push("refs/heads/main", "", &["docs/a.md", "src/a.rs"])));
}

#[test]
fn tags_actors_and_repository_names_are_matched_as_codebuild_does() {
    let groups = FilterGroups::parse(
        r#"[[{"type": "EVENT", "pattern": "PUSH"},
             {"type": "TAG_NAME", "pattern": "^v[0-9]"},
             {"type": "ACTOR_ACCOUNT_ID", "pattern": "^583231$"},
             {"type": "REPOSITORY_NAME", "pattern": "^hello-app$"}]]"#,
    )
    .expect("parses");
    assert!(groups.matches(&push("refs/tags/v1.0", "", &[])));
    assert!(!groups.matches(&push("refs/heads/v1.0", "", &[])));
    assert!(!groups.matches(&push("refs/tags/release", "", &[])));
    let default = FilterGroups::default();
    assert!(default.matches(&push("refs/heads/any", "", &[])));
    assert!(default.matches(&pull_request(
        EventKind::PullRequestReopened,
        "refs/heads/x"
    )));
    assert!(!default.matches(&pull_request(EventKind::PullRequestClosed, "refs/heads/x")));
}
