//! A build's cache, as the buildspec's `cache` section says: restored before INSTALL, saved
//! after POST_BUILD when the build succeeded, in the store under `cache/<project>/`.
//!
//! - **Keys.** `cache.key` and `cache.fallback-keys` are expanded by the shell (`key.rs`). A
//!   keyed cache is saved once and never replaced; a fallback key matches the newest cache whose
//!   key starts with it. Without a key, a cache is the project's, replaced by each successful
//!   build.
//! - **Scopes.** Caches belong to the ref a build ran for; a build reads its own ref's first,
//!   then (a pull request) its base branch's, then the default branch's (`objects.rs`).
//! - **Archives.** One zstd-compressed tar per cache, streamed to and from the store
//!   (`archive.rs`); nothing lands outside the source and `$HOME` on restore.
//! - **Limits.** `PUSHBUILD_CACHE_MAX_MB` per project (the oldest caches go first) and
//!   `PUSHBUILD_CACHE_DAYS` from a cache's save.
//!
//! A cache never fails a build: what went wrong is a line in the log and a note in the record.

mod archive;
mod counting;
mod key;
mod objects;
mod paths;
mod pipe;
mod tools;

use std::io::{self, BufReader};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::buildspec::Cache;
use crate::executor::log::BuildLog;
use crate::names::ProjectName;
use crate::store::{ObjectMeta, Store};
use counting::{Capped, Counted};

pub use archive::Roots;
pub use objects::{Scope, project_prefix};
pub use paths::HOME_ALIASES;
pub use tools::{HASH_FILES, install as install_tools, on_path as tools_on_path};

/// A project's caches' limits, and the branch every build may fall back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// `PUSHBUILD_CACHE_MAX_MB`: the project's caches together, in bytes.
    pub max_bytes: u64,
    /// `PUSHBUILD_CACHE_DAYS`: a cache is removed this many days after it was saved.
    pub days: u64,
    /// `PUSHBUILD_DEFAULT_BRANCH`: whose caches every other ref may restore.
    pub default_branch: String,
}

impl Default for CacheSettings {
    fn default() -> CacheSettings {
        CacheSettings {
            max_bytes: 1024 << 20,
            days: 30,
            default_branch: "main".to_string(),
        }
    }
}

/// What a build did with its cache, in its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The expanded `cache.key` (`None`: the project's cache, without a key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<CacheUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<CacheUse>,
    /// Why a cache was not restored or saved, and paths left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One cache restored or saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheUse {
    /// The key it was saved under (`None`: the project's cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The ref's scope it lies in (`branch/main`, `pr/12`).
    pub scope: String,
    /// Its URI in the store.
    pub uri: String,
    /// The archive's size (compressed).
    pub size: u64,
    /// Files, links and folders.
    pub entries: u64,
    /// The files' bytes, uncompressed.
    pub bytes: u64,
    pub duration_ms: u64,
}

/// One build's cache: what it holds, where it lives, and what a build may do with it.
pub struct CacheJob<'a> {
    pub cache: &'a Cache,
    pub project: &'a ProjectName,
    pub scope: Scope,
    pub roots: Roots,
    /// The build's environment (with the tools on its `PATH`), for expanding keys.
    pub env: &'a [(String, String)],
    pub store: &'a dyn Store,
    pub settings: &'a CacheSettings,
    /// Whether the build's deadline has come.
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

impl CacheJob<'_> {
    fn restores(&self) -> bool {
        !self.cache.paths.is_empty() && self.cache.action.as_deref() != Some("save")
    }

    fn saves(&self) -> bool {
        !self.cache.paths.is_empty() && self.cache.action.as_deref() != Some("restore")
    }

    /// The expanded key, or why there is none (`Ok(None)`: no key).
    fn key(&self, record: &mut CacheRecord, log: &BuildLog) -> Result<Option<String>, ()> {
        let Some(text) = &self.cache.key else {
            return Ok(None);
        };
        match key::expand(text, self.env, &self.roots.source) {
            Ok(key) => {
                record.key = Some(key.clone());
                Ok(Some(key))
            }
            Err(why) => {
                note(record, log, format!("no key: {why}"));
                Err(())
            }
        }
    }

    /// Restores the build's cache before INSTALL, if there is one to restore.
    pub fn restore(&self, record: &mut CacheRecord, log: &BuildLog) {
        if !self.restores() {
            return;
        }
        let Ok(key) = self.key(record, log) else {
            return;
        };
        let fallbacks: Vec<String> = self
            .cache
            .fallback_keys
            .iter()
            .filter_map(
                |text| match key::expand(text, self.env, &self.roots.source) {
                    Ok(key) => Some(key),
                    Err(why) => {
                        note(record, log, format!("fallback key left out: {why}"));
                        None
                    }
                },
            )
            .collect();
        let found = objects::find(
            self.store,
            self.project,
            &self.scope,
            key.as_deref(),
            &fallbacks,
        );
        let found = match found {
            Ok(Some(found)) => found,
            Ok(None) => {
                let what = match &key {
                    Some(key) => format!("key `{key}` or its fallback keys"),
                    None => "the project".to_string(),
                };
                let scopes = std::iter::once(&self.scope.own)
                    .chain(&self.scope.fallbacks)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                note(
                    record,
                    log,
                    format!("not restored: no cache for {what} in {scopes}"),
                );
                return;
            }
            Err(err) => {
                note(record, log, format!("not restored: {err}"));
                return;
            }
        };
        let uri = self.store.uri(&found.object);
        log.marker(&format!(
            "Cache: restoring {} from {uri}",
            describe(&found.key)
        ));
        let clock = Instant::now();
        let restored = self
            .store
            .reader(&found.object)
            .map_err(|e| e.to_string())
            .and_then(|reader| {
                let reader = reader.ok_or("the cache was removed meanwhile")?;
                let counted = Counted::new(BufReader::with_capacity(256 << 10, reader));
                let size = counted.count.clone();
                let counts = archive::unpack(counted, &self.roots, self.stop)
                    .map_err(|err| err.to_string())?;
                Ok((counts, size.load(std::sync::atomic::Ordering::Relaxed)))
            });
        match restored {
            Ok((counts, size)) => {
                let used = used(&found, uri, size, counts, clock);
                log.marker(&format!("Cache: restored {}", summary(&used)));
                record.restored = Some(used);
            }
            Err(why) => note(record, log, format!("not restored whole: {why}")),
        }
    }

    /// Saves the build's cache after POST_BUILD; `succeeded` says whether the build did.
    pub fn save(&self, succeeded: bool, record: &mut CacheRecord, log: &BuildLog) {
        if !self.saves() {
            return;
        }
        if !succeeded {
            note(
                record,
                log,
                "not saved: the build did not succeed".to_string(),
            );
            return;
        }
        let Ok(key) = self.key(record, log) else {
            return;
        };
        match self.save_keyed(key.as_deref(), record, log) {
            Ok(Some(used)) => {
                log.marker(&format!("Cache: saved {}", summary(&used)));
                record.saved = Some(used);
                if let Err(err) = self.prune() {
                    note(record, log, format!("old caches not removed: {err}"));
                }
            }
            Ok(None) => {}
            Err(why) => note(record, log, format!("not saved: {why}")),
        }
    }

    fn save_keyed(
        &self,
        key: Option<&str>,
        record: &mut CacheRecord,
        log: &BuildLog,
    ) -> Result<Option<CacheUse>, String> {
        let own = &self.scope.own;
        if let Some(key) = key {
            let saved = objects::saved_under(self.store, self.project, own, Some(key))
                .map_err(|err| err.to_string())?;
            if !saved.is_empty() {
                let why = format!(
                    "not saved: `{key}` is saved already (a keyed cache is kept as first saved)"
                );
                note(record, log, why);
                return Ok(None);
            }
        }
        let (members, left_out) = paths::members(&self.cache.paths, &self.roots)?;
        for why in left_out {
            note(record, log, format!("path left out: {why}"));
        }
        if members.is_empty() {
            note(
                record,
                log,
                "not saved: the cache's paths match nothing".to_string(),
            );
            return Ok(None);
        }
        let object = objects::new_object(self.project, own, key);
        let clock = Instant::now();
        let meta = ObjectMeta::new("application/zstd").with("repository", self.project.as_str());
        let writer = self
            .store
            .lean_writer(&object, &meta)
            .map_err(|err| err.to_string())?;
        let capped = Capped {
            inner: writer,
            written: 0,
            max: self.settings.max_bytes,
        };
        let (counts, capped) =
            archive::pack(&members, capped, self.stop).map_err(|err| match err.kind() {
                io::ErrorKind::FileTooLarge => format!(
                    "the cache is larger than PUSHBUILD_CACHE_MAX_MB ({} MB)",
                    self.settings.max_bytes >> 20
                ),
                _ => err.to_string(),
            })?;
        let size = capped.written;
        let uri = capped.inner.commit().map_err(|err| err.to_string())?;
        let found = objects::Found {
            object: object.clone(),
            scope: own.clone(),
            key: key.map(str::to_string),
            saved_ms: 0,
        };
        if !self.settle_race(key, &object)? {
            let why = "not saved: another build saved the same key first".to_string();
            note(record, log, why);
            return Ok(None);
        }
        Ok(Some(used(&found, uri, size, counts, clock)))
    }

    /// After a save: two builds that saved one key at once keep the first; a cache without a
    /// key replaces the ones before it. Whether `object` is kept.
    fn settle_race(&self, key: Option<&str>, object: &str) -> Result<bool, String> {
        let saved = objects::saved_under(self.store, self.project, &self.scope.own, key)
            .map_err(|err| err.to_string())?;
        // With a key the first named (oldest) stays, whoever saved it: two builds that
        // saw each other's caches both leave that one.
        let doomed: Vec<&objects::Found> = match key {
            Some(_) => saved.iter().skip(1).collect(),
            None => saved.iter().filter(|f| f.object != object).collect(),
        };
        let kept = doomed.iter().all(|found| found.object != object);
        for found in doomed {
            self.store
                .delete(&found.object)
                .map_err(|err| err.to_string())?;
        }
        Ok(kept)
    }

    /// Removes the project's caches saved more than `days` ago, then the oldest while the
    /// project holds more than its cap.
    fn prune(&self) -> Result<(), crate::store::StoreError> {
        let all = objects::all_sized(self.store, self.project)?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let oldest_kept = now_ms - (self.settings.days as i64) * 86_400_000;
        let mut total: u64 = all.iter().map(|(_, size)| size).sum();
        for (found, size) in &all {
            if found.saved_ms < oldest_kept || total > self.settings.max_bytes {
                self.store.delete(&found.object)?;
                total -= size;
            }
        }
        Ok(())
    }
}

fn note(record: &mut CacheRecord, log: &BuildLog, why: String) {
    log.marker(&format!("Cache: {why}"));
    record.notes.push(why);
}

fn describe(key: &Option<String>) -> String {
    match key {
        Some(key) => format!("key `{key}`"),
        None => "the project's cache".to_string(),
    }
}

fn used(
    found: &objects::Found,
    uri: String,
    size: u64,
    counts: archive::Counts,
    clock: Instant,
) -> CacheUse {
    CacheUse {
        key: found.key.clone(),
        scope: found.scope.clone(),
        uri,
        size,
        entries: counts.entries,
        bytes: counts.bytes,
        duration_ms: clock.elapsed().as_millis() as u64,
    }
}

/// `key `npm-1` (branch/main): 20000 entries, 300.0 MB (61.2 MB stored) in 1.84 s`.
pub fn summary(used: &CacheUse) -> String {
    let mb = |bytes: u64| bytes as f64 / 1_048_576.0;
    format!(
        "{} ({}): {} entries, {:.1} MB ({:.1} MB stored) in {:.2} s",
        describe(&used.key),
        used.scope,
        used.entries,
        mb(used.bytes),
        mb(used.size),
        used.duration_ms as f64 / 1000.0
    )
}

#[cfg(test)]
mod tests;
