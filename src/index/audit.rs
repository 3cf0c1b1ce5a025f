//! The index against the store: its entries made from a store's records and ledger
//! ([`rebuild`]), and the month reconciled with the ledger ([`verify`]).

use std::collections::{BTreeMap, HashMap};

use super::books::BooksError;
use super::{Entry, Index, IndexError, Sums, usd_to_e7};
use crate::billing::{self, LedgerEntry};
use crate::record::BuildRecord;
use crate::state::BuildState;
use crate::store::Store;

/// The entry of a build that has ended, from its record.
pub fn entry_from_record(record: &BuildRecord) -> Entry {
    Entry {
        project: record.repository.clone(),
        build_id: record.build_id.clone(),
        number: record.build_number,
        state: record.status,
        start_time: record.start_time,
        deadline: None,
        expires_at: record.end_time,
        commit: record.commit.as_ref().map(ToString::to_string),
        reference: record.reference.clone(),
        initiator: record.initiator.clone(),
        reserved_minutes: record.billed_minutes,
        billed_minutes: record.billed_minutes,
        cost_usd: record.cost.cost_usd,
        duration_ms: record.duration_ms,
        price_usd_per_minute: record.cost.price.usd_per_minute,
        price_basis: record.cost.price.basis.clone(),
        reason: record.skip_reason.clone(),
        tests: crate::reports::ReportSummary::line(&record.reports),
        // Only an open entry's batch is read (by the sweep).
        batch: None,
    }
}

/// The entry of a build known only from its ledger entry (its record is missing).
fn entry_from_ledger(ledger: &LedgerEntry) -> Entry {
    Entry {
        project: ledger.repository.clone(),
        build_id: ledger.build_id.clone(),
        number: 0,
        state: ledger.status,
        start_time: ledger.start_time,
        deadline: None,
        expires_at: ledger.start_time,
        commit: ledger.commit.as_ref().map(ToString::to_string),
        reference: ledger.reference.clone(),
        initiator: String::new(),
        reserved_minutes: ledger.billed_minutes,
        billed_minutes: ledger.billed_minutes,
        cost_usd: ledger.cost_usd,
        duration_ms: ledger.duration_ms,
        price_usd_per_minute: ledger.price_usd_per_minute,
        price_basis: ledger.price_basis.clone(),
        reason: None,
        tests: None,
        batch: None,
    }
}

/// What [`rebuild`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Builds added from their records.
    pub from_records: u64,
    /// Builds added from the ledger alone (their record is missing).
    pub from_ledger: u64,
    /// Builds the index had already.
    pub already: u64,
}

/// Adds every build of `store` (its records, then ledger entries with no record) to `index`.
/// Builds the index has already are left as they are, so it can run again.
pub fn rebuild(store: &dyn Store, index: &dyn Index) -> Result<Rebuilt, BooksError> {
    let mut done = Rebuilt::default();
    let mut seen = std::collections::HashSet::new();
    for key in store.list("builds/")? {
        if !key.ends_with("/build.json") {
            continue;
        }
        let Some(bytes) = store.get(&key)? else {
            continue;
        };
        let record: BuildRecord =
            serde_json::from_slice(&bytes).map_err(|err| BooksError::Record {
                key: key.clone(),
                message: err.to_string(),
            })?;
        let entry = entry_from_record(&record);
        seen.insert((entry.project.clone(), entry.build_id.clone()));
        if index.add_closed(&entry)? {
            done.from_records += 1;
        } else {
            done.already += 1;
        }
    }
    for key in store.list("billing/")? {
        if !key.ends_with(".json") {
            continue;
        }
        let Some(bytes) = store.get(&key)? else {
            continue;
        };
        let ledger = billing::parse_entry(&key, &bytes)?;
        if seen.contains(&(ledger.repository.clone(), ledger.build_id.clone())) {
            continue;
        }
        if index.add_closed(&entry_from_ledger(&ledger))? {
            done.from_ledger += 1;
        } else {
            done.already += 1;
        }
    }
    Ok(done)
}

/// Every entry of the month in the index, newest first.
pub fn month_entries(index: &dyn Index, month: &str) -> Result<Vec<Entry>, IndexError> {
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = index.month_builds(month, after.as_deref(), 1000)?;
        entries.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(entries),
        }
    }
}

/// Reconciles the month's index with its ledger objects: one line per difference, naming the
/// build or the repository and the figure. Empty when they agree.
pub fn verify(
    store: &dyn Store,
    index: &dyn Index,
    year: i32,
    month: u32,
) -> Result<Vec<String>, BooksError> {
    let month_text = format!("{year:04}-{month:02}");
    let ledger = billing::read_month(store, year, month)?;
    // A ledger whose minutes overflow is named as such; below, sums saturate.
    billing::sum_minutes(&ledger)?;
    let entries = month_entries(index, &month_text)?;
    let (mut differences, expected) = compare_builds(&ledger, &entries);
    let found: BTreeMap<String, Sums> = index
        .month_sums(&month_text)?
        .into_iter()
        .map(|s| (s.repository.clone(), s))
        .collect();
    differences.extend(compare_sums(&expected, &found));
    Ok(differences)
}

/// Where the ledger's builds and the index's entries differ, build by build; and the sums the
/// index should hold: the ledger's builds, plus the reservations of open builds.
fn compare_builds(
    ledger: &[LedgerEntry],
    entries: &[Entry],
) -> (Vec<String>, BTreeMap<String, Sums>) {
    let mut differences = Vec::new();
    let by_key: HashMap<(&str, &str), &Entry> = entries
        .iter()
        .map(|e| ((e.project.as_str(), e.build_id.as_str()), e))
        .collect();
    let mut in_ledger = std::collections::HashSet::new();
    let mut expected: BTreeMap<String, Sums> = BTreeMap::new();
    let mut add = |repository: &str, f: &dyn Fn(&mut Sums)| {
        for row in [repository, ""] {
            let sums = expected.entry(row.to_string()).or_insert_with(|| Sums {
                repository: row.to_string(),
                ..Sums::default()
            });
            f(sums);
        }
    };
    for ledger in ledger {
        let key = (ledger.repository.as_str(), ledger.build_id.as_str());
        in_ledger.insert(key);
        add(ledger.repository.as_str(), &|s: &mut Sums| {
            s.minutes = s.minutes.saturating_add(ledger.billed_minutes);
            s.builds += 1;
            s.failures += u64::from(ledger.status.is_failure());
            s.skipped += u64::from(ledger.status == BuildState::Skipped);
            s.cost_e7 = s.cost_e7.saturating_add(usd_to_e7(ledger.cost_usd));
            s.duration_ms = s.duration_ms.saturating_add(ledger.duration_ms);
        });
        match by_key.get(&key) {
            Some(entry) => differences.extend(entry_differences(ledger, entry)),
            None => differences.push(format!(
                "build {}:{} is in the ledger ({}) but not in the index",
                ledger.repository,
                ledger.build_id,
                ledger.key()
            )),
        }
    }
    for entry in entries {
        if entry.state.is_open() {
            add(entry.project.as_str(), &|s: &mut Sums| {
                s.minutes = s.minutes.saturating_add(entry.reserved_minutes);
            });
        } else if !in_ledger.contains(&(entry.project.as_str(), entry.build_id.as_str())) {
            differences.push(format!(
                "build {}:{} ({}) is in the index but has no ledger entry",
                entry.project,
                entry.build_id,
                entry.state.as_str()
            ));
        }
    }
    (differences, expected)
}

/// Where one build's ledger entry and index entry disagree: its state, minutes or cost.
fn entry_differences(ledger: &LedgerEntry, entry: &Entry) -> Vec<String> {
    let build = format!("build {}:{}", ledger.repository, ledger.build_id);
    let mut differences = Vec::new();
    if entry.state != ledger.status {
        differences.push(format!(
            "{build}: the ledger says {}, the index {}",
            ledger.status.as_str(),
            entry.state.as_str()
        ));
    }
    if entry.billed_minutes != ledger.billed_minutes {
        differences.push(format!(
            "{build}: the ledger bills {} minute(s), the index {}",
            ledger.billed_minutes, entry.billed_minutes
        ));
    }
    if usd_to_e7(entry.cost_usd) != usd_to_e7(ledger.cost_usd) {
        differences.push(format!(
            "{build}: the ledger says it cost {} USD, the index {}",
            ledger.cost_usd, entry.cost_usd
        ));
    }
    differences
}

/// Where the index's sums differ from what the ledger gives, row by row (the total's row has
/// no repository).
fn compare_sums(expected: &BTreeMap<String, Sums>, found: &BTreeMap<String, Sums>) -> Vec<String> {
    let mut differences = Vec::new();
    let names: std::collections::BTreeSet<&String> = expected.keys().chain(found.keys()).collect();
    for name in names {
        let want = expected.get(name).cloned().unwrap_or_default();
        let have = found.get(name).cloned().unwrap_or_default();
        let label = if name.is_empty() {
            "the month's total".to_string()
        } else {
            name.clone()
        };
        let figures = [
            ("billed minutes", want.minutes, have.minutes),
            ("builds", want.builds, have.builds),
            ("failures", want.failures, have.failures),
            ("skipped builds", want.skipped, have.skipped),
            ("cost (1e-7 USD)", want.cost_e7, have.cost_e7),
        ];
        for (what, want, have) in figures {
            if want != have {
                differences.push(format!(
                    "{label}: the ledger (with open builds' reservations) gives {want} {what}, the index's sums {have}"
                ));
            }
        }
    }
    differences
}
