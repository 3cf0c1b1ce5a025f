use std::path::Path;

use super::*;

fn spec(commands: &str) -> BuildSpec {
    crate::buildspec::parse(
        "buildspec.yml",
        &format!("version: 0.2\nenv:\n  shell: sh\nphases:\n  build:\n    commands:\n{commands}"),
    )
    .unwrap()
    .spec
}

fn path() -> (String, String) {
    ("PATH".into(), std::env::var("PATH").unwrap_or_default())
}

/// Runs `spec` in `dir` with `env`, in `early` if given; the log's lines.
fn run_in(
    dir: &Path,
    spec: &BuildSpec,
    env: Vec<(String, String)>,
    early: impl FnOnce(&BuildLog) -> Option<EarlyShell>,
) -> Vec<String> {
    let log_path = dir.join("build.log");
    let log = BuildLog::new(
        Box::new(std::fs::File::create(&log_path).unwrap()),
        log::Echo::Off,
    );
    let early = early(&log);
    let req = BuildRequest {
        spec,
        src_dir: dir.to_path_buf(),
        work_dir: dir.to_path_buf(),
        env,
        secret_values: Vec::new(),
        deadline: Deadline::default(),
        runtimes: None,
    };
    let outcome = run_with(&req, &log, early).unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    drop(log);
    std::fs::read_to_string(log_path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("[Container] "))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_shell_started_early_is_given_what_it_lacks_and_loses_what_it_should_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec("      - echo \"A=$A B=${B-unset} C=$C\"\n");
    let tricky = "it's \"quoted\" $HOME `date` \\ end";
    let lines = run_in(
        dir.path(),
        &spec,
        vec![
            path(),
            ("A".into(), tricky.into()),
            ("C".into(), "kept".into()),
        ],
        |log| {
            EarlyShell::start(
                &spec,
                dir.path(),
                vec![
                    path(),
                    ("B".into(), "gone".into()),
                    ("C".into(), "kept".into()),
                ],
                dir.path(),
                log,
            )
        },
    );
    assert_eq!(lines, vec![format!("A={tricky} B=unset C=kept")]);
}

#[test]
fn a_value_the_early_shell_cannot_be_given_gets_a_shell_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec("      - printf '%s|' \"$A\"; echo\n");
    let lines = run_in(
        dir.path(),
        &spec,
        vec![path(), ("A".into(), "two\nlines".into())],
        |log| EarlyShell::start(&spec, dir.path(), vec![path()], dir.path(), log),
    );
    assert_eq!(lines, vec!["two".to_string(), "lines|".to_string()]);
}

#[test]
fn a_version_0_1_buildspec_starts_no_shell_early() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec("      - true\n");
    spec.version = Version::V0_1;
    let log = BuildLog::sink();
    assert!(EarlyShell::start(&spec, dir.path(), vec![path()], dir.path(), &log).is_none());
}
