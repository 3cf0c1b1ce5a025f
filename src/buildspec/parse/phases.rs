//! The `phases` section: each phase's commands, `finally`, `run-as`, `on-failure` and
//! `runtime-versions`.

use super::{Cx, Entry, Res};
use crate::buildspec::yaml::Kind;
use crate::buildspec::{Command, OnFailure, Phase, PhaseName, Phases};

const PHASE_KEYS: &[&str] = &[
    "run-as",
    "on-failure",
    "runtime-versions",
    "commands",
    "finally",
];

/// What `on-failure` may be.
pub(super) const ON_FAILURE: &str =
    "one of ABORT, CONTINUE, RETRY, RETRY-<count>, RETRY-<regex>, RETRY-<count>-<regex>";

/// Retries when `RETRY` gives no count.
const DEFAULT_RETRIES: u32 = 3;
/// Most retries `RETRY-<count>` may ask for.
const MAX_RETRIES: u32 = 100;

/// Parses `phases`.
pub(super) fn phases(cx: &mut Cx, e: &Entry) -> Res<Phases> {
    let known: Vec<&str> = PhaseName::ALL.iter().map(|p| p.key()).collect();
    let mut phases = Phases::default();
    for f in cx.fields(e.value, &e.path, "a mapping of phases", &known)? {
        let phase = Some(phase(cx, &f)?);
        match f.key {
            "install" => phases.install = phase,
            "pre_build" => phases.pre_build = phase,
            "build" => phases.build = phase,
            _ => phases.post_build = phase,
        }
    }
    Ok(phases)
}

fn phase(cx: &mut Cx, e: &Entry) -> Res<Phase> {
    let mut phase = Phase::default();
    if e.value.is_null() {
        cx.warn(&e.path, e.line, "empty phase: it runs no commands");
        return Ok(phase);
    }
    let expected = "a mapping with `commands` (and optionally `finally`, `run-as`, `on-failure`)";
    for f in cx.fields(e.value, &e.path, expected, PHASE_KEYS)? {
        match f.key {
            "run-as" => phase.run_as = cx.opt_string(&f)?,
            "on-failure" => phase.on_failure = on_failure(cx, &f)?,
            "runtime-versions" => {
                if e.key != "install" {
                    let message = "`runtime-versions` belongs in the install phase; accepted here";
                    cx.warn(&f.path, f.line, message);
                }
                phase.runtime_versions = runtime_versions(cx, &f)?;
            }
            "commands" => phase.commands = commands(cx, &f)?,
            _ => phase.finally = commands(cx, &f)?,
        }
    }
    Ok(phase)
}

fn runtime_versions(cx: &mut Cx, e: &Entry) -> Res<Vec<(String, String)>> {
    let mut out = Vec::new();
    for v in cx.pairs(e.value, &e.path, "a mapping of runtime names to versions")? {
        let version = cx.string(&v, "a version (as `18` or `latest`)")?;
        out.push((v.key.to_string(), version));
    }
    Ok(out)
}

/// A list of commands; a single scalar is one command, empty items are skipped with a warning.
fn commands(cx: &mut Cx, e: &Entry) -> Res<Vec<Command>> {
    let items = match &e.value.kind {
        Kind::Null => return Ok(Vec::new()),
        Kind::Scalar { text, .. } => {
            return Ok(vec![Command {
                text: text.clone(),
                line: e.value_line(),
            }]);
        }
        Kind::Map(_) => {
            return Err(cx.invalid(&e.path, e.value_line(), "a list of commands", "a mapping"));
        }
        Kind::Seq(items) => items,
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", e.path);
        match &item.kind {
            Kind::Scalar { text, .. } => out.push(Command {
                text: text.clone(),
                line: item.line,
            }),
            Kind::Null => cx.warn(&path, item.line, "empty command (a bare `-`), skipped"),
            Kind::Map(_) => {
                let found = "a mapping (YAML reads `: ` in an unquoted command as a key; quote the command)";
                return Err(cx.invalid(&path, item.line, "a command (a string)", found));
            }
            Kind::Seq(_) => {
                return Err(cx.invalid(&path, item.line, "a command (a string)", "a list"));
            }
        }
    }
    Ok(out)
}

/// Parses `on-failure`.
fn on_failure(cx: &Cx, e: &Entry) -> Res<OnFailure> {
    let Some(text) = e.value.as_scalar() else {
        return Err(cx.invalid(&e.path, e.value_line(), ON_FAILURE, e.value.describe()));
    };
    let bad = |found: String| cx.invalid(&e.path, e.value_line(), ON_FAILURE, found);
    match text {
        "ABORT" => return Ok(OnFailure::Abort),
        "CONTINUE" => return Ok(OnFailure::Continue),
        "RETRY" => {
            return Ok(OnFailure::Retry {
                count: DEFAULT_RETRIES,
                regex: None,
            });
        }
        _ => {}
    }
    let Some(rest) = text.strip_prefix("RETRY-") else {
        return Err(bad(e.value.describe()));
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (count, regex) = if all_digits(rest) {
        (Some(rest), None)
    } else {
        match rest.split_once('-') {
            Some((count, regex)) if all_digits(count) => (Some(count), Some(regex)),
            _ => (None, Some(rest)),
        }
    };
    let count = match count {
        None => DEFAULT_RETRIES,
        Some(digits) => match digits.parse::<u32>() {
            Ok(n) if n <= MAX_RETRIES => n,
            _ => {
                return Err(bad(format!(
                    "`{text}` (the retry count must be 0 to {MAX_RETRIES})"
                )));
            }
        },
    };
    if let Some(regex) = regex {
        if regex.is_empty() {
            return Err(bad(format!("`{text}` (nothing after the last `-`)")));
        }
        if let Err(err) = regex::Regex::new(regex) {
            let first = err
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            return Err(bad(format!(
                "`{text}` (`{regex}` is not a valid regex: {first})"
            )));
        }
    }
    Ok(OnFailure::Retry {
        count,
        regex: regex.map(str::to_string),
    })
}
