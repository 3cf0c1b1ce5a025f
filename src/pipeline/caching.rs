//! A build's cache around its phases: restored before INSTALL, saved after POST_BUILD (and the
//! artifacts) when the build succeeded; and the build tools (`codebuild-hash-files` for cache
//! keys, `codebuild-tests-run` and `codebuild-glob-search` for fan-outs), on the build's `PATH`.

use std::time::Instant;

use super::{BuildJob, Ready};
use crate::cache::{self, CacheJob, CacheRecord, Roots, Scope};
use crate::executor::Deadline;
use crate::executor::env::{self, BuildInfo};
use crate::executor::log::BuildLog;
use crate::store::Store;

/// The build's environment, with pushbuild's build tools first on its `PATH`.
pub(super) fn build_env(job: &BuildJob, ready: &Ready, info: &BuildInfo) -> Vec<(String, String)> {
    let mut env = env::environment(
        &job.settings.base_env,
        &ready.spec,
        &ready.overrides,
        &ready.secrets,
        info,
        &ready.src_dir,
        ready.home.as_deref(),
    );
    let tools = job.settings.temp_root.join("pushbuild.tools");
    let installed = cache::install_tools(&tools).and_then(|_| crate::batch::tools::install(&tools));
    if installed.is_ok() {
        cache::tools_on_path(&mut env, &tools);
    }
    env
}

/// What a build's cache needs, held while its phases run.
pub(super) struct Caching<'a> {
    pub job: &'a BuildJob,
    pub ready: &'a Ready,
    pub info: &'a BuildInfo,
    pub env: &'a [(String, String)],
    pub store: &'a dyn Store,
    pub deadline: &'a Deadline,
    pub log: &'a BuildLog,
}

impl Caching<'_> {
    fn with_job<T>(&self, work: impl FnOnce(&CacheJob<'_>) -> T) -> Option<T> {
        let cache = self
            .ready
            .spec
            .cache
            .as_ref()
            .filter(|c| !c.paths.is_empty())?;
        let home = self.ready.home.clone().or_else(|| {
            self.env
                .iter()
                .find(|(name, _)| name == "HOME")
                .map(|(_, home)| home.into())
        });
        let settings = &self.job.settings.cache;
        let scope = Scope::for_build(
            self.job.identity.reference.as_deref(),
            self.info
                .webhook
                .as_ref()
                .and_then(|w| w.base_ref.as_deref()),
            &settings.default_branch,
        );
        let deadline = self.deadline.at();
        let stop = move || deadline.is_some_and(|at| Instant::now() >= at);
        let job = CacheJob {
            cache,
            project: &self.info.project,
            scope,
            roots: Roots {
                source: self.ready.src_dir.clone(),
                home,
            },
            env: self.env,
            store: self.store,
            settings,
            stop: &stop,
        };
        Some(work(&job))
    }

    /// Restores the cache, if the buildspec has one; what happened goes to the log and the
    /// record.
    pub fn restore(&self) -> Option<CacheRecord> {
        self.with_job(|job| {
            let mut record = CacheRecord::default();
            job.restore(&mut record, self.log);
            record
        })
    }

    /// Saves the cache after the build, if it succeeded.
    pub fn save(&self, record: &mut Option<CacheRecord>, succeeded: bool) {
        if let Some(record) = record.as_mut() {
            self.with_job(|job| job.save(succeeded, record, self.log));
        }
    }
}
