//! Commit ids of 64 hex digits (git's SHA-256 repositories) are accepted everywhere: a build
//! request names one, the trigger takes it as a commit, the source resolves and fetches it, and
//! the record and the build's environment carry it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pushbuild::config::Config;
use pushbuild::function;
use pushbuild::lifecycle::Builds;
use pushbuild::names::{Repo, RepositoryName, SourceVersion};
use pushbuild::source::{GitDirSource, Source};
use pushbuild::state::BuildState;
use pushbuild::store::{LocalStore, Store};
use serde_json::json;

use crate::codecommit_standin::git;

const SPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"built $CODEBUILD_RESOLVED_SOURCE_VERSION\"\n";

/// `repos/app`: a SHA-256 repository with one commit on `main`; returns its commit id.
fn sha256_repo(repos: &std::path::Path) -> String {
    let root = repos.join("app");
    std::fs::create_dir_all(&root).expect("repo dir");
    git(
        &root,
        &["init", "-q", "-b", "main", "--object-format=sha256"],
    );
    std::fs::write(root.join("buildspec.yml"), SPEC).expect("buildspec");
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "first"]);
    git(&root, &["rev-parse", "HEAD"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sha256_commit_is_resolved_and_fetched_by_the_source() {
    let repos = tempfile::tempdir().expect("temp dir");
    let commit = sha256_repo(repos.path());
    assert_eq!(commit.len(), 64);
    let source = GitDirSource::new(repos.path());
    let app = Repo::CodeCommit(RepositoryName::parse("app").expect("name"));

    let by_id = source
        .resolve(
            &app,
            &SourceVersion::parse(&commit).expect("a 64-hex version"),
        )
        .await
        .expect("resolves");
    assert_eq!(by_id.commit_id.as_str(), commit);
    let by_branch = source
        .resolve(&app, &SourceVersion::parse("main").expect("a branch"))
        .await
        .expect("resolves");
    assert_eq!(by_branch.commit_id, by_id.commit_id);

    let dest = tempfile::tempdir().expect("temp dir");
    let fetched = source
        .fetch(&app, &by_id.commit_id, dest.path())
        .await
        .expect("fetches");
    assert_eq!(fetched.files, 1);
    assert_eq!(
        std::fs::read_to_string(dest.path().join("buildspec.yml")).expect("fetched"),
        SPEC
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_request_for_a_sha256_commit_builds_that_commit() {
    let repos = tempfile::tempdir().expect("temp dir");
    let commit = sha256_repo(repos.path());
    let work = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(LocalStore::new(work.path().join("store")));
    let work_dir = work.path().join("work").display().to_string();
    let config = Config::from_vars(|name| match name {
        "PUSHBUILD_BUCKET" => Some("local-store".to_string()),
        "PUSHBUILD_WORK_DIR" => Some(work_dir.clone()),
        _ => None,
    })
    .expect("settings");
    let books = crate::support::books(work.path(), Default::default());
    let builds = Builds::new(
        config,
        GitDirSource::new(repos.path()),
        store.clone(),
        books,
    )
    .with_base_env(vec![(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    )]);
    let event = json!({"repository": "app", "sourceVersion": commit});
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = function::handle(&builds, &event, Some(deadline))
        .await
        .expect("the invocation succeeds");

    let build = &response.builds[0];
    assert_eq!(build.status, BuildState::Succeeded, "{build:?}");
    assert_eq!(build.commit.as_deref(), Some(commit.as_str()));
    let id = build.build_id.as_deref().expect("a build id");
    let record: serde_json::Value = serde_json::from_slice(
        &store
            .get(&format!("builds/app/{id}/build.json"))
            .expect("reads")
            .expect("the record"),
    )
    .expect("JSON");
    assert_eq!(record["commit"], commit.as_str());
    let log = String::from_utf8(
        store
            .get(&format!("builds/app/{id}/build.log"))
            .expect("reads")
            .expect("the log"),
    )
    .expect("text");
    assert!(log.contains(&format!("built {commit}")), "{log}");
}
