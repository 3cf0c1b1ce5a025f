//! Where caches lie in the store, and which one a build restores.
//!
//! `cache/<project>/<scope>/<key>/<saved-ms>-<nonce>.tar.zst`: the scope is the ref a build ran
//! for (`branch/<name>`, `tag/<name>`, `pr/<number>`, or `detached`), the key the expanded
//! `cache.key` (percent-encoded, so a key's prefix is the prefix of its part of the object key),
//! or `@project` for a cache without a key. The save time leads the file name, so the names
//! under a key sort oldest first.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::names::ProjectName;
use crate::store::{Store, StoreError};

/// The part of a key's place that stands for a cache without a key (`@` never appears in an
/// encoded key).
const PROJECT_CACHE: &str = "@project";
/// The archives' suffix.
const SUFFIX: &str = ".tar.zst";

/// The refs whose caches a build may read, its own first, and the one it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The build's own ref's scope: where it saves, and where it looks first.
    pub own: String,
    /// Where it looks next, in order (a pull request's base branch, the default branch).
    pub fallbacks: Vec<String>,
}

impl Scope {
    /// The scope of a build of `reference` (a full ref, `refs/pull/<n>/head`, or none), with
    /// the branch a pull request targets (`base`) and the repository's default branch.
    pub fn for_build(reference: Option<&str>, base: Option<&str>, default_branch: &str) -> Scope {
        let branch = |name: &str| format!("branch/{}", encode(short(name)));
        let pull_request = reference.and_then(pull_request_number);
        let own = match (reference, pull_request) {
            (_, Some(number)) => format!("pr/{number}"),
            (Some(r), None) if r.starts_with("refs/tags/") => {
                format!("tag/{}", encode(&r["refs/tags/".len()..]))
            }
            (Some(r), None) if !looks_like_commit(r) => branch(r),
            _ => "detached".to_string(),
        };
        let mut fallbacks = Vec::new();
        if pull_request.is_some() {
            fallbacks.extend(base.map(branch));
        }
        fallbacks.push(branch(default_branch));
        fallbacks.retain(|scope| *scope != own);
        fallbacks.dedup();
        Scope { own, fallbacks }
    }

    fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.own.as_str()).chain(self.fallbacks.iter().map(String::as_str))
    }
}

fn short(name: &str) -> &str {
    name.strip_prefix("refs/heads/").unwrap_or(name)
}

fn looks_like_commit(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// The number of a pull request's ref: `refs/pull/<n>/…` (GitHub, Bitbucket's as pushbuild
/// names it) or `refs/merge-requests/<n>/…` (GitLab).
fn pull_request_number(reference: &str) -> Option<u64> {
    let rest = reference
        .strip_prefix("refs/pull/")
        .or_else(|| reference.strip_prefix("refs/merge-requests/"))?;
    rest.split('/').next()?.parse().ok()
}

/// `text` with every byte but ASCII letters, digits, `.`, `_` and `-` as `%XX`: safe as one
/// part of an object key, and a prefix of a key encodes to a prefix of its encoding.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}

/// [`encode`] undone.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// All of a project's caches lie under this prefix.
pub fn project_prefix(project: &ProjectName) -> String {
    format!("cache/{project}/")
}

/// One stored cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its object key.
    pub object: String,
    /// The scope it was found in.
    pub scope: String,
    /// The cache key it was saved under (`None`: the project's cache without a key).
    pub key: Option<String>,
    /// When it was saved (milliseconds since the epoch).
    pub saved_ms: i64,
}

impl Found {
    /// The cache `object` is, with `prefix` its project's [`project_prefix`].
    fn parse(prefix: &str, object: &str) -> Option<Found> {
        let rest = object.strip_prefix(prefix)?;
        let (dir, file) = rest.rsplit_once('/')?;
        let (scope, key_part) = dir.rsplit_once('/')?;
        let stem = file.strip_suffix(SUFFIX)?;
        let saved_ms = stem.split('-').next()?.parse().ok()?;
        let key = (key_part != PROJECT_CACHE).then(|| decode(key_part));
        Some(Found {
            object: object.to_string(),
            scope: scope.to_string(),
            key,
            saved_ms,
        })
    }
}

/// The object a cache saved now under `key` takes in `scope`.
pub fn new_object(project: &ProjectName, scope: &str, key: Option<&str>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let nonce = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{}{now:013}-{nonce}{SUFFIX}", key_dir(project, scope, key))
}

fn key_dir(project: &ProjectName, scope: &str, key: Option<&str>) -> String {
    let key = key.map_or_else(|| PROJECT_CACHE.to_string(), encode);
    format!("{}{scope}/{key}/", project_prefix(project))
}

/// The caches saved under exactly `key` in `scope`, oldest first.
pub fn saved_under(
    store: &dyn Store,
    project: &ProjectName,
    scope: &str,
    key: Option<&str>,
) -> Result<Vec<Found>, StoreError> {
    let prefix = project_prefix(project);
    let mut found: Vec<Found> = store
        .list(&key_dir(project, scope, key))?
        .iter()
        .filter_map(|object| Found::parse(&prefix, object))
        .collect();
    found.sort_by_key(|f| (f.saved_ms, f.object.clone()));
    Ok(found)
}

/// The cache a build restores: in each scope in turn, the one saved under `key` (the first
/// saved: a keyed cache is never replaced), else the newest whose key starts with one of
/// `fallback_keys`, tried in order. Without a key: the newest of the project's caches.
pub fn find(
    store: &dyn Store,
    project: &ProjectName,
    scope: &Scope,
    key: Option<&str>,
    fallback_keys: &[String],
) -> Result<Option<Found>, StoreError> {
    let prefix = project_prefix(project);
    for scope in scope.all() {
        let Some(key) = key else {
            if let Some(newest) = saved_under(store, project, scope, None)?.pop() {
                return Ok(Some(newest));
            }
            continue;
        };
        if let Some(first) = saved_under(store, project, scope, Some(key))?
            .into_iter()
            .next()
        {
            return Ok(Some(first));
        }
        for fallback in fallback_keys {
            let listed = store.list(&format!("{prefix}{scope}/{}", encode(fallback)))?;
            let newest = listed
                .iter()
                .filter_map(|object| Found::parse(&prefix, object))
                .filter(|found| found.key.is_some())
                .max_by_key(|found| found.saved_ms);
            if newest.is_some() {
                return Ok(newest);
            }
        }
    }
    Ok(None)
}

/// Every cache of `project` with its size, oldest first.
pub fn all_sized(
    store: &dyn Store,
    project: &ProjectName,
) -> Result<Vec<(Found, u64)>, StoreError> {
    let prefix = project_prefix(project);
    let mut found: Vec<(Found, u64)> = store
        .list_sized(&prefix)?
        .into_iter()
        .filter_map(|(object, size)| Found::parse(&prefix, &object).map(|f| (f, size)))
        .collect();
    found.sort_by_key(|(f, _)| (f.saved_ms, f.object.clone()));
    Ok(found)
}

#[cfg(test)]
#[path = "objects_tests.rs"]
mod tests;
