//! The build record: one JSON document per build, written last, that says what was built, how
//! it went, what it produced and what it cost. `pushbuild run --json` prints the same document.
//! Its `status` is a [`BuildState`]; the ledger entry and the function's response carry it too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cache::CacheRecord;
use crate::cost::BuildCost;
use crate::executor::env::BuildInfo;
use crate::executor::{PhaseOutcome, RunStatus};
use crate::names::{BuildId, CommitId, ProjectName};
use crate::reports::ReportSummary;
use crate::state::BuildState;

/// How a build ended, from how its phases ran.
impl From<RunStatus> for BuildState {
    fn from(status: RunStatus) -> BuildState {
        match status {
            RunStatus::Succeeded => BuildState::Succeeded,
            RunStatus::Failed => BuildState::Failed,
            RunStatus::TimedOut => BuildState::TimedOut,
            RunStatus::Stopped => BuildState::Stopped,
        }
    }
}

/// One artifact as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// The secondary artifact's identifier; `None` for the primary artifact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    pub name: String,
    pub uri: String,
    /// The zip's size in bytes.
    pub size: u64,
    /// The zip's SHA-256, hex.
    pub sha256: String,
    /// How many files it holds.
    pub files: usize,
}

/// What `builds/<repository>/<build-id>/build.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub build_id: BuildId,
    /// `CODEBUILD_BUILD_ID`: `<repository>:<build-id>`.
    pub codebuild_build_id: String,
    pub repository: ProjectName,
    pub build_number: u64,
    /// The reference that was built (`refs/heads/main`), when there is one.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitId>,
    pub initiator: String,
    pub status: BuildState,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// The phases that ran, UPLOAD_ARTIFACTS last.
    pub phases: Vec<PhaseOutcome>,
    pub artifacts: Vec<ArtifactRecord>,
    pub log_uri: String,
    pub exported_variables: BTreeMap<String, String>,
    /// Buildspec and artifact warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why a SKIPPED build was not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    pub duration_ms: u64,
    pub billed_minutes: u64,
    pub cost: BuildCost,
    /// Where the build ran when not in the function (AWS CodeBuild).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<Compute>,
    /// What the build restored from its cache and saved to it (a buildspec with `cache`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheRecord>,
    /// Each test and coverage report group: its counts and where the whole report is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<ReportSummary>,
    /// The batch this build belongs to (its id): a child's, or the push's own build that runs
    /// as a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// The build this one ran again (a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<String>,
}

/// A build that ran on AWS CodeBuild rather than in the function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compute {
    /// `codebuild`.
    pub service: String,
    /// CodeBuild's compute type (`BUILD_GENERAL1_SMALL`).
    pub compute_type: String,
    /// CodeBuild's id of the build (`project:uuid`).
    pub codebuild_id: String,
    /// Why it ran there.
    pub why: String,
    /// The build it started again (one that timed out in the function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// How a build ended, as the pipeline found it: the parts of its record that running it (or
/// not running it) decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub status: BuildState,
    pub phases: Vec<PhaseOutcome>,
    pub artifacts: Vec<ArtifactRecord>,
    pub exported_variables: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    pub skip_reason: Option<String>,
    pub compute: Option<Compute>,
    pub cache: Option<CacheRecord>,
    pub reports: Vec<ReportSummary>,
}

impl Ending {
    /// A build that ended with `status` after `phases`.
    pub fn ran(status: impl Into<BuildState>, phases: Vec<PhaseOutcome>) -> Ending {
        Ending {
            status: status.into(),
            phases,
            artifacts: Vec::new(),
            exported_variables: BTreeMap::new(),
            warnings: Vec::new(),
            skip_reason: None,
            compute: None,
            cache: None,
            reports: Vec::new(),
        }
    }

    /// A build that was not run, and why.
    pub fn skipped(reason: impl Into<String>) -> Ending {
        Ending {
            skip_reason: Some(reason.into()),
            ..Ending::ran(BuildState::Skipped, Vec::new())
        }
    }
}

impl BuildRecord {
    /// The record of the build `info` describes, ended as `ending` says, its log at `log_uri`.
    /// This is the one place a record is made.
    pub fn new(
        info: &BuildInfo,
        reference: Option<String>,
        start_time: DateTime<Utc>,
        ending: Ending,
        log_uri: String,
        cost: BuildCost,
    ) -> BuildRecord {
        BuildRecord {
            build_id: info.build_id.clone(),
            codebuild_build_id: info.codebuild_build_id(),
            repository: info.project.clone(),
            build_number: info.build_number,
            reference,
            commit: info.resolved_source_version.clone(),
            initiator: info.initiator.clone(),
            status: ending.status,
            start_time,
            end_time: Utc::now(),
            phases: ending.phases,
            artifacts: ending.artifacts,
            log_uri,
            exported_variables: ending.exported_variables,
            warnings: ending.warnings,
            skip_reason: ending.skip_reason,
            duration_ms: cost.duration_ms,
            billed_minutes: cost.billed_minutes,
            cost,
            compute: ending.compute,
            cache: ending.cache,
            reports: ending.reports,
            batch: None,
            retries: None,
        }
    }
}
