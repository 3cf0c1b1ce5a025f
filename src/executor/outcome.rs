//! What running a build's phases gives: how each phase ended and why, in types. The text forms
//! (`COMMAND_EXECUTION_ERROR: …` in the record, the log's phase lines) are made from these at the
//! edge, once.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a run of commands (a phase, or the phases together) can end. A build that was never run
/// has a status of its own in its record ([`crate::record::Status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Succeeded,
    Failed,
    TimedOut,
    /// Asked to stop while it ran.
    Stopped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "SUCCEEDED",
            RunStatus::Failed => "FAILED",
            RunStatus::TimedOut => "TIMED_OUT",
            RunStatus::Stopped => "STOPPED",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CodeBuild's phase context status codes, for the ones pushbuild gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextCode {
    /// A command exited with a non-zero status.
    CommandExecutionError,
    /// The build's deadline passed.
    BuildTimedOut,
    /// The build's input is at fault: a source that cannot be had, an artifact that matches
    /// nothing, a buildspec setting the function cannot honour.
    ClientError,
    /// The buildspec is not valid.
    YamlFileError,
    /// The month's budget granted the build no further minute (pushbuild's own code: CodeBuild
    /// has no budget).
    BudgetReached,
    /// The build was asked to stop (pushbuild's own code, for CodeBuild's STOPPED phase).
    BuildStopped,
}

impl ContextCode {
    const ALL: [ContextCode; 6] = [
        ContextCode::CommandExecutionError,
        ContextCode::BuildTimedOut,
        ContextCode::ClientError,
        ContextCode::YamlFileError,
        ContextCode::BudgetReached,
        ContextCode::BuildStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContextCode::CommandExecutionError => "COMMAND_EXECUTION_ERROR",
            ContextCode::BuildTimedOut => "BUILD_TIMED_OUT",
            ContextCode::ClientError => "CLIENT_ERROR",
            ContextCode::YamlFileError => "YAML_FILE_ERROR",
            ContextCode::BudgetReached => "BUDGET_REACHED",
            ContextCode::BuildStopped => "BUILD_STOPPED",
        }
    }
}

/// Why a phase did not succeed: CodeBuild's code and a message for a person.
///
/// In the record it is one string, `CODE: message`, as CodeBuild shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PhaseContext {
    pub code: ContextCode,
    pub message: String,
}

impl PhaseContext {
    pub fn new(code: ContextCode, message: impl Into<String>) -> PhaseContext {
        PhaseContext {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for PhaseContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl From<PhaseContext> for String {
    fn from(context: PhaseContext) -> String {
        context.to_string()
    }
}

/// A stored record's phase message that does not start with a known code.
#[derive(Debug, thiserror::Error)]
#[error("expected `<CODE>: <message>` with a CodeBuild phase context code, found {found:?}")]
pub struct UnknownContext {
    found: String,
}

impl TryFrom<String> for PhaseContext {
    type Error = UnknownContext;

    /// Reads the record's text form back (when a stored record is loaded).
    fn try_from(text: String) -> Result<PhaseContext, UnknownContext> {
        let known = text.split_once(": ").and_then(|(code, message)| {
            let code = ContextCode::ALL.into_iter().find(|c| c.as_str() == code)?;
            Some(PhaseContext::new(code, message))
        });
        known.ok_or(UnknownContext { found: text })
    }
}

/// How one phase ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseOutcome {
    pub phase: String,
    pub status: RunStatus,
    pub started: DateTime<Utc>,
    pub duration_ms: u64,
    /// How many times the phase ran (more than 1 after `on-failure: RETRY`).
    pub attempts: u32,
    /// Why it did not succeed.
    #[serde(rename = "message", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<PhaseContext>,
}

/// Artifact names by artifact identifier (`None` for the primary artifact).
pub type ArtifactNames = Vec<(Option<String>, String)>;

/// What running the phases gave.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutcome {
    pub status: RunStatus,
    pub phases: Vec<PhaseOutcome>,
    /// `exported-variables` with their values at the end of the build (masked), in spec order.
    pub exported_variables: Vec<(String, String)>,
    /// Artifact names after shell expansion (`name: app-$(date +%s)`), by artifact identifier
    /// (`None` for the primary artifact).
    pub artifact_names: ArtifactNames,
    /// Whether CodeBuild's rules upload artifacts after these phases (not after a failed
    /// install or pre_build).
    pub upload_artifacts: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_context_is_one_string_in_the_record_and_reads_back() {
        let context = PhaseContext::new(ContextCode::ClientError, "`big.bin`: too large: 7 MB");
        let json = serde_json::to_string(&context).unwrap();
        assert_eq!(json, "\"CLIENT_ERROR: `big.bin`: too large: 7 MB\"");
        let back: PhaseContext = serde_json::from_str(&json).unwrap();
        assert_eq!(back, context);
        let err = serde_json::from_str::<PhaseContext>("\"OOPS: x\"").unwrap_err();
        assert!(err.to_string().contains("OOPS: x"), "{err}");
    }
}
