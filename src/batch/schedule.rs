//! Running a batch's children where pushbuild runs them itself (`pushbuild run`): at most
//! `jobs` at once, each as its batch's state allows ([`BatchRecord::advance`]).

use std::sync::mpsc;

use super::state::BatchRecord;
use crate::state::BuildState;

/// Runs the children of `record` with `run`, which builds child `i` and gives its build id and
/// how it ended; at most `jobs` at once. When `fast-fail` stops the batch while children run,
/// `stop` is called once with why (it asks them to stop). `record` ends closed.
pub fn schedule<F, S>(record: &mut BatchRecord, jobs: usize, run: F, mut stop: S)
where
    F: Fn(usize) -> (Option<String>, BuildState) + Sync,
    S: FnMut(&str),
{
    let mut asked = false;
    let limit = Some(jobs.max(1));
    let (tx, rx) = mpsc::channel::<(usize, Option<String>, BuildState)>();
    std::thread::scope(|scope| {
        let mut step = record.advance(limit);
        let mut running = 0usize;
        loop {
            for i in step.start.drain(..) {
                running += 1;
                let (tx, run) = (tx.clone(), &run);
                scope.spawn(move || {
                    let (build_id, status) = run(i);
                    let _ = tx.send((i, build_id, status));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((i, build_id, status)) = rx.recv() else {
                break;
            };
            running -= 1;
            if let Some(build_id) = build_id {
                record.started(i, &build_id);
            }
            // A build always ends; one that says otherwise failed.
            let status = if status.is_open() {
                BuildState::Failed
            } else {
                status
            };
            let identifier = record.children[i].identifier.clone();
            step = record.end(&identifier, status, limit);
            if let (false, Some(why)) = (asked, &record.stopping) {
                asked = true;
                if running > 0 {
                    stop(why);
                }
            }
        }
    });
}
