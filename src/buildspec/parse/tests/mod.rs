//! Unit tests of the buildspec parser: each rule, with the exact line and path of messages.

use super::parse;
use crate::buildspec::{BuildspecError, Command, OnFailure, Parsed, Shell, Version};

const HEAD: &str = "version: 0.2\n";

#[track_caller]
fn ok(src: &str) -> Parsed {
    match parse("t.yml", src) {
        Ok(parsed) => parsed,
        Err(e) => panic!("{src:?} did not load: {e}"),
    }
}

/// `src` fails on `line` at `path`, the message's expected and found parts containing the
/// given fragments.
#[track_caller]
fn case(src: &str, line: usize, path: &str, expected: &str, found: &str) {
    match parse("t.yml", src) {
        Err(BuildspecError::Invalid {
            file,
            line: l,
            path: p,
            expected: e,
            found: f,
        }) => {
            assert_eq!(
                (file.as_str(), l, p.as_str()),
                ("t.yml", line, path),
                "{src:?}: {e} / {f}"
            );
            assert!(
                e.contains(expected),
                "{src:?}: expected part {e:?} lacks {expected:?}"
            );
            assert!(
                f.contains(found),
                "{src:?}: found part {f:?} lacks {found:?}"
            );
        }
        other => panic!("{src:?}: expected an Invalid error, got {other:?}"),
    }
}

/// `src` loads with one warning, on `line` at `path`, whose message contains `message`.
#[track_caller]
fn warns(src: &str, line: usize, path: &str, message: &str) -> Parsed {
    let parsed = ok(src);
    let [w] = parsed.warnings.as_slice() else {
        panic!("{src:?}: not one warning: {:?}", parsed.warnings)
    };
    assert_eq!(
        (w.line, w.path.as_str()),
        (line, path),
        "{src:?}: {}",
        w.message
    );
    assert!(
        w.message.contains(message),
        "{src:?}: {:?} lacks {message:?}",
        w.message
    );
    parsed
}

fn build(commands: &str) -> String {
    format!("{HEAD}phases:\n  build:\n    commands:\n{commands}")
}

fn cmd(text: &str, line: usize) -> Command {
    Command {
        text: text.to_string(),
        line,
    }
}

mod env;
mod phases;
mod sections;

#[test]
fn version() {
    assert_eq!(ok("version: 0.1\nphases: {}\n").spec.version, Version::V0_1);
    assert_eq!(ok("version: 0.2\nphases: {}\n").spec.version, Version::V0_2);
    assert_eq!(
        ok("version: \"0.2\"\nphases: {}\n").spec.version,
        Version::V0_2
    );
    assert_eq!(
        ok("version: '0.1'\nphases: {}\n").spec.version,
        Version::V0_1
    );
    case(
        "version: 0.3\nphases: {}\n",
        1,
        "version",
        "0.1 or 0.2",
        "`0.3`",
    );
    case(
        "phases: {}\nversion: 0.20\n",
        2,
        "version",
        "0.1 or 0.2",
        "`0.20`",
    );
    case("version: [0.2]\n", 1, "version", "0.1 or 0.2", "a list");
    case(
        "version:\nphases: {}\n",
        1,
        "version",
        "0.1 or 0.2",
        "nothing",
    );
    case(
        "# no version\nphases: {}\n",
        2,
        "version",
        "a `version` key",
        "none",
    );
    warns(HEAD, 1, "phases", "no `phases`");
}

#[test]
fn whole_document() {
    case(
        "",
        1,
        "buildspec",
        "a mapping with `version`",
        "an empty document",
    );
    case(
        "# nothing\n",
        1,
        "buildspec",
        "a mapping",
        "an empty document",
    );
    case("\n- version: 0.2\n", 2, "buildspec", "a mapping", "a list");
    case("just text\n", 1, "buildspec", "a mapping", "`just text`");
    let err = parse("dir/b.yml", "version: 0.3")
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("dir/b.yml:1: version: expected 0.1 or 0.2, found `0.3`")
    );
    let err = parse("b.yml", "a: [")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("b.yml:2:1: invalid YAML: "), "{err}");
}

#[test]
fn a_byte_order_mark_is_not_content() {
    let parsed = ok(&format!(
        "\u{feff}{HEAD}phases:\n  build:\n    commands: [make]\n"
    ));
    assert_eq!(parsed.spec.version, Version::V0_2);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert!(
        parsed
            .spec
            .phases
            .get(crate::buildspec::PhaseName::Build)
            .is_some()
    );
}

#[test]
fn unknown_keys_and_suggestions() {
    let table = [
        (
            "phases:\n  build:\n    Commands: [ls]\n",
            4,
            "phases.build.Commands",
            "unknown key `Commands`; did you mean `commands`?",
        ),
        (
            "phases:\n  pre-build:\n    commands: [ls]\n",
            3,
            "phases.pre-build",
            "did you mean `pre_build`?",
        ),
        (
            "phases:\n  build:\n    comands: [ls]\n",
            4,
            "phases.build.comands",
            "did you mean `commands`?",
        ),
        (
            "phases:\n  build:\n    runtime_versions: {}\n",
            4,
            "phases.build.runtime_versions",
            "did you mean `runtime-versions`?",
        ),
        (
            "Phases: {}\nphases: {}\n",
            2,
            "Phases",
            "did you mean `phases`?",
        ),
        (
            "phases: {}\nenv:\n  variable: {}\n",
            4,
            "env.variable",
            "did you mean `variables`?",
        ),
        (
            "phases: {}\nartifacts:\n  files: [a]\n  discard_paths: yes\n",
            5,
            "artifacts.discard_paths",
            "did you mean `discard-paths`?",
        ),
        (
            "phases: {}\nfoo: 1\n",
            3,
            "foo",
            "unknown key `foo`, ignored",
        ),
    ];
    for (body, line, path, message) in table {
        warns(&format!("{HEAD}{body}"), line, path, message);
    }
}

#[test]
fn duplicate_keys_last_wins() {
    let src = format!(
        "{HEAD}env:\n  variables:\n    key: one\n    other: x\n    key: two\nphases: {{}}\n"
    );
    let parsed = warns(
        &src,
        6,
        "env.variables.key",
        "duplicate key `key` (first on line 4)",
    );
    let vars = parsed.spec.env.variables;
    assert_eq!(
        vars,
        [
            ("key".to_string(), "two".to_string()),
            ("other".to_string(), "x".to_string())
        ]
    );

    let src = format!("{HEAD}phases: {{}}\nrun-as: a\nrun-as: b\n");
    assert_eq!(
        warns(&src, 4, "run-as", "duplicate key")
            .spec
            .run_as
            .as_deref(),
        Some("b")
    );
}

#[test]
fn aliases() {
    let src = format!(
        "{HEAD}phases:\n  build:\n    commands: &steps\n      - make\n      - make test\n  post_build:\n    commands: *steps\n"
    );
    let phases = ok(&src).spec.phases;
    let post = phases.post_build.unwrap_or_default().commands;
    assert_eq!(post, [cmd("make", 5), cmd("make test", 6)]);
    assert_eq!(phases.build.unwrap_or_default().commands, post);
}

#[test]
fn keys_must_be_plain() {
    case(
        &format!("{HEAD}phases: {{}}\n? [a]\n: b\n"),
        3,
        "buildspec",
        "a plain key name",
        "a list as a key",
    );
    case(
        &format!("{HEAD}env:\n  variables:\n    ~: x\n"),
        4,
        "env.variables",
        "a plain key name",
        "nothing",
    );
}

#[test]
fn never_panics_on_odd_input() {
    let odd = [
        "version: 0.2\nphases:\n  build:\n    commands:\n      - &a x\n      - *a\n",
        "version: 0.2\n---\nversion: 0.3\n",
        "\u{feff}version: 0.2\nphases: {}\n",
        "version: 0.2\r\nphases:\r\n  build:\r\n    commands:\r\n      - ls\r\n",
        "!!map\nversion: !!str 0.2\nphases: {}\n",
        "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-4294967296\n",
        "[[[[[[[[[[",
        "{",
        "- - - -",
        ": :",
        "\t",
        "version: 0.2\nphases: {build: {commands: [\"\\u00e9\", '']}}\n",
    ];
    for src in odd {
        let result = std::panic::catch_unwind(|| parse("t.yml", src).map(|_| ()));
        assert!(result.is_ok(), "{src:?} panicked");
    }
}
