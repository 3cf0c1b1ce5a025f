//! While a build's commands run, a thread of its own watches over it:
//! - every few seconds the end of its log so far (the last 64 KiB) goes to
//!   `builds/<project>/<build-id>/live.log` when it has grown, for its page (the final log
//!   replaces it when the build ends);
//! - every [`STOP_EVERY`] it looks for an ask to stop (its own, its batch's: see
//!   [`crate::store::stop`]) and, on finding one, brings its deadline to now: the commands are
//!   killed as at a deadline and the build ends STOPPED.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crate::executor::Deadline;
use crate::store::{ObjectMeta, Store, stop};

/// The most of a running log that is kept live.
const TAIL: u64 = 64 * 1024;

/// How often a running build looks for an ask to stop: a stop takes effect within this (and
/// the shell's own look at its deadline, 200 ms). On S3 each look is one GET.
pub const STOP_EVERY: Duration = Duration::from_secs(2);

/// The live log's part of the watch.
pub(super) struct Live<'scope> {
    pub every: Duration,
    pub path: &'scope Path,
    pub key: String,
    pub meta: ObjectMeta,
}

/// What the watch looks after.
pub(super) struct Watched<'scope> {
    pub live: Option<Live<'scope>>,
    /// Where an ask to stop this build would be.
    pub stop_keys: Vec<String>,
    pub deadline: Deadline,
    pub store: &'scope dyn Store,
}

/// The watching thread; [`Watch::end`] ends it.
pub(super) struct Watch<'scope> {
    done: &'scope (Mutex<bool>, Condvar),
    thread: ScopedJoinHandle<'scope, ()>,
}

impl<'scope> Watch<'scope> {
    /// Watches over `watched` until ended; the first look for a stop is at once.
    pub(super) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        done: &'scope (Mutex<bool>, Condvar),
        watched: Watched<'scope>,
    ) -> Watch<'scope> {
        let thread = scope.spawn(move || {
            let tick = watched
                .live
                .as_ref()
                .map_or(STOP_EVERY, |live| live.every.min(STOP_EVERY));
            let mut sent = 0u64;
            let mut stop_checked: Option<Instant> = None;
            // Asked once is enough: no look after a stop is found.
            let mut stopping = false;
            let mut live_sent = Instant::now();
            let (lock, wake) = done;
            let mut ended = lock.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                let due =
                    |last: Option<Instant>, every| last.is_none_or(|at| at.elapsed() >= every);
                if !stopping && !watched.stop_keys.is_empty() && due(stop_checked, STOP_EVERY) {
                    stop_checked = Some(Instant::now());
                    if let Some(reason) = look_for_stop(&watched) {
                        watched.deadline.stop(reason);
                        stopping = true;
                    }
                }
                if let Some(live) = &watched.live {
                    if live_sent.elapsed() >= live.every {
                        live_sent = Instant::now();
                        refresh(live, watched.store, &mut sent);
                    }
                }
                let (guard, _) = wake
                    .wait_timeout(ended, tick)
                    .unwrap_or_else(PoisonError::into_inner);
                ended = guard;
                if *ended {
                    return;
                }
            }
        });
        Watch { done, thread }
    }

    /// Ends the watch.
    pub(super) fn end(self) {
        let (lock, wake) = self.done;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        let _ = self.thread.join();
    }
}

/// The reason of the first ask to stop found.
fn look_for_stop(watched: &Watched<'_>) -> Option<String> {
    watched
        .stop_keys
        .iter()
        .find_map(|key| match stop::asked(watched.store, key) {
            Ok(asked) => asked.map(|asked| asked.reason),
            Err(error) => {
                tracing::debug!(%error, key, "could not look for an ask to stop");
                None
            }
        })
}

/// Stores the end of the log when it has grown since `sent` bytes.
fn refresh(live: &Live<'_>, store: &dyn Store, sent: &mut u64) {
    let Ok(len) = std::fs::metadata(live.path).map(|m| m.len()) else {
        return;
    };
    if len == *sent {
        return;
    }
    if let Ok(tail) = read_tail(live.path, len) {
        if let Err(error) = store.put(&live.key, &tail, &live.meta) {
            tracing::debug!(%error, "the live log could not be stored");
        }
        *sent = len;
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
