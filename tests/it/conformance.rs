//! The conformance suite: one case per rule of CodeBuild's build semantics (phase flow, the one
//! shell, environment, deadline, log) as pushbuild implements them. Each case is a buildspec, and
//! asserts the phase statuses, environment values, log markers and artifacts it must give.

use std::time::Duration;

use crate::support::{Options, build, build_with};

const ALL_OK: &str = "INSTALL=SUCCEEDED PRE_BUILD=SUCCEEDED BUILD=SUCCEEDED POST_BUILD=SUCCEEDED";

#[test]
fn one_shell_carries_cd_export_variables_and_functions_across_commands_and_phases() {
    let b = build(
        r#"version: 0.2
phases:
  install:
    commands:
      - mkdir -p sub/deeper && cd sub
      - export EXPORTED=e; PLAIN=p
      - greet() { echo "hi $1"; }
  build:
    commands:
      - cd deeper
      - echo "$EXPORTED$PLAIN $(basename "$PWD")"
      - greet there
"#,
        &[],
    );
    assert_eq!(b.phase_line(), ALL_OK);
    assert_eq!(b.output(), ["ep deeper", "hi there"]);
}

#[test]
fn each_command_is_judged_on_its_own_and_a_multi_line_one_by_its_last_status() {
    let b = build(
        r#"version: 0.2
phases:
  build:
    commands:
      - |
        false
        echo "a failure inside, then success"
      - echo next
      - |
        echo "success, then a failure last"
        false
      - echo never
"#,
        &[],
    );
    assert_eq!(b.record.phases[2].status.as_str(), "FAILED");
    assert_eq!(
        b.output(),
        [
            "a failure inside, then success",
            "next",
            "success, then a failure last"
        ]
    );
    assert!(
        b.has_marker("Command did not exit successfully echo \"success, then a failure last\"")
    );
    assert!(b.has_marker("exit status 1"));
}

#[test]
fn phases_run_in_order_then_artifacts_are_uploaded() {
    let b = build(
        r#"version: 0.2
phases:
  post_build:
    commands: [echo post]
  build:
    commands: [echo build, echo out > out.txt]
  pre_build:
    commands: [echo pre]
  install:
    commands: [echo install]
artifacts:
  files: [out.txt]
"#,
        &[],
    );
    assert_eq!(b.output(), ["install", "pre", "build", "post"]);
    assert_eq!(
        b.phase_line(),
        format!("{ALL_OK} UPLOAD_ARTIFACTS=SUCCEEDED")
    );
    let entering: Vec<String> = b
        .plain_log()
        .into_iter()
        .filter_map(|l| {
            l.strip_prefix("[Container] Entering phase ")
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        entering,
        [
            "INSTALL",
            "PRE_BUILD",
            "BUILD",
            "POST_BUILD",
            "UPLOAD_ARTIFACTS"
        ]
    );
    assert_eq!(b.record.status.as_str(), "SUCCEEDED");
}

#[test]
fn a_failing_command_skips_the_rest_of_its_phase_and_runs_finally() {
    let b = build(
        r#"version: 0.2
phases:
  build:
    commands:
      - echo one
      - exit_code() { return 3; }; exit_code
      - echo skipped
    finally:
      - echo finally-one
      - echo finally-two
"#,
        &[],
    );
    assert_eq!(b.output(), ["one", "finally-one", "finally-two"]);
    assert_eq!(b.record.phases[2].status.as_str(), "FAILED");
    assert!(b.has_marker("exit status 3"));
    let message = b.record.phases[2]
        .context
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(message.starts_with("COMMAND_EXECUTION_ERROR"), "{message}");
    assert!(message.contains("exit status 3"), "{message}");
}

#[test]
fn a_failing_finally_fails_a_phase_whose_commands_succeeded() {
    let b = build(
        "version: 0.2\nphases:\n  build:\n    commands: [echo ok]\n    finally: [\"false\"]\n",
        &[],
    );
    assert_eq!(b.record.phases[2].status.as_str(), "FAILED");
    assert_eq!(b.record.status.as_str(), "FAILED");
}

#[test]
fn a_failed_install_ends_the_build_without_artifacts() {
    let b = build(
        r#"version: 0.2
phases:
  install:
    commands: ["false"]
  pre_build:
    commands: [echo pre]
  build:
    commands: [echo build]
  post_build:
    commands: [echo post]
artifacts:
  files: [buildspec.yml]
"#,
        &[],
    );
    assert_eq!(b.phase_line(), "INSTALL=FAILED");
    assert!(b.output().is_empty());
    assert!(b.record.artifacts.is_empty());
    assert_eq!(b.record.status.as_str(), "FAILED");
}

#[test]
fn a_failed_pre_build_ends_the_build_without_build_or_post_build() {
    let b = build(
        r#"version: 0.2
phases:
  pre_build:
    commands: ["false"]
    finally: [echo pre-finally]
  build:
    commands: [echo build]
  post_build:
    commands: [echo post]
"#,
        &[],
    );
    assert_eq!(b.phase_line(), "INSTALL=SUCCEEDED PRE_BUILD=FAILED");
    assert_eq!(b.output(), ["pre-finally"]);
}

#[test]
fn a_failed_build_still_runs_post_build_with_succeeding_zero_and_uploads_artifacts() {
    let b = build(
        r#"version: 0.2
phases:
  pre_build:
    commands: [echo "pre $CODEBUILD_BUILD_SUCCEEDING"]
  build:
    commands:
      - echo partial > partial.txt
      - "false"
  post_build:
    commands: [echo "post $CODEBUILD_BUILD_SUCCEEDING"]
artifacts:
  files: [partial.txt]
"#,
        &[],
    );
    assert_eq!(
        b.phase_line(),
        "INSTALL=SUCCEEDED PRE_BUILD=SUCCEEDED BUILD=FAILED POST_BUILD=SUCCEEDED UPLOAD_ARTIFACTS=SUCCEEDED"
    );
    assert_eq!(b.output(), ["pre 1", "post 0"]);
    assert_eq!(b.record.status.as_str(), "FAILED");
    assert_eq!(b.artifact_listing("proj.zip"), ["partial.txt"]);
}

#[test]
fn on_failure_continue_records_the_failure_and_goes_on() {
    let b = build(
        r#"version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands: ["false", echo skipped]
  pre_build:
    commands: [echo "pre $CODEBUILD_BUILD_SUCCEEDING"]
  build:
    commands: [echo build]
"#,
        &[],
    );
    assert_eq!(
        b.phase_line(),
        "INSTALL=FAILED PRE_BUILD=SUCCEEDED BUILD=SUCCEEDED POST_BUILD=SUCCEEDED"
    );
    assert_eq!(b.output(), ["pre 0", "build"]);
    assert_eq!(b.record.status.as_str(), "FAILED");
    assert!(b.has_marker("on-failure is CONTINUE"));
}

#[test]
fn on_failure_retry_count_reruns_the_phase_until_it_passes() {
    // Fails twice, then passes: RETRY-2 allows exactly enough attempts.
    let b = build(
        r#"version: 0.2
phases:
  build:
    on-failure: RETRY-2
    commands:
      - echo x >> attempts
      - test "$(wc -l < attempts)" -ge 3
"#,
        &[],
    );
    assert_eq!(b.record.phases[2].status.as_str(), "SUCCEEDED");
    assert_eq!(b.record.phases[2].attempts, 3);
    assert!(b.has_marker("retrying it (retry 2 of 2)"));

    let b = build(
        "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-1\n    commands: [echo x >> attempts, \"false\"]\n",
        &[],
    );
    assert_eq!(b.record.phases[2].status.as_str(), "FAILED");
    assert_eq!(b.record.phases[2].attempts, 2);
    assert_eq!(
        std::fs::read_to_string(b.src.path().join("attempts")).unwrap(),
        "x\nx\n"
    );
}

#[test]
fn on_failure_retry_regex_retries_only_when_the_output_matches() {
    let spec = |regex: &str| {
        format!(
            "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-3-{regex}\n    commands:\n      - echo x >> attempts\n      - echo 'connection reset by peer'; false\n"
        )
    };
    let matching = build(&spec("reset by"), &[]);
    assert_eq!(
        matching.record.phases[2].attempts, 4,
        "three retries after the first run"
    );
    let other = build(&spec("disk full"), &[]);
    assert_eq!(
        other.record.phases[2].attempts, 1,
        "no retry when the output does not match"
    );
    assert_eq!(
        std::fs::read_to_string(other.src.path().join("attempts")).unwrap(),
        "x\n"
    );
}

#[test]
fn the_callers_overrides_beat_the_buildspecs_variables_which_keep_their_source_text() {
    let b = build_with(
        r#"version: 0.2
env:
  variables:
    KEPT: from-spec
    REPLACED: from-spec
    NUMBER: 1.10
    FLAG: yes
phases:
  build:
    commands: [echo "$KEPT $REPLACED $NUMBER $FLAG"]
"#,
        &[],
        Options {
            overrides: vec![("REPLACED".into(), "from-caller".into())],
            ..Options::default()
        },
    );
    assert_eq!(b.output(), ["from-spec from-caller 1.10 yes"]);
}

#[test]
fn codebuild_variables_describe_the_build_and_home_is_writable() {
    let b = build(
        r#"version: 0.2
phases:
  build:
    commands:
      - echo "id=$CODEBUILD_BUILD_ID"
      - echo "number=$CODEBUILD_BUILD_NUMBER"
      - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"
      - echo "initiator=$CODEBUILD_INITIATOR"
      - echo "resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION"
      - echo "version=$CODEBUILD_SOURCE_VERSION"
      - echo "repo=$CODEBUILD_SOURCE_REPO_URL"
      - echo "trigger=$CODEBUILD_WEBHOOK_TRIGGER"
      - echo "ci=$CI"
      - test "$CODEBUILD_SRC_DIR" = "$PWD" && echo src-is-cwd
      - case "$CODEBUILD_START_TIME" in *[!0-9]*|"") echo bad-start ;; *) echo start-is-millis ;; esac
      - touch "$HOME/.probe" && echo home-writable
"#,
        &[],
    );
    assert_eq!(
        b.output(),
        [
            "id=proj:b-test",
            "number=4",
            "succeeding=1",
            "initiator=tests",
            "resolved=0123456789abcdef0123456789abcdef01234567",
            "version=main",
            "repo=https://example.invalid/proj.git",
            "trigger=branch/main",
            "ci=true",
            "src-is-cwd",
            "start-is-millis",
            "home-writable",
        ]
    );
}

#[test]
fn exported_variables_are_captured_at_the_end_of_the_build() {
    let b = build(
        r#"version: 0.2
env:
  variables:
    FROM_SPEC: spec-value
  exported-variables: [VERSION, FROM_SPEC, NEVER_SET]
phases:
  build:
    commands:
      - VERSION=1.2.3
  post_build:
    commands:
      - VERSION="$VERSION-final"
"#,
        &[],
    );
    let exported = &b.record.exported_variables;
    assert_eq!(
        exported.get("VERSION").map(String::as_str),
        Some("1.2.3-final")
    );
    assert_eq!(
        exported.get("FROM_SPEC").map(String::as_str),
        Some("spec-value")
    );
    assert_eq!(exported.get("NEVER_SET").map(String::as_str), Some(""));
}

#[test]
fn a_deadline_kills_the_running_commands_and_still_produces_artifacts_log_and_record() {
    let b = build_with(
        r#"version: 0.2
phases:
  build:
    commands:
      - echo made > made.txt
      - (sleep 30; echo late > late.txt) & sleep 30
  post_build:
    commands: [echo post]
artifacts:
  files: ["*.txt"]
"#,
        &[],
        Options {
            timeout: Some(Duration::from_millis(1500)),
            ..Options::default()
        },
    );
    assert_eq!(
        b.phase_line(),
        "INSTALL=SUCCEEDED PRE_BUILD=SUCCEEDED BUILD=TIMED_OUT UPLOAD_ARTIFACTS=SUCCEEDED"
    );
    assert_eq!(b.record.status.as_str(), "TIMED_OUT");
    assert!(
        b.record.duration_ms < 10_000,
        "stopped at the deadline: {} ms",
        b.record.duration_ms
    );
    assert!(b.has_marker("Build timed out during phase BUILD"));
    assert_eq!(b.artifact_listing("proj.zip"), ["made.txt"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !b.src.path().join("late.txt").exists(),
        "the background job was killed"
    );
}

#[test]
fn the_log_has_output_as_printed_and_timestamped_codebuild_phase_markers() {
    let b = build(
        "version: 0.2\nphases:\n  build:\n    commands: [echo hello, \"false\"]\n",
        &[],
    );
    assert!(
        b.log.lines().any(|l| l == "hello"),
        "output as printed, as CodeBuild logs it: {}",
        b.log
    );
    for line in b.log.lines().filter(|l| *l != "hello") {
        let stamp = line
            .strip_prefix("[Container] ")
            .unwrap_or_else(|| panic!("only the output is not a marker: {line}"));
        let bytes = stamp.as_bytes();
        assert!(
            bytes.len() > 27
                && bytes[4] == b'/'
                && bytes[7] == b'/'
                && bytes[13] == b':'
                && bytes[19] == b'.',
            "no timestamp: {line}"
        );
    }
    let log = b.plain_log();
    for expected in [
        "[Container] Entering phase BUILD",
        "[Container] Running command echo hello",
        "hello",
        "[Container] Command did not exit successfully false exit status 1",
        "[Container] Phase complete: BUILD State: FAILED",
        "[Container] Phase complete: POST_BUILD State: SUCCEEDED",
    ] {
        assert!(
            log.iter().any(|l| l == expected),
            "missing `{expected}` in {log:#?}"
        );
    }
}

#[test]
fn secret_values_are_masked_wherever_they_appear() {
    let b = build_with(
        r#"version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /prod/db/password
  exported-variables: [LEAK]
phases:
  build:
    commands:
      - echo "password is $DB_PASSWORD"
      - echo "$DB_PASSWORD" >&2
      - LEAK="x-$DB_PASSWORD"
"#,
        &[],
        Options {
            secrets: vec![("DB_PASSWORD".into(), "hunter2-secret".into())],
            ..Options::default()
        },
    );
    assert_eq!(b.output(), ["password is ***", "***"]);
    assert!(!b.log.contains("hunter2-secret"));
    assert_eq!(
        b.record.exported_variables.get("LEAK").map(String::as_str),
        Some("x-***")
    );
}

#[test]
fn version_0_1_runs_each_command_in_its_own_shell() {
    let b = build(
        "version: 0.1\nphases:\n  build:\n    commands:\n      - export A=set; cd /\n      - echo \"A=$A dir=$(basename \"$PWD\")\"\n",
        &[],
    );
    let out = b.output();
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("A= dir="), "{out:?}");
    assert_ne!(out[0], "A= dir=/");
}

#[test]
fn accepted_but_ignored_keys_are_named_in_the_log() {
    let b = build(
        r#"version: 0.2
run-as: builder
cache:
  paths: ["/root/.m2/**/*"]
phases:
  install:
    runtime-versions:
      nodejs: 20
    commands: [echo ok]
"#,
        &[],
    );
    assert_eq!(b.phase_line(), ALL_OK);
    assert!(b.has_marker("Ignoring run-as"));
    // The cache is acted on now (tests/it/cache.rs): not called ignored.
    assert!(!b.has_marker("Ignoring cache"));
    assert!(b.has_marker("runtime-versions (nodejs 20)"));
}

#[test]
fn log_lines_are_written_as_they_are_printed_not_at_the_end() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use pushbuild::executor::log::{BuildLog, Echo};
    use pushbuild::executor::{self, BuildRequest};

    /// Records when each line reached the log.
    #[derive(Clone, Default)]
    struct Arrivals(Arc<Mutex<Vec<(Instant, String)>>>);
    impl Write for Arrivals {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let now = Instant::now();
            let mut lines = self.0.lock().unwrap();
            for line in String::from_utf8_lossy(buf).lines() {
                lines.push((now, line.to_string()));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let parsed = pushbuild::buildspec::parse(
        "buildspec.yml",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo first; sleep 1; echo second\n",
    )
    .expect("parses");
    let dir = tempfile::tempdir().unwrap();
    let arrivals = Arrivals::default();
    let log = BuildLog::new(Box::new(arrivals.clone()), Echo::Off);
    let request = BuildRequest {
        spec: &parsed.spec,
        src_dir: dir.path().to_path_buf(),
        work_dir: dir.path().to_path_buf(),
        env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
        secret_values: vec![],
        deadline: executor::Deadline::default(),
        runtimes: None,
    };
    let outcome = executor::run(&request, &log).expect("the shell starts");
    assert_eq!(outcome.status.as_str(), "SUCCEEDED");
    let lines = arrivals.0.lock().unwrap().clone();
    let at = |text: &str| {
        lines
            .iter()
            .find(|(_, l)| l == text)
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no line {text} in {lines:#?}"))
    };
    let gap = at("second").duration_since(at("first"));
    assert!(
        gap >= Duration::from_millis(800),
        "first reached the log only {gap:?} before second"
    );
}
