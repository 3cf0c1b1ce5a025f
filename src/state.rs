//! Where a build stands: one state for the index, the record, the invocation's answers, the
//! pages and the commit statuses (each host's words are made from it, in `crate::status`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a build stands. Written as CodeBuild writes a build's status (`SUCCEEDED`), with
/// `QUEUED` and `SKIPPED` for what CodeBuild has no word for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildState {
    /// Accepted by the front door and waiting to begin.
    Queued,
    /// Running (here, or handed to AWS CodeBuild and not ended yet): a record never says so,
    /// it is written when the build ends.
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
    /// Stopped while it ran (asked to stop, superseded, a batch's `fast-fail`): billed the
    /// minutes it used.
    Stopped,
    /// Not run (refused before it started: the month's budget, a duplicate delivery, say).
    Skipped,
}

/// A text that is no build state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT, STOPPED or SKIPPED, found `{found}`"
)]
pub struct StateError {
    pub found: String,
}

impl BuildState {
    pub const ALL: [BuildState; 7] = [
        BuildState::Queued,
        BuildState::InProgress,
        BuildState::Succeeded,
        BuildState::Failed,
        BuildState::TimedOut,
        BuildState::Stopped,
        BuildState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Queued => "QUEUED",
            BuildState::InProgress => "IN_PROGRESS",
            BuildState::Succeeded => "SUCCEEDED",
            BuildState::Failed => "FAILED",
            BuildState::TimedOut => "TIMED_OUT",
            BuildState::Stopped => "STOPPED",
            BuildState::Skipped => "SKIPPED",
        }
    }

    pub fn parse(text: &str) -> Result<BuildState, StateError> {
        BuildState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| StateError {
                found: text.to_string(),
            })
    }

    /// Whether the build has not ended (QUEUED or IN_PROGRESS).
    pub fn is_open(self) -> bool {
        matches!(self, BuildState::Queued | BuildState::InProgress)
    }

    /// Whether the build ran and did not succeed (FAILED or TIMED_OUT).
    pub fn is_failure(self) -> bool {
        matches!(self, BuildState::Failed | BuildState::TimedOut)
    }
}

impl fmt::Display for BuildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_as_written() {
        for state in BuildState::ALL {
            assert_eq!(BuildState::parse(state.as_str()), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
        assert!(BuildState::parse("done").is_err());
        assert!(BuildState::Queued.is_open() && !BuildState::Skipped.is_open());
        assert!(BuildState::TimedOut.is_failure() && !BuildState::Skipped.is_failure());
    }
}
