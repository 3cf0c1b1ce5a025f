use chrono::Datelike;

use super::*;
use crate::names::BuildId;
use crate::state::BuildState;
use std::sync::Arc;

use crate::billing::{self, Budget};
use crate::cost::Price;
use crate::index::{Books, SqliteIndex};
use crate::names::ProjectName;
use crate::store::LocalStore;

fn settings(temp: &Path) -> BuildSettings {
    BuildSettings {
        price: Price::per_minute(0.01),
        metering: Metering::off(),
        echo: Echo::Off,
        temp_root: temp.to_path_buf(),
        base_env: Vec::new(),
        runtimes: None,
        live_log: None,
        books: Books::new(
            Arc::new(SqliteIndex::open(&SqliteIndex::path_in(temp)).unwrap()),
            Budget::default(),
            std::time::Duration::from_secs(30),
        ),
        cache: Default::default(),
    }
}

fn identity(build_id: &str) -> BuildIdentity {
    BuildIdentity {
        build_id: BuildId::parse(build_id).unwrap(),
        reference: Some("refs/heads/main".into()),
        ..BuildIdentity::new(ProjectName::parse("web").unwrap(), "test")
    }
}

#[test]
fn a_build_that_never_ran_is_recorded_as_failed_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let work = Work::CannotStart {
        context: PhaseContext::new(ContextCode::ClientError, "`big.bin` is too large"),
        notes: vec!["Fetched 3 files".into()],
    };
    let job = BuildJob::new(identity("b1"), &settings(dir.path()), work);
    let StoredBuild { record, record_uri } = run(&job, &store).unwrap();
    assert_eq!(record.status, BuildState::Failed);
    assert_eq!(record.billed_minutes, 1);
    assert_eq!(record.phases[0].phase, "DOWNLOAD_SOURCE");
    assert_eq!(
        record.phases[0].context.as_ref().map(ToString::to_string),
        Some("CLIENT_ERROR: `big.bin` is too large".to_string())
    );
    assert!(
        record_uri.ends_with("builds/web/b1/build.json"),
        "{record_uri}"
    );
    let log = String::from_utf8(store.get("builds/web/b1/build.log").unwrap().unwrap()).unwrap();
    assert!(
        log.contains("Fetched 3 files") && log.contains("big.bin"),
        "{log}"
    );
    assert!(
        log.contains("Phase context status code: CLIENT_ERROR Message: `big.bin` is too large"),
        "the same phase lines as a build that ran: {log}"
    );
    assert!(store.get("builds/web/b1/build.json").unwrap().is_some());
    let (year, month) = (record.start_time.year(), record.start_time.month());
    let ledger = billing::read_month(&store, year, month).unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0], billing::LedgerEntry::from_record(&record));
    assert_eq!(ledger[0].status, BuildState::Failed);
    let settings = settings(dir.path());
    assert_eq!(settings.books.index.next_number(&pn("web")).unwrap(), 2);
}

#[test]
fn a_refused_build_is_skipped_with_its_reason_in_a_field_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let work = Work::Refused {
        reason: "the month's 5 billed minutes reached the cap of 5".into(),
    };
    let job = BuildJob::new(identity("b1"), &settings(dir.path()), work);
    let StoredBuild { record, .. } = run(&job, &store).unwrap();
    assert_eq!(record.status, BuildState::Skipped);
    assert_eq!(record.billed_minutes, 0);
    assert_eq!(
        record.skip_reason.as_deref(),
        Some("the month's 5 billed minutes reached the cap of 5")
    );
    assert!(record.warnings.is_empty(), "{:?}", record.warnings);
    let json: serde_json::Value =
        serde_json::from_slice(&store.get("builds/web/b1/build.json").unwrap().unwrap()).unwrap();
    assert_eq!(json["status"], "SKIPPED");
    assert_eq!(
        json["skip_reason"],
        "the month's 5 billed minutes reached the cap of 5"
    );
    let log = String::from_utf8(store.get("builds/web/b1/build.log").unwrap().unwrap()).unwrap();
    assert!(
        log.contains("cap of 5") && log.starts_with("[Container] "),
        "{log}"
    );
}

#[test]
fn a_shell_that_cannot_start_is_pushbuilds_failure_and_stores_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let parsed = crate::buildspec::parse(
        "buildspec.yml",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - true\n",
    )
    .unwrap();
    // No `bash` can be found on this PATH.
    let mut settings = settings(dir.path());
    settings.base_env = vec![(
        "PATH".into(),
        dir.path().join("nowhere").display().to_string(),
    )];
    let job = BuildJob::new(
        identity("b1"),
        &settings,
        Work::Run(Box::new(Ready::new(parsed, src))),
    );
    let err = run(&job, &store).unwrap_err();
    assert!(
        matches!(
            err,
            PipelineError::Executor(ExecutorError::ShellStart {
                program: "bash",
                ..
            })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("cannot start the build's shell `bash`"),
        "{err}"
    );
    assert!(err.retryable());
    assert!(store.get("builds/web/b1/build.json").unwrap().is_none());
}

/// The processes whose working directory is `dir`: a build's shells run in its source.
fn processes_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == dir))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn shell_ready(dir: &Path, commands: &str) -> Ready {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let parsed = crate::buildspec::parse(
        "buildspec.yml",
        &format!("version: 0.2\nenv:\n  shell: sh\n  variables:\n    QUOTED: \"it's\"\nphases:\n  build:\n    commands:\n{commands}"),
    )
    .unwrap();
    Ready::new(parsed, std::fs::canonicalize(src).unwrap())
}

fn shell_settings(dir: &Path) -> BuildSettings {
    let mut settings = settings(dir);
    settings.base_env = vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())];
    settings
}

#[test]
fn a_shell_started_while_the_build_begins_has_the_builds_number_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let settings = shell_settings(dir.path());
    let commands = "      - echo \"number=$CODEBUILD_BUILD_NUMBER quoted=$QUOTED\"\n      - env | grep -c '^CODEBUILD_BUILD_NUMBER='\n";
    for (n, id) in [(1, "b1"), (2, "b2")] {
        let ready = shell_ready(dir.path(), commands);
        let src = ready.src_dir.clone();
        let job = BuildJob::new(identity(id), &settings, Work::Run(Box::new(ready)));
        let StoredBuild { record, .. } = run(&job, &store).unwrap();
        assert_eq!(record.status, BuildState::Succeeded);
        let log = String::from_utf8(
            store
                .get(&format!("builds/web/{id}/build.log"))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        // Exported before the first command, as if it had been there from the start.
        assert!(
            log.contains(&format!("\nnumber={n} quoted=it's\n")),
            "{log}"
        );
        assert!(log.lines().any(|line| line == "1"), "{log}");
        assert_eq!(processes_in(&src), Vec::<String>::new());
        // The work directory (the log's and the command file's) went with the build.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("pushbuild-"))
            .collect();
        assert_eq!(left, Vec::<String>::new());
    }
}

#[test]
fn a_build_the_budget_refuses_leaves_no_shell_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let mut settings = shell_settings(dir.path());
    let ready = shell_ready(dir.path(), "      - echo never\n");
    settings.books = Books::new(
        settings.books.index.clone(),
        Budget {
            monthly_minutes: Some(0),
            per_repository: Vec::new(),
        },
        std::time::Duration::from_secs(30),
    );
    let src = ready.src_dir.clone();
    let job = BuildJob::new(identity("b1"), &settings, Work::Run(Box::new(ready)));
    let StoredBuild { record, .. } = run(&job, &store).unwrap();
    assert_eq!(record.status, BuildState::Skipped);
    let log = String::from_utf8(store.get("builds/web/b1/build.log").unwrap().unwrap()).unwrap();
    // The shell started for it ended quietly: nothing of it is in the log.
    assert!(!log.contains("never") && !log.contains("Killed"), "{log}");
    assert_eq!(processes_in(&src), Vec::<String>::new());
}

/// A project name the test knows is valid.
fn pn(name: &str) -> ProjectName {
    ProjectName::parse(name).expect("a project name")
}
