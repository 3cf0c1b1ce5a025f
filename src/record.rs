//! The build record: one JSON document per build, written last, that says what was built, how
//! it went, what it produced and what it cost. `pushbuild run --json` prints the same document.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cost::BuildCost;
use crate::executor::{PhaseOutcome, Status};

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
    pub build_id: String,
    /// `CODEBUILD_BUILD_ID`: `<repository>:<build-id>`.
    pub codebuild_build_id: String,
    pub repository: String,
    pub build_number: u64,
    /// The reference that was built (`refs/heads/main`), when there is one.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub initiator: String,
    pub status: Status,
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
    pub duration_ms: u64,
    pub billed_minutes: u64,
    pub cost: BuildCost,
}
