//! A batch's state, as one value changed step by step: which children wait, run or ended, and
//! the batch's own status once the last one ends. Every runner of batches uses it: the local
//! scheduler (threads) and, on AWS, the index (one item changed by conditional writes, so two
//! children ending at once cannot both, or neither, start what waited on them or close the
//! batch).
//!
//! A child is QUEUED until it may start, IN_PROGRESS once started, then how its build ended; a
//! child that can no longer run is SKIPPED with the reason: one it depends on ended badly
//! (neither succeeded nor `ignore-failure`), or `fast-fail` stopped the batch.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Child;
use crate::state::BuildState;
use crate::trigger::BuildTarget;

/// One child, as the batch sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildEnd {
    pub identifier: String,
    /// Its build, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// QUEUED, IN_PROGRESS, or how it ended.
    pub status: BuildState,
    /// Why it did not run, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depend_on: Vec<String>,
    #[serde(default)]
    pub ignore_failure: bool,
}

impl ChildEnd {
    /// Whether it ended so that what waits on it may run.
    fn ended_well(&self) -> bool {
        self.status == BuildState::Succeeded || (self.ignore_failure && !self.status.is_open())
    }
}

/// A batch: what `batches/<project>/<batch-id>/batch.json` holds once it ends, and what the
/// index keeps while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    pub batch_id: String,
    pub project: String,
    /// IN_PROGRESS; then SUCCEEDED when every child succeeded or may fail, else FAILED.
    pub status: BuildState,
    pub fast_fail: bool,
    /// Why the batch stops starting children (`fast-fail: `b` ended FAILED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping: Option<String>,
    pub start_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// In plan order.
    pub children: Vec<ChildEnd>,
    /// The children as planned (what each builds), for starting them as they may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<Child>,
    /// The buildspec the children build unless they name their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec: Option<String>,
    /// Variables over every child's (a manual build's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<(String, String)>,
    /// The push whose batch this is, as its build was asked for: each child is a build of it,
    /// and the batch's commit status goes where its would (none under `pushbuild run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<BuildTarget>,
    /// The batch this one runs again (its succeeded children kept, the others run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<String>,
}

/// What a step asks of the runner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// The children to start now (their indexes), marked IN_PROGRESS.
    pub start: Vec<usize>,
    /// The batch's status, when this step ended it.
    pub closed: Option<BuildState>,
}

impl BatchRecord {
    /// A batch of `children` (planned) that has not started any.
    pub fn new(batch_id: &str, project: &str, fast_fail: bool, children: &[Child]) -> Self {
        BatchRecord {
            batch_id: batch_id.to_string(),
            project: project.to_string(),
            status: BuildState::InProgress,
            fast_fail,
            stopping: None,
            start_time: Utc::now(),
            end_time: None,
            children: children
                .iter()
                .map(|c| ChildEnd {
                    identifier: c.identifier.clone(),
                    build_id: None,
                    status: BuildState::Queued,
                    reason: None,
                    depend_on: c.depend_on.clone(),
                    ignore_failure: c.ignore_failure,
                })
                .collect(),
            plan: children.to_vec(),
            buildspec: None,
            overrides: Vec::new(),
            target: None,
            retries: None,
        }
    }

    /// The store's key of a batch's record.
    pub fn key(project: &str, batch_id: &str) -> String {
        format!("batches/{project}/{batch_id}/batch.json")
    }

    /// The store's key of the ask to stop a batch's running children (`fast-fail`).
    pub fn stop_key(project: &str, batch_id: &str) -> String {
        format!("batches/{project}/{batch_id}/stop.json")
    }

    fn running(&self) -> usize {
        self.children
            .iter()
            .filter(|c| c.status == BuildState::InProgress)
            .count()
    }

    /// Skips what can no longer run, starts what may (at most `limit` running), and closes the
    /// batch when nothing is left.
    pub fn advance(&mut self, limit: Option<usize>) -> Step {
        if !self.status.is_open() {
            return Step::default();
        }
        for i in 0..self.children.len() {
            if self.children[i].status == BuildState::Queued {
                if let Some(reason) = self.cannot_run(i) {
                    self.children[i].status = BuildState::Skipped;
                    self.children[i].reason = Some(reason);
                }
            }
        }
        let mut step = Step::default();
        for i in 0..self.children.len() {
            if limit.is_some_and(|limit| self.running() >= limit.max(1)) {
                break;
            }
            let child = &self.children[i];
            let ready = child.status == BuildState::Queued
                && child.depend_on.iter().all(|dep| {
                    self.children
                        .iter()
                        .any(|c| &c.identifier == dep && c.ended_well())
                });
            if ready {
                self.children[i].status = BuildState::InProgress;
                step.start.push(i);
            }
        }
        if self.children.iter().all(|c| !c.status.is_open()) {
            let well = self.children.iter().all(ChildEnd::ended_well);
            self.status = if well {
                BuildState::Succeeded
            } else {
                BuildState::Failed
            };
            self.end_time = Some(Utc::now());
            step.closed = Some(self.status);
        }
        step
    }

    /// Child `i` started as build `build_id`.
    pub fn started(&mut self, i: usize, build_id: &str) {
        if let Some(child) = self.children.get_mut(i) {
            child.build_id = Some(build_id.to_string());
        }
    }

    /// Child `identifier` ended as `status`, then [`advance`](Self::advance). A child that had
    /// ended already changes nothing and starts nothing (an end reported twice).
    pub fn end(&mut self, identifier: &str, status: BuildState, limit: Option<usize>) -> Step {
        let Some(i) = self
            .children
            .iter()
            .position(|c| c.identifier == identifier)
        else {
            return Step::default();
        };
        if !self.children[i].status.is_open() || status.is_open() {
            return Step::default();
        }
        self.children[i].status = status;
        let child = &self.children[i];
        if self.fast_fail && self.stopping.is_none() && !child.ended_well() {
            self.stopping = Some(format!(
                "fast-fail: `{}` ended {}",
                child.identifier,
                status.as_str()
            ));
        }
        self.advance(limit)
    }

    /// Why a queued child can no longer run.
    fn cannot_run(&self, i: usize) -> Option<String> {
        if let Some(why) = &self.stopping {
            return Some(why.clone());
        }
        let blocked = self.children[i].depend_on.iter().find(|dep| {
            self.children
                .iter()
                .any(|c| &c.identifier == *dep && !c.status.is_open() && !c.ended_well())
        })?;
        Some(format!("depends on `{blocked}`, which did not succeed"))
    }
}
