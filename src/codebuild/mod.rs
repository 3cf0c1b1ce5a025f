//! Builds that outgrow Lambda run on AWS CodeBuild: the port pushbuild starts and reads them
//! through ([`CodeBuild`]: `StartBuild` and `BatchGetBuilds`), the compute types and their
//! prices, and the `CodeBuild Build State Change` event that brings a result back.
//!
//! A build is handed over after the function has fetched its source (`pipeline::handover`);
//! its result comes back as an event (or is found by the sweep) and is finished like any build.

pub mod event;
#[cfg(feature = "aws")]
pub mod sdk;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::executor::{PhaseContext, PhaseOutcome, RunStatus};
use crate::state::BuildState;

/// CodeBuild's shortest and longest build timeouts, in minutes.
pub const MIN_TIMEOUT_MINUTES: u64 = 5;
pub const MAX_TIMEOUT_MINUTES: u64 = 2160;

/// How long a handed-over build may wait in CodeBuild's queue (`queuedTimeoutInMinutes`): the
/// budget holds its minutes meanwhile.
pub const QUEUED_TIMEOUT_MINUTES: u64 = 60;

/// The environment variables that tie a CodeBuild build to pushbuild's (CodeBuild reserves the
/// `CODEBUILD_` prefix for its own).
pub const PROJECT_VAR: &str = "PUSHBUILD_PROJECT";
pub const BUILD_ID_VAR: &str = "PUSHBUILD_BUILD_ID";

/// CodeBuild's Linux compute types on EC2, with their on-demand prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ComputeType {
    #[default]
    #[serde(rename = "BUILD_GENERAL1_SMALL")]
    Small,
    #[serde(rename = "BUILD_GENERAL1_MEDIUM")]
    Medium,
    #[serde(rename = "BUILD_GENERAL1_LARGE")]
    Large,
    #[serde(rename = "BUILD_GENERAL1_XLARGE")]
    XLarge,
    #[serde(rename = "BUILD_GENERAL1_2XLARGE")]
    X2Large,
}

impl ComputeType {
    const ALL: [ComputeType; 5] = [
        ComputeType::Small,
        ComputeType::Medium,
        ComputeType::Large,
        ComputeType::XLarge,
        ComputeType::X2Large,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComputeType::Small => "BUILD_GENERAL1_SMALL",
            ComputeType::Medium => "BUILD_GENERAL1_MEDIUM",
            ComputeType::Large => "BUILD_GENERAL1_LARGE",
            ComputeType::XLarge => "BUILD_GENERAL1_XLARGE",
            ComputeType::X2Large => "BUILD_GENERAL1_2XLARGE",
        }
    }

    pub fn parse(text: &str) -> Option<ComputeType> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|c| c.as_str()).collect()
    }

    /// CodeBuild's on-demand price per build minute for Linux on this compute type (USD,
    /// us-east-1), which bills by the minute, rounded up.
    pub fn usd_per_minute(self) -> f64 {
        match self {
            ComputeType::Small => 0.005,
            ComputeType::Medium => 0.01,
            ComputeType::Large => 0.02,
            ComputeType::XLarge => 0.0798,
            ComputeType::X2Large => 0.20,
        }
    }

    /// The price of a minute on it, as records and the ledger show prices.
    pub fn price(self) -> crate::cost::Price {
        crate::cost::Price {
            usd_per_minute: self.usd_per_minute(),
            basis: format!(
                "codebuild {} (linux, on demand) at ${}/minute",
                self.as_str(),
                self.usd_per_minute()
            ),
        }
    }
}

/// What `StartBuild` is asked: the project, the source zip pushbuild uploaded, the buildspec's
/// text and the build's environment, with artifacts and logs into pushbuild's bucket layout.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    pub project: String,
    /// `bucket/key` of the source zip.
    pub source_location: String,
    pub buildspec: String,
    pub env: Vec<(String, String)>,
    pub artifacts_bucket: String,
    /// The artifact's folder in the bucket (`artifacts/<project>/<build-id>`) and its name.
    pub artifacts_path: String,
    pub artifacts_name: String,
    /// `bucket/prefix` CodeBuild writes its log under.
    pub logs_location: String,
    pub timeout_minutes: u64,
    pub queued_timeout_minutes: u64,
    pub compute_type: ComputeType,
    /// The image, when the build names its own (a batch's task's `env.image`); else the
    /// project's.
    pub image: Option<String>,
    /// pushbuild's build id: a retried start does not start a second build.
    pub idempotency_token: String,
}

/// A CodeBuild build, as `BatchGetBuilds` or a state-change event tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    /// `project:uuid`.
    pub id: String,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `FAULT`, `TIMED_OUT` or `STOPPED`.
    pub status: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub phases: Vec<Phase>,
    pub compute_type: Option<String>,
    /// Its environment variables (pushbuild's own among them: [`PROJECT_VAR`], [`BUILD_ID_VAR`]).
    pub env: Vec<(String, String)>,
    /// Where CodeBuild's own log is (a console link or an S3 location), when it says.
    pub log_link: Option<String>,
}

/// One of a CodeBuild build's phases.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub phase_type: String,
    pub status: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub duration_seconds: Option<u64>,
    /// `CODE: message` texts, as CodeBuild gives them.
    pub contexts: Vec<String>,
}

impl Build {
    /// Whether it has ended.
    pub fn ended(&self) -> bool {
        self.status != "IN_PROGRESS"
    }

    /// How it ended, in pushbuild's words: `SUCCEEDED`, `TIMED_OUT`, `STOPPED`; `FAILED` for a
    /// failure or a fault of CodeBuild's.
    pub fn outcome(&self) -> BuildState {
        match self.status.as_str() {
            "SUCCEEDED" => BuildState::Succeeded,
            "TIMED_OUT" => BuildState::TimedOut,
            "STOPPED" => BuildState::Stopped,
            _ => BuildState::Failed,
        }
    }

    /// The value of one of its environment variables.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Its phases in the record's shape (CodeBuild's bookkeeping phases, SUBMITTED, QUEUED,
    /// PROVISIONING, FINALIZING and COMPLETED, left out).
    pub fn phase_outcomes(&self) -> Vec<PhaseOutcome> {
        self.phases
            .iter()
            .filter(|p| {
                !matches!(
                    p.phase_type.as_str(),
                    "SUBMITTED" | "QUEUED" | "PROVISIONING" | "FINALIZING" | "COMPLETED"
                )
            })
            .map(|p| PhaseOutcome {
                phase: p.phase_type.clone(),
                status: match p.status.as_deref() {
                    Some("SUCCEEDED") => RunStatus::Succeeded,
                    Some("TIMED_OUT") => RunStatus::TimedOut,
                    Some("STOPPED") => RunStatus::Stopped,
                    _ => RunStatus::Failed,
                },
                started: p.start.or(self.start).unwrap_or_else(Utc::now),
                duration_ms: p.duration_seconds.unwrap_or(0).saturating_mul(1000),
                attempts: 1,
                context: p
                    .contexts
                    .iter()
                    .filter(|c| !c.trim().is_empty() && c.trim() != ":")
                    .find_map(|c| PhaseContext::try_from(c.clone()).ok()),
            })
            .collect()
    }
}

/// Why CodeBuild could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("AWS CodeBuild {operation}: {message}")]
pub struct CodeBuildError {
    pub operation: &'static str,
    pub message: String,
    /// Whether another try may succeed (throttling, a timeout, a 5xx answer).
    pub retryable: bool,
}

/// The CodeBuild port. The methods block: call them off async threads.
pub trait CodeBuild: Send + Sync {
    /// Starts a build; its id (`project:uuid`).
    fn start_build(&self, request: &StartRequest) -> Result<String, CodeBuildError>;

    /// The builds with these ids that CodeBuild knows.
    fn builds(&self, ids: &[String]) -> Result<Vec<Build>, CodeBuildError>;

    /// Stops the build `id` (`StopBuild`); its end comes as for any build (`STOPPED`).
    fn stop_build(&self, id: &str) -> Result<(), CodeBuildError>;
}

#[cfg(test)]
mod tests;
