//! The buildspec parser against the shared corpus of real buildspecs
//! (`../shared/corpus/buildspecs/`, read in place): every file loads or fails with a message
//! naming the file and a line, none panics, and the known oddities come out as expected.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use pushbuild::buildspec::{self, Parsed, PhaseName};

/// How many corpus files load (the others are 015, a PowerShell `env.shell`, and 050, not YAML).
const LOADED: usize = 51;

/// One corpus file and what parsing it gave: the parse, or the error's text.
struct Outcome {
    name: String,
    result: Result<Parsed, String>,
}

fn corpus() -> Vec<Outcome> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/buildspecs");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .map(|e| e.path())
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        })
        .filter(|p| p.is_file())
        .filter(|p| !p.ends_with("README.md") && !p.ends_with("INDEX.tsv"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let result = catch_unwind(AssertUnwindSafe(|| buildspec::load(&path)))
                .unwrap_or_else(|_| panic!("{name}: the parser panicked"))
                .map_err(|e| e.to_string());
            Outcome { name, result }
        })
        .collect()
}

/// The outcome for the file whose name starts with `prefix` (as `036-`).
fn file<'a>(all: &'a [Outcome], prefix: &str) -> &'a Outcome {
    all.iter()
        .find(|o| o.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no corpus file {prefix}*"))
}

fn loaded<'a>(all: &'a [Outcome], prefix: &str) -> &'a Parsed {
    let o = file(all, prefix);
    o.result
        .as_ref()
        .unwrap_or_else(|e| panic!("{} should load: {e}", o.name))
}

fn error<'a>(all: &'a [Outcome], prefix: &str) -> &'a str {
    let o = file(all, prefix);
    o.result
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("{} should not load", o.name))
}

/// Whether `message` holds `name:` followed by a line number.
fn names_file_and_line(message: &str, name: &str) -> bool {
    message.match_indices(&format!("{name}:")).any(|(at, m)| {
        let rest = &message[at + m.len()..];
        rest.starts_with(|c: char| c.is_ascii_digit())
    })
}

#[test]
fn every_file_loads_or_names_file_and_line() {
    let all = corpus();
    assert_eq!(all.len(), 53, "the corpus README says 53 files");
    for o in &all {
        if let Err(message) = &o.result {
            assert!(
                names_file_and_line(message, &o.name),
                "{}: {message}",
                o.name
            );
        }
    }
    let ok = all.iter().filter(|o| o.result.is_ok()).count();
    let failed: Vec<&str> = all
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| &o.name[..3])
        .collect();
    assert_eq!((ok, failed), (LOADED, vec!["015", "050"]));
}

#[test]
fn known_oddities() {
    let all = corpus();

    let crlf = error(&all, "050-");
    assert!(crlf.contains("invalid YAML"), "{crlf}");

    let windows = error(&all, "015-");
    assert!(
        windows.contains("env.shell") && windows.contains("Windows"),
        "{windows}"
    );

    let warns = |prefix: &str, line: usize, path: &str, word: &str| {
        let parsed = loaded(&all, prefix);
        let hit = parsed
            .warnings
            .iter()
            .any(|w| (w.line, w.path.as_str()) == (line, path) && w.message.contains(word));
        assert!(
            hit,
            "{prefix}: no warning on line {line} at {path} mentioning {word}: {:?}",
            parsed.warnings
        );
    };
    warns(
        "036-",
        8,
        "phases.install.Commands",
        "did you mean `commands`",
    );
    for line in 6..=11 {
        warns("045-", line, "env.variables.key", "duplicate key `key`");
    }
    warns("033-", 20, "phases.build.commands[3]", "empty command");
    warns("054-", 3, "environment_variables", "legacy");

    let legacy = &loaded(&all, "054-").spec.env.variables;
    assert!(!legacy.is_empty(), "054: legacy variables not read");

    let finally_only = loaded(&all, "027-").spec.phases.get(PhaseName::PostBuild);
    let finally_only = finally_only.unwrap_or_else(|| panic!("027: no post_build"));
    assert!(finally_only.commands.is_empty() && !finally_only.finally.is_empty());

    // 009 writes `key :`, a space before the colon; YAML reads it as `key`.
    assert!(loaded(&all, "009-").warnings.is_empty());
}

#[test]
fn details_survive() {
    let all = corpus();
    // Booleans in env.variables keep their text.
    let vars = &loaded(&all, "002-").spec.env.variables;
    assert!(vars.iter().any(|(_, v)| v == "true"), "{vars:?}");
    // Quoted versions load (044).
    assert_eq!(loaded(&all, "044-").spec.version, buildspec::Version::V0_2);
    assert_eq!(loaded(&all, "023-").spec.version, buildspec::Version::V0_1);
    // Commands carry the line they start on.
    let build = loaded(&all, "033-")
        .spec
        .phases
        .get(PhaseName::Build)
        .cloned()
        .unwrap_or_default();
    assert!(build.commands.iter().all(|c| c.line > 1));
}

/// Every prefix of every corpus file (cut at each line, and mid-line) parses or fails cleanly:
/// half-typed buildspecs must not panic either.
#[test]
fn truncated_files_never_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/buildspecs");
    let all = corpus();
    let mut parses = 0;
    for o in &all {
        let text = std::fs::read_to_string(dir.join(&o.name)).unwrap_or_default();
        let cuts = text.char_indices().map(|(i, _)| i).filter(|&i| {
            let rest = &text[i..];
            rest.starts_with('\n') || rest.starts_with(':') || rest.starts_with(['"', '\'', '|'])
        });
        for cut in cuts {
            let prefix = &text[..cut];
            let result = catch_unwind(|| buildspec::parse(&o.name, prefix).map(|_| ()));
            let Ok(result) = result else {
                panic!("{} cut at byte {cut}: panicked", o.name)
            };
            if let Err(e) = result {
                assert!(
                    names_file_and_line(&e.to_string(), &o.name),
                    "{}: {e}",
                    o.name
                );
            }
            parses += 1;
        }
    }
    assert!(parses > 1000, "only {parses} prefixes tried");
}

#[test]
fn the_real_buildspecs_that_run_docker_are_found() {
    let found: Vec<String> = corpus()
        .iter()
        .filter_map(|o| {
            let parsed = o.result.as_ref().ok()?;
            let docker = buildspec::docker_use(&parsed.spec)?;
            Some(format!("{} {}", &o.name[..3], docker.key))
        })
        .collect();
    // 11 of the 55: the rest that mention Docker run it through `make` targets or scripts
    // (042, 013), or only name a Dockerfile (048).
    assert_eq!(
        found,
        [
            "002 phases.install.runtime-versions.docker",
            "008 phases.install.commands[0]",
            "011 phases.pre_build.commands[0]",
            "019 phases.build.commands[5]",
            "022 phases.install.runtime-versions.docker",
            "027 phases.pre_build.commands[0]",
            "029 phases.pre_build.commands[0]",
            "038 phases.pre_build.commands[1]",
            "039 phases.install.runtime-versions.docker",
            "040 phases.build.commands[0]",
            "043 phases.install.runtime-versions.docker",
        ]
    );
}
