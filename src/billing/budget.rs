//! Caps on a month's billed minutes: one for the whole function (`PUSHBUILD_MONTHLY_MINUTES`)
//! and one per repository (`PUSHBUILD_REPOSITORY_MINUTES`). A new build is refused once the
//! month's ledger holds at least the cap.

use chrono::{DateTime, Datelike, Utc};

use super::{BillingError, read_month, sum_minutes};
use crate::store::Store;

/// The month's caps on billed minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// All repositories together.
    pub monthly_minutes: Option<u64>,
    /// A repository's own cap, by name.
    pub per_repository: Vec<(String, u64)>,
}

impl Budget {
    /// Whether a new build of `repository` is refused in the month of `now`: `Some(reason)`
    /// when the ledger already holds at least a cap's minutes, `None` when it may run.
    pub fn check(
        &self,
        store: &dyn Store,
        repository: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, BillingError> {
        let own_cap = self
            .per_repository
            .iter()
            .find(|(name, _)| name == repository)
            .map(|(_, cap)| *cap);
        if self.monthly_minutes.is_none() && own_cap.is_none() {
            return Ok(None);
        }
        let entries = read_month(store, now.year(), now.month())?;
        let total = sum_minutes(&entries)?;
        let own = sum_minutes(entries.iter().filter(|e| e.repository == repository))?;
        Ok(self.refusal(total, repository, own, own_cap))
    }

    /// The reason to refuse, given the minutes already used.
    fn refusal(
        &self,
        total: u64,
        repository: &str,
        own: u64,
        own_cap: Option<u64>,
    ) -> Option<String> {
        if let Some(cap) = self.monthly_minutes.filter(|cap| total >= *cap) {
            return Some(format!(
                "the month's {total} billed minutes reached the cap of {cap} (PUSHBUILD_MONTHLY_MINUTES)"
            ));
        }
        own_cap.filter(|cap| own >= *cap).map(|cap| {
            format!(
                "{repository}'s {own} billed minutes this month reached its cap of {cap} (PUSHBUILD_REPOSITORY_MINUTES)"
            )
        })
    }
}
