//! Making a [`Builds`]: one constructor and the optional parts, and how its builds run.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use super::Builds;
use crate::codebuild::CodeBuild;
use crate::config::Config;
use crate::executor::log::Echo;
use crate::index::Books;
use crate::metering::{MetricSink, NullSink};
use crate::pipeline::{BuildSettings, Metering};
use crate::runtimes::Runtimes;
use crate::source::Spares;
use crate::status::HostApi;
use crate::store::Store;
use crate::trigger::Host;
use crate::vault::Vault;

impl<S> Builds<S> {
    /// Builds from `source` into `store`, with `config`'s settings and `books`' index: no
    /// runtimes, metrics, echo, host APIs or CodeBuild until given; builds start from this
    /// process's environment less pushbuild's settings.
    pub fn new(config: Config, source: S, store: Arc<dyn Store>, books: Books) -> Builds<S> {
        Builds {
            config,
            source,
            store,
            books,
            base_env: build_base_env(std::env::vars()),
            runtimes: None,
            metrics: Arc::new(NullSink),
            echo: Echo::Off,
            apis: Vec::new(),
            codebuild: None,
            notify: None,
            events: None,
            codepipeline: None,
            vault: None,
            docker: docker_on_path(),
            settled_ms: AtomicI64::new(i64::MIN),
            children: std::sync::OnceLock::new(),
            spares: None,
        }
    }

    /// A finished build's files are kept in `spares` (emptied) rather than deleted.
    pub fn with_spares(mut self, spares: Option<Arc<Spares>>) -> Builds<S> {
        self.spares = spares;
        self
    }

    /// The environment builds start from, instead of this process's.
    pub fn with_base_env(mut self, base_env: Vec<(String, String)>) -> Builds<S> {
        self.base_env = base_env;
        self
    }

    /// The image's runtimes, for `runtime-versions`.
    pub fn with_runtimes(mut self, runtimes: Option<Arc<Runtimes>>) -> Builds<S> {
        self.runtimes = runtimes;
        self
    }

    /// Where billing metrics go.
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricSink>) -> Builds<S> {
        self.metrics = metrics;
        self
    }

    /// Where build logs are echoed.
    pub fn with_echo(mut self, echo: Echo) -> Builds<S> {
        self.echo = echo;
        self
    }

    /// The hosts' APIs, for commit statuses.
    pub fn with_apis(mut self, apis: Vec<(Host, Arc<dyn HostApi>)>) -> Builds<S> {
        self.apis = apis;
        self
    }

    /// Where people are told of failed and fixed builds.
    pub fn with_notify(
        mut self,
        notify: Option<Arc<dyn crate::status::notify::Notify>>,
    ) -> Builds<S> {
        self.notify = notify;
        self
    }

    /// Where each build's state changes go as events.
    pub fn with_events(
        mut self,
        events: Option<Arc<dyn crate::status::events::BuildEvents>>,
    ) -> Builds<S> {
        self.events = events;
        self
    }

    /// CodePipeline, for the jobs of its Lambda invoke action.
    pub fn with_codepipeline(
        mut self,
        codepipeline: Option<Arc<dyn crate::codepipeline::CodePipeline>>,
    ) -> Builds<S> {
        self.codepipeline = codepipeline;
        self
    }

    /// AWS CodeBuild, for builds that outgrow the function.
    pub fn with_codebuild(mut self, codebuild: Option<Arc<dyn CodeBuild>>) -> Builds<S> {
        self.codebuild = codebuild;
        self
    }

    /// Where the builds' secret variables are read (by default, this process's environment).
    pub fn with_vault(mut self, vault: Option<Arc<dyn Vault>>) -> Builds<S> {
        self.vault = vault;
        self
    }

    /// Whether Docker can run here (by default, whether `docker` is on this process's `PATH`;
    /// the function says it cannot).
    pub fn with_docker(mut self, docker: bool) -> Builds<S> {
        self.docker = docker;
        self
    }

    /// The index and the budget.
    pub fn books(&self) -> &Books {
        &self.books
    }

    /// Removes what builds left in the work directory (a build killed with its invocation), and
    /// logs the directory's file system: called once when the function or `serve` starts.
    pub fn clear_work_dir(&self) -> std::io::Result<()> {
        // The directory may not exist yet: its nearest existing ancestor is on the same disk
        // (or says where it will be mounted).
        let work_dir = &self.config.work_dir;
        let existing = work_dir.ancestors().find(|dir| dir.exists());
        if let Some(disk) = existing.and_then(super::disk::describe) {
            let journal = match disk.journal {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            };
            tracing::info!(
                work_dir = %work_dir.display(),
                file_system = %disk.kind,
                journal,
                "the work directory's file system"
            );
        }
        match std::fs::remove_dir_all(self.config.builds_dir()) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// How this process's builds run.
    pub(super) fn settings(&self) -> BuildSettings {
        BuildSettings {
            price: self.config.price.clone(),
            metering: Metering {
                sink: self.metrics.clone(),
                namespace: self.config.namespace.clone(),
                minute: self.config.billing_minute,
            },
            echo: self.echo,
            temp_root: self.config.work_dir.join("tmp"),
            base_env: self.base_env.clone(),
            runtimes: self.runtimes.clone(),
            live_log: self.config.live_log,
            books: self.books.clone(),
            cache: self.config.cache.clone(),
        }
    }
}

/// Whether a `docker` program is on this process's `PATH` (found as a build's shell is).
fn docker_on_path() -> bool {
    let env: Vec<(String, String)> = std::env::vars().collect();
    crate::executor::find_program("docker", &env).is_ok()
}

/// The environment builds start from: the process's own, less pushbuild's settings and the
/// Lambda runtime's private variables.
pub fn build_base_env(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter(|(name, _)| {
        !name.starts_with("PUSHBUILD_")
            && name != "AWS_LAMBDA_RUNTIME_API"
            && !name.starts_with("_LAMBDA")
    })
    .collect()
}

#[cfg(test)]
mod base_env_tests {
    use super::*;

    #[test]
    fn the_base_env_drops_settings_and_runtime_variables() {
        let vars = [
            ("PATH", "/bin"),
            ("PUSHBUILD_BUCKET", "b"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env = build_base_env(vars.into_iter());
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "AWS_REGION"]);
    }
}
