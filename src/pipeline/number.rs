//! Build numbers: each project's builds are numbered 1, 2, 3, … with no number given twice,
//! even to builds that start at the same moment, and at a cost that does not grow with the
//! project's history.
//!
//! A number is taken by creating `numbers/<project>/<n>.json` with a conditional write (S3's
//! `If-None-Match: *`, a hard link on disk): of two builds that try the same `n`, exactly one
//! creates it, and the other tries `n + 1`. Where to start is read from a hint,
//! `numbers/<project>/latest`, which each build rewrites with the number it took. The hint only
//! saves tries: a stale one (two builds writing it at once) costs a few more conditional writes,
//! never a repeated number. A project with no hint yet (a store from before numbers were claimed)
//! starts after the records it already has, counted once.

use crate::names::ProjectName;
use crate::store::{Layout, ObjectMeta, Store, StoreError};

/// Takes the next build number of `project` for the build `build_id`.
pub fn next_build_number(
    store: &dyn Store,
    project: &ProjectName,
    build_id: &str,
) -> Result<u64, StoreError> {
    let hint_key = format!("numbers/{project}/latest");
    let latest = match store.get(&hint_key)? {
        Some(bytes) => String::from_utf8_lossy(&bytes).trim().parse::<u64>().ok(),
        None => None,
    };
    let mut number = match latest {
        Some(latest) => latest + 1,
        None => records_so_far(store, project)? + 1,
    };
    let body = serde_json::json!({ "buildId": build_id }).to_string();
    let meta = ObjectMeta::new("application/json");
    while !store.put_if_absent(
        &format!("numbers/{project}/{number}.json"),
        body.as_bytes(),
        &meta,
    )? {
        number += 1;
    }
    store.put(
        &hint_key,
        number.to_string().as_bytes(),
        &ObjectMeta::new("text/plain"),
    )?;
    Ok(number)
}

/// How many build records `project` has: where numbering starts for a store that predates the
/// hint. Read once per project, never again once the hint exists.
fn records_so_far(store: &dyn Store, project: &ProjectName) -> Result<u64, StoreError> {
    let prefix = Layout::builds_prefix(project);
    let keys = store.list(&prefix)?;
    // Only `<build-id>/build.json` directly under the prefix: a hosted project's name may start
    // with another project's (`github.com` and `github.com/owner/repo`).
    let own = |key: &String| {
        key.strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix("/build.json"))
            .is_some_and(|id| !id.contains('/'))
    };
    Ok(keys.iter().filter(|k| own(k)).count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn project() -> ProjectName {
        ProjectName::parse("web").unwrap()
    }

    #[test]
    fn numbers_count_up_and_skip_numbers_already_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        assert_eq!(next_build_number(&store, &project(), "a").unwrap(), 1);
        assert_eq!(next_build_number(&store, &project(), "b").unwrap(), 2);
        // A racing build took 3 and has not written the hint yet.
        let meta = ObjectMeta::new("application/json");
        assert!(
            store
                .put_if_absent("numbers/web/3.json", b"{}", &meta)
                .unwrap()
        );
        assert_eq!(next_build_number(&store, &project(), "c").unwrap(), 4);
        // A stale hint costs tries, never a repeated number.
        store.put("numbers/web/latest", b"1", &meta).unwrap();
        assert_eq!(next_build_number(&store, &project(), "d").unwrap(), 5);
    }

    #[test]
    fn a_store_without_a_hint_continues_after_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let meta = ObjectMeta::new("application/json");
        for id in ["b1", "b2"] {
            store
                .put(&format!("builds/web/{id}/build.json"), b"{}", &meta)
                .unwrap();
        }
        assert_eq!(next_build_number(&store, &project(), "b3").unwrap(), 3);
    }
}
