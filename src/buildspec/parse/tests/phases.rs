//! Tests of `phases`: commands, their lines, `finally`, `runtime-versions`, `on-failure`.

use super::*;

#[test]
fn commands_and_their_lines() {
    let src = build(
        "      - echo one\n      - 42\n      - true\n      - |\n        a\n        b\n      - >\n        c\n        d\n      - 'x: y'\n      - e\n        f\n",
    );
    let phase = ok(&src).spec.phases.build.unwrap_or_default();
    let want = [
        cmd("echo one", 5),
        cmd("42", 6),
        cmd("true", 7),
        cmd("a\nb\n", 8),
        cmd("c d\n", 11),
        cmd("x: y", 14),
        cmd("e f", 15),
    ];
    assert_eq!(phase.commands, want);

    let single = ok(&format!("{HEAD}phases:\n  build:\n    commands: make\n"))
        .spec
        .phases
        .build;
    assert_eq!(single.unwrap_or_default().commands, [cmd("make", 4)]);
}

#[test]
fn command_errors() {
    let found = "a mapping (YAML reads `: `";
    case(
        &build("      - ls\n      - echo a: b\n"),
        6,
        "phases.build.commands[1]",
        "a command",
        found,
    );
    case(
        &build("      - [a, b]\n"),
        5,
        "phases.build.commands[0]",
        "a command",
        "a list",
    );
    case(
        &build("      a: b\n"),
        5,
        "phases.build.commands",
        "a list of commands",
        "a mapping",
    );
    case(
        &format!("{HEAD}phases:\n  build: [ls]\n"),
        3,
        "phases.build",
        "a mapping with `commands`",
        "a list",
    );
    case(
        &format!("{HEAD}phases: [build]\n"),
        2,
        "phases",
        "a mapping of phases",
        "a list",
    );
}

#[test]
fn null_commands_and_phases() {
    let parsed = warns(
        &build("      - ls\n      -\n      - pwd\n"),
        6,
        "phases.build.commands[1]",
        "empty command",
    );
    let commands = parsed.spec.phases.build.unwrap_or_default().commands;
    assert_eq!(commands, [cmd("ls", 5), cmd("pwd", 7)]);

    let parsed = warns(
        &format!("{HEAD}phases:\n  build:\n  post_build:\n    commands: [ls]\n"),
        3,
        "phases.build",
        "empty phase",
    );
    assert_eq!(parsed.spec.phases.build, Some(Default::default()));

    let parsed = ok(&format!("{HEAD}phases:\n  build:\n    commands:\n"));
    assert_eq!(parsed.spec.phases.build, Some(Default::default()));
    assert!(parsed.warnings.is_empty());
}

#[test]
fn finally_only_run_as_and_runtime_versions() {
    let src = format!(
        "{HEAD}run-as: builder\nphases:\n  install:\n    run-as: root\n    runtime-versions:\n      python: 3.10\n      nodejs: 18\n  post_build:\n    finally:\n      - echo done\n"
    );
    let parsed = ok(&src);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(parsed.spec.run_as.as_deref(), Some("builder"));
    let install = parsed.spec.phases.install.unwrap_or_default();
    assert_eq!(install.run_as.as_deref(), Some("root"));
    let versions = [
        ("python".to_string(), "3.10".to_string()),
        ("nodejs".to_string(), "18".to_string()),
    ];
    assert_eq!(install.runtime_versions, versions);
    let post = parsed.spec.phases.post_build.unwrap_or_default();
    assert_eq!(
        (post.commands, post.finally),
        (vec![], vec![cmd("echo done", 11)])
    );

    let src = format!("{HEAD}phases:\n  build:\n    runtime-versions:\n      java: 17\n");
    warns(
        &src,
        4,
        "phases.build.runtime-versions",
        "belongs in the install phase",
    );
    let src = format!("{HEAD}phases:\n  install:\n    runtime-versions:\n      java: [17]\n");
    case(
        &src,
        5,
        "phases.install.runtime-versions.java",
        "a version",
        "a list",
    );
}

#[track_caller]
fn on_failure(text: &str) -> Result<OnFailure, BuildspecError> {
    let src = format!("{HEAD}phases:\n  build:\n    on-failure: {text}\n    commands: [ls]\n");
    parse("t.yml", &src).map(|p| p.spec.phases.build.unwrap_or_default().on_failure)
}

#[test]
fn on_failure_forms() {
    let retry = |count, regex: Option<&str>| OnFailure::Retry {
        count,
        regex: regex.map(String::from),
    };
    let table = [
        ("ABORT", OnFailure::Abort),
        ("CONTINUE", OnFailure::Continue),
        ("RETRY", retry(3, None)),
        ("RETRY-5", retry(5, None)),
        ("RETRY-0", retry(0, None)),
        ("RETRY-100", retry(100, None)),
        ("RETRY-error.*", retry(3, Some("error.*"))),
        ("RETRY-2-timed out", retry(2, Some("timed out"))),
        ("RETRY-3-[0-9]+-x", retry(3, Some("[0-9]+-x"))),
        ("RETRY-abc-1", retry(3, Some("abc-1"))),
        ("'RETRY-1-a: b'", retry(1, Some("a: b"))),
    ];
    for (text, want) in table {
        assert_eq!(on_failure(text).ok(), Some(want), "{text}");
    }
    assert_eq!(
        ok(&build("      - ls\n"))
            .spec
            .phases
            .build
            .unwrap_or_default()
            .on_failure,
        OnFailure::Abort
    );
}

#[test]
fn on_failure_errors() {
    let path = "phases.build.on-failure";
    let src = |text: &str| {
        format!("{HEAD}phases:\n  build:\n    on-failure: {text}\n    commands: [ls]\n")
    };
    case(
        &src("abort"),
        4,
        path,
        "one of ABORT, CONTINUE, RETRY",
        "`abort`",
    );
    case(
        &src("RETRY-101"),
        4,
        path,
        "RETRY-<count>-<regex>",
        "retry count must be 0 to 100",
    );
    case(
        &src("RETRY-99999999999"),
        4,
        path,
        "RETRY-<count>",
        "retry count",
    );
    case(&src("RETRY-"), 4, path, "RETRY-<regex>", "nothing after");
    case(&src("RETRY-2-"), 4, path, "RETRY-<regex>", "nothing after");
    case(
        &src("RETRY-(open"),
        4,
        path,
        "RETRY-<regex>",
        "`(open` is not a valid regex",
    );
    case(
        &src("RETRY-1-[z-a]"),
        4,
        path,
        "RETRY-<regex>",
        "`[z-a]` is not a valid regex",
    );
    case(&src("[ABORT]"), 4, path, "one of ABORT", "a list");
}
