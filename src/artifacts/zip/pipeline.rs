//! The hand-over between compressing workers and the writing thread: workers claim entries in
//! order, a bounded window ahead of the writer, and the writer takes their results in order.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::super::{ArtifactError, Entry};
use super::ZipOptions;
use super::prepare::{Prepared, prepare};

/// Most entries a worker may run ahead of the writer, whatever their size.
const WINDOW: usize = 512;

/// Hands entries to workers in order and their results back to the writer, keeping the workers
/// at most [`WINDOW`] entries and [`ZipOptions::memory_budget`] bytes ahead.
pub(super) struct Pipeline {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Next entry a worker may claim.
    next: usize,
    /// Entry the writer waits for.
    wanted: usize,
    ready: HashMap<usize, Result<Prepared, ArtifactError>>,
    /// Bytes held in `ready`.
    held: u64,
    stop: bool,
}

impl Pipeline {
    pub(super) fn new() -> Pipeline {
        Pipeline {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker's loop: claim the next entry when the window allows, prepare it, hand it over.
    pub(super) fn work(&self, entries: &[Entry], options: &ZipOptions) {
        loop {
            let index = {
                let mut state = self.lock();
                loop {
                    if state.stop || state.next >= entries.len() {
                        return;
                    }
                    let in_window = state.next < state.wanted + WINDOW;
                    let in_budget =
                        state.held < options.memory_budget || state.next == state.wanted;
                    if in_window && in_budget {
                        break;
                    }
                    state = self.wait(state);
                }
                state.next += 1;
                state.next - 1
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                prepare(&entries[index], options)
            }))
            .unwrap_or(Err(ArtifactError::WorkerPanicked));
            let mut state = self.lock();
            state.held += result.as_ref().map_or(0, Prepared::held);
            state.ready.insert(index, result);
            drop(state);
            self.changed.notify_all();
        }
    }

    /// The writer's side: waits for entry `index` and takes it.
    pub(super) fn take(&self, index: usize) -> Result<Prepared, ArtifactError> {
        let mut state = self.lock();
        let result = loop {
            if let Some(result) = state.ready.remove(&index) {
                break result;
            }
            state = self.wait(state);
        };
        state.held -= result.as_ref().map_or(0, Prepared::held);
        state.wanted = index + 1;
        drop(state);
        self.changed.notify_all();
        result
    }
}

/// Tells the workers to stop when the writer returns, however it returns.
pub(super) struct StopOnDrop<'a>(pub(super) &'a Pipeline);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.changed.notify_all();
    }
}
