//! The buildspec's `cache` through the real binaries: the function on the S3 server, `serve`
//! on its local store and `pushbuild run`. A miss, an exact hit, a fallback by prefix after the
//! lock file changed (the key comes from `codebuild-hash-files`), a failed build that saves
//! nothing, and a hostile archive refused on restore.

use std::io::Write;
use std::process::Command;

use serde_json::Value;

use crate::function::{Harness, MINUTE, REPO, builds, sample};

/// INSTALL makes `deps` when it is missing (a file, an empty folder, a link) and says which it
/// was; BUILD checks what it has and fails when `FAIL` is in the lock file.
const SPEC: &str = r#"version: 0.2
phases:
  install:
    commands:
      - |
        if [ -d deps ]; then echo "deps: from the cache"; else
          mkdir -p deps/sub deps/empty && echo fresh > deps/sub/a.txt && ln -s sub/a.txt deps/link
          chmod 755 deps/sub/a.txt && echo "deps: installed"
        fi
  build:
    commands:
      - test -L deps/link && test "$(cat deps/link)" = fresh && test -d deps/empty
      - test -x deps/sub/a.txt
      - "! grep -q FAIL package-lock.json"
      - echo "hash=$(codebuild-hash-files package-lock.json)"
cache:
  key: deps-$(codebuild-hash-files package-lock.json)
  fallback-keys:
    - deps-
  paths:
    - deps/**/*
"#;

fn build(h: &Harness, head: &str) -> (Value, String) {
    // Each push is its own delivery (CodeCommit's event id), so none is taken as a repeat.
    let mut event = sample("codecommit-push.json", head);
    event["Records"][0]["eventId"] = Value::from(format!("push-{head}"));
    let answer = builds(&h.invoke(event, MINUTE));
    let id = answer[0]["buildId"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer:?}"))
        .to_string();
    (h.record(&id), h.log(&id))
}

fn caches(h: &Harness) -> Vec<String> {
    let prefix = format!("cache/{REPO}/branch/main/");
    h.keys()
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

#[test]
fn the_function_restores_by_key_and_by_prefix_and_saves_only_what_succeeded() {
    let h = Harness::start(
        &[
            ("ci/buildspec.yml", SPEC.as_bytes()),
            ("package-lock.json", b"{\"lockfileVersion\": 1}"),
        ],
        "cached",
        &[],
    );
    // A miss: INSTALL installs; the cache is saved under the lock file's hash.
    let (first, log) = build(&h, &h.head());
    assert_eq!(first["status"], "SUCCEEDED", "{log}");
    assert!(log.contains("deps: installed"), "{log}");
    assert!(
        log.contains("Cache: not restored: no cache for key `deps-"),
        "{log}"
    );
    let key = first["cache"]["key"].as_str().expect("a key").to_string();
    let hash = key.strip_prefix("deps-").expect("the key's prefix");
    assert_eq!(hash.len(), 64);
    assert!(log.contains(&format!("hash={hash}")), "{log}");
    assert_eq!(first["cache"]["saved"]["scope"], "branch/main");
    assert_eq!(caches(&h).len(), 1);

    // An exact hit: the folder, its link, mode and empty folder come back.
    let head = h.commit(&[("README", b"the same lock file")], "docs");
    let (second, log) = build(&h, &head);
    assert_eq!(second["status"], "SUCCEEDED", "{log}");
    assert!(log.contains("deps: from the cache"), "{log}");
    assert!(
        log.contains(&format!("Cache: restored key `{key}` (branch/main)")),
        "{log}"
    );
    assert_eq!(second["cache"]["restored"]["key"], key.as_str());
    assert!(
        second["cache"].get("saved").is_none(),
        "a keyed cache stays as first saved"
    );

    // The lock file changes: a new key, restored from the old one by its prefix, saved anew.
    let head = h.commit(
        &[("package-lock.json", b"{\"lockfileVersion\": 2}")],
        "bump",
    );
    let (third, log) = build(&h, &head);
    assert_eq!(third["status"], "SUCCEEDED", "{log}");
    assert_ne!(third["cache"]["key"], key.as_str());
    assert_eq!(third["cache"]["restored"]["key"], key.as_str(), "{log}");
    assert!(log.contains("deps: from the cache"), "{log}");
    assert_eq!(caches(&h).len(), 2);

    // A failed build restores but saves nothing.
    let head = h.commit(&[("package-lock.json", b"FAIL")], "breaks");
    let (failed, log) = build(&h, &head);
    assert_eq!(failed["status"], "FAILED", "{log}");
    assert!(
        log.contains("Cache: not saved: the build did not succeed"),
        "{log}"
    );
    assert_eq!(caches(&h).len(), 2);
}

/// A zstd-compressed tar of one member, written as raw headers (nothing checks them here).
fn hostile_archive(name: &str, link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    {
        let bytes = header.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_mode(0o644);
    header.set_size(if link.is_some() { 0 } else { 4 });
    header.set_entry_type(if link.is_some() {
        tar::EntryType::Symlink
    } else {
        tar::EntryType::Regular
    });
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    if link.is_none() {
        tar.extend(b"evil");
        tar.resize(1024, 0);
    }
    tar.extend([0u8; 1024]);
    let mut out = Vec::new();
    let mut encoder = zstd::Encoder::new(&mut out, 3).expect("an encoder");
    encoder.write_all(&tar).expect("compress");
    encoder.finish().expect("finish");
    out
}

#[test]
fn a_hostile_cache_is_refused_and_writes_nothing_outside_the_build() {
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - ls -la\n\
                cache:\n  key: planted-$(cat which)\n  paths: ['deps/**/*']\n";
    let h = Harness::start(
        &[("ci/buildspec.yml", spec.as_bytes()), ("which", b"none")],
        "planted",
        &[],
    );
    let hostile = [
        ("source/../../../escaped", None),
        ("source/deps/out", Some("../../../../escaped")),
    ];
    for (n, (name, link)) in hostile.into_iter().enumerate() {
        let object = format!("cache/{REPO}/branch/main/planted-{n}/0000000000001-hostile.tar.zst");
        h.put_object(&object, hostile_archive(name, link));
        let head = h.commit(&[("which", n.to_string().as_bytes())], "which");
        let (record, log) = build(&h, &head);
        assert_eq!(
            record["status"], "SUCCEEDED",
            "a cache never fails a build: {log}"
        );
        assert!(
            log.contains(&format!("Cache: restoring key `planted-{n}`")),
            "{log}"
        );
        assert!(log.contains("Cache: not restored whole: refused"), "{log}");
        let notes = record["cache"]["notes"].to_string();
        assert!(notes.contains("refused"), "{notes}");
        let escaped: Vec<_> = walkdir::WalkDir::new(h.work_dir())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_name() == "escaped" || e.file_name() == "out")
            .collect();
        assert!(escaped.is_empty(), "{escaped:?}");
    }
}

#[test]
fn pushbuild_run_restores_the_cache_its_last_build_saved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (project, store) = (dir.path().join("app"), dir.path().join("store"));
    std::fs::create_dir_all(&project).expect("mkdir");
    let spec = "version: 0.2\nphases:\n  install:\n    commands:\n      \
                - if [ -f vendor/lib.txt ]; then echo vendor-cached; else mkdir -p vendor && echo lib > vendor/lib.txt; fi\n\
                cache:\n  paths:\n    - vendor/**/*\n";
    std::fs::write(project.join("buildspec.yml"), spec).expect("a buildspec");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .args(["run", "--store"])
            .arg(&store)
            .arg(&project)
            .env("NO_COLOR", "1")
            .output()
            .expect("pushbuild runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run();
    assert!(
        first.contains("Cache: not restored: no cache for the project"),
        "{first}"
    );
    assert!(
        first.contains("Cache: saved the project's cache"),
        "{first}"
    );
    std::fs::remove_dir_all(project.join("vendor")).expect("remove vendor");
    let second = run();
    assert!(
        second.contains("Cache: restored the project's cache"),
        "{second}"
    );
    assert!(second.contains("vendor-cached"), "{second}");
    assert_eq!(
        std::fs::read_to_string(project.join("vendor/lib.txt")).unwrap(),
        "lib\n"
    );
    let cached: Vec<_> = walkdir::WalkDir::new(store.join("cache"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && !e.file_name().to_string_lossy().ends_with(".meta"))
        .collect();
    assert_eq!(cached.len(), 1, "replaced, not added: {cached:?}");
}

#[test]
fn under_serve_the_second_push_restores_what_the_first_saved() {
    use crate::git_server::{GitServer, git, publish};
    use crate::hooks;
    let (repos, work_tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    crate::codecommit_standin::init_repo(work_tree.path());
    std::fs::write(work_tree.path().join("buildspec.yml"), SPEC).unwrap();
    std::fs::write(work_tree.path().join("package-lock.json"), "{}").unwrap();
    git(work_tree.path(), &["add", "-A"]);
    git(work_tree.path(), &["commit", "-q", "-m", "cached"]);
    let first = git(work_tree.path(), &["rev-parse", "HEAD"]);
    std::fs::write(work_tree.path().join("README"), "docs").unwrap();
    git(work_tree.path(), &["add", "-A"]);
    git(work_tree.path(), &["commit", "-q", "-m", "docs"]);
    let second = git(work_tree.path(), &["rev-parse", "HEAD"]);
    publish(repos.path(), hooks::REPOSITORY, work_tree.path());
    let git_server = GitServer::start(repos.path(), hooks::TOKEN);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = vec![
        ("PUSHBUILD_GITHUB_WEBHOOK_SECRET", hooks::SECRET.to_string()),
        ("PUSHBUILD_GITHUB_TOKEN", hooks::TOKEN.to_string()),
        ("PUSHBUILD_GITHUB_URL", git_server.url()),
        ("PUSHBUILD_GITHUB_API_URL", "http://127.0.0.1:9".to_string()),
    ];
    let served = crate::served::serve(store.path(), work.path(), &[], &env);
    let project = store
        .path()
        .join("builds")
        .join(git_server.project(hooks::REPOSITORY));
    let mut logs = Vec::new();
    for (n, commit) in [first, second].iter().enumerate() {
        let body = hooks::push("refs/heads/main", commit, "push");
        let (headers, bytes) = hooks::delivery("push", &body, &format!("cache-{n}"), hooks::SECRET);
        let mut request = reqwest::blocking::Client::new()
            .post(format!("{}/webhooks/github", served.url))
            .body(bytes);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer: Value = serde_json::from_str(&request.send().unwrap().text().unwrap()).unwrap();
        let id = answer["builds"][0]["buildId"]
            .as_str()
            .expect("queued")
            .to_string();
        let dir = project.join(&id);
        let until = std::time::Instant::now() + MINUTE;
        while !dir.join("build.json").exists() {
            assert!(std::time::Instant::now() < until, "no record");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let record: Value =
            serde_json::from_slice(&std::fs::read(dir.join("build.json")).unwrap()).unwrap();
        let log = std::fs::read_to_string(dir.join("build.log")).unwrap();
        assert_eq!(record["status"], "SUCCEEDED", "{log}");
        logs.push(log);
    }
    assert!(logs[0].contains("deps: installed"), "{}", logs[0]);
    assert!(logs[0].contains("Cache: saved key `deps-"), "{}", logs[0]);
    assert!(logs[1].contains("deps: from the cache"), "{}", logs[1]);
    assert!(
        logs[1].contains("Cache: restored key `deps-"),
        "{}",
        logs[1]
    );
}
