use std::path::Path;

use super::*;
use crate::store::LocalStore;

struct Build {
    dir: tempfile::TempDir,
    store: LocalStore,
    project: ProjectName,
    settings: CacheSettings,
}

fn build() -> Build {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    Build {
        dir,
        store,
        project: ProjectName::parse("app").unwrap(),
        settings: CacheSettings::default(),
    }
}

fn cache(key: Option<&str>, fallbacks: &[&str], action: Option<&str>) -> Cache {
    Cache {
        paths: vec!["deps/**/*".to_string()],
        key: key.map(str::to_string),
        fallback_keys: fallbacks.iter().map(|k| k.to_string()).collect(),
        action: action.map(str::to_string),
    }
}

fn never() -> bool {
    false
}

impl Build {
    /// One build of `reference` in a fresh source folder named `name`: restores, then (if the
    /// build "succeeded") writes `deps/<name>` and saves. Returns the record and the source.
    fn run(
        &self,
        name: &str,
        reference: &str,
        spec: &Cache,
        succeeded: bool,
    ) -> (CacheRecord, std::path::PathBuf) {
        let src = self.dir.path().join(name);
        std::fs::create_dir_all(&src).unwrap();
        let env = vec![("PATH".to_string(), std::env::var("PATH").unwrap())];
        let job = CacheJob {
            cache: spec,
            project: &self.project,
            scope: Scope::for_build(Some(reference), None, "main"),
            roots: Roots {
                source: src.clone(),
                home: None,
            },
            env: &env,
            store: &self.store,
            settings: &self.settings,
            stop: &never,
        };
        let mut record = CacheRecord::default();
        let log = BuildLog::sink();
        job.restore(&mut record, &log);
        std::fs::create_dir_all(src.join("deps")).unwrap();
        std::fs::write(src.join("deps").join(name), name).unwrap();
        job.save(succeeded, &mut record, &log);
        (record, src)
    }
}

fn has(src: &Path, name: &str) -> bool {
    src.join("deps").join(name).is_file()
}

#[test]
fn a_miss_then_an_exact_hit_then_a_fallback_by_prefix() {
    let b = build();
    let (first, _) = b.run(
        "one",
        "refs/heads/main",
        &cache(Some("npm-1"), &[], None),
        true,
    );
    assert!(first.restored.is_none());
    assert!(
        first.notes[0].starts_with("not restored: no cache for key `npm-1`"),
        "{first:?}"
    );
    let saved = first.saved.unwrap();
    assert_eq!(
        (saved.key.as_deref(), saved.scope.as_str(), saved.entries),
        (Some("npm-1"), "branch/main", 1)
    );

    let (second, src) = b.run(
        "two",
        "refs/heads/main",
        &cache(Some("npm-1"), &[], None),
        true,
    );
    assert_eq!(second.restored.unwrap().key.as_deref(), Some("npm-1"));
    assert!(has(&src, "one"));
    assert!(second.saved.is_none(), "a keyed cache is never replaced");
    assert!(
        second.notes.iter().any(|n| n.contains("saved already")),
        "{:?}",
        second.notes
    );

    // Another branch, another key: the default branch's newest cache by prefix.
    let (third, src) = b.run(
        "three",
        "refs/heads/topic",
        &cache(Some("npm-2"), &["npm-"], None),
        true,
    );
    let restored = third.restored.unwrap();
    assert_eq!(
        (restored.key.as_deref(), restored.scope.as_str()),
        (Some("npm-1"), "branch/main")
    );
    assert!(has(&src, "one") && !has(&src, "two"));
    assert_eq!(
        third.saved.unwrap().scope,
        "branch/topic",
        "saved in its own ref's scope"
    );
}

#[test]
fn restore_only_save_only_and_a_failed_build() {
    let b = build();
    let (restore_only, _) = b.run(
        "a",
        "refs/heads/main",
        &cache(Some("k"), &[], Some("restore")),
        true,
    );
    assert!(restore_only.saved.is_none());
    let (failed, _) = b.run("b", "refs/heads/main", &cache(Some("k"), &[], None), false);
    assert!(failed.saved.is_none());
    assert!(
        failed
            .notes
            .iter()
            .any(|n| n.contains("the build did not succeed"))
    );
    assert!(
        objects::all_sized(&b.store, &b.project).unwrap().is_empty(),
        "nothing saved"
    );
    let (save_only, _) = b.run(
        "c",
        "refs/heads/main",
        &cache(Some("k"), &[], Some("save")),
        true,
    );
    assert!(save_only.saved.is_some() && save_only.restored.is_none());
    assert!(save_only.notes.is_empty(), "{:?}", save_only.notes);
    let (hit, src) = b.run(
        "d",
        "refs/heads/main",
        &cache(Some("k"), &[], Some("restore")),
        true,
    );
    assert!(hit.restored.is_some() && has(&src, "c"));
}

#[test]
fn the_project_cache_is_replaced_by_each_build() {
    let b = build();
    for name in ["a", "b", "c"] {
        b.run(name, "refs/heads/main", &cache(None, &[], None), true);
    }
    let all = objects::all_sized(&b.store, &b.project).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let (record, src) = b.run("d", "refs/heads/main", &cache(None, &[], None), true);
    assert!(record.key.is_none());
    assert!(has(&src, "a") && has(&src, "b") && has(&src, "c"));
}

#[test]
fn concurrent_builds_saving_one_key_keep_one_whole_cache() {
    let b = build();
    let spec = cache(Some("same"), &[], None);
    std::thread::scope(|scope| {
        for name in ["p", "q", "r", "s"] {
            let (b, spec) = (&b, &spec);
            scope.spawn(move || b.run(name, "refs/heads/main", spec, true));
        }
    });
    let all = objects::all_sized(&b.store, &b.project).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let (hit, src) = b.run("t", "refs/heads/main", &spec, true);
    assert!(hit.restored.is_some());
    let restored: Vec<_> = ["p", "q", "r", "s"]
        .into_iter()
        .filter(|n| has(&src, n))
        .collect();
    assert_eq!(restored.len(), 1, "one build's cache, whole: {restored:?}");
}

#[test]
fn the_cap_refuses_a_big_cache_and_removes_the_oldest() {
    let mut b = build();
    b.settings.max_bytes = 250;
    for name in ["a", "b", "c", "d"] {
        let (record, _) = b.run(name, "refs/heads/main", &cache(Some(name), &[], None), true);
        assert!(record.saved.is_some(), "{record:?}");
    }
    let all = objects::all_sized(&b.store, &b.project).unwrap();
    let total: u64 = all.iter().map(|(_, size)| size).sum();
    assert!(total <= 250 && all.len() == 2, "{all:?}");
    assert_eq!(
        all.last().unwrap().0.key.as_deref(),
        Some("d"),
        "the newest stays"
    );
    b.settings.max_bytes = 10;
    let (record, _) = b.run("e", "refs/heads/main", &cache(Some("e"), &[], None), true);
    assert!(record.saved.is_none());
    assert!(
        record
            .notes
            .iter()
            .any(|n| n.contains("PUSHBUILD_CACHE_MAX_MB")),
        "{:?}",
        record.notes
    );
}
