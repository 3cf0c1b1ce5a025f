//! A running build's log, for its page: every few seconds the end of the log so far (its last
//! 64 KiB) goes to `builds/<project>/<build-id>/live.log` when it has grown. The final log
//! replaces it when the build ends.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

use crate::store::{ObjectMeta, Store};

/// The most of a running log that is kept live.
const TAIL: u64 = 64 * 1024;

/// The thread that refreshes the live log; [`LiveLog::stop`] ends it.
pub(super) struct LiveLog<'scope> {
    stop: &'scope (Mutex<bool>, Condvar),
    thread: ScopedJoinHandle<'scope, ()>,
}

impl<'scope> LiveLog<'scope> {
    /// Refreshes `key` from the log at `path` every `every`, until stopped.
    pub(super) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        stop: &'scope (Mutex<bool>, Condvar),
        every: Duration,
        path: &'scope Path,
        key: String,
        meta: ObjectMeta,
        store: &'scope dyn Store,
    ) -> LiveLog<'scope> {
        let thread = scope.spawn(move || {
            let mut sent = 0u64;
            let (lock, wake) = stop;
            let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                let (guard, _) = wake
                    .wait_timeout(stopped, every)
                    .unwrap_or_else(PoisonError::into_inner);
                stopped = guard;
                if *stopped {
                    return;
                }
                let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else {
                    continue;
                };
                if len == sent {
                    continue;
                }
                if let Ok(tail) = read_tail(path, len) {
                    if let Err(error) = store.put(&key, &tail, &meta) {
                        tracing::debug!(%error, "the live log could not be stored");
                    }
                    sent = len;
                }
            }
        });
        LiveLog { stop, thread }
    }

    /// Stops the refreshing.
    pub(super) fn stop(self) {
        let (lock, wake) = self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        let _ = self.thread.join();
    }
}

/// The last [`TAIL`] bytes of the `len` bytes at `path`, from a line's start.
fn read_tail(path: &Path, len: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let from = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len - from).unwrap_or(0));
    file.take(len - from).read_to_end(&mut bytes)?;
    if from > 0 {
        if let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            bytes.drain(..=nl);
        }
    }
    Ok(bytes)
}
