//! When a build's commands must stop: its own deadline (TIMED_OUT), brought forward when the
//! month's budget refuses the build another minute (stopped at the end of the minute it paid
//! for). The meter's thread lowers it while the executor waits on it, so it is shared.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// A build's deadline, shared between the executor and the meter.
#[derive(Debug, Clone, Default)]
pub struct Deadline {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// The build's own deadline.
    timeout: Option<Instant>,
    /// The end of the last minute the budget granted, and why no further minute was granted.
    budget: Option<(Instant, String)>,
    /// When the build was asked to stop, and why (`asked by alice`, `fast-fail: …`).
    stop: Option<(Instant, String)>,
}

impl Deadline {
    /// A deadline at `at` (`None`: none until the budget sets one).
    pub fn new(at: Option<Instant>) -> Deadline {
        Deadline {
            inner: Arc::new(Mutex::new(State {
                timeout: at,
                budget: None,
                stop: None,
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the commands must stop: the earliest of the build's deadline, the budget's and a
    /// stop asked for.
    pub fn at(&self) -> Option<Instant> {
        let state = self.state();
        [
            state.timeout,
            state.budget.as_ref().map(|(at, _)| *at),
            state.stop.as_ref().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The build was asked to stop, for `reason`: its commands stop now. The first ask is the
    /// one kept.
    pub fn stop(&self, reason: impl Into<String>) {
        let mut state = self.state();
        if state.stop.is_none() {
            state.stop = Some((Instant::now(), reason.into()));
        }
    }

    /// Why the build was asked to stop, when that came before its deadline and its budget's.
    pub fn stop_reason(&self) -> Option<String> {
        let state = self.state();
        let (at, reason) = state.stop.as_ref()?;
        let earlier = |other: Option<Instant>| other.is_none_or(|other| *at <= other);
        (earlier(state.timeout) && earlier(state.budget.as_ref().map(|(b, _)| *b)))
            .then(|| reason.clone())
    }

    /// The budget grants no minute after `at`: the commands stop then, for `reason`.
    pub fn stop_for_budget(&self, at: Instant, reason: impl Into<String>) {
        let mut state = self.state();
        let at = state
            .budget
            .as_ref()
            .map_or(at, |(earlier, _)| at.min(*earlier));
        state.budget = Some((at, reason.into()));
    }

    /// Why the commands stop when they do: `Some(reason)` when the budget's stop comes before
    /// (or with) the build's own deadline.
    pub fn budget_reason(&self) -> Option<String> {
        let state = self.state();
        let (at, reason) = state.budget.as_ref()?;
        let before_stop = state.stop.as_ref().is_none_or(|(stop, _)| at < stop);
        (before_stop && state.timeout.is_none_or(|timeout| *at <= timeout)).then(|| reason.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_budget_brings_the_deadline_forward_and_says_why() {
        let now = Instant::now();
        let deadline = Deadline::new(Some(now + Duration::from_secs(60)));
        assert_eq!(deadline.at(), Some(now + Duration::from_secs(60)));
        assert_eq!(deadline.budget_reason(), None);
        deadline.stop_for_budget(now + Duration::from_secs(5), "cap");
        assert_eq!(deadline.at(), Some(now + Duration::from_secs(5)));
        assert_eq!(deadline.budget_reason().as_deref(), Some("cap"));
        assert_eq!(deadline.stop_reason(), None);
        // A budget stop after the build's own deadline is not why it stops.
        let late = Deadline::new(Some(now));
        late.stop_for_budget(now + Duration::from_secs(5), "cap");
        assert_eq!(late.at(), Some(now));
        assert_eq!(late.budget_reason(), None);
        assert_eq!(Deadline::new(None).at(), None);
    }

    #[test]
    fn a_stop_asked_for_is_now_and_says_why() {
        let now = Instant::now();
        let deadline = Deadline::new(Some(now + Duration::from_secs(60)));
        deadline.stop_for_budget(now + Duration::from_secs(30), "cap");
        deadline.stop("asked by alice");
        deadline.stop("fast-fail");
        assert!(deadline.at().unwrap() < now + Duration::from_secs(1));
        assert_eq!(deadline.stop_reason().as_deref(), Some("asked by alice"));
        assert_eq!(deadline.budget_reason(), None);
        // A stop asked for after the deadline passed is not why the build stopped.
        let past = Deadline::new(Some(now));
        past.stop("late");
        assert_eq!(past.stop_reason(), None);
    }
}
