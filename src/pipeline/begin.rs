//! A build begins in the index before anything runs: it takes its number, its entry is opened
//! `IN_PROGRESS`, and its first minute is reserved against the month's caps (refused: the build
//! is SKIPPED and billed nothing). From then on its meter reserves each further minute shortly
//! before it starts; a refused minute stops the build at the end of the last one it paid for.
//! The function begins a build before it fetches the source.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{BuildIdentity, BuildSettings, PipelineError};
use crate::executor::Deadline;
use crate::index::{Books, Entry, Grant};
use crate::metering::{Reserve, RunningMeter};
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;
use crate::store::Store;

/// A build that has begun: its number, and either its running meter or why it was refused.
pub struct Begun {
    pub(super) number: u64,
    pub(super) refusal: Option<String>,
    pub(super) meter: Option<RunningMeter>,
    pub(super) deadline: Deadline,
    /// The builds nobody finished that were closed on the way (see [`Books::sweep`]).
    pub(super) swept: Vec<Entry>,
}

impl Begun {
    /// Takes the builds the sweep closed as this one began.
    pub fn take_swept(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.swept)
    }

    /// Why the budget refused the build its first minute, when it did.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }
}

/// Begins the build `identity` describes, whose commands must stop at `deadline`. Closes, on
/// the way, builds that nobody finished.
pub fn begin(
    identity: &BuildIdentity,
    settings: &BuildSettings,
    deadline: Option<Instant>,
    store: &dyn Store,
) -> Result<Begun, PipelineError> {
    let books = &settings.books;
    let swept = books.sweep_quietly(store);
    // Expiries are on the wall clock of now (the identity's start time may be given, as a
    // replayed event's is): the build's own start, read back from its monotonic clock.
    let clock_start =
        Utc::now() - chrono::Duration::from_std(identity.started.elapsed()).unwrap_or_default();
    let minutes = Minutes {
        books: books.clone(),
        project: identity.project.clone(),
        build_id: identity.build_id.clone(),
        clock_start,
        started: identity.started,
        minute: settings.metering.minute,
        deadline_time: deadline.map(|d| wall_time(clock_start, identity.started, d)),
        deadline: Deadline::new(deadline),
    };
    let mut entry = Entry {
        project: identity.project.clone(),
        build_id: identity.build_id.clone(),
        // Given by the index as the build begins.
        number: 0,
        state: BuildState::InProgress,
        start_time: identity.start_time,
        deadline: minutes.deadline_time,
        expires_at: minutes.expiry(1),
        commit: identity.commit.as_ref().map(ToString::to_string),
        reference: identity.reference.clone(),
        initiator: identity.initiator.clone(),
        reserved_minutes: 0,
        billed_minutes: 0,
        cost_usd: 0.0,
        duration_ms: 0,
        price_usd_per_minute: settings.price.usd_per_minute,
        price_basis: settings.price.basis.clone(),
        reason: None,
        tests: None,
        batch: identity
            .batch
            .as_ref()
            .map(|b| format!("{}/{}", b.batch_id, b.identifier)),
    };
    // Numbered, opened and its first minute reserved, in one step where the index can.
    let grant = books
        .index
        .begin(&mut entry, minutes.expiry(1), &books.budget)?;
    let number = entry.number;
    let deadline = minutes.deadline.clone();
    if let Grant::Refused(reason) = grant {
        return Ok(Begun {
            number,
            refusal: Some(reason),
            meter: None,
            deadline,
            swept,
        });
    }
    let info = identity.info(number);
    let meter = settings.metering.start(
        &info,
        identity.reference.as_deref(),
        identity.started,
        Some(Arc::new(minutes)),
    );
    Ok(Begun {
        number,
        refusal: None,
        meter: Some(meter),
        deadline,
        swept,
    })
}

/// `instant` on the wall clock, from the build's start on both clocks.
fn wall_time(clock_start: DateTime<Utc>, started: Instant, instant: Instant) -> DateTime<Utc> {
    let after = chrono::Duration::from_std(instant.saturating_duration_since(started))
        .unwrap_or(chrono::Duration::MAX);
    clock_start
        .checked_add_signed(after)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Reserves one build's minutes in the index, for its meter.
struct Minutes {
    books: Books,
    project: ProjectName,
    build_id: BuildId,
    /// When the build started, on the wall clock.
    clock_start: DateTime<Utc>,
    started: Instant,
    minute: Duration,
    deadline_time: Option<DateTime<Utc>>,
    deadline: Deadline,
}

impl Minutes {
    /// When a build that has reserved `minutes` may be closed by the sweep: the end of its last
    /// minute (or its deadline, if sooner) and the grace for storing its results.
    fn expiry(&self, minutes: u64) -> DateTime<Utc> {
        let paid = u32::try_from(minutes)
            .ok()
            .and_then(|m| self.minute.checked_mul(m))
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .unwrap_or(chrono::Duration::MAX);
        let paid_until = self
            .clock_start
            .checked_add_signed(paid)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let end = self.deadline_time.map_or(paid_until, |d| d.min(paid_until));
        end.checked_add_signed(chrono::Duration::from_std(self.books.grace).unwrap_or_default())
            .unwrap_or(end)
    }

    /// The end of minute `minutes` on the build's own clock.
    fn end_of(&self, minutes: u64) -> Instant {
        u32::try_from(minutes)
            .ok()
            .and_then(|m| self.minute.checked_mul(m))
            .and_then(|d| self.started.checked_add(d))
            .unwrap_or(self.started)
    }
}

impl Reserve for Minutes {
    fn minute(&self, minute: u64) -> bool {
        let grant = self.books.index.reserve(
            &self.project,
            &self.build_id,
            minute,
            self.expiry(minute),
            &self.books.budget,
        );
        let reason = match grant {
            Ok(Grant::Granted) => return true,
            Ok(Grant::Refused(reason)) => reason,
            Err(err) => format!("minute {minute} could not be reserved: {err}"),
        };
        tracing::info!(project = %self.project, build_id = %self.build_id, minute, %reason, "a minute was refused; the build stops at the end of the last one");
        self.deadline
            .stop_for_budget(self.end_of(minute - 1), reason);
        false
    }
}
