//! The Lambda function's work for one invocation: map the event to builds, and for each one
//! resolve the commit, fetch its source, run the pipeline and report. The binary
//! (`pushbuild-lambda`) and `pushbuild invoke` both drive [`Function::handle`].
//!
//! A failed user build is a normal response; only pushbuild's own failures (a bad event, a source
//! or store that stays unreachable) are errors, and [`FunctionError::error_type`] says whether a
//! retry can help.

mod response;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::buildspec;
use crate::config::Config;
use crate::executor::env::BuildInfo;
use crate::executor::log::Echo;
use crate::pipeline::{self, BuildJob, PipelineError, Unbuilt};
use crate::record::BuildRecord;
use crate::source::{FetchSummary, ResolvedCommit, Source, SourceError};
use crate::store::Store;
use crate::trigger::{self, BuildTarget, EventError, Planned};

pub use response::{BuildSummary, InvocationResponse};

/// Why an invocation failed (not a user build: those are responses).
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error(transparent)]
    BadEvent(#[from] EventError),
    #[error("repository {repository}: {source}")]
    Source {
        repository: String,
        #[source]
        source: SourceError,
    },
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("cannot prepare {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the build task stopped unexpectedly: {0}")]
    Task(String),
}

impl FunctionError {
    /// The Lambda `errorType`: `PushBuild.Retryable.*` when trying the event again can help,
    /// `PushBuild.Permanent.*` when it cannot.
    pub fn error_type(&self) -> &'static str {
        match self {
            FunctionError::BadEvent(_) => "PushBuild.Permanent.BadEvent",
            FunctionError::Source { .. } => "PushBuild.Retryable.SourceUnavailable",
            FunctionError::Pipeline(_) => "PushBuild.Retryable.StoreUnavailable",
            FunctionError::WorkDir { .. } => "PushBuild.Retryable.WorkDir",
            FunctionError::Task(_) => "PushBuild.Retryable.Internal",
        }
    }
}

/// The function: its settings, its source and its store.
pub struct Function<S> {
    pub config: Config,
    pub source: S,
    pub store: Arc<dyn Store>,
    /// The environment builds start from (the function's own, less pushbuild's settings).
    pub base_env: Vec<(String, String)>,
    /// Where billing metrics go (standard output on Lambda, as EMF).
    pub metrics: Arc<dyn crate::metering::MetricSink>,
    /// Where build logs are echoed as they are written (off on Lambda: standard output carries
    /// metrics there).
    pub echo: Echo,
}

impl<S: Source> Function<S> {
    /// Builds what `event` asks for; `deadline` is the invocation's.
    pub async fn handle(
        &self,
        event: &serde_json::Value,
        deadline: Option<Instant>,
    ) -> Result<InvocationResponse, FunctionError> {
        let plan = trigger::plan(event)?;
        let mut builds = Vec::with_capacity(plan.len());
        for planned in plan {
            match planned {
                Planned::Skip(skipped) => builds.push(BuildSummary::skipped(
                    skipped.repository,
                    skipped.reference,
                    skipped.commit,
                    skipped.reason,
                )),
                Planned::Build(target) => builds.push(self.build(target, deadline).await?),
            }
        }
        Ok(InvocationResponse { builds })
    }

    /// Builds one target once: a target that carries an event's delivery key is claimed first
    /// (a conditional write), so a second delivery of the same event is reported as a duplicate
    /// instead of building again. A claim whose build failed for pushbuild's own reasons is
    /// released, so Lambda's retry can build it.
    async fn build(
        &self,
        target: BuildTarget,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, FunctionError> {
        let Some(dedup_key) = target.dedup_key.clone() else {
            return self.run_target(target, deadline).await;
        };
        let key = claim_key(&target.repository, &dedup_key);
        let body = serde_json::json!({
            "dedupKey": dedup_key,
            "repository": target.repository,
            "claimedAt": Utc::now().to_rfc3339(),
        })
        .to_string();
        let store = self.store.clone();
        let claim = key.clone();
        let created = run_blocking(move || {
            let meta = crate::store::ObjectMeta {
                content_type: "application/json".into(),
                metadata: Vec::new(),
            };
            store.put_if_absent(&claim, body.as_bytes(), &meta)
        })
        .await?
        .map_err(|err| FunctionError::Pipeline(err.into()))?;
        if !created {
            tracing::info!(dedup_key = dedup_key.as_str(), "duplicate delivery skipped");
            return Ok(BuildSummary::skipped(
                target.repository,
                target.reference,
                target.commit,
                format!(
                    "duplicate delivery: `{dedup_key}` was already taken by an earlier delivery of this event"
                ),
            ));
        }
        let result = self.run_target(target, deadline).await;
        if result.is_err() {
            let store = self.store.clone();
            let _ = run_blocking(move || store.delete(&key)).await;
        }
        result
    }

    async fn run_target(
        &self,
        target: BuildTarget,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, FunctionError> {
        let started = Instant::now();
        let start_time = Utc::now();
        let version = target
            .commit
            .clone()
            .unwrap_or_else(|| target.version.clone());
        let mut info = BuildInfo {
            build_id: pipeline::new_build_id(),
            project: target.repository.clone(),
            build_number: 0,
            initiator: target.initiator.clone(),
            source_version: Some(target.version.clone()),
            resolved_source_version: target.commit.clone(),
            source_repo_url: target.region.as_ref().map(|region| {
                format!(
                    "https://git-codecommit.{region}.amazonaws.com/v1/repos/{}",
                    target.repository
                )
            }),
            webhook_trigger: target.webhook_trigger.clone(),
            start_time_ms: start_time.timestamp_millis(),
        };
        let reference = target.reference.clone();
        if let Some(skipped) = self.refused_by_budget(&info, reference.clone()).await? {
            return Ok(skipped);
        }
        let unbuilt = |info: BuildInfo, message: String, notes: Vec<String>| PendingFailure {
            info,
            reference: reference.clone(),
            message,
            notes,
        };

        let resolved = self.source.resolve(&target.repository, &version).await;
        let resolved = match split_source(resolved, &target.repository)? {
            Ok(resolved) => resolved,
            Err(message) => {
                return self
                    .fail(unbuilt(info, message, vec![]), started, start_time)
                    .await;
            }
        };
        info.resolved_source_version = Some(resolved.commit_id.clone());
        if trigger::skip_ci(&resolved.message) {
            return Ok(BuildSummary::skipped(
                target.repository,
                reference.or(resolved.reference),
                Some(resolved.commit_id),
                "the commit message asks to skip CI ([skip ci] or [ci skip])".to_string(),
            ));
        }

        let src = self.config.source_dir();
        let home = self.config.home_dir();
        for dir in [&src, &home] {
            empty_dir(dir).map_err(|source| FunctionError::WorkDir {
                path: dir.clone(),
                source,
            })?;
        }
        let fetched = self
            .source
            .fetch(&target.repository, &resolved.commit_id, &src)
            .await;
        let fetched = match split_source(fetched, &target.repository)? {
            Ok(fetched) => fetched,
            Err(message) => {
                return self
                    .fail(unbuilt(info, message, vec![]), started, start_time)
                    .await;
            }
        };
        let notes = fetch_notes(&resolved, &fetched);

        let spec_path = target
            .buildspec
            .clone()
            .unwrap_or_else(|| self.config.buildspec.clone());
        let parsed = match buildspec::load(&src.join(&spec_path)) {
            Ok(parsed) => parsed,
            Err(err) => {
                let message = format!("YAML_FILE_ERROR: {}", strip_dir(&err.to_string(), &src));
                return self
                    .fail(unbuilt(info, message, notes), started, start_time)
                    .await;
            }
        };
        if !parsed.spec.env.parameter_store.is_empty()
            || !parsed.spec.env.secrets_manager.is_empty()
        {
            let message = "CLIENT_ERROR: env.parameter-store and env.secrets-manager are not supported by the function yet; pass such values as environment overrides".to_string();
            return self
                .fail(unbuilt(info, message, notes), started, start_time)
                .await;
        }

        let job = BuildJob {
            info,
            reference: reference.or(resolved.reference),
            spec: parsed.spec,
            spec_warnings: parsed.warnings,
            src_dir: src.clone(),
            base_env: self.base_env.clone(),
            overrides: target.env_overrides.clone(),
            secrets: Vec::new(),
            home: Some(home),
            deadline: deadline
                .map(|d| d.checked_sub(self.config.upload_reserve).unwrap_or(started)),
            started,
            start_time,
            price: self.config.price.clone(),
            echo: self.echo,
            temp_root: self.config.work_dir.join("tmp"),
            source_notes: notes,
            metering: self.metering(),
        };
        let store = self.store.clone();
        let record = run_blocking(move || {
            let mut job = job;
            job.info.build_number = pipeline::next_build_number(&*store, &job.info.project)
                .map_err(PipelineError::from)?;
            pipeline::run_build(&job, &*store)
        })
        .await??;
        // The next build (on this warm function) starts from an empty directory, and /tmp does
        // not fill up over many builds.
        let _ = empty_dir(&src);
        Ok(BuildSummary::from_record(&record))
    }

    /// A build the month's budget refuses: recorded as SKIPPED with the reason, billed nothing,
    /// and counted in the metrics.
    async fn refused_by_budget(
        &self,
        info: &BuildInfo,
        reference: Option<String>,
    ) -> Result<Option<BuildSummary>, FunctionError> {
        let budget = self.config.budget();
        if budget == crate::billing::Budget::default() {
            return Ok(None);
        }
        let store = self.store.clone();
        let price = self.config.price.clone();
        let metering = self.metering();
        let mut info = info.clone();
        let record = run_blocking(move || -> Result<Option<BuildRecord>, PipelineError> {
            let reason = match budget.check(&*store, &info.project, Utc::now()) {
                Ok(reason) => reason,
                Err(crate::billing::BillingError::Store(err)) => return Err(err.into()),
                // A malformed ledger entry must not stop every build: the cap is not applied.
                Err(err) => {
                    tracing::warn!(error = %err, "the budget could not be checked");
                    None
                }
            };
            let Some(reason) = reason else {
                return Ok(None);
            };
            info.build_number = pipeline::next_build_number(&*store, &info.project)?;
            let record =
                pipeline::record_skipped(&info, reference.clone(), &reason, &price, &*store)?;
            crate::metering::Meter::skipped(
                metering.sink.clone(),
                &metering.namespace,
                &info.project,
                &crate::metering::branch_name(reference.as_deref()),
                &info.build_id,
                &reason,
            );
            Ok(Some(record))
        })
        .await??;
        Ok(record.map(|record| BuildSummary::from_record(&record)))
    }

    fn metering(&self) -> pipeline::Metering {
        pipeline::Metering {
            sink: self.metrics.clone(),
            namespace: self.config.namespace.clone(),
            minute: self.config.billing_minute,
        }
    }

    async fn fail(
        &self,
        failure: PendingFailure,
        started: Instant,
        start_time: chrono::DateTime<Utc>,
    ) -> Result<BuildSummary, FunctionError> {
        let store = self.store.clone();
        let price = self.config.price.clone();
        let metering = self.metering();
        let record: BuildRecord = run_blocking(move || {
            let mut info = failure.info;
            info.build_number = pipeline::next_build_number(&*store, &info.project)?;
            pipeline::record_unbuilt(
                &Unbuilt {
                    info: &info,
                    reference: failure.reference,
                    phase: "DOWNLOAD_SOURCE",
                    message: failure.message,
                    notes: failure.notes,
                    started,
                    start_time,
                    price: &price,
                    metering: &metering,
                },
                &*store,
            )
        })
        .await??;
        Ok(BuildSummary::from_record(&record))
    }
}

/// Where the claim for one delivery key lies: `claims/<repository>/<sha256 of the key>`.
fn claim_key(repository: &str, dedup_key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(dedup_key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("claims/{repository}/{hex}.json")
}

/// A build that failed before it ran, waiting to be recorded.
struct PendingFailure {
    info: BuildInfo,
    reference: Option<String>,
    message: String,
    notes: Vec<String>,
}

/// Runs blocking work (the pipeline, the sync store) off the async runtime's threads.
async fn run_blocking<T, F>(work: F) -> Result<T, FunctionError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| FunctionError::Task(err.to_string()))
}

/// Splits a source call's result three ways: its value; a message for a FAILED build (the
/// user's to fix); or pushbuild's own failure (worth a retry).
fn split_source<T>(
    result: Result<T, SourceError>,
    repository: &str,
) -> Result<Result<T, String>, FunctionError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(err) if is_user_error(&err) => Ok(Err(format!("CLIENT_ERROR: {err}"))),
        Err(source) => Err(FunctionError::Source {
            repository: repository.to_string(),
            source,
        }),
    }
}

/// Errors that are the user's to fix (a missing branch, a file too large): a FAILED build, not a
/// failed invocation that Lambda would retry.
fn is_user_error(err: &SourceError) -> bool {
    !matches!(err, SourceError::Api { .. } | SourceError::Io { .. })
}

fn fetch_notes(resolved: &ResolvedCommit, fetched: &FetchSummary) -> Vec<String> {
    let mut notes = vec![format!(
        "Fetched commit {}: {} files, {} bytes",
        resolved.commit_id, fetched.files, fetched.bytes
    )];
    notes.extend(fetched.notes.iter().cloned());
    notes
}

/// Removes `dir`'s contents (or makes it).
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::fs::create_dir_all(dir)
}

/// Shows paths relative to the source directory in messages.
fn strip_dir(message: &str, dir: &Path) -> String {
    message.replace(&format!("{}/", dir.display()), "")
}

/// The invocation's deadline (Lambda gives milliseconds since the Unix epoch) as an `Instant`.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<Instant> {
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis(),
    )
    .ok()?;
    (deadline_ms > 0)
        .then(|| Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

/// The environment builds start from: the function's own, less pushbuild's settings and the
/// runtime's private variables.
pub fn build_base_env(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter(|(name, _)| {
        !name.starts_with("PUSHBUILD_")
            && name != "AWS_LAMBDA_RUNTIME_API"
            && !name.starts_with("_LAMBDA")
    })
    .collect()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn deadlines_in_epoch_milliseconds_become_instants() {
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let deadline = deadline_from_epoch_ms(now_ms + 10_000).unwrap();
        let left = deadline.duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        assert_eq!(deadline_from_epoch_ms(0), None);
    }

    #[test]
    fn only_unreachable_hosts_are_worth_a_retry() {
        let api = SourceError::Api {
            operation: "GetBlob",
            message: "503".into(),
        };
        assert!(!is_user_error(&api));
        let big = SourceError::FileTooLarge {
            path: "a".into(),
            limit_bytes: 1,
        };
        assert!(is_user_error(&big));
        let err = FunctionError::Source {
            repository: "r".into(),
            source: api,
        };
        assert!(err.error_type().starts_with("PushBuild.Retryable"));
    }
}
