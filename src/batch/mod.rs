//! A batch build's plan: the buildspec's `batch` section turned into its children, each a
//! build of its own, in an order where every child comes after those it depends on. Whatever
//! is wrong (an identifier used twice or not CodeBuild's shape, a `depend-on` naming no task, a
//! cycle, more children than a batch may have, a compute type pushbuild cannot map) is an error
//! before any child starts, naming the task.
//!
//! What each child gets beyond the buildspec's own: its variables, then
//! `CODEBUILD_BATCH_BUILD_IDENTIFIER` (its identifier), and for a fan-out's shard
//! `PUSHBUILD_SHARD_INDEX` (from 0) and `PUSHBUILD_SHARD_COUNT`, which `codebuild-tests-run`
//! reads ([`tools`]).

mod plan;
mod schedule;
mod state;
pub mod tools;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use plan::plan;
pub use schedule::schedule;
pub use state::{BatchRecord, ChildEnd, Step};

/// The most children a batch may have (CodeBuild's default limit of builds in a batch).
pub const MAX_CHILDREN: usize = 100;

/// The variable naming a child's identifier (CodeBuild's).
pub const IDENTIFIER_VAR: &str = "CODEBUILD_BATCH_BUILD_IDENTIFIER";
/// A fan-out shard's index, from 0.
pub const SHARD_INDEX_VAR: &str = "PUSHBUILD_SHARD_INDEX";
/// A fan-out's number of shards.
pub const SHARD_COUNT_VAR: &str = "PUSHBUILD_SHARD_COUNT";

/// One child of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Child {
    pub identifier: String,
    /// Its own buildspec (relative to the source), else the batch's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec: Option<String>,
    /// Variables over the buildspec's, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<(String, String)>,
    /// The children it waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depend_on: Vec<String>,
    /// Whether its failure leaves the batch's status alone.
    #[serde(default)]
    pub ignore_failure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default)]
    pub privileged_mode: bool,
    /// A fan-out shard: its index (from 0) and the number of shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<(u64, u64)>,
}

impl Child {
    /// What the child's build adds to the buildspec's variables: its own, its identifier, and
    /// a shard's index and count.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.variables.clone();
        env.push((IDENTIFIER_VAR.to_string(), self.identifier.clone()));
        if let Some((index, count)) = self.shard {
            env.push((SHARD_INDEX_VAR.to_string(), index.to_string()));
            env.push((SHARD_COUNT_VAR.to_string(), count.to_string()));
        }
        env
    }
}
