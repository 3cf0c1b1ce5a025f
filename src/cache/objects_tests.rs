use super::*;
use crate::store::{LocalStore, ObjectMeta};

fn project() -> ProjectName {
    ProjectName::parse("github.com/team/app").unwrap()
}

#[test]
fn scopes_follow_the_ref_and_fall_back_to_the_base_and_default_branch() {
    let branch = Scope::for_build(Some("refs/heads/feature/x"), None, "main");
    assert_eq!(branch.own, "branch/feature%2Fx");
    assert_eq!(branch.fallbacks, ["branch/main"]);
    let main = Scope::for_build(Some("refs/heads/main"), None, "main");
    assert_eq!(
        (main.own.as_str(), main.fallbacks.len()),
        ("branch/main", 0)
    );
    let pr = Scope::for_build(
        Some("refs/pull/12/head"),
        Some("refs/heads/develop"),
        "main",
    );
    assert_eq!(pr.own, "pr/12");
    assert_eq!(pr.fallbacks, ["branch/develop", "branch/main"]);
    let mr = Scope::for_build(Some("refs/merge-requests/7/head"), Some("main"), "main");
    assert_eq!((mr.own.as_str(), mr.fallbacks.len()), ("pr/7", 1));
    let tag = Scope::for_build(Some("refs/tags/v1.0"), None, "trunk");
    assert_eq!(
        (tag.own.as_str(), tag.fallbacks[0].as_str()),
        ("tag/v1.0", "branch/trunk")
    );
    let commit = Scope::for_build(Some(&"a".repeat(40)), None, "main");
    assert_eq!(commit.own, "detached");
}

#[test]
fn encoding_keeps_prefixes_and_comes_back() {
    for key in ["npm-abc", "a/b c", "ü%", "..", ""] {
        let encoded = encode(key);
        assert!(
            encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-%".contains(c)),
            "{encoded}"
        );
        assert_eq!(decode(&encoded), key);
    }
    assert!(encode("npm-abc/def").starts_with(&encode("npm-abc/")));
    assert_ne!(encode(".."), "..");
}

fn put(store: &LocalStore, object: &str) {
    store
        .put(object, b"x", &ObjectMeta::new("application/zstd"))
        .unwrap();
}

#[test]
fn the_exact_key_wins_then_the_newest_by_prefix_then_the_next_scope() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let p = project();
    let base = project_prefix(&p);
    put(
        &store,
        &format!("{base}branch/main/npm-1/0000000000100-a.tar.zst"),
    );
    put(
        &store,
        &format!("{base}branch/main/npm-2/0000000000300-a.tar.zst"),
    );
    put(
        &store,
        &format!("{base}branch/main/npm-2/0000000000400-b.tar.zst"),
    );
    put(
        &store,
        &format!("{base}branch/main/other/0000000000900-a.tar.zst"),
    );
    put(
        &store,
        &format!("{base}branch/main/@project/0000000000200-a.tar.zst"),
    );
    put(
        &store,
        &format!("{base}branch/main/@project/0000000000250-a.tar.zst"),
    );
    let scope = Scope::for_build(Some("refs/heads/feature"), None, "main");
    let fallbacks = vec!["nope-".to_string(), "npm-".to_string()];

    // Exact: the first saved under the key.
    let found = find(&store, &p, &scope, Some("npm-2"), &fallbacks)
        .unwrap()
        .unwrap();
    assert!(
        found.object.ends_with("npm-2/0000000000300-a.tar.zst"),
        "{found:?}"
    );
    assert_eq!(
        (found.scope.as_str(), found.key.as_deref()),
        ("branch/main", Some("npm-2"))
    );
    // By prefix: the newest of the keys that start with it, never the project's cache.
    let found = find(&store, &p, &scope, Some("npm-3"), &fallbacks)
        .unwrap()
        .unwrap();
    assert_eq!(found.saved_ms, 400);
    // The own scope before the default branch's.
    put(
        &store,
        &format!("{base}branch/feature/npm-0/0000000000050-a.tar.zst"),
    );
    let found = find(&store, &p, &scope, Some("npm-3"), &fallbacks)
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.scope.as_str(), found.saved_ms),
        ("branch/feature", 50)
    );
    // Nothing matches.
    assert_eq!(find(&store, &p, &scope, Some("x"), &[]).unwrap(), None);
    // Without a key: the newest project cache.
    let found = find(&store, &p, &scope, None, &fallbacks).unwrap().unwrap();
    assert_eq!((found.key, found.saved_ms), (None, 250));

    let sized = all_sized(&store, &p).unwrap();
    assert_eq!(sized.len(), 7);
    assert!(sized.windows(2).all(|w| w[0].0.saved_ms <= w[1].0.saved_ms));
    assert!(sized.iter().all(|(_, size)| *size == 1));
}
