//! Running a batch's children where pushbuild runs them itself (`pushbuild run`; `serve`):
//! at most `jobs` at once, each as soon as those it depends on have ended well (succeeded, or
//! failed with `ignore-failure`); a child whose dependency ended otherwise is SKIPPED, and so,
//! with `fast-fail`, is every child not yet started once one fails. The batch's record says how
//! each ended.

use std::sync::mpsc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Child;
use crate::state::BuildState;

/// How one child ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildEnd {
    pub identifier: String,
    /// Its build, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    pub status: BuildState,
    /// Why it did not run, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depend_on: Vec<String>,
    #[serde(default)]
    pub ignore_failure: bool,
}

/// What a batch's record holds: `batches/<project>/<batch-id>/batch.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    pub batch_id: String,
    pub project: String,
    /// SUCCEEDED when every child succeeded or may fail; FAILED otherwise.
    pub status: BuildState,
    pub fast_fail: bool,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub children: Vec<ChildEnd>,
}

impl BatchRecord {
    /// The store's key of a batch's record.
    pub fn key(project: &str, batch_id: &str) -> String {
        format!("batches/{project}/{batch_id}/batch.json")
    }
}

/// Whether a child that ended so lets those after it run.
fn ended_well(child: &Child, status: BuildState) -> bool {
    status == BuildState::Succeeded || child.ignore_failure
}

/// Runs `children` (in plan order) with `run`, which builds child `i` and gives its build id
/// and how it ended; at most `jobs` at once.
pub fn schedule<F>(children: &[Child], jobs: usize, fast_fail: bool, run: F) -> Vec<ChildEnd>
where
    F: Fn(usize) -> (Option<String>, BuildState) + Sync,
{
    let count = children.len();
    let mut ends: Vec<Option<ChildEnd>> = vec![None; count];
    let mut started = vec![false; count];
    let index_of = |id: &str| children.iter().position(|c| c.identifier == id);
    let end = |i: usize, build_id, status, reason| ChildEnd {
        identifier: children[i].identifier.clone(),
        build_id,
        status,
        reason,
        depend_on: children[i].depend_on.clone(),
        ignore_failure: children[i].ignore_failure,
    };
    let (tx, rx) = mpsc::channel::<(usize, Option<String>, BuildState)>();
    let mut stopping: Option<String> = None;
    std::thread::scope(|scope| {
        let mut running = 0usize;
        loop {
            // Children that can no longer run (in plan order, so a skip reaches what waits on it).
            for i in 0..count {
                if started[i] {
                    continue;
                }
                if let Some(reason) = cannot_run(children, &ends, i, stopping.as_deref()) {
                    started[i] = true;
                    ends[i] = Some(end(i, None, BuildState::Skipped, Some(reason)));
                }
            }
            for i in 0..count {
                if running >= jobs.max(1) {
                    break;
                }
                let ready = !started[i]
                    && children[i]
                        .depend_on
                        .iter()
                        .all(|dep| index_of(dep).is_some_and(|d| ends[d].is_some()));
                if ready {
                    started[i] = true;
                    running += 1;
                    let (tx, run) = (tx.clone(), &run);
                    scope.spawn(move || {
                        let (build_id, status) = run(i);
                        let _ = tx.send((i, build_id, status));
                    });
                }
            }
            if running == 0 {
                break;
            }
            let Ok((i, build_id, status)) = rx.recv() else {
                break;
            };
            running -= 1;
            if fast_fail && stopping.is_none() && !ended_well(&children[i], status) {
                stopping = Some(format!(
                    "fast-fail: `{}` ended {}",
                    children[i].identifier,
                    status.as_str()
                ));
            }
            ends[i] = Some(end(i, build_id, status, None));
        }
    });
    ends.into_iter()
        .enumerate()
        .map(|(i, e)| {
            e.unwrap_or_else(|| end(i, None, BuildState::Skipped, Some("never started".into())))
        })
        .collect()
}

/// Why child `i` can no longer run: the batch is stopping, or one it depends on ended badly.
fn cannot_run(
    children: &[Child],
    ends: &[Option<ChildEnd>],
    i: usize,
    stopping: Option<&str>,
) -> Option<String> {
    if let Some(why) = stopping {
        return Some(why.to_string());
    }
    let blocked = children[i].depend_on.iter().find(|dep| {
        let d = children.iter().position(|c| &c.identifier == *dep);
        d.and_then(|d| ends[d].as_ref().map(|e| (d, e.status)))
            .is_some_and(|(d, status)| !ended_well(&children[d], status))
    })?;
    Some(format!("depends on `{blocked}`, which did not succeed"))
}

/// The batch's status from its children's ends.
pub fn batch_status(children: &[Child], ends: &[ChildEnd]) -> BuildState {
    let well = children
        .iter()
        .zip(ends)
        .all(|(child, end)| ended_well(child, end.status));
    if well {
        BuildState::Succeeded
    } else {
        BuildState::Failed
    }
}
