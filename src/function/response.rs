//! What an invocation answers: each build it ran or skipped.

use serde::{Deserialize, Serialize};

use crate::record::BuildRecord;

/// The invocation's response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationResponse {
    pub builds: Vec<BuildSummary>,
}

/// One build of an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    pub repository: String,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// SUCCEEDED, FAILED, TIMED_OUT or SKIPPED.
    pub status: String,
    /// Why a build was skipped, or why it failed before running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_uri: Option<String>,
    pub billed_minutes: u64,
}

impl BuildSummary {
    /// A build that was not run.
    pub fn skipped(
        repository: String,
        reference: Option<String>,
        commit: Option<String>,
        reason: String,
    ) -> Self {
        BuildSummary {
            build_id: None,
            repository,
            reference,
            commit,
            status: "SKIPPED".to_string(),
            reason: Some(reason),
            record_uri: None,
            artifact_uris: Vec::new(),
            log_uri: None,
            billed_minutes: 0,
        }
    }

    /// A build that ran (or failed before running), from its record.
    pub fn from_record(record: &BuildRecord) -> Self {
        let record_uri = record
            .log_uri
            .strip_suffix("build.log")
            .map(|base| format!("{base}build.json"));
        let reason = record
            .phases
            .iter()
            .find(|p| p.status != crate::executor::Status::Succeeded)
            .and_then(|p| p.message.clone())
            .or_else(|| {
                (record.status == crate::executor::Status::Skipped)
                    .then(|| {
                        record
                            .warnings
                            .first()
                            .map(|w| w.trim_start_matches("not run: ").to_string())
                    })
                    .flatten()
            });
        BuildSummary {
            build_id: Some(record.build_id.clone()),
            repository: record.repository.clone(),
            reference: record.reference.clone(),
            commit: record.commit.clone(),
            status: record.status.as_str().to_string(),
            reason,
            record_uri,
            artifact_uris: record.artifacts.iter().map(|a| a.uri.clone()).collect(),
            log_uri: Some(record.log_uri.clone()),
            billed_minutes: record.billed_minutes,
        }
    }
}
