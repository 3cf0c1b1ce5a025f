//! The rules of names, one table per name.

use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef01234567";

#[track_caller]
fn version(input: &str, expected: Option<SourceVersion>) {
    match (SourceVersion::parse(input), expected) {
        (Ok(got), Some(want)) => assert_eq!(got, want, "{input}"),
        (Err(NameError::Version { .. }), None) => {}
        (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
    }
}

fn branch(name: &str) -> Option<SourceVersion> {
    Some(SourceVersion::Branch {
        name: name.to_string(),
        full: false,
    })
}

fn full_branch(name: &str) -> Option<SourceVersion> {
    Some(SourceVersion::Branch {
        name: name.to_string(),
        full: true,
    })
}

fn commit(id: &str) -> Option<SourceVersion> {
    Some(SourceVersion::Commit(CommitId::parse(id).unwrap()))
}

#[test]
fn versions_parse_as_branch_tag_commit_or_pull_request() {
    version("main", branch("main"));
    version("feature/x", branch("feature/x"));
    version("refs/heads/main", full_branch("main"));
    version("refs/heads/a/b", full_branch("a/b"));
    version("refs/tags/v1.0", Some(SourceVersion::Tag("v1.0".into())));
    version(ID, commit(ID));
    version(&ID.to_uppercase(), commit(&ID.to_uppercase()));
    version(&"c".repeat(64), commit(&"c".repeat(64)));
    version("pr/12", Some(SourceVersion::PullRequest(12)));
    // 39 or 41 digits is a branch name, not a commit id.
    version(&ID[1..], branch(&ID[1..]));
    version(&format!("{ID}0"), branch(&format!("{ID}0")));
    version("", None);
    version("refs/heads/", None);
    version("refs/tags/", None);
    version("refs/pull/1/head", None);
    version("pr/", None);
    version("pr/x", None);
    version("pr/0", None);
    version("-x", None);
    version("a b", None);
}

#[test]
fn versions_show_as_they_were_written() {
    let tricky = format!("refs/heads/{ID}");
    for text in [
        "main",
        "refs/heads/main",
        "refs/tags/v1",
        ID,
        "pr/7",
        &tricky,
    ] {
        let version = SourceVersion::parse(text).unwrap();
        assert_eq!(version.to_string(), text);
        assert_eq!(SourceVersion::parse(&version.to_string()).unwrap(), version);
    }
    assert_eq!(
        SourceVersion::parse("main").unwrap().reference(),
        Some("refs/heads/main".into())
    );
}

#[test]
fn commit_ids_are_40_or_64_hex_digits() {
    #[track_caller]
    fn case(id: &str, want: bool) {
        assert_eq!(CommitId::parse(id).is_ok(), want, "{id:?}");
    }
    case(&"a".repeat(40), true);
    case(&"0".repeat(64), true);
    case("3F9C1A2B7D4E5F60718293A4B5C6D7E8F9012345", true);
    case("3f9c1a2", false);
    case(&"a".repeat(50), false);
    case(&"g".repeat(40), false);
    case("main", false);
}

#[test]
fn repository_names_follow_codecommit() {
    #[track_caller]
    fn case(name: &str, want: bool) {
        assert_eq!(RepositoryName::parse(name).is_ok(), want, "{name:?}");
    }
    case("pushbuild-demo", true);
    case("a.b_c-D9", true);
    case(".tmpXyZ", true);
    case(&"r".repeat(100), true);
    case(&"r".repeat(101), false);
    case("", false);
    case(".", false);
    case("..", false);
    case("a/b", false);
    case("a b", false);
    case("é", false);
}

#[test]
fn project_names_are_repositories_or_hosted_paths() {
    #[track_caller]
    fn case(name: &str, want: bool) {
        assert_eq!(ProjectName::parse(name).is_ok(), want, "{name:?}");
    }
    case("pushbuild-demo", true);
    case("github.com/owner/repo", true);
    case("gitlab.example.com/group/sub/project", true);
    case("github.com/owner", false);
    case("github.com//repo", false);
    case("github.com/../repo", false);
    case("/owner/repo", false);
    case("github.com/owner/repo/", false);
    case("github.com/own er/repo", false);
    // A host keeps its port: two hosts on one machine are two projects.
    case("git.example.com:8443/team/app", true);
    case("127.0.0.1:3000/team/app", true);
    case("git.example.com:/team/app", false);
    case("git.example.com:0/team/app", false);
    case("git.example.com:08443/team/app", false);
    case("git.example.com:65536/team/app", false);
    case(":8443/team/app", false);
    case("team:8443", false);
    case("git.example.com/team:1/app", false);
    let hosted = ProjectName::hosted("github.com", "o/r").unwrap();
    assert_eq!(hosted.host_and_path(), Some(("github.com", "o/r")));
    assert_eq!(hosted.repository(), None);
    let plain = ProjectName::parse("web").unwrap();
    assert_eq!(
        plain.repository().map(|r| r.to_string()),
        Some("web".into())
    );
    assert_eq!(plain.host_and_path(), None);
}

#[test]
fn variable_names_are_shell_identifiers() {
    #[track_caller]
    fn case(name: &str, want: bool) {
        assert_eq!(is_variable_name(name), want, "{name:?}");
    }
    case("STAGE", true);
    case("_x1", true);
    case("a", true);
    case("", false);
    case("1A", false);
    case("A-B", false);
    case("A B", false);
    case("É", false);
}

#[test]
fn names_travel_as_json_text() {
    let repo: RepositoryName = serde_json::from_str("\"web\"").unwrap();
    assert_eq!(serde_json::to_string(&repo).unwrap(), "\"web\"");
    assert!(serde_json::from_str::<RepositoryName>("\"a/b\"").is_err());
    let version: SourceVersion = serde_json::from_str("\"refs/tags/v2\"").unwrap();
    assert_eq!(version, SourceVersion::Tag("v2".into()));
}

#[test]
fn build_ids_are_key_safe_and_new_ones_sort_by_time() {
    #[track_caller]
    fn case(id: &str, want: bool) {
        assert_eq!(BuildId::parse(id).is_ok(), want, "{id:?}");
    }
    case("20261122T231000Z-3f9c1a2b", true);
    case("b1", true);
    case(&"a".repeat(64), true);
    case(&"a".repeat(65), false);
    case("", false);
    case("..", false);
    case("a/b", false);
    case("a b", false);
    let new = BuildId::new();
    assert_ne!(new, BuildId::new());
    assert_eq!(BuildId::parse(new.as_str()), Ok(new.clone()));
    assert_eq!(new.as_str().len(), "20261122T231000Z-3f9c1a2b".len());
}

#[test]
fn references_have_one_rule() {
    assert_eq!(full_ref(RefKind::Branch, "main"), "refs/heads/main");
    assert_eq!(full_ref(RefKind::Tag, "v1"), "refs/tags/v1");
    assert_eq!(split_ref("refs/heads/a/b"), Some((RefKind::Branch, "a/b")));
    assert_eq!(split_ref("refs/tags/v1"), Some((RefKind::Tag, "v1")));
    assert_eq!(split_ref("refs/pull/1/head"), None);
    assert_eq!(split_ref("main"), None);
    assert_eq!(short_ref("refs/heads/main"), "main");
    assert_eq!(short_ref("refs/pull/1/head"), "refs/pull/1/head");
    assert_eq!(pull_request_ref(7), "refs/pull/7/head");
    // A short branch name and its full name give the same reference.
    for text in ["main", "refs/heads/main"] {
        let version = SourceVersion::parse(text).unwrap();
        assert_eq!(version.reference().as_deref(), Some("refs/heads/main"));
    }
}

#[test]
fn assignments_are_name_equals_value() {
    assert_eq!(
        variable_assignment("A=1=2").unwrap(),
        ("A".to_string(), "1=2".to_string())
    );
    assert_eq!(
        variable_assignment("_X=").unwrap(),
        ("_X".to_string(), String::new())
    );
    assert!(matches!(
        variable_assignment("A"),
        Err(NameError::Assignment { .. })
    ));
    let bad = variable_assignment("1A=secret-value")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("1A") && !bad.contains("secret-value"), "{bad}");
}

#[test]
fn repositories_on_hosts_have_checked_paths() {
    assert!(Repo::hosted(Host::GitLab, "group/sub/project").is_ok());
    assert!(Repo::hosted(Host::GitHub, "owner").is_err());
    assert!(Repo::hosted(Host::GitHub, "owner/../x").is_err());
    let json = r#"{"hosted":{"host":"bitbucket","path":"../x"}}"#;
    assert!(
        serde_json::from_str::<Repo>(json).is_err(),
        "checked when read back"
    );
    let repo = Repo::hosted(Host::Bitbucket, "ws/app").unwrap();
    let text = serde_json::to_string(&repo).unwrap();
    assert_eq!(text, r#"{"hosted":{"host":"bitbucket","path":"ws/app"}}"#);
    assert_eq!(serde_json::from_str::<Repo>(&text).unwrap(), repo);
}
