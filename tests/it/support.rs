//! Shared helpers: run a buildspec through the real pipeline into a local store in a temp dir.

use pushbuild::names::BuildId;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushbuild::billing::Budget;
use pushbuild::buildspec;
use pushbuild::cost::Price;
use pushbuild::executor::log::Echo;
use pushbuild::index::{Books, SqliteIndex};
use pushbuild::names::{CommitId, ProjectName};
use pushbuild::pipeline::{self, BuildIdentity, BuildJob, BuildSettings, Metering, Ready, Work};
use pushbuild::record::BuildRecord;
use pushbuild::store::LocalStore;

/// The commit the tests' builds say they build.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// How the tests' builds run: no metering, no echo, only `PATH` from the environment, work
/// files, `HOME` and the index (`index.sqlite`, no caps) under `temp`.
pub fn settings(temp: &Path, usd_per_minute: f64) -> BuildSettings {
    BuildSettings {
        price: Price::per_minute(usd_per_minute),
        metering: Metering::off(),
        echo: Echo::Off,
        temp_root: temp.join("tmp"),
        base_env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
        runtimes: None,
        live_log: None,
        books: books(temp, Budget::default()),
        cache: Default::default(),
    }
}

/// The SQLite index in `dir`, with `budget`.
pub fn books(dir: &Path, budget: Budget) -> Books {
    let index = SqliteIndex::open(&SqliteIndex::path_in(dir)).expect("the index opens");
    Books::new(Arc::new(index), budget, Duration::from_secs(30))
}

/// Build `build_id` of `project` at [`COMMIT`] of `main`, started by `tests`.
pub fn identity(project: &str, build_id: &str) -> BuildIdentity {
    BuildIdentity {
        build_id: bid(build_id),
        source_version: Some("main".into()),
        commit: Some(CommitId::parse(COMMIT).expect("a commit id")),
        reference: Some("refs/heads/main".into()),
        ..BuildIdentity::new(ProjectName::parse(project).expect("a name"), "tests")
    }
}

/// A build of the buildspec in `src` (its `buildspec.yml`).
pub fn job(src: &Path, settings: &BuildSettings, identity: BuildIdentity) -> BuildJob {
    let parsed = buildspec::load(&src.join("buildspec.yml")).expect("the buildspec parses");
    let src = src.canonicalize().expect("canonical");
    // `HOME` beside the work files (settings() puts those in `<temp>/tmp`).
    let home = settings.temp_root.with_file_name("home");
    let ready = Ready {
        home: Some(home),
        ..Ready::new(parsed, src)
    };
    BuildJob::new(identity, settings, Work::Run(Box::new(ready)))
}

/// A finished build: its record, its log and where everything is.
pub struct Built {
    pub record: BuildRecord,
    pub log: String,
    pub src: tempfile::TempDir,
    /// Keeps the store (and the build's home) alive as long as the build is looked at.
    _store: tempfile::TempDir,
}

impl Built {
    /// (phase, status) pairs, in order.
    pub fn phases(&self) -> Vec<(String, String)> {
        self.record
            .phases
            .iter()
            .map(|p| (p.phase.clone(), p.status.as_str().to_string()))
            .collect()
    }

    /// Phase statuses as `PHASE=STATUS` words, for compact assertions.
    pub fn phase_line(&self) -> String {
        self.phases()
            .iter()
            .map(|(p, s)| format!("{p}={s}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The log with the markers' timestamps removed (markers keep `[Container]`).
    pub fn plain_log(&self) -> Vec<String> {
        self.log.lines().map(strip_stamp).collect()
    }

    /// The output lines (not markers), as printed.
    pub fn output(&self) -> Vec<String> {
        self.log
            .lines()
            .filter(|l| !l.starts_with("[Container]"))
            .map(str::to_string)
            .collect()
    }

    /// Whether some marker line contains `text`.
    pub fn has_marker(&self, text: &str) -> bool {
        self.log
            .lines()
            .any(|l| l.starts_with("[Container]") && l.contains(text))
    }

    /// The file names inside artifact `name` (`unzip -Z1`), sorted.
    pub fn artifact_listing(&self, name: &str) -> Vec<String> {
        let artifact = self
            .record
            .artifacts
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no artifact {name} in {:?}", self.record.artifacts));
        let path = artifact
            .uri
            .strip_prefix("file://")
            .expect("a local artifact");
        let out = std::process::Command::new("unzip")
            .arg("-Z1")
            .arg(path)
            .output()
            .expect("unzip runs");
        assert!(
            out.status.success(),
            "unzip -Z1 {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    pub fn artifact_path(&self, name: &str) -> PathBuf {
        let artifact = self
            .record
            .artifacts
            .iter()
            .find(|a| a.name == name)
            .expect("artifact");
        PathBuf::from(
            artifact
                .uri
                .strip_prefix("file://")
                .expect("a local artifact"),
        )
    }
}

fn strip_stamp(line: &str) -> String {
    // `[Container] 2026/11/22 23:10:00.123456 text`; output lines have no timestamp.
    match line.strip_prefix("[Container] ") {
        Some(rest) => format!("[Container] {}", rest.splitn(3, ' ').nth(2).unwrap_or("")),
        None => line.to_string(),
    }
}

/// How to run a test build.
#[derive(Default)]
pub struct Options {
    pub overrides: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
    pub timeout: Option<Duration>,
}

/// Writes `files` (path, content; a path ending in `@x` is made executable) into a new source
/// directory with `spec` as its buildspec, and builds it.
pub fn build(spec: &str, files: &[(&str, &str)]) -> Built {
    build_with(spec, files, Options::default())
}

pub fn build_with(spec: &str, files: &[(&str, &str)], options: Options) -> Built {
    let src = tempfile::tempdir().expect("temp dir");
    for (path, content) in files {
        let (path, executable) = match path.strip_suffix("@x") {
            Some(p) => (p, true),
            None => (*path, false),
        };
        write_file(src.path(), path, content, executable);
    }
    std::fs::write(src.path().join("buildspec.yml"), spec).expect("write buildspec");
    build_dir(src, options)
}

pub fn write_file(root: &Path, path: &str, content: &str, executable: bool) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
    std::fs::write(&full, content).expect("write");
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// Builds an already-populated source directory, as build 4 of `proj`.
pub fn build_dir(src: tempfile::TempDir, options: Options) -> Built {
    let store = tempfile::tempdir().expect("temp dir");
    let local = LocalStore::new(store.path().join("bucket"));
    let settings = settings(store.path(), 0.002);
    // The project has had three builds: this one is #4.
    for _ in 0..3 {
        settings
            .books
            .index
            .next_number(&pn("proj"))
            .expect("a number");
    }
    std::fs::create_dir_all(store.path().join("home")).expect("home");
    let identity = BuildIdentity {
        webhook_trigger: Some("branch/main".into()),
        source_repo_url: Some("https://example.invalid/proj.git".into()),
        ..identity("proj", "b-test")
    };
    let mut job = job(src.path(), &settings, identity);
    if let Work::Run(ready) = &mut job.work {
        ready.overrides = options.overrides;
        ready.secrets = options.secrets;
    }
    let job = job.with_deadline(options.timeout.map(|t| Instant::now() + t));
    let record = pipeline::run(&job, &local)
        .expect("pushbuild itself does not fail")
        .record;
    let log = std::fs::read_to_string(store.path().join("bucket/builds/proj/b-test/build.log"))
        .expect("the log is stored");
    let stored: BuildRecord = serde_json::from_slice(
        &std::fs::read(store.path().join("bucket/builds/proj/b-test/build.json"))
            .expect("the record is stored"),
    )
    .expect("the record parses");
    assert_eq!(stored, record, "the stored record is the returned one");
    Built {
        record,
        log,
        src,
        _store: store,
    }
}

/// A project name the test knows is valid.
fn pn(name: &str) -> ProjectName {
    ProjectName::parse(name).expect("a project name")
}

/// A build id the test knows is valid.
fn bid(id: &str) -> BuildId {
    BuildId::parse(id).expect("a build id")
}
