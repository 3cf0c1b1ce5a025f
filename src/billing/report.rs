//! A month's bill: per repository, the builds, billed minutes, cost, average duration, failures
//! and skipped builds, and a total row whose figures are the sums. Rendered as a text table, as
//! JSON or as CSV.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::{BillingError, LedgerEntry};
use crate::cost::round_usd;
use crate::state::BuildState;

/// One repository's figures (or the total's).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub repository: String,
    pub builds: u64,
    pub billed_minutes: u64,
    pub cost_usd: f64,
    /// The mean build duration, in seconds.
    pub average_duration_s: f64,
    /// FAILED and TIMED_OUT builds.
    pub failures: u64,
    pub skipped: u64,
    #[serde(skip)]
    duration_ms: u64,
}

impl Row {
    fn named(repository: &str) -> Row {
        Row {
            repository: repository.to_string(),
            ..Row::default()
        }
    }

    /// Adds `entry` to the row; a sum that would overflow (or a cost that would stop being
    /// finite) is an error naming the entry, and leaves the row as it was.
    fn add(&mut self, entry: &LedgerEntry) -> Result<(), BillingError> {
        let overflow = |what| BillingError::Overflow {
            key: entry.key(),
            what,
        };
        let billed_minutes = self
            .billed_minutes
            .checked_add(entry.billed_minutes)
            .ok_or_else(|| overflow("billed minutes"))?;
        let duration_ms = self
            .duration_ms
            .checked_add(entry.duration_ms)
            .ok_or_else(|| overflow("build duration"))?;
        let cost_usd = round_usd(self.cost_usd + entry.cost_usd);
        if !cost_usd.is_finite() {
            return Err(overflow("cost"));
        }
        self.builds += 1;
        self.billed_minutes = billed_minutes;
        self.duration_ms = duration_ms;
        self.cost_usd = cost_usd;
        self.failures += u64::from(entry.is_failure());
        self.skipped += u64::from(entry.status == BuildState::Skipped);
        self.average_duration_s = if self.builds == 0 {
            0.0
        } else {
            (self.duration_ms as f64 / self.builds as f64 / 1000.0 * 1000.0).round() / 1000.0
        };
        Ok(())
    }
}

/// A month's bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `YYYY-MM`.
    pub month: String,
    /// By repository name.
    pub repositories: Vec<Row>,
    pub total: Row,
    /// What the build caches hold in the store now, and what that costs a month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_storage: Option<CacheStorage>,
}

/// S3 Standard's price in us-east-1, USD per GB-month: what a cache's storage is priced at.
pub const STORAGE_USD_PER_GB_MONTH: f64 = 0.023;

/// The build caches in the store (`cache/`): how many, their bytes, and their price a month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheStorage {
    pub caches: u64,
    pub bytes: u64,
    /// At [`STORAGE_USD_PER_GB_MONTH`].
    pub usd_per_month: f64,
}

impl CacheStorage {
    /// Measures the caches in `store` (one listing of `cache/`, which the caps and the expiry
    /// keep small).
    pub fn measure(
        store: &dyn crate::store::Store,
    ) -> Result<CacheStorage, crate::store::StoreError> {
        let listed = store.list_sized("cache/")?;
        let bytes: u64 = listed.iter().map(|(_, size)| size).sum();
        Ok(CacheStorage {
            caches: listed
                .iter()
                .filter(|(key, _)| key.ends_with(".tar.zst"))
                .count() as u64,
            bytes,
            usd_per_month: round_usd(bytes as f64 / 1e9 * STORAGE_USD_PER_GB_MONTH),
        })
    }

    /// `cache storage: 3 caches, 61.2 MB, 0.0014 USD a month (S3 Standard at 0.023 USD per GB-month)`.
    pub fn line(&self) -> String {
        format!(
            "cache storage: {} caches, {:.1} MB, {:.4} USD a month (S3 Standard at \
             {STORAGE_USD_PER_GB_MONTH} USD per GB-month)",
            self.caches,
            self.bytes as f64 / 1e6,
            self.usd_per_month
        )
    }
}

impl Report {
    /// Sums `entries` (the month's ledger) per repository; a sum that would overflow is an error
    /// naming the entry, never a wrapped total.
    pub fn for_month(
        entries: &[LedgerEntry],
        year: i32,
        month: u32,
    ) -> Result<Report, BillingError> {
        let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
        let mut total = Row::named("TOTAL");
        for entry in entries {
            rows.entry(entry.repository.as_str())
                .or_insert_with(|| Row::named(entry.repository.as_str()))
                .add(entry)?;
            total.add(entry)?;
        }
        Ok(Report {
            month: format!("{year:04}-{month:02}"),
            repositories: rows.into_values().collect(),
            total,
            cache_storage: None,
        })
    }

    /// The report from the index's sums for the month (`YYYY-MM`): one row per repository
    /// and the total (the row with no repository).
    pub fn from_sums(month: &str, sums: &[super::Sums]) -> Report {
        let row = |s: &super::Sums, name: &str| Row {
            repository: name.to_string(),
            builds: s.builds,
            billed_minutes: s.minutes,
            cost_usd: round_usd(s.cost_e7 as f64 / 1e7),
            average_duration_s: if s.builds == 0 {
                0.0
            } else {
                (s.duration_ms as f64 / s.builds as f64 / 1000.0 * 1000.0).round() / 1000.0
            },
            failures: s.failures,
            skipped: s.skipped,
            duration_ms: s.duration_ms,
        };
        let mut total = Row::named("TOTAL");
        let mut repositories = Vec::new();
        for sums in sums {
            if sums.repository.is_empty() {
                total = row(sums, "TOTAL");
            } else {
                repositories.push(row(sums, &sums.repository));
            }
        }
        repositories.sort_by(|a, b| a.repository.cmp(&b.repository));
        Report {
            month: month.to_string(),
            repositories,
            total,
            cache_storage: None,
        }
    }

    /// The rows, then the total.
    fn all_rows(&self) -> impl Iterator<Item = &Row> {
        self.repositories.iter().chain(std::iter::once(&self.total))
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always encodes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as CSV: a header, a line per repository, then `TOTAL`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "repository,builds,billed_minutes,cost_usd,average_duration_s,failures,skipped\n",
        );
        for row in self.all_rows() {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{}",
                csv_field(&row.repository),
                row.builds,
                row.billed_minutes,
                row.cost_usd,
                row.average_duration_s,
                row.failures,
                row.skipped
            );
        }
        out
    }

    /// The report as an aligned text table.
    pub fn to_table(&self) -> String {
        let header = [
            "repository",
            "builds",
            "minutes",
            "cost (USD)",
            "avg (s)",
            "failures",
            "skipped",
        ];
        let cells: Vec<[String; 7]> = self
            .all_rows()
            .map(|row| {
                [
                    row.repository.clone(),
                    row.builds.to_string(),
                    row.billed_minutes.to_string(),
                    format!("{:.4}", row.cost_usd),
                    format!("{:.1}", row.average_duration_s),
                    row.failures.to_string(),
                    row.skipped.to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.len());
            }
        }
        let mut out = format!("Billing for {}\n", self.month);
        let mut push = |line: &[String]| {
            let mut text = String::new();
            for (i, (cell, width)) in line.iter().zip(widths).enumerate() {
                if i == 0 {
                    let _ = write!(text, "{cell:<width$}");
                } else {
                    let _ = write!(text, "  {cell:>width$}");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        push(&header.map(str::to_string));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let count = cells.len();
        for (i, line) in cells.iter().enumerate() {
            if i + 1 == count {
                push(&rule);
            }
            push(line);
        }
        out
    }
}

/// Quotes a CSV field holding a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod csv_tests {
    use super::csv_field;

    #[test]
    fn a_field_with_a_comma_or_a_quote_is_quoted() {
        // A project's name holds neither today; the report stays CSV whatever it is given.
        assert_eq!(csv_field("web"), "web");
        assert_eq!(csv_field("docs,old"), "\"docs,old\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
