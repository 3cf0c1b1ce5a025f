//! What a build's life ends with: a summary of the build it ran, handed over or skipped. The
//! function's answer lists them; `serve`'s log and `invoke` print them.

use serde::{Deserialize, Serialize};

use crate::names::{CommitId, ProjectName};
use crate::pipeline::StoredBuild;
use crate::state::BuildState;

/// One build, as an invocation's answer lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    pub repository: ProjectName,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The commit, as the event named it (a skipped reference's is reported unchecked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// SUCCEEDED, FAILED, TIMED_OUT or SKIPPED; IN_PROGRESS for a build handed to CodeBuild.
    pub status: BuildState,
    /// Why a build was skipped, or why it failed before running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_uri: Option<String>,
    /// How long the build took, when it has a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub billed_minutes: u64,
    /// Its test and coverage reports in a line (`412 passed, 3 failed · 81% lines`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<String>,
    /// The batch this build started, when it ran as one (its children are the builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Who started it and when, for its events (not in the answer).
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// Who started a build with a record, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub initiator: String,
    pub start_time: chrono::DateTime<chrono::Utc>,
}

impl BuildSummary {
    /// A build that was not run and has no record (a deleted branch, `[skip ci]`, a duplicate
    /// delivery).
    pub fn skipped(
        repository: ProjectName,
        reference: Option<String>,
        commit: Option<String>,
        reason: String,
    ) -> Self {
        BuildSummary {
            build_id: None,
            repository,
            reference,
            commit,
            status: BuildState::Skipped,
            reason: Some(reason),
            record_uri: None,
            artifact_uris: Vec::new(),
            log_uri: None,
            duration_ms: None,
            billed_minutes: 0,
            tests: None,
            batch: None,
            origin: None,
        }
    }

    /// A build handed to AWS CodeBuild: IN_PROGRESS, its record written when it ends.
    pub fn handed_over(handover: &crate::pipeline::Handover) -> Self {
        BuildSummary {
            build_id: Some(handover.build_id.to_string()),
            repository: handover.project.clone(),
            reference: handover.reference.clone(),
            commit: handover.commit.as_ref().map(CommitId::to_string),
            status: BuildState::InProgress,
            reason: Some(format!(
                "running on AWS CodeBuild as {} ({})",
                handover.codebuild_id, handover.why
            )),
            record_uri: None,
            artifact_uris: Vec::new(),
            log_uri: None,
            duration_ms: None,
            billed_minutes: 0,
            tests: None,
            batch: None,
            origin: None,
        }
    }

    /// A build that has a record (it ran, could not start, or was refused).
    pub fn stored(stored: &StoredBuild) -> Self {
        let record = &stored.record;
        let reason = record
            .phases
            .iter()
            .find_map(|p| p.context.as_ref().map(ToString::to_string))
            .or_else(|| record.skip_reason.clone());
        BuildSummary {
            build_id: Some(record.build_id.to_string()),
            repository: record.repository.clone(),
            reference: record.reference.clone(),
            commit: record.commit.as_ref().map(CommitId::to_string),
            status: record.status,
            reason,
            record_uri: Some(stored.record_uri.clone()),
            artifact_uris: record.artifacts.iter().map(|a| a.uri.clone()).collect(),
            log_uri: Some(record.log_uri.clone()),
            duration_ms: Some(record.duration_ms),
            billed_minutes: record.billed_minutes,
            tests: crate::reports::ReportSummary::line(&record.reports),
            batch: None,
            origin: Some(Origin {
                initiator: record.initiator.clone(),
                start_time: record.start_time,
            }),
        }
    }
}
