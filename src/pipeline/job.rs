//! The vocabulary of one build: who it is ([`BuildIdentity`]), how builds run here
//! ([`BuildSettings`]), what it does ([`Work`]), and the [`BuildJob`] that puts them together.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::buildspec::{BuildSpec, Parsed, Warning};
use crate::cache::CacheSettings;
use crate::cost::{self, Price};
use crate::executor::PhaseContext;
use crate::executor::env::{BuildInfo, WebhookVars};
use crate::executor::log::Echo;
use crate::index::Books;
use crate::metering::{Meter, MetricSink, NullSink, Reserve, RunningMeter, branch_name};
use crate::names::{BuildId, CommitId, ProjectName};
use crate::record::BuildRecord;
use crate::runtimes::Runtimes;
use crate::trigger::BatchChild;

/// Who a build is, fixed before anything runs: its project, its id, what asked for it and what
/// it builds. `BuildIdentity { commit: …, ..BuildIdentity::new(project, initiator) }`.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildIdentity {
    pub project: ProjectName,
    /// `20261122T231000Z-3f9c1a2b`: the start time, then a random part.
    pub build_id: BuildId,
    /// Who or what started the build (`pushbuild-cli/alice`, `codecommit/<trigger>`).
    pub initiator: String,
    /// What was asked for, as `CODEBUILD_SOURCE_VERSION` shows it.
    pub source_version: Option<String>,
    /// The commit that is built, once known.
    pub commit: Option<CommitId>,
    /// The reference that is built (`refs/heads/main`), for the record.
    pub reference: Option<String>,
    pub source_repo_url: Option<String>,
    /// `branch/<name>` or `tag/<name>` for builds started by a push.
    pub webhook_trigger: Option<String>,
    /// CodeBuild's webhook variables, for a build a webhook started.
    pub webhook: Option<WebhookVars>,
    /// The batch it is a child of: an ask to stop the batch stops it too.
    pub batch: Option<BatchChild>,
    /// The build it runs again.
    pub retries: Option<String>,
    /// When the build was taken on: billing counts from here.
    pub started: Instant,
    pub start_time: DateTime<Utc>,
}

impl BuildIdentity {
    /// A new build of `project`, started now, with a new id.
    pub fn new(project: ProjectName, initiator: impl Into<String>) -> BuildIdentity {
        BuildIdentity {
            project,
            build_id: BuildId::new(),
            initiator: initiator.into(),
            source_version: None,
            commit: None,
            reference: None,
            source_repo_url: None,
            webhook_trigger: None,
            webhook: None,
            batch: None,
            retries: None,
            started: Instant::now(),
            start_time: Utc::now(),
        }
    }

    /// The values behind the build's `CODEBUILD_*` variables, once it has its number.
    pub(super) fn info(&self, build_number: u64) -> BuildInfo {
        BuildInfo {
            build_id: self.build_id.clone(),
            project: self.project.clone(),
            build_number,
            initiator: self.initiator.clone(),
            source_version: self.source_version.clone(),
            resolved_source_version: self.commit.clone(),
            source_repo_url: self.source_repo_url.clone(),
            webhook_trigger: self.webhook_trigger.clone(),
            webhook: self.webhook.clone(),
            start_time_ms: self.start_time.timestamp_millis(),
        }
    }
}

/// How builds run here: the same for every build of one `pushbuild` command or one function.
#[derive(Clone)]
pub struct BuildSettings {
    pub price: Price,
    pub metering: Metering,
    pub echo: Echo,
    /// Where each build's private work directory is made (outside the source).
    pub temp_root: PathBuf,
    /// The environment builds start from (pushbuild's own, or the function's less its settings).
    pub base_env: Vec<(String, String)>,
    /// The image's runtimes, which `runtime-versions` chooses from (`None`: the machine's own
    /// tools).
    pub runtimes: Option<Arc<Runtimes>>,
    /// How often a running build's log so far goes to the store for its page (`None`: never).
    pub live_log: Option<Duration>,
    /// The index (numbers, entries, the month's sums) and the budget's caps.
    pub books: Books,
    /// The caches' limits and default branch.
    pub cache: CacheSettings,
}

/// What a build does.
pub enum Work {
    /// Run the buildspec over the source.
    Run(Box<Ready>),
    /// The source or the buildspec could not be had: the build is FAILED, and its one phase,
    /// DOWNLOAD_SOURCE, says why.
    CannotStart {
        context: PhaseContext,
        /// Lines for the log before the failure (what was fetched).
        notes: Vec<String>,
    },
    /// The build was refused before it started: SKIPPED, billed nothing. (The month's budget
    /// refuses a build in [`super::begin`].)
    Refused { reason: String },
}

/// A build that can run: its buildspec and its source.
pub struct Ready {
    pub spec: BuildSpec,
    pub spec_warnings: Vec<Warning>,
    pub src_dir: PathBuf,
    /// The caller's environment overrides (a manual build's override list, `--env`).
    pub overrides: Vec<(String, String)>,
    /// Resolved `parameter-store` and `secrets-manager` variables: set, and masked in the log.
    pub secrets: Vec<(String, String)>,
    /// Lines for the log before the phases (what was fetched, submodules not fetched).
    pub notes: Vec<String>,
    /// `HOME` for the build, when the caller's own will not do (on Lambda: under /tmp).
    pub home: Option<PathBuf>,
    /// The buildspec's path in the source, when it came from there.
    pub buildspec_path: Option<String>,
}

impl Ready {
    /// The loaded buildspec over the source in `src_dir`, with no overrides, secrets or notes.
    pub fn new(parsed: Parsed, src_dir: PathBuf) -> Ready {
        Ready {
            spec: parsed.spec,
            spec_warnings: parsed.warnings,
            src_dir,
            overrides: Vec::new(),
            secrets: Vec::new(),
            notes: Vec::new(),
            home: None,
            buildspec_path: None,
        }
    }
}

/// Everything one build needs.
pub struct BuildJob {
    pub identity: BuildIdentity,
    pub settings: BuildSettings,
    pub work: Work,
    /// When the commands must stop.
    pub deadline: Option<Instant>,
}

impl BuildJob {
    /// The one way a job is made: who the build is, how builds run here, and what it does.
    pub fn new(identity: BuildIdentity, settings: &BuildSettings, work: Work) -> BuildJob {
        BuildJob {
            identity,
            settings: settings.clone(),
            work,
            deadline: None,
        }
    }

    /// The commands stop at `deadline` (TIMED_OUT).
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> BuildJob {
        self.deadline = deadline;
        self
    }
}

/// A build whose record is stored, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBuild {
    pub record: BuildRecord,
    pub record_uri: String,
}

/// Where a build's billing metrics (CloudWatch EMF) go.
#[derive(Clone)]
pub struct Metering {
    pub sink: Arc<dyn MetricSink>,
    pub namespace: String,
    /// A billed minute (60 s; shorter only in tests).
    pub minute: Duration,
}

impl Metering {
    /// No metrics, 60-second minutes (local runs).
    pub fn off() -> Metering {
        Metering {
            sink: Arc::new(NullSink),
            namespace: "PushBuild".to_string(),
            minute: cost::MINUTE,
        }
    }

    pub(super) fn start(
        &self,
        info: &BuildInfo,
        reference: Option<&str>,
        started: Instant,
        reserve: Option<Arc<dyn Reserve>>,
    ) -> RunningMeter {
        Meter::start(
            self.sink.clone(),
            &self.namespace,
            info.project.as_str(),
            &branch_name(reference),
            info.build_id.as_str(),
            self.minute,
            started,
            reserve,
        )
    }

    /// The meter of a build that ran on elsewhere after its first `emitted` minutes.
    pub(super) fn resume(
        &self,
        info: &BuildInfo,
        reference: Option<&str>,
        emitted: u64,
    ) -> RunningMeter {
        crate::metering::Meter::resume(
            self.sink.clone(),
            &self.namespace,
            info.project.as_str(),
            &branch_name(reference),
            info.build_id.as_str(),
            emitted,
        )
    }

    pub(super) fn skipped(&self, info: &BuildInfo, reference: Option<&str>, reason: &str) {
        Meter::skipped(
            self.sink.clone(),
            &self.namespace,
            info.project.as_str(),
            &branch_name(reference),
            info.build_id.as_str(),
            reason,
        );
    }
}
