//! The CodeCommit source through the real SDK client, over HTTP, against the stand-in serving
//! real git repositories made here.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use pushbuild::names::{CommitId, Repo, RepositoryName, SourceVersion};
use pushbuild::source::{CodeCommitSource, FetchSummary, Source, SourceError};

use crate::codecommit_standin::{StandIn, git, init_repo};

const REPO: &str = "app";

fn named(name: &str) -> Repo {
    Repo::CodeCommit(RepositoryName::parse(name).unwrap())
}

fn version(text: impl AsRef<str>) -> SourceVersion {
    SourceVersion::parse(text.as_ref()).unwrap()
}

fn id(text: &str) -> CommitId {
    CommitId::parse(text).unwrap()
}

/// A repository with nested folders, an executable, a link, a submodule entry and two commits.
/// Returns the repository and (first commit, second commit).
fn sample_repo() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init_repo(root);
    std::fs::write(root.join("README.md"), "# app\n").unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "first"]);
    let first = git(root, &["rev-parse", "HEAD"]);

    std::fs::create_dir_all(root.join("src/deep/er")).unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(
        root.join("src/deep/er/data.bin"),
        (0..=255u8).cycle().take(70_000).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(root.join("src/deep/notes.txt"), "nested\n").unwrap();
    std::fs::write(root.join("build.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        root.join("build.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("empty.txt"), "").unwrap();
    std::os::unix::fs::symlink("../main.rs", root.join("src/deep/main-link.rs")).unwrap();
    git(root, &["add", "-A"]);
    // A submodule entry (a gitlink) without cloning anything.
    git(
        root,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{first},vendor/lib"),
        ],
    );
    git(root, &["commit", "-q", "-m", "second\n\nwith a body"]);
    let second = git(root, &["rev-parse", "HEAD"]);
    (dir, first, second)
}

/// Every file and link under `root` (not `.git`): path ─▶ (kind, content or target, mode).
fn snapshot(root: &Path) -> BTreeMap<String, (&'static str, Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
    {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let meta = entry.path().symlink_metadata().unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap();
            out.insert(
                rel,
                ("link", target.to_string_lossy().as_bytes().to_vec(), 0),
            );
        } else if meta.is_file() {
            let mode = meta.permissions().mode() & 0o777;
            out.insert(rel, ("file", std::fs::read(entry.path()).unwrap(), mode));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_branches_commits_and_tag_commit_ids() {
    let (repo, first, second) = sample_repo();
    let standin = StandIn::start(REPO, repo.path()).await;
    let source = CodeCommitSource::new(standin.client(), 4);

    let head = source
        .resolve(&named(REPO), &version("main"))
        .await
        .unwrap();
    assert_eq!(head.commit_id.as_str(), second);
    assert_eq!(head.message, "second\n\nwith a body\n");
    assert_eq!(head.reference.as_deref(), Some("refs/heads/main"));
    assert_eq!(
        source
            .resolve(&named(REPO), &version("refs/heads/main"))
            .await
            .unwrap(),
        head
    );

    let old = source
        .resolve(&named(REPO), &version(&first))
        .await
        .unwrap();
    assert_eq!(
        (old.commit_id.as_str(), old.message.as_str(), old.reference),
        (first.as_str(), "first\n", None)
    );

    let tagged = source
        .resolve(&named(REPO), &version(format!("refs/tags/{first}")))
        .await
        .unwrap();
    assert_eq!(tagged.commit_id.as_str(), first);
    // GetBranch + GetCommit twice, then GetCommit for the commit and the tag.
    assert_eq!(
        (standin.calls("GetBranch"), standin.calls("GetCommit")),
        (2, 4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_things_give_their_own_errors() {
    let (repo, _, _) = sample_repo();
    let standin = StandIn::start(REPO, repo.path()).await;
    let source = CodeCommitSource::new(standin.client(), 4);
    let dest = tempfile::tempdir().unwrap();
    let ghost = "0123456789abcdef0123456789abcdef01234567";

    let err = source
        .resolve(&named(REPO), &version("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::BranchNotFound { branch, .. } if branch == "nope"),
        "{err:?}"
    );
    let err = source
        .resolve(&named("other"), &version("main"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::RepositoryNotFound { repository } if repository == "other"),
        "{err:?}"
    );
    let err = source
        .resolve(&named(REPO), &version(ghost))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::CommitNotFound { commit, .. } if commit == ghost),
        "{err:?}"
    );
    let err = source
        .fetch(&named(REPO), &id(ghost), dest.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::CommitNotFound { .. }),
        "{err:?}"
    );

    // CodeCommit's ids are SHA-1: a 64-digit id (accepted as a commit everywhere) is one
    // CodeCommit does not have, the build's fault, not a reason to retry.
    let long = "ab".repeat(32);
    let err = source
        .resolve(&named(REPO), &version(&long))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::CommitNotFound { commit, .. } if *commit == long),
        "{err:?}"
    );
    assert!(err.is_user_error());

    // A tag name cannot be resolved without a tag API, and the error says what to give instead.
    let err = source
        .resolve(&named(REPO), &version("refs/tags/v1.0"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("commit id"), "{err}");
    assert_eq!(standin.calls("GetBranch") + standin.calls("GetCommit"), 4);
}

/// What a caller generic over the port does: resolve `main`, then fetch it.
async fn resolve_and_fetch<S: Source + 'static>(
    source: S,
    dest: std::path::PathBuf,
) -> (String, FetchSummary) {
    let commit = source
        .resolve(&named(REPO), &version("main"))
        .await
        .unwrap();
    let summary = source
        .fetch(&named(REPO), &commit.commit_id, &dest)
        .await
        .unwrap();
    (commit.commit_id.to_string(), summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_writes_the_tree_as_git_has_it() {
    // Given a commit with nested folders, an executable, a link and a submodule entry,
    let (repo, _, second) = sample_repo();
    let standin = StandIn::start(REPO, repo.path()).await;
    let source = CodeCommitSource::new(standin.client(), 4);
    let dest = tempfile::tempdir().unwrap();

    // when it is fetched (on a spawned task, through the port alone),
    let summary = tokio::spawn(resolve_and_fetch(source, dest.path().join("src-dir")))
        .await
        .unwrap();
    assert_eq!(summary.0, second);
    let summary = summary.1;

    // then the files, modes and links are the work tree's, byte for byte,
    let fetched = snapshot(&dest.path().join("src-dir"));
    assert_eq!(fetched, snapshot(repo.path()));
    assert_eq!(fetched["build.sh"].2, 0o755);
    assert_eq!(fetched["src/main.rs"].2, 0o644);
    assert_eq!(
        fetched["src/deep/main-link.rs"],
        ("link", b"../main.rs".to_vec(), 0)
    );
    assert_eq!(summary.files, 7);
    assert_eq!(summary.bytes, 6 + 13 + 70_000 + 7 + 18);
    // the submodule is noted, not fetched,
    assert_eq!(summary.notes.len(), 1, "{:?}", summary.notes);
    assert!(
        summary.notes[0].contains("vendor/lib"),
        "{:?}",
        summary.notes
    );
    assert!(!dest.path().join("src-dir/vendor/lib").exists());
    // and it took one GetFolder per folder and one GetBlob per file or link.
    assert_eq!(
        (standin.calls("GetFolder"), standin.calls("GetBlob")),
        (5, 7)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_6_mb_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    init_repo(dir.path());
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(
        dir.path().join("assets/big.bin"),
        vec![7u8; 6 * 1024 * 1024 + 1],
    )
    .unwrap();
    std::fs::write(dir.path().join("small.txt"), "ok").unwrap();
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "big"]);
    let commit = git(dir.path(), &["rev-parse", "HEAD"]);
    let standin = StandIn::start(REPO, dir.path()).await;
    let source = CodeCommitSource::new(standin.client(), 4);
    let dest = tempfile::tempdir().unwrap();

    let err = source
        .fetch(&named(REPO), &id(&commit), dest.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::FileTooLarge { path, limit_bytes: 6_291_456 } if path == "assets/big.bin"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("assets/big.bin") && err.to_string().contains("6 MB"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_targets_outside_the_source_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    init_repo(dir.path());
    std::os::unix::fs::symlink("../../etc/passwd", dir.path().join("escape")).unwrap();
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "escape"]);
    let commit = git(dir.path(), &["rev-parse", "HEAD"]);
    let standin = StandIn::start(REPO, dir.path()).await;
    let dest = tempfile::tempdir().unwrap();

    let err = CodeCommitSource::new(standin.client(), 4)
        .fetch(&named(REPO), &id(&commit), dest.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::UnsafePath { path } if path.starts_with("escape")),
        "{err:?}"
    );
    assert!(dest.path().join("escape").symlink_metadata().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_and_throttled_calls_are_retried() {
    let (repo, _, second) = sample_repo();
    let standin = StandIn::start(REPO, repo.path()).await;
    let source = CodeCommitSource::new(standin.client(), 4);
    let clean = tempfile::tempdir().unwrap();
    source
        .fetch(&named(REPO), &id(&second), clean.path())
        .await
        .unwrap();
    let calls = standin.total_calls();
    let expected = snapshot(clean.path());

    for (name, fail) in [
        ("503", StandIn::fail_next as fn(&StandIn, usize)),
        ("throttling", StandIn::throttle_next),
    ] {
        standin.reset_counts();
        fail(&standin, 2);
        let dest = tempfile::tempdir().unwrap();
        source
            .fetch(&named(REPO), &id(&second), dest.path())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(snapshot(dest.path()), expected, "{name}");
        assert_eq!(
            standin.total_calls(),
            calls + 2,
            "{name}: two failed calls were tried again"
        );
    }
}

/// A repository of `folders` folders of `files` small files each (`d1/f2.txt` holds `1/2`), and
/// its commit.
fn many_files(folders: usize, files: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    init_repo(dir.path());
    for d in 0..folders {
        std::fs::create_dir(dir.path().join(format!("d{d}"))).unwrap();
        for f in 0..files {
            std::fs::write(
                dir.path().join(format!("d{d}/f{f}.txt")),
                format!("{d}/{f}"),
            )
            .unwrap();
        }
    }
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "many"]);
    let commit = git(dir.path(), &["rev-parse", "HEAD"]);
    (dir, commit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_stay_within_the_setting() {
    let (dir, commit) = many_files(3, 10);
    let standin = StandIn::start(REPO, dir.path()).await;
    standin.set_latency(Duration::from_millis(20));
    let dest = tempfile::tempdir().unwrap();

    let summary = CodeCommitSource::new(standin.client(), 4)
        .fetch(&named(REPO), &id(&commit), dest.path())
        .await
        .unwrap();

    assert_eq!(summary.files, 30);
    let peak = standin.peak_in_flight();
    assert!(peak > 1 && peak <= 4, "peak in flight: {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walk_takes_fewer_calls_in_flight_while_codecommit_throttles() {
    let (dir, commit) = many_files(4, 50);
    let standin = StandIn::start(REPO, dir.path()).await;
    standin.set_latency(Duration::from_millis(10));
    // CodeCommit takes 6 calls at once; the source starts with 32.
    standin.limit_in_flight(6);
    let dest = tempfile::tempdir().unwrap();

    let summary = CodeCommitSource::new(standin.client(), 32)
        .fetch(&named(REPO), &id(&commit), dest.path())
        .await
        .unwrap();

    assert_eq!(summary.files, 200);
    assert_eq!(
        std::fs::read_to_string(dest.path().join("d3/f49.txt")).unwrap(),
        "3/49"
    );
    let throttled = standin.throttled();
    // A fixed 32 in flight would have 26 of every 32 calls throttled until all 205 got through
    // (some 900 throttled answers); the window narrows within a few rounds and then stays near
    // what CodeCommit takes (60-72 throttled answers here, most in the first rounds).
    assert!(
        throttled > 0 && throttled < 205 / 2,
        "throttled calls: {throttled}"
    );
    let note = summary
        .notes
        .iter()
        .find(|n| n.starts_with("CodeCommit throttled"))
        .unwrap_or_else(|| panic!("no note of the throttling: {:?}", summary.notes));
    assert!(
        note.contains(&format!("throttled {throttled} calls")),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_conf_takes_the_shared_config_and_retries() {
    use aws_sdk_codecommit::config::{
        BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
    };
    let (repo, _, second) = sample_repo();
    let standin = StandIn::start(REPO, repo.path()).await;
    // The endpoint as `AWS_ENDPOINT_URL_CODECOMMIT` would give it, set on the shared config.
    let shared = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDSTANDIN",
            "stand-in-secret",
            None,
            None,
            "test",
        )))
        .endpoint_url(standin.endpoint())
        .build();
    let source = CodeCommitSource::from_conf(&shared, CodeCommitSource::DEFAULT_CONCURRENCY);
    standin.fail_next(1);

    let head = source
        .resolve(&named(REPO), &version("main"))
        .await
        .unwrap();

    assert_eq!(head.commit_id.as_str(), second);
    assert_eq!(standin.calls("GetBranch"), 2, "the 503 was retried");
    assert_eq!(source.concurrency(), 32);
}
