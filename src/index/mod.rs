//! The index: the state that must hold when many builds run at once, in a database rather than
//! in objects. DynamoDB on AWS ([`DynamoIndex`], one table), SQLite locally ([`SqliteIndex`],
//! `index.sqlite` in the local store). It holds:
//!
//! - build numbers: one atomic counter per project;
//! - once-per-delivery claims: conditional creates that expire;
//! - each build's entry: its state (`IN_PROGRESS`, then how it ended), start time, deadline,
//!   commit, ref, initiator, reserved and billed minutes and cost;
//! - the month's sums, per repository and in total: billed minutes (reservations included),
//!   builds, failures, skips, cost and duration.
//!
//! The budget holds because a build reserves each minute before it uses it
//! ([`Index::reserve`]): one atomic step checks the month's sums against the caps and adds the
//! minute to them. Closing a build ([`Index::close`]) gives back the minutes it reserved and did
//! not start, in the same step that records its end, so the sums always equal the billed
//! minutes of closed builds plus the reservations of open ones.
//!
//! The ledger objects in the store stay the audit trail: [`audit::verify`] reconciles the index
//! with them and [`audit::rebuild`] makes the index from them.

pub mod audit;
pub mod books;
#[cfg(feature = "aws")]
pub mod dynamo;
pub mod sqlite;

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

use crate::batch::{BatchRecord, Step};
use crate::billing::Budget;
pub use crate::billing::Sums;
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;

pub use books::Books;
#[cfg(feature = "aws")]
pub use dynamo::DynamoIndex;
pub use sqlite::SqliteIndex;

/// Why the index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index {path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("the index table {table}: {message}")]
    Dynamo {
        table: String,
        message: String,
        /// Whether another try may succeed (throttling, a timeout, a 5xx answer).
        retryable: bool,
    },
    /// An item or row that is not what pushbuild writes (edited by hand).
    #[error("the index holds a malformed {what}: {message}")]
    Malformed { what: String, message: String },
}

impl From<crate::state::StateError> for IndexError {
    fn from(err: crate::state::StateError) -> IndexError {
        IndexError::Malformed {
            what: "state".to_string(),
            message: err.to_string(),
        }
    }
}

impl From<crate::names::NameError> for IndexError {
    fn from(err: crate::names::NameError) -> IndexError {
        IndexError::Malformed {
            what: "name".to_string(),
            message: err.to_string(),
        }
    }
}

impl IndexError {
    /// Whether trying again can succeed.
    pub fn retryable(&self) -> bool {
        match self {
            IndexError::Sqlite { .. } => true,
            IndexError::Dynamo { retryable, .. } => *retryable,
            IndexError::Malformed { .. } => false,
        }
    }
}

/// One build in the index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub project: ProjectName,
    pub build_id: BuildId,
    pub number: u64,
    pub state: BuildState,
    pub start_time: DateTime<Utc>,
    /// When the build's commands must stop, when it has a deadline.
    pub deadline: Option<DateTime<Utc>>,
    /// When an open entry may be closed as abandoned: the end of its last reserved minute (or its
    /// deadline, if sooner) plus the upload reserve. Each reservation moves it on.
    pub expires_at: DateTime<Utc>,
    pub commit: Option<String>,
    pub reference: Option<String>,
    pub initiator: String,
    pub reserved_minutes: u64,
    pub billed_minutes: u64,
    pub cost_usd: f64,
    pub duration_ms: u64,
    pub price_usd_per_minute: f64,
    pub price_basis: String,
    /// Why it was skipped or stopped, when it was.
    pub reason: Option<String>,
    /// Its test and coverage reports in a line (`412 passed, 3 failed · 81% lines`), once it
    /// has ended with some.
    pub tests: Option<String>,
    /// The batch it is a child of, as `<batch-id>/<identifier>`: a child the sweep closes
    /// ends in its batch too.
    pub batch: Option<String>,
}

impl Entry {
    /// The entry as [`Index::open`] stores it: `IN_PROGRESS`, nothing reserved, billed or spent.
    pub fn opening(&self) -> Entry {
        Entry {
            state: BuildState::InProgress,
            reserved_minutes: 0,
            billed_minutes: 0,
            cost_usd: 0.0,
            duration_ms: 0,
            ..self.clone()
        }
    }

    /// A build handed off at `now`, waiting to begin: `QUEUED` until it begins or, at the latest,
    /// [`QUEUED_TIMEOUT`] from now.
    pub fn queued(
        project: &ProjectName,
        build_id: &BuildId,
        initiator: &str,
        commit: Option<String>,
        reference: Option<String>,
        now: DateTime<Utc>,
    ) -> Entry {
        Entry {
            project: project.clone(),
            build_id: build_id.clone(),
            number: 0,
            state: BuildState::Queued,
            start_time: now,
            deadline: None,
            expires_at: now + QUEUED_TIMEOUT,
            commit,
            reference,
            initiator: initiator.to_string(),
            reserved_minutes: 0,
            billed_minutes: 0,
            cost_usd: 0.0,
            duration_ms: 0,
            price_usd_per_minute: 0.0,
            price_basis: String::new(),
            reason: None,
            tests: None,
            batch: None,
        }
    }

    /// `YYYY-MM`: the month the build is billed in (its start, UTC).
    pub fn month(&self) -> String {
        month_of(self.start_time)
    }
}

/// How long a build may wait in the queue before the sweep closes it as TIMED_OUT, never
/// started (CodeBuild's default queued timeout: 8 hours).
pub const QUEUED_TIMEOUT: chrono::Duration = chrono::Duration::hours(8);

/// `YYYY-MM` of `time`, in UTC.
pub fn month_of(time: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", time.year(), time.month())
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Granted,
    /// Refused, and why (a cap, or the entry is no longer open).
    Refused(String),
}

/// How a build ended, for [`Index::close`].
#[derive(Debug, Clone, PartialEq)]
pub struct Closing {
    pub project: ProjectName,
    pub build_id: BuildId,
    pub state: BuildState,
    /// The minutes the build used; the index records at most the minutes it reserved.
    pub billed_minutes: u64,
    pub cost_usd: f64,
    pub duration_ms: u64,
    pub reason: Option<String>,
    /// The reports in a line, for the list of builds.
    pub tests: Option<String>,
}

/// What [`Index::close`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Closed {
    /// Closed now, with these billed minutes.
    Now { billed_minutes: u64 },
    /// Someone closed it first (the sweep), as the entry says.
    Already(Box<Entry>),
}

/// Ten-millionths of a dollar, the records' precision.
pub fn usd_to_e7(usd: f64) -> u64 {
    let e7 = (usd * 1e7).round();
    if e7.is_finite() && e7 > 0.0 {
        e7 as u64
    } else {
        0
    }
}

/// The billed minutes and cost of `closing` for a build that reserved `reserved` minutes at
/// `price` a minute: never more minutes than reserved (the cost follows the minutes then).
pub(crate) fn settle(closing: &Closing, reserved: u64, price: f64) -> (u64, u64) {
    if closing.billed_minutes <= reserved {
        return (closing.billed_minutes, usd_to_e7(closing.cost_usd));
    }
    (reserved, usd_to_e7(reserved as f64 * price))
}

/// One page of a listing, newest first, and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass back to get the next page; `None` on the last one.
    pub next: Option<String>,
}

/// The index port. Every method is one atomic step of the store behind it, safe to call from
/// many threads and processes at once. The methods block: call them off async threads.
pub trait Index: Send + Sync {
    /// The next number of `project`'s builds: 1, 2, 3, … never the same twice.
    fn next_number(&self, project: &ProjectName) -> Result<u64, IndexError>;

    /// Claims `key` (a delivery's id) for `project` until `expires`; whether this call took it
    /// (false: a claim that has not expired holds it).
    fn claim(
        &self,
        project: &ProjectName,
        key: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<bool, IndexError>;

    /// Gives a claim back (pushbuild failed after taking it, so a retry can build).
    fn release(&self, project: &ProjectName, key: &str) -> Result<(), IndexError>;

    /// Stores a build that was handed off and has not begun: `QUEUED`, no number yet, until
    /// [`open`](Self::open) or its expiry (an entry already there is left as it is).
    fn queue(&self, entry: &Entry) -> Result<(), IndexError>;

    /// Removes a `QUEUED` entry whose build could not be handed off after all.
    fn discard_queued(&self, project: &ProjectName, build_id: &BuildId) -> Result<(), IndexError>;

    /// Stores a new open entry, `IN_PROGRESS` with no minute reserved; a `QUEUED` entry of the
    /// same build becomes it.
    fn open(&self, entry: &Entry) -> Result<(), IndexError>;

    /// Reserves the build's minute `minute` (its `minute - 1` are reserved already), atomically
    /// against `caps`, and moves its expiry to `expires_at`. A minute already reserved is
    /// granted again without counting twice.
    fn reserve(
        &self,
        project: &ProjectName,
        build_id: &BuildId,
        minute: u64,
        expires_at: DateTime<Utc>,
        caps: &Budget,
    ) -> Result<Grant, IndexError>;

    /// What a build does to begin, as one step where the index can: numbers `entry` (its
    /// `number` is set here), [`open`](Self::open)s it and [`reserve`](Self::reserve)s its first
    /// minute, to expire at `expires_at`.
    fn begin(
        &self,
        entry: &mut Entry,
        expires_at: DateTime<Utc>,
        caps: &Budget,
    ) -> Result<Grant, IndexError> {
        entry.number = self.next_number(&entry.project)?;
        self.open(entry)?;
        self.reserve(&entry.project, &entry.build_id, 1, expires_at, caps)
    }

    /// Closes an open entry: its end state, billed minutes (at most those reserved; the rest are
    /// given back to the month's sums), cost and duration, and adds it to the month's sums.
    fn close(&self, closing: &Closing) -> Result<Closed, IndexError>;

    /// Open entries whose expiry is before `now`: builds nobody is finishing.
    fn expired(&self, now: DateTime<Utc>) -> Result<Vec<Entry>, IndexError>;

    /// The month's sums (`YYYY-MM`), one per repository and the total (empty repository).
    fn month_sums(&self, month: &str) -> Result<Vec<Sums>, IndexError>;

    /// One build's entry.
    fn entry(&self, project: &ProjectName, build_id: &BuildId)
    -> Result<Option<Entry>, IndexError>;

    /// `project`'s builds, newest first, `limit` at a time from `after` (a page's `next`).
    fn project_builds(
        &self,
        project: &ProjectName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError>;

    /// The month's builds, newest first, `limit` at a time from `after`.
    fn month_builds(
        &self,
        month: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError>;

    /// The builds not ended yet.
    fn in_progress(&self) -> Result<Vec<Entry>, IndexError>;

    /// Adds a build that has ended (from a store's records, when the index is rebuilt): its
    /// entry and its sums, and the project's counter at least its number. Whether it was added
    /// (false: the index has it already).
    fn add_closed(&self, entry: &Entry) -> Result<bool, IndexError>;

    /// Where `project`'s builds run when not in the function, if somewhere else.
    fn placement(&self, project: &ProjectName) -> Result<Option<Placement>, IndexError>;

    /// Sets where `project`'s builds run (`None`: back in the function).
    fn set_placement(
        &self,
        project: &ProjectName,
        placement: Option<&Placement>,
    ) -> Result<(), IndexError>;

    /// Keeps a new batch's state while it runs (false: a batch of that id was there).
    fn open_batch(&self, record: &BatchRecord) -> Result<bool, IndexError>;

    /// A batch's state as last changed, if there is such a batch.
    fn batch(&self, project: &str, batch_id: &str) -> Result<Option<BatchRecord>, IndexError>;

    /// Changes a batch's state by `change`, atomically: `change` sees the state as stored, and
    /// what it makes is stored only if nobody changed the state meanwhile (else it runs again,
    /// on the state as it is then). The step it made and the state after; `None` without such
    /// a batch.
    fn change_batch(
        &self,
        project: &str,
        batch_id: &str,
        change: &mut dyn FnMut(&mut BatchRecord) -> Step,
    ) -> Result<Option<(Step, BatchRecord)>, IndexError>;
}

/// Where a repository's builds go instead of the function: `codebuild`, since a build of it
/// timed out there, until `pushbuild placement reset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub compute: String,
    pub since: DateTime<Utc>,
    pub reason: String,
}

/// The first cap that refuses one more minute, given the month's minutes so far: the reason.
pub fn refusal(caps: &Budget, repository: &str, total: u64, own: u64) -> Option<String> {
    if let Some(cap) = caps.monthly_minutes.filter(|cap| total >= *cap) {
        return Some(format!(
            "the month's {total} billed minutes reached the cap of {cap} (PUSHBUILD_MONTHLY_MINUTES)"
        ));
    }
    caps.repository_cap(repository)
        .filter(|cap| own >= *cap)
        .map(|cap| {
            format!(
                "{repository}'s {own} billed minutes this month reached its cap of {cap} (PUSHBUILD_REPOSITORY_MINUTES)"
            )
        })
}

#[cfg(test)]
mod tests;
