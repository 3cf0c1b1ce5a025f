//! Careless and hostile input, tried from the outside: options out of range, artifact names that
//! leave the build's folder, prices and ledgers whose sums overflow, processes that try to outlive
//! their build, and the smaller slips (a byte order mark, a NUL byte, links that archive nothing,
//! a store that is not there). Each build that starts ends with its record, log and ledger entry.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pushbuild::state::BuildState;

use crate::function::{Harness, MINUTE, builds, sample};
use crate::support::{Options, build, build_with};

fn pushbuild(args: &[&str], store: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env("NO_COLOR", "1")
        .output()
        .expect("pushbuild runs")
}

/// The store's files, relative to it.
fn stored(store: &Path) -> Vec<String> {
    crate::hooks::all_files(store)
        .into_iter()
        .filter_map(|f| {
            Path::new(&f)
                .strip_prefix(store)
                .ok()
                .map(|p| p.display().to_string())
        })
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A source directory holding `buildspec` as its buildspec.
fn project(root: &Path, buildspec: &str) -> PathBuf {
    let dir = root.join("proj");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("buildspec.yml"), buildspec).expect("write");
    dir
}

const HELLO: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi > out.txt\n";

#[test]
fn options_out_of_range_are_refused_naming_the_option_and_its_range() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = project(work.path(), HELLO);
    let dir = dir.to_str().expect("UTF-8");
    let store = work.path().join("store");
    let event = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/manual-build.json");
    let event = event.to_str().expect("UTF-8");
    let cases: [(&[&str], &str, &str); 7] = [
        (
            &["run", dir, "--timeout", "9223372036854775807"],
            "--timeout",
            "1..=129600",
        ),
        (&["run", dir, "--timeout", "0"], "--timeout", "1..=129600"),
        (
            &[
                "invoke",
                event,
                "--repos",
                dir,
                "--timeout",
                "18446744073709551615",
            ],
            "--timeout",
            "1..=900",
        ),
        (
            &["run", dir, "--price-per-minute", "1e307"],
            "--price-per-minute",
            "from 0 to 1000",
        ),
        (
            &["run", dir, "--price-per-minute", "NaN"],
            "--price-per-minute",
            "from 0 to 1000",
        ),
        (&["serve", "--jobs", "100000"], "--jobs", "1..=256"),
        (&["serve", "--queue", "0"], "--queue", "1..=100000"),
    ];
    for (args, option, range) in cases {
        let output = pushbuild(args, &store);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains(option) && message.contains(range),
            "{args:?}: {message}"
        );
        assert!(!message.contains("panicked"), "{message}");
    }
    assert!(!store.exists(), "nothing is stored for bad input");
}

#[test]
fn an_artifact_name_or_prefix_leaving_the_build_fails_upload_artifacts_and_keeps_the_build() {
    // Given a build whose primary artifact is fine and whose secondary ones are named out of
    // the build's folder, once by shell expansion and once by their s3-prefix,
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi > out.txt\n\
                artifacts:\n  files: [out.txt]\n  name: app\n  secondary-artifacts:\n    \
                up:\n      files: [out.txt]\n      name: $(echo ../..)/x\n    \
                prefixed:\n      files: [out.txt]\n      s3-prefix: ../../x\n";
    let built = build(spec, &[]);
    // then the build ran to its end: FAILED in UPLOAD_ARTIFACTS, with its record and log,
    assert_eq!(built.record.status, BuildState::Failed);
    let upload = built
        .record
        .phases
        .iter()
        .find(|p| p.phase == "UPLOAD_ARTIFACTS")
        .expect("the phase ran");
    let message = &upload.context.as_ref().expect("a context").message;
    assert!(message.contains("is not valid"), "{message}");
    for expected in [
        "Skipping the secondary artifact up: its name `../../x.zip` gives the object key \
         `artifacts/proj/b-test/../../x.zip`, which is not valid",
        "Skipping the secondary artifact prefixed: its name `prefixed.zip` and s3-prefix \
         `../../x` gives the object key `../../x/b-test/prefixed.zip`",
    ] {
        assert!(built.log.contains(expected), "{expected}\n{}", built.log);
    }
    // and the artifact stored before the bad ones is in the record, not orphaned.
    let names: Vec<&str> = built
        .record
        .artifacts
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["app.zip"]);
}

#[test]
fn a_bad_artifact_name_run_from_the_command_line_leaves_record_log_and_ledger() {
    let work = tempfile::tempdir().expect("temp dir");
    let spec = format!("{HELLO}artifacts:\n  files: ['**/*']\n  name: ../../../../escaped-name\n");
    let dir = project(work.path(), &spec);
    let store = work.path().join("store");
    let output = pushbuild(&["run", dir.to_str().expect("UTF-8")], &store);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let files = stored(&store);
    for kind in ["/build.json", "/build.log"] {
        assert!(
            files
                .iter()
                .any(|f| f.starts_with("builds/proj/") && f.ends_with(kind)),
            "{files:?}"
        );
    }
    assert!(files.iter().any(|f| f.starts_with("billing/")), "{files:?}");
    assert!(
        !files.iter().any(|f| f.contains("escaped-name")),
        "{files:?}"
    );
    assert!(
        !work.path().join("escaped-name.zip").exists() && !Path::new("/escaped-name.zip").exists()
    );
}

#[test]
fn a_byte_order_mark_a_nul_byte_and_links_that_archive_nothing() {
    // A buildspec written by a Windows editor builds.
    let built = build(&format!("\u{feff}{HELLO}"), &[]);
    assert_eq!(built.record.status, BuildState::Succeeded, "{}", built.log);

    // A NUL byte in a variable's value is bad input naming the variable, not a failed build.
    let work = tempfile::tempdir().expect("temp dir");
    let dir = project(
        work.path(),
        "version: 0.2\nenv:\n  variables:\n    GREETING: \"a\\0b\"\nphases:\n  build:\n    commands: [echo]\n",
    );
    let store = work.path().join("store");
    let output = pushbuild(&["run", dir.to_str().expect("UTF-8")], &store);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("buildspec.yml:4") && message.contains("env.variables.GREETING"),
        "{message}"
    );
    assert!(!store.exists());

    // A NUL byte arriving another way (an override) fails the build naming the variable.
    let built = build_with(
        HELLO,
        &[],
        Options {
            overrides: vec![("STAGE".into(), "a\0b".into())],
            ..Options::default()
        },
    );
    assert_eq!(built.record.status, BuildState::Failed);
    let context = built.record.phases[0].context.as_ref().expect("a context");
    assert!(
        context
            .message
            .contains("the variable STAGE holds a NUL byte"),
        "{context:?}"
    );

    // A pattern whose every match is skipped (a link out of the source, a link loop) matched
    // nothing that can be archived: the build fails, as for a pattern that matches nothing.
    let spec = format!(
        "{HELLO}      - ln -s /etc/hostname out-link\n      - ln -s loop loop\nartifacts:\n  files: [out-link, loop]\n"
    );
    let built = build(&spec, &[]);
    assert_eq!(built.record.status, BuildState::Failed, "{}", built.log);
    assert!(
        built
            .log
            .contains("no artifact paths can be archived for pattern `out-link`"),
        "{}",
        built.log
    );
}

#[test]
fn billing_refuses_a_missing_store_and_names_a_bad_or_overflowing_entry() {
    let work = tempfile::tempdir().expect("temp dir");
    let missing = work.path().join("does-not-exist");
    let output = pushbuild(&["billing", "--month", "2026-11"], &missing);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("does-not-exist") && message.contains("does not exist"),
        "{message}"
    );
    assert!(!missing.exists());

    // Two real builds, then their entries' minutes edited to near u64::MAX.
    let store = work.path().join("store");
    let dir = project(work.path(), HELLO);
    for _ in 0..2 {
        let output = pushbuild(&["run", dir.to_str().expect("UTF-8")], &store);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let entries: Vec<PathBuf> = stored(&store)
        .into_iter()
        .filter(|f| f.starts_with("billing/") && f.ends_with(".json"))
        .map(|f| store.join(f))
        .collect();
    assert_eq!(entries.len(), 2);
    let month = entries[0]
        .strip_prefix(store.join("billing"))
        .expect("under billing/")
        .iter()
        .take(2)
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("-");
    let edit = |path: &Path, field: &str, value: serde_json::Value| {
        let mut entry: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON");
        entry[field] = value;
        std::fs::write(path, entry.to_string()).expect("write");
    };
    for path in &entries {
        edit(path, "billed_minutes", serde_json::json!(u64::MAX / 2 + 1));
    }
    // The report reads the index; `--verify` reads the ledger and names what is wrong there.
    let output = pushbuild(&["billing", "--month", &month], &store);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = pushbuild(&["billing", "--month", &month, "--verify"], &store);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("billed minutes overflows at the ledger entry billing/"),
        "{message}"
    );

    // A cost that is not a number names the field.
    edit(&entries[0], "billed_minutes", serde_json::json!(1));
    edit(&entries[1], "cost_usd", serde_json::Value::Null);
    let output = pushbuild(&["billing", "--month", &month, "--verify"], &store);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("malformed at `cost_usd`"), "{message}");
}

/// Live processes whose command line holds `token` (a zombie's command line is empty).
pub fn processes_with(token: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(token) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// A unique sleep length for `n`: `sleep <token>` is found by its command line.
pub fn token(n: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("9{n}{:09}.{}", nanos, std::process::id())
}

/// Commands that leave processes behind every way a shell can: a background job, `setsid`, a
/// double fork, `nohup`, a session leader's own child.
pub fn leavers(tokens: &[String]) -> String {
    format!(
        "      - sleep {} &\n      - setsid sleep {} &\n      - (sleep {} &)\n      - nohup sleep {} >/dev/null 2>&1 &\n      - setsid sh -c 'sleep {} & sleep {}' &\n",
        tokens[0], tokens[1], tokens[2], tokens[3], tokens[4], tokens[5]
    )
}

#[test]
fn nothing_a_build_starts_outlives_it() {
    let tokens: Vec<String> = (0..7).map(token).collect();
    // Given a build that leaves processes behind every way, and then ends its shell with
    // `exit` after starting one more (so its shell is replaced mid-build),
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n{}      - sleep 0.2\n      - setsid sleep {} & exit 4\n  post_build:\n    commands:\n      - echo post ran\n",
        leavers(&tokens),
        tokens[6]
    );
    let built = build(&spec, &[]);
    // then the build ran as written,
    assert_eq!(built.record.status, BuildState::Failed, "{}", built.log);
    assert!(built.log.contains("post ran"), "{}", built.log);
    // and when it has ended, nothing it started is left.
    for token in &tokens {
        assert_eq!(processes_with(token), Vec::<String>::new(), "sleep {token}");
    }
}

#[test]
fn a_process_that_kills_its_keeper_is_swept_when_the_command_line_build_ends() {
    let tokens: Vec<String> = (0..6).map(|n| token(n + 20)).collect();
    let work = tempfile::tempdir().expect("temp dir");
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n{}      - sleep 0.2\n      - kill -9 $PPID\n      - echo still here\n",
        leavers(&tokens)
    );
    let dir = project(work.path(), &spec);
    let store = work.path().join("store");
    let output = pushbuild(&["run", dir.to_str().expect("UTF-8")], &store);
    assert!(output.status.code().is_some(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("still here"), "{stdout}");
    for token in &tokens {
        assert_eq!(processes_with(token), Vec::<String>::new(), "sleep {token}");
    }
}

#[test]
fn on_the_function_a_bad_artifact_name_is_a_failed_build_not_a_retry() {
    let spec = format!("{HELLO}artifacts:\n  files: ['**/*']\n  name: ../../../../escaped-name\n");
    let h = Harness::start(&[("ci/buildspec.yml", spec.as_bytes())], "escape", &[]);
    let builds = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0]["status"], "FAILED", "{}", builds[0]);
    let id = builds[0]["buildId"].as_str().expect("id");
    assert_eq!(h.record(id)["status"], "FAILED");
    assert!(h.log(id).contains("escaped-name.zip"), "{}", h.log(id));
    let keys = h.keys();
    assert!(keys.iter().any(|k| k.starts_with("billing/")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("escaped-name")), "{keys:?}");
}

#[test]
fn nothing_a_build_starts_outlives_the_invocation() {
    // Given a build that leaves processes behind every way and then kills its own keeper (so
    // they are adopted by the function itself),
    let tokens: Vec<String> = (0..6).map(|n| token(n + 40)).collect();
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n{}      - sleep 0.2\n      - kill -9 $PPID\n      - echo still here\n",
        leavers(&tokens)
    );
    let h = Harness::start(&[("ci/buildspec.yml", spec.as_bytes())], "leave", &[]);
    let builds = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(builds[0]["status"], "SUCCEEDED", "{}", builds[0]);
    // when the invocation has answered, nothing the build started is left.
    for token in &tokens {
        assert_eq!(processes_with(token), Vec::<String>::new(), "sleep {token}");
    }
    let id = builds[0]["buildId"].as_str().expect("id");
    assert!(h.log(id).contains("still here"));
}

#[test]
fn index_commands_name_a_bad_table_and_a_missing_one() {
    for args in [
        &["index", "create", "--table", "a b"][..],
        &["index", "create", "--table", "ab"][..],
        &[
            "billing",
            "--bucket",
            "b",
            "--table",
            "arn:aws:dynamodb:us-east-1:1:table/t",
        ][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .args(args)
            .env_remove("PUSHBUILD_INDEX_TABLE")
            .output()
            .expect("pushbuild runs");
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains("--table") && message.contains("expected a DynamoDB table name"),
            "{args:?}: {message}"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["billing", "--bucket", "pushbuild-artifacts"])
        .env_remove("PUSHBUILD_INDEX_TABLE")
        .output()
        .expect("pushbuild runs");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("--table NAME"), "{message}");
}

#[test]
fn a_build_cannot_read_the_environment_of_the_pushbuild_that_runs_it() {
    use std::os::unix::fs::PermissionsExt;
    // A build runs as pushbuild's own user, and `/proc/<pid>/environ` of its keeper's parent
    // would show it pushbuild's environment (the `PUSHBUILD_*` settings kept from builds). Root
    // reads every process's files whatever they say, so under root pushbuild runs as `nobody`.
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - >-\n        up=$(cut -d' ' -f4 /proc/$PPID/stat); echo \"above the keeper: $(cat /proc/$up/comm)\";\n        if cat /proc/$up/environ >/dev/null 2>&1; then echo 'its environment: readable'; else echo 'its environment: refused'; fi;\n        if cat /proc/$PPID/environ >/dev/null 2>&1; then echo \"the keeper's: readable\"; else echo \"the keeper's: refused\"; fi\n";
    let dir = project(work.path(), spec);
    for path in [&dir, &dir.join("buildspec.yml")] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let store = work.path().join("store");
    let binary = env!("CARGO_BIN_EXE_pushbuild");
    // The test's own user: /proc/self belongs to it.
    let root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc")) == 0;
    let mut command = if root {
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            binary,
        ]);
        command
    } else {
        Command::new(binary)
    };
    let output = command
        .args(["run", dir.to_str().expect("UTF-8"), "--store"])
        .arg(&store)
        .env("TMPDIR", work.path())
        .env("HOME", work.path())
        .env("NO_COLOR", "1")
        .env("PUSHBUILD_TEST_PROBE", "not for builds")
        .output()
        .expect("pushbuild runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", stderr(&output));
    // Whole lines: the log's "Running command" line holds the command's text.
    let said = |line: &str| stdout.lines().any(|l| l == line);
    assert!(said("above the keeper: pushbuild"), "{stdout}");
    // The keeper's environment (the build's own) is readable: the refusal is pushbuild's doing.
    assert!(said("the keeper's: readable"), "{stdout}");
    assert!(said("its environment: refused"), "{stdout}");
}
