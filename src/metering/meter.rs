//! The meter of one build: a ticker thread that emits a `BillableMinutes = 1` record at the start
//! of every billed minute, and the end record with the build's totals.
//!
//! The count of `BillableMinutes` records equals the record's billed minutes when the caller
//! follows two rules: the meter's `started` and `minute` are the ones the record's billed minutes
//! are computed from, and the build's duration is measured no earlier than the instant
//! [`RunningMeter::stop`] returns. Then the ticker has emitted minute `k ≥ 2` only at a time
//! strictly after `(k-1)·minute`, so the billed minutes are at least `k`, and
//! [`RunningMeter::finish`] tops up the minutes the ticker did not get to.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::emf::{Labels, Metric, emf_line};
use super::sink::MetricSink;
use crate::record::BuildRecord;
use crate::state::BuildState;

/// Reserves a build's minutes against the month's budget, one at a time, before they start.
pub trait Reserve: Send + Sync {
    /// Reserves minute `minute`; false when it is refused (the reserver has stopped the build
    /// at the end of the minute before).
    fn minute(&self, minute: u64) -> bool;
}

/// How long before a minute starts it is reserved: a tenth of a minute, at most 5 seconds.
fn lead(minute: Duration) -> Duration {
    (minute / 10).min(Duration::from_secs(5))
}

/// What every record of one build is written with.
pub struct Meter {
    sink: Arc<dyn MetricSink>,
    labels: Labels,
}

impl Meter {
    /// Starts metering a build that started at `started`: minute 1 is emitted before this
    /// returns, minute `k` by a background thread once `(k-1)·minute` has passed. With a
    /// reserver, minute 1 is already reserved and minute `k` is reserved shortly before it
    /// starts; once one is refused no further minute is emitted.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        sink: Arc<dyn MetricSink>,
        namespace: &str,
        repository: &str,
        branch: &str,
        build_id: &str,
        minute: Duration,
        started: Instant,
        reserve: Option<Arc<dyn Reserve>>,
    ) -> RunningMeter {
        let meter = Meter {
            sink,
            labels: Labels::new(namespace, repository, branch, build_id),
        };
        let shared = Arc::new(Ticker {
            meter,
            minute,
            started,
            reserve,
            state: Mutex::new(State {
                emitted: 0,
                reserved: 1,
                refused: false,
                stopped: false,
            }),
            wake: Condvar::new(),
        });
        {
            let mut state = shared.lock();
            shared.meter.billable_minute(1);
            state.emitted = 1;
        }
        let thread = Arc::clone(&shared);
        let ticker = std::thread::Builder::new()
            .name("pushbuild-meter".to_string())
            .spawn(move || thread.run());
        let ticker = match ticker {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "the metering thread could not start; billed minutes will be emitted when the build ends");
                None
            }
        };
        RunningMeter {
            shared,
            ticker,
            stopped_at: None,
        }
    }

    /// The meter of a build whose first `emitted` minutes are on record and which ran on
    /// without one (on AWS CodeBuild): no ticker; [`RunningMeter::finish`] emits the rest of its
    /// billed minutes and its end record.
    pub fn resume(
        sink: Arc<dyn MetricSink>,
        namespace: &str,
        repository: &str,
        branch: &str,
        build_id: &str,
        emitted: u64,
    ) -> RunningMeter {
        let meter = Meter {
            sink,
            labels: Labels::new(namespace, repository, branch, build_id),
        };
        let now = Instant::now();
        RunningMeter {
            shared: Arc::new(Ticker {
                meter,
                minute: Duration::MAX,
                started: now,
                reserve: None,
                state: Mutex::new(State {
                    emitted,
                    reserved: emitted,
                    refused: false,
                    stopped: true,
                }),
                wake: Condvar::new(),
            }),
            ticker: None,
            stopped_at: Some(now),
        }
    }

    /// Emits the one record of a build that was not run (refused by the budget, say):
    /// `BuildSkipped = 1`, the other status metrics 0, and `Reason`.
    pub fn skipped(
        sink: Arc<dyn MetricSink>,
        namespace: &str,
        repository: &str,
        branch: &str,
        build_id: &str,
        reason: &str,
    ) {
        let meter = Meter {
            sink,
            labels: Labels::new(namespace, repository, branch, build_id),
        };
        let metrics = status_metrics(None);
        meter.emit(
            &[("Status", "SKIPPED".into()), ("Reason", reason.into())],
            &metrics,
        );
    }

    fn emit(&self, properties: &[(&str, Value)], metrics: &[Metric]) {
        self.sink.emit(&emf_line(&self.labels, properties, metrics));
    }

    fn billable_minute(&self, minute: u64) {
        self.emit(
            &[("Minute", minute.into())],
            &[Metric::count("BillableMinutes", 1)],
        );
    }
}

/// `BuildSucceeded`, `BuildFailed`, `BuildTimedOut`, `BuildStopped` and `BuildSkipped`: 1 for
/// the status
/// (`None`: skipped), 0 for the others.
fn status_metrics(status: Option<BuildState>) -> Vec<Metric> {
    let is = |s: BuildState| u64::from(status == Some(s));
    vec![
        Metric::count("BuildSucceeded", is(BuildState::Succeeded)),
        Metric::count("BuildFailed", is(BuildState::Failed)),
        Metric::count("BuildTimedOut", is(BuildState::TimedOut)),
        Metric::count("BuildStopped", is(BuildState::Stopped)),
        Metric::count("BuildSkipped", u64::from(status.is_none())),
    ]
}

/// The state the ticker thread and the build share.
struct Ticker {
    meter: Meter,
    minute: Duration,
    started: Instant,
    reserve: Option<Arc<dyn Reserve>>,
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// The minutes on record, 1 to `emitted`.
    emitted: u64,
    /// The minutes reserved, 1 to `reserved` (without a reserver: as many as emitted, and one
    /// ahead).
    reserved: u64,
    /// A reservation was refused: no minute after `reserved`.
    refused: bool,
    stopped: bool,
}

impl Ticker {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When minute `k` may be emitted: strictly after `started + (k-1)·minute`.
    fn due(&self, k: u64) -> Option<Instant> {
        let elapsed = self.minute.checked_mul(u32::try_from(k - 1).ok()?)?;
        self.started.checked_add(elapsed)
    }

    /// The thread: emits each minute once it has begun, until stopped. A minute is emitted with
    /// the lock held, so once `stop` holds the lock no further minute appears.
    fn run(&self) {
        let mut state = self.lock();
        while !state.stopped {
            let next = state.emitted + 1;
            let Some(due) = self.due(next) else {
                return;
            };
            if state.reserved < next {
                let Some(reserve) = &self.reserve else {
                    state.reserved = next;
                    continue;
                };
                let at = due.checked_sub(lead(self.minute)).unwrap_or(due);
                let now = Instant::now();
                if now < at {
                    state = self.wait(state, at - now);
                    continue;
                }
                // Held under the lock: `stop` waits for an answer on its way, so a minute is
                // either reserved and counted or not reserved at all.
                if reserve.minute(next) {
                    state.reserved = next;
                } else {
                    state.refused = true;
                    return;
                }
            }
            let now = Instant::now();
            if now > due {
                self.meter.billable_minute(next);
                state.emitted = next;
                continue;
            }
            // Wake just after `due`: the minute starts strictly after it.
            state = self.wait(state, (due - now) + Duration::from_micros(1));
        }
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>, wait: Duration) -> MutexGuard<'a, State> {
        match self.wake.wait_timeout(state, wait) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

/// A build being metered. Dropping it stops the ticker without an end record.
pub struct RunningMeter {
    shared: Arc<Ticker>,
    ticker: Option<JoinHandle<()>>,
    stopped_at: Option<Instant>,
}

impl RunningMeter {
    /// Stops the ticker and returns the instant it was stopped. Measure the build's duration
    /// (for its billed minutes) at or after this instant, so no minute is on record that the
    /// duration does not bill. Calling it again returns the same instant.
    pub fn stop(&mut self) -> Instant {
        if let Some(at) = self.stopped_at {
            return at;
        }
        // Once this holds the lock the ticker emits nothing more (it emits with the lock
        // held): it is joined later, at the end of the build, not waited for here.
        self.shared.lock().stopped = true;
        self.shared.wake.notify_all();
        let at = Instant::now();
        self.stopped_at = Some(at);
        at
    }

    /// Waits for the stopped ticker to end.
    fn join(&mut self) {
        let panicked = self.ticker.take().is_some_and(|t| t.join().is_err());
        if panicked {
            tracing::warn!("the metering thread panicked");
        }
    }

    /// How many `BillableMinutes` records have been emitted so far.
    pub fn minutes_emitted(&self) -> u64 {
        self.shared.lock().emitted
    }

    /// How many minutes the build may be billed: those reserved, or with no reserver, any.
    pub fn minutes_reserved(&self) -> Option<u64> {
        let state = self.shared.lock();
        self.shared.reserve.as_ref().map(|_| state.reserved)
    }

    /// Stops the ticker (if [`stop`](Self::stop) was not called), emits the billed minutes the
    /// ticker did not get to (never more than `record.billed_minutes`), then the end record:
    /// `BilledMinutes`, `BuildDuration`, `BuildCost` (USD), the status metrics and one
    /// `<PHASE>Duration` per phase.
    pub fn finish(mut self, record: &BuildRecord) {
        self.stop();
        let meter = &self.shared.meter;
        let emitted = self.minutes_emitted();
        for minute in emitted + 1..=record.billed_minutes {
            meter.billable_minute(minute);
        }
        if emitted > record.billed_minutes {
            tracing::warn!(
                emitted,
                billed = record.billed_minutes,
                "more minutes were metered than billed: the duration was measured before the meter stopped"
            );
        }
        self.shared.lock().emitted = emitted.max(record.billed_minutes);
        meter.emit(
            &[("Status", record.status.as_str().into())],
            &end_metrics(record),
        );
        self.join();
    }
}

impl Drop for RunningMeter {
    fn drop(&mut self) {
        self.stop();
        self.join();
    }
}

/// The end record's metrics.
fn end_metrics(record: &BuildRecord) -> Vec<Metric> {
    let mut metrics = vec![
        Metric::count("BilledMinutes", record.billed_minutes),
        Metric::milliseconds("BuildDuration", record.duration_ms),
        Metric::plain("BuildCost", record.cost.cost_usd),
    ];
    metrics.extend(status_metrics(Some(record.status)));
    // A build with test reports: its cases that failed or errored, and that ran.
    let counts: Vec<_> = record.reports.iter().filter_map(|r| r.counts).collect();
    if !counts.is_empty() {
        let failed = counts.iter().map(|c| c.failed + c.error).sum();
        metrics.push(Metric::count("TestsFailed", failed));
        metrics.push(Metric::count(
            "TestsRun",
            counts.iter().map(|c| c.total()).sum(),
        ));
    }
    // A phase listed twice is summed, so each name appears once.
    let mut phases: Vec<(String, u64)> = Vec::new();
    for phase in &record.phases {
        let name = format!("{}Duration", phase.phase);
        match phases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, ms)) => *ms = ms.saturating_add(phase.duration_ms),
            None => phases.push((name, phase.duration_ms)),
        }
    }
    metrics.extend(
        phases
            .into_iter()
            .map(|(n, ms)| Metric::milliseconds(n, ms)),
    );
    metrics
}
