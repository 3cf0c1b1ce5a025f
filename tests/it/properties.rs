//! Generated input, a bounded number of cases per run: buildspecs made from the grammar's own
//! keys and YAML's tricky scalars (and from raw text), and events and webhook deliveries made by
//! mutating the samples in `events/`. Whatever comes in, the parser and the event mapping answer
//! with a value or an error that names where: never a panic.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::mutate::{mutated, samples};
use pushbuild::buildspec;
use pushbuild::trigger::Host;
use pushbuild::webhook::{self, Headers, Received};

/// Cases per property: enough to reach odd corners, few enough for CI's time (about a second
/// each in a dev build).
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// A YAML tree, rendered to text below.
#[derive(Debug, Clone)]
enum Yaml {
    Scalar(String),
    Map(Vec<(String, Yaml)>),
    Seq(Vec<Yaml>),
}

fn key() -> impl Strategy<Value = String> {
    let known = [
        "version",
        "phases",
        "install",
        "pre_build",
        "build",
        "post_build",
        "commands",
        "finally",
        "on-failure",
        "runtime-versions",
        "env",
        "variables",
        "parameter-store",
        "secrets-manager",
        "exported-variables",
        "shell",
        "git-credential-helper",
        "artifacts",
        "files",
        "name",
        "base-directory",
        "discard-paths",
        "exclude-paths",
        "enable-symlinks",
        "s3-prefix",
        "secondary-artifacts",
        "cache",
        "paths",
        "reports",
        "run-as",
        "environment_variables",
        "plaintext",
        "<<",
    ];
    prop_oneof![
        4 => proptest::sample::select(known.to_vec()).prop_map(str::to_string),
        1 => "[A-Za-z_][A-Za-z0-9_.-]{0,10}",
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    let tricky = [
        "0.2",
        "0.1",
        "0.3",
        "~",
        "null",
        "''",
        "\"\"",
        "yes",
        "no",
        "true",
        "1e3",
        "-1",
        "999999999999999999999",
        "*a",
        "&a x",
        "*undefined",
        "!!binary aGk=",
        "|",
        ">-",
        "[1, 2",
        "{a: b",
        "\"a\\0b\"",
        "\"\\uFEFF\"",
        "ABORT",
        "CONTINUE",
        "RETRY-3",
        "RETRY-x",
        "bash",
        "sh",
        "pwsh",
        "$(echo ../..)",
        "../../x",
        "**/*",
        "echo hi",
        "'#'",
        "- x",
        ": y",
        "\t",
    ];
    prop_oneof![
        3 => proptest::sample::select(tricky.to_vec()).prop_map(str::to_string),
        1 => "[ -~]{0,16}",
        1 => any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

fn yaml() -> impl Strategy<Value = Yaml> {
    scalar()
        .prop_map(Yaml::Scalar)
        .prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec((key(), inner.clone()), 0..6).prop_map(Yaml::Map),
                proptest::collection::vec(inner, 0..5).prop_map(Yaml::Seq),
            ]
        })
}

fn render(node: &Yaml, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Yaml::Scalar(text) => {
            out.push(' ');
            out.push_str(text);
            out.push('\n');
        }
        Yaml::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        Yaml::Seq(items) if items.is_empty() => out.push_str(" []\n"),
        Yaml::Map(entries) => {
            out.push('\n');
            for (key, value) in entries {
                out.push_str(&format!("{pad}{key}:"));
                render(value, indent + 2, out);
            }
        }
        Yaml::Seq(items) => {
            out.push('\n');
            for item in items {
                out.push_str(&format!("{pad}-"));
                render(item, indent + 2, out);
            }
        }
    }
}

/// A buildspec: `version: 0.2` (usually), then a generated mapping, then perhaps a mangled line.
fn buildspec_text() -> impl Strategy<Value = String> {
    (
        proptest::bool::weighted(0.8),
        proptest::collection::vec((key(), yaml()), 0..6),
        proptest::option::of((any::<proptest::sample::Index>(), scalar())),
    )
        .prop_map(|(versioned, entries, mangle)| {
            let mut text = String::new();
            if versioned {
                text.push_str("version: 0.2\n");
            }
            for (key, value) in &entries {
                text.push_str(key);
                text.push(':');
                render(value, 2, &mut text);
            }
            if let Some((at, line)) = mangle {
                let mut lines: Vec<&str> = text.lines().collect();
                let at = at.index(lines.len() + 1);
                lines.insert(at, &line);
                text = lines.join("\n");
            }
            text
        })
}

/// The parser's answer to `text`: a value, or an error that starts `t.yml:LINE` with a line
/// that is in the file.
fn check_buildspec(text: &str) -> Result<(), TestCaseError> {
    match buildspec::parse("t.yml", text) {
        Ok(_) => Ok(()),
        Err(err) => {
            let message = err.to_string();
            let line = message
                .strip_prefix("t.yml:")
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse::<usize>().ok());
            let lines = text.split('\n').count();
            prop_assert!(
                line.is_some_and(|line| (1..=lines + 1).contains(&line)),
                "an error without a line in the file ({lines} lines): {message}"
            );
            Ok(())
        }
    }
}

#[test]
fn the_buildspec_parser_answers_generated_buildspecs_with_a_value_or_a_located_error() {
    let mut runner = runner(3000);
    runner
        .run(&buildspec_text(), |text| check_buildspec(&text))
        .unwrap_or_else(|err| panic!("{err}"));
}

/// The real buildspecs of the shared corpus (read in place, as `corpus.rs` does).
fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/buildspecs");
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .expect("the shared corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    texts.sort();
    assert!(texts.len() > 40, "the corpus is there");
    texts
}

/// One edit of a buildspec's lines.
#[derive(Debug, Clone)]
enum Edit {
    Delete,
    Duplicate,
    /// The text after the line's first `: ` (or its `- `) becomes this.
    Value(String),
    /// A new line with the same indentation.
    Insert(String),
    Indent(bool),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => Just(Edit::Delete),
        1 => Just(Edit::Duplicate),
        3 => scalar().prop_map(Edit::Value),
        1 => (key(), scalar()).prop_map(|(k, v)| Edit::Insert(format!("{k}: {v}"))),
        1 => scalar().prop_map(|v| Edit::Insert(format!("- {v}"))),
        1 => any::<bool>().prop_map(Edit::Indent),
    ]
}

fn apply(text: &str, edits: &[(proptest::sample::Index, Edit)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (at, edit) in edits {
        if lines.is_empty() {
            break;
        }
        let i = at.index(lines.len());
        let indent: String = lines[i].chars().take_while(|c| *c == ' ').collect();
        match edit {
            Edit::Delete => {
                lines.remove(i);
            }
            Edit::Duplicate => lines.insert(i, lines[i].clone()),
            Edit::Value(value) => {
                let line = &lines[i];
                let cut = line
                    .find(": ")
                    .map(|at| at + 2)
                    .or_else(|| line.find("- ").map(|at| at + 2));
                if let Some(cut) = cut {
                    lines[i] = format!("{}{value}", &line[..cut]);
                }
            }
            Edit::Insert(new) => lines.insert(i, format!("{indent}{new}")),
            Edit::Indent(deeper) => {
                lines[i] = if *deeper {
                    format!("  {}", lines[i])
                } else {
                    lines[i].trim_start_matches("  ").to_string()
                };
            }
        }
    }
    lines.join("\n")
}

#[test]
fn the_buildspec_parser_answers_edited_real_buildspecs_with_a_value_or_a_located_error() {
    let mut runner = runner(3000);
    let edited = (
        proptest::sample::select(corpus()),
        proptest::collection::vec((any::<proptest::sample::Index>(), edit()), 1..4),
    )
        .prop_map(|(text, edits)| apply(&text, &edits));
    runner
        .run(&edited, |text| check_buildspec(&text))
        .unwrap_or_else(|err| panic!("{err}"));
}

#[test]
fn the_buildspec_parser_answers_raw_text_with_a_value_or_a_located_error() {
    let mut runner = runner(2000);
    let text = prop_oneof![
        any::<String>(),
        "[ -~\n\t]{0,300}",
        "(version: 0.2\n)?[-:\\[\\]{}&*!|>'\"%@` #\n a-z0-9]{0,200}"
    ];
    runner
        .run(&text, |text| check_buildspec(&text))
        .unwrap_or_else(|err| panic!("{err}"));
}

#[test]
fn the_event_mapping_answers_mutated_events_with_builds_or_an_error_naming_the_field() {
    let mut runner = runner(3000);
    runner
        .run(&mutated(samples("")), |(name, event)| {
            // A CodePipeline job: read by its own reader, whose errors never echo a credential.
            if pushbuild::trigger::codepipeline::is_job(&event) {
                if let Err(err) = pushbuild::trigger::codepipeline::job(&event) {
                    let message = err.to_string();
                    prop_assert!(!message.is_empty(), "{name}");
                    prop_assert!(!message.contains("never-logged"), "{name}: {message}");
                }
                return Ok(());
            }
            if let Err(err) = pushbuild::trigger::plan(&event) {
                let message = err.to_string();
                prop_assert!(!message.is_empty(), "{name}");
                prop_assert!(
                    !message.contains('\0'),
                    "{name}: the message carries a NUL byte: {message:?}"
                );
            }
            Ok(())
        })
        .unwrap_or_else(|err| panic!("{err}"));
}

/// The sample's headers (`<name>.headers.json`) for a webhook body.
fn headers_of(host: &str, name: &str) -> Headers {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(host)
        .join(name.replace(".json", ".headers.json"));
    let text = std::fs::read_to_string(path).expect("the sample's headers");
    let map: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("JSON");
    Headers::new(
        map.into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())),
    )
}

#[test]
fn webhook_payloads_mutated_or_raw_are_read_and_planned_without_a_panic() {
    let settings = pushbuild::config::Config::from_vars(|name| {
        (name == "PUSHBUILD_BUCKET").then(|| "properties".to_string())
    })
    .expect("settings")
    .webhooks;
    for (host, folder) in [
        (Host::GitHub, "github"),
        (Host::GitLab, "gitlab"),
        (Host::Bitbucket, "bitbucket"),
    ] {
        let mut runner = runner(700);
        let settings = settings.clone();
        let bodies = prop_oneof![
            4 => mutated(samples(folder))
                .prop_map(|(name, body)| (name, body.to_string().into_bytes())),
            1 => (
                proptest::sample::select(samples(folder)).prop_map(|(name, _)| name),
                proptest::collection::vec(any::<u8>(), 0..256),
            ),
        ];
        runner
            .run(&bodies, |(name, body)| {
                let headers = headers_of(folder, &name);
                let read = match host {
                    Host::GitHub => webhook::github::read(&headers, &body),
                    Host::GitLab => webhook::gitlab::read(&headers, &body),
                    Host::Bitbucket => webhook::bitbucket::read(&headers, &body),
                };
                match read {
                    Ok(Received::Events(events)) => {
                        for event in &events {
                            let _ = webhook::plan(event, &settings);
                        }
                    }
                    Ok(_) => {}
                    Err(err) => prop_assert!(!err.to_string().is_empty(), "{name}"),
                }
                Ok(())
            })
            .unwrap_or_else(|err| panic!("{folder}: {err}"));
    }
}
