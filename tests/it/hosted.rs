//! Hosted repositories fetched in-process over git's smart HTTP protocol, from git's own
//! `git http-backend` on loopback, which requires a token.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pushbuild::names::{CommitId, Host, Repo};
use pushbuild::secret::Secret;
use pushbuild::source::{GitHost, HostedSource, Source, SourceError, Spares};

use crate::codecommit_standin::init_repo;
use crate::git_server::{GitServer, TOKEN_USER, git, publish};

const TOKEN: &str = "ghp_pushbuildTestToken0123456789";

/// A work tree with a script, a link and a nested file, and two commits; returns (first,
/// second).
fn work_tree(dir: &Path) -> (String, String) {
    init_repo(dir);
    std::fs::write(dir.join("README.md"), "# app\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "first"]);
    let first = git(dir, &["rev-parse", "HEAD"]);
    std::fs::create_dir_all(dir.join("src/deep")).unwrap();
    std::fs::write(dir.join("src/deep/data.txt"), "data\n").unwrap();
    std::fs::write(dir.join("build.sh"), "#!/bin/sh\necho built\n").unwrap();
    std::fs::set_permissions(dir.join("build.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("README.md", dir.join("readme-link")).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "second\n\nwith a body"]);
    (first, git(dir, &["rev-parse", "HEAD"]))
}

fn source(server: &GitServer, token: Option<&str>, depth: u32) -> HostedSource {
    HostedSource::new(
        vec![GitHost {
            host: Host::GitHub,
            url: server.url(),
            token: token.map(Secret::new),
        }],
        depth,
        false,
    )
}

fn project(path: &str) -> Repo {
    Repo::hosted(Host::GitHub, path).unwrap()
}

fn id(text: &str) -> CommitId {
    CommitId::parse(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_fetched_shallow_with_a_real_git_directory_and_no_token_left_behind() {
    let repos = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (first, second) = work_tree(work.path());
    publish(repos.path(), "octo/app", work.path());
    let server = GitServer::start(repos.path(), TOKEN);
    let dest = tempfile::tempdir().unwrap();

    let summary = source(&server, Some(TOKEN), 1)
        .fetch(&project("octo/app"), &id(&second), dest.path())
        .await
        .expect("fetches");

    let root = dest.path();
    assert_eq!(summary.files, 4, "{summary:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("src/deep/data.txt")).unwrap(),
        "data\n"
    );
    let mode = std::fs::metadata(root.join("build.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "the script stays executable");
    assert_eq!(
        std::fs::read_link(root.join("readme-link")).unwrap(),
        Path::new("README.md")
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), second);
    assert_eq!(git(root, &["log", "-1", "--format=%s"]), "second");
    assert_eq!(git(root, &["rev-list", "--count", "HEAD"]), "1", "depth 1");
    // The index the checkout wrote matches the files: nothing to report, nothing to re-read.
    assert_eq!(git(root, &["status", "--porcelain"]), "");
    let regular: u64 = ["README.md", "build.sh", "src/deep/data.txt"]
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).unwrap().len())
        .sum();
    assert_eq!(summary.bytes, regular, "{summary:?}");
    let stages: Vec<&str> = summary.stages.iter().map(|(stage, _)| *stage).collect();
    assert_eq!(stages, ["fetch", "checkout", "check"]);
    assert!(
        crate::hooks::files_holding(root, TOKEN).is_empty(),
        "the token is written nowhere"
    );
    assert!(
        !std::fs::read_to_string(root.join(".git/config"))
            .unwrap()
            .contains(TOKEN_USER)
    );
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.ends_with("[token]")),
        "{requests:?}"
    );

    // Full history when the depth is 0, and an older commit by its id.
    let full = tempfile::tempdir().unwrap();
    source(&server, Some(TOKEN), 0)
        .fetch(&project("octo/app"), &id(&first), full.path())
        .await
        .expect("fetches");
    assert_eq!(git(full.path(), &["rev-parse", "HEAD"]), first);
    assert!(!full.path().join("build.sh").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_into_a_finished_build_s_emptied_files_is_the_commit_exactly() {
    use std::os::unix::fs::MetadataExt;
    let repos = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_, second) = work_tree(work.path());
    publish(repos.path(), "octo/app", work.path());
    let server = GitServer::start(repos.path(), TOKEN);
    // Two files a build left: executable, with contents the next build must not see.
    let disk = tempfile::tempdir().unwrap();
    let spares = std::sync::Arc::new(Spares::new(disk.path().join("spare"), 10).unwrap());
    let mut kept = Vec::new();
    for name in ["out.bin", "run.sh"] {
        let old = disk.path().join(name);
        std::fs::write(&old, "left by the last build").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        let meta = std::fs::symlink_metadata(&old).unwrap();
        kept.push(meta.ino());
        assert!(spares.keep(&old, &meta));
    }
    // One spare written to since it was emptied: the checkout still leaves exactly the blob.
    let pool = std::fs::read_dir(disk.path().join("spare")).unwrap();
    let first = pool.map(|entry| entry.unwrap().path()).next().unwrap();
    std::fs::write(first, "x".repeat(100)).unwrap();
    let dest = disk.path().join("src");

    let summary = source(&server, Some(TOKEN), 1)
        .with_spares(Some(spares.clone()))
        .fetch(&project("octo/app"), &id(&second), &dest)
        .await
        .expect("fetches");

    assert!(spares.is_empty(), "both written into");
    let ino = |file: &str| std::fs::symlink_metadata(dest.join(file)).unwrap().ino();
    let mut reused = vec![ino("README.md"), ino("build.sh")];
    reused.sort();
    kept.sort();
    assert_eq!(
        reused, kept,
        "the first two files in the index took the spares"
    );
    assert!(!kept.contains(&ino("src/deep/data.txt")), "made new");
    assert_eq!(summary.files, 4, "{summary:?}");
    assert_eq!(
        std::fs::read_to_string(dest.join("README.md")).unwrap(),
        "# app\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("src/deep/data.txt")).unwrap(),
        "data\n"
    );
    let mode = |file: &str| {
        std::fs::metadata(dest.join(file))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode("README.md") & 0o777, 0o644, "no longer executable");
    assert_eq!(
        mode("build.sh") & 0o111,
        0o111,
        "the script stays executable"
    );
    assert_eq!(
        std::fs::read_link(dest.join("readme-link")).unwrap(),
        Path::new("README.md")
    );
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), second);
    assert_eq!(
        git(&dest, &["status", "--porcelain"]),
        "",
        "the index matches the files"
    );
    assert!(crate::hooks::files_holding(&dest, "left by the last build").is_empty());
    assert!(crate::hooks::files_holding(&dest, "xxxxxxxxxx").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_failures_say_why_and_whose_fault_they_are() {
    let repos = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_, second) = work_tree(work.path());
    publish(repos.path(), "octo/app", work.path());
    let server = GitServer::start(repos.path(), TOKEN);
    let fetch = |token: Option<&'static str>, path: &'static str, commit: String| {
        let source = source(&server, token, 1);
        async move {
            let dest = tempfile::tempdir().unwrap();
            source
                .fetch(&project(path), &id(&commit), dest.path())
                .await
                .unwrap_err()
        }
    };

    let err = fetch(None, "octo/app", second.clone()).await;
    assert!(matches!(err, SourceError::AccessDenied { .. }), "{err:?}");
    assert!(err.is_user_error());
    let err = fetch(Some("wrong-token"), "octo/app", second.clone()).await;
    assert!(matches!(err, SourceError::AccessDenied { .. }), "{err:?}");
    let err = fetch(Some(TOKEN), "octo/app", "ab".repeat(20)).await;
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err:?}");
    let err = fetch(Some(TOKEN), "octo/nope", second.clone()).await;
    assert!(
        matches!(err, SourceError::RepositoryNotFound { .. }),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_out_of_the_source_is_refused() {
    let repos = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    init_repo(work.path());
    std::os::unix::fs::symlink("../../etc/passwd", work.path().join("escape")).unwrap();
    git(work.path(), &["add", "-A"]);
    git(work.path(), &["commit", "-q", "-m", "escape"]);
    let commit = git(work.path(), &["rev-parse", "HEAD"]);
    publish(repos.path(), "octo/escape", work.path());
    let server = GitServer::start(repos.path(), TOKEN);
    let dest = tempfile::tempdir().unwrap();
    let err = source(&server, Some(TOKEN), 1)
        .fetch(&project("octo/escape"), &id(&commit), dest.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::UnsafePath { path } if path == "escape"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_attributes_could_change_a_file_the_spares_wait_and_git_s_filters_apply() {
    let repos = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    init_repo(work.path());
    std::fs::write(work.path().join(".gitattributes"), "*.txt text eol=crlf\n").unwrap();
    std::fs::write(work.path().join("notes.txt"), "one\ntwo\n").unwrap();
    git(work.path(), &["add", "-A"]);
    git(work.path(), &["commit", "-q", "-m", "attributes"]);
    let commit = git(work.path(), &["rev-parse", "HEAD"]);
    publish(repos.path(), "octo/attributes", work.path());
    let server = GitServer::start(repos.path(), TOKEN);
    let disk = tempfile::tempdir().unwrap();
    let spares = std::sync::Arc::new(Spares::new(disk.path().join("spare"), 10).unwrap());
    let old = disk.path().join("old");
    std::fs::write(&old, "old").unwrap();
    assert!(spares.keep(&old, &std::fs::symlink_metadata(&old).unwrap()));
    let dest = disk.path().join("src");

    source(&server, Some(TOKEN), 1)
        .with_spares(Some(spares.clone()))
        .fetch(&project("octo/attributes"), &id(&commit), &dest)
        .await
        .expect("fetches");

    assert_eq!(spares.len(), 1, "not written into: the checkout filters");
    assert_eq!(
        std::fs::read_to_string(dest.join("notes.txt")).unwrap(),
        "one\r\ntwo\r\n",
        "eol=crlf applied"
    );
    assert_eq!(git(&dest, &["status", "--porcelain"]), "");
}

/// Under `serve` with `PUSHBUILD_SPARE_FILES=true`: a finished build's files (its checkout and
/// what it wrote) are kept, emptied, and the next build's checkout is written into them, clean
/// and without a byte of the last build's output.
#[test]
fn under_serve_the_next_build_checks_out_into_the_last_one_s_files() {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant};
    let first = "version: 0.2\nphases:\n  build:\n    commands:\n      - for i in $(seq 1 30); do echo FIRST-BUILD-OUTPUT > out$i.txt; done\n";
    let second = "version: 0.2\nphases:\n  build:\n    commands:\n      - test -z \"$(git status --porcelain)\"\n      - grep -qx one a.txt\n      - \"! grep -rq FIRST-BUILD-OUT''PUT --exclude-dir=.git .\"\n      - stat -c 'inode %i' a.txt b.txt buildspec.yml\n";
    let files = [
        ("a.txt".to_string(), "one\n".to_string()),
        ("b.txt".to_string(), "two\n".to_string()),
    ];
    let pushed = crate::pushed::Pushed::branches(&[("main", first, &files), ("main", second, &[])]);
    let mut env = pushed.env();
    env.push(("PUSHBUILD_SPARE_FILES", "true".to_string()));
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &env);
    assert!(
        served
            .startup
            .iter()
            .any(|l| l.contains("finished builds' files are kept")),
        "{:?}",
        served.startup
    );
    let project = pushed.git.project(crate::hooks::REPOSITORY);
    let build = pushed.deliver_nth(&served.url, 0, "spares-0");
    let record = crate::pushed::record_in(store.path(), &project, &build);
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    // The first build's 33 files (3 checked out, 30 written) are kept once its folder goes.
    let pool = work.path().join("spare");
    let until = Instant::now() + Duration::from_secs(30);
    let kept: Vec<u64> = loop {
        let kept: Vec<u64> = std::fs::read_dir(&pool)
            .unwrap()
            .map(|entry| entry.unwrap().metadata().unwrap().ino())
            .collect();
        if kept.len() >= 33 && !work.path().join("builds").join(&build).exists() {
            break kept;
        }
        assert!(Instant::now() < until, "{} kept", kept.len());
        std::thread::sleep(Duration::from_millis(20));
    };

    let build = pushed.deliver_nth(&served.url, 1, "spares-1");
    let record = crate::pushed::record_in(store.path(), &project, &build);
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    let log = crate::pushed::log_in(store.path(), &project, &build);
    let inodes: Vec<u64> = log
        .lines()
        .filter_map(|line| line.split("inode ").nth(1))
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    assert_eq!(inodes.len(), 3, "{log}");
    assert!(
        inodes.iter().all(|n| kept.contains(n)),
        "{inodes:?} not in {kept:?}"
    );
}
