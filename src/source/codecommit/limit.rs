//! How many calls the tree walk keeps in flight: as many as CodeCommit takes. A throttled call
//! halves the window (once for the calls that were in flight together) and a window's worth of
//! answered calls widens it by one, up to the configured most: additive increase, multiplicative
//! decrease, as TCP does with a congested link.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

/// The call limiter of one walk.
pub(super) struct Limiter {
    permits: Semaphore,
    state: Mutex<State>,
    most: usize,
}

struct State {
    /// Calls allowed in flight now.
    window: usize,
    /// Permits still out that are to be forgotten, not returned, after a cut.
    debt: usize,
    /// Calls answered since the window last changed.
    answered: usize,
    /// How many times the window was cut; a throttled call that began before the last cut has
    /// been answered for already.
    cuts: u64,
    throttled: usize,
    narrowest: usize,
}

/// A call's place in the window: held while the call is in flight.
pub(super) struct Ticket<'a> {
    permit: SemaphorePermit<'a>,
    cuts: u64,
}

/// The limiter was closed (it never is while a walk runs).
#[derive(Debug)]
pub(super) struct Closed;

impl Limiter {
    pub(super) fn new(most: usize) -> Limiter {
        let most = most.max(1);
        Limiter {
            permits: Semaphore::new(most),
            state: Mutex::new(State {
                window: most,
                debt: 0,
                answered: 0,
                cuts: 0,
                throttled: 0,
                narrowest: most,
            }),
            most,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for room in the window.
    pub(super) async fn acquire(&self) -> Result<Ticket<'_>, Closed> {
        let permit = self.permits.acquire().await.map_err(|_| Closed)?;
        let cuts = self.lock().cuts;
        Ok(Ticket { permit, cuts })
    }

    /// The call was answered: a window's worth of answers widens the window by one.
    pub(super) fn answered(&self, ticket: Ticket<'_>) {
        let mut state = self.lock();
        state.answered += 1;
        if state.answered >= state.window && state.window < self.most {
            state.answered = 0;
            state.window += 1;
            if state.debt > 0 {
                state.debt -= 1;
            } else {
                self.permits.add_permits(1);
            }
        }
        Self::give_back(&mut state, ticket);
    }

    /// The call was throttled: the window is halved, unless a cut already answered for it.
    pub(super) fn throttled(&self, ticket: Ticket<'_>) {
        let mut state = self.lock();
        state.throttled += 1;
        if ticket.cuts == state.cuts && state.window > 1 {
            let narrower = state.window / 2;
            let excess = state.window - narrower;
            state.window = narrower;
            state.narrowest = state.narrowest.min(narrower);
            state.answered = 0;
            state.cuts += 1;
            // Permits not out are taken back at once; the rest as their calls end.
            let taken = self.permits.forget_permits(excess);
            state.debt += excess - taken;
        }
        Self::give_back(&mut state, ticket);
    }

    /// The call failed otherwise: its place is given back, the window unchanged.
    pub(super) fn failed(&self, ticket: Ticket<'_>) {
        let mut state = self.lock();
        Self::give_back(&mut state, ticket);
    }

    fn give_back(state: &mut State, ticket: Ticket<'_>) {
        if state.debt > 0 {
            state.debt -= 1;
            ticket.permit.forget();
        }
    }

    /// A line for the log when CodeCommit throttled any call.
    pub(super) fn note(&self) -> Option<String> {
        let state = self.lock();
        (state.throttled > 0).then(|| {
            format!(
                "CodeCommit throttled {} calls: at most {} calls were in flight from then on (of {}), {} at the end",
                state.throttled, state.narrowest, self.most, state.window
            )
        })
    }

    /// The window now (for tests).
    #[cfg(test)]
    fn window(&self) -> usize {
        self.lock().window
    }
}

/// How long to wait before attempt `attempt` (1 = the first retry): a random time up to an
/// exponentially growing bound (100 ms, 200 ms, … at most 5 s), so throttled calls do not all
/// come back at once.
pub(super) fn backoff(attempt: u32) -> Duration {
    let bound = 100u64
        .saturating_mul(1 << attempt.min(16).saturating_sub(1))
        .min(5_000);
    let random = (uuid::Uuid::new_v4().as_u128() % 1_000) as u64;
    Duration::from_millis(bound / 2 + bound * random / 2_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttling_halves_the_window_once_per_round_and_answers_widen_it() {
        let limiter = Limiter::new(32);
        // 32 calls in flight, all throttled: one cut, not five.
        let mut tickets = Vec::new();
        for _ in 0..32 {
            tickets.push(limiter.acquire().await.unwrap());
        }
        for ticket in tickets {
            limiter.throttled(ticket);
        }
        assert_eq!(limiter.window(), 16);
        assert_eq!(
            limiter.permits.available_permits(),
            16,
            "the cut's permits are gone"
        );
        // Throttled again after the cut: another halving.
        let ticket = limiter.acquire().await.unwrap();
        limiter.throttled(ticket);
        assert_eq!(limiter.window(), 8);
        assert_eq!(limiter.permits.available_permits(), 8);
        // A window's worth of answers widens it by one.
        for _ in 0..8 {
            let ticket = limiter.acquire().await.unwrap();
            limiter.answered(ticket);
        }
        assert_eq!(limiter.window(), 9);
        assert_eq!(limiter.permits.available_permits(), 9);
        let note = limiter.note().unwrap();
        assert!(note.contains("throttled 33 calls"), "{note}");
        assert!(note.contains("at most 8 calls"), "{note}");
    }

    #[tokio::test]
    async fn a_cut_while_calls_are_out_takes_their_permits_as_they_end() {
        let limiter = Limiter::new(4);
        let a = limiter.acquire().await.unwrap();
        let b = limiter.acquire().await.unwrap();
        let c = limiter.acquire().await.unwrap();
        let d = limiter.acquire().await.unwrap();
        limiter.throttled(a);
        assert_eq!(limiter.window(), 2);
        // Two permits were out-of-window; the throttled call's own was forgotten.
        assert_eq!(limiter.permits.available_permits(), 0);
        limiter.answered(b);
        assert_eq!(
            limiter.permits.available_permits(),
            0,
            "b's permit was owed"
        );
        limiter.failed(c);
        // d's answer completes a window's worth: 3 in the window, none out.
        limiter.answered(d);
        assert_eq!(limiter.window(), 3);
        assert_eq!(limiter.permits.available_permits(), 3);
        assert!(
            Limiter::new(4).note().is_none(),
            "no note without throttling"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let wait = backoff(attempt);
            let bound = Duration::from_millis((100u64 << (attempt - 1).min(16)).min(5_000));
            assert!(wait <= bound && wait >= bound / 2, "{attempt}: {wait:?}");
        }
    }
}
