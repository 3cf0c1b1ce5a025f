//! A group's code coverage: lines and branches covered and missed, in all and per file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::LEAST_COVERED;

/// Lines or branches: how many were covered and how many missed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterPair {
    pub covered: u64,
    pub missed: u64,
}

impl CounterPair {
    pub fn new(covered: u64, total: u64) -> CounterPair {
        CounterPair {
            covered,
            missed: total.saturating_sub(covered),
        }
    }

    pub fn total(&self) -> u64 {
        self.covered + self.missed
    }

    /// The percentage covered, to two places (half up); `None` when there is nothing to cover.
    pub fn pct(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| {
            let hundredths = (self.covered as u128 * 20_000 / total as u128).div_ceil(2);
            hundredths as f64 / 100.0
        })
    }

    pub(super) fn plus(&self, other: &CounterPair) -> CounterPair {
        CounterPair {
            covered: self.covered + other.covered,
            missed: self.missed + other.missed,
        }
    }
}

/// One source file's coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileCoverage {
    pub file: String,
    pub lines: CounterPair,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_pct: Option<f64>,
}

/// A group's code coverage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageReport {
    pub lines: CounterPair,
    pub line_pct: Option<f64>,
    /// `None` when the format or the run measured no branches.
    pub branches: Option<CounterPair>,
    pub branch_pct: Option<f64>,
    /// How many source files the coverage covers.
    pub files: usize,
    /// The files with the lowest line coverage, at most [`LEAST_COVERED`].
    pub least_covered: Vec<FileCoverage>,
    #[serde(skip)]
    by_file: BTreeMap<String, CounterPair>,
}

impl CoverageReport {
    /// Adds a source file's lines (and branches, when measured).
    pub fn add_file(&mut self, file: &str, lines: CounterPair, branches: Option<CounterPair>) {
        self.lines = self.lines.plus(&lines);
        if let Some(branches) = branches {
            self.branches = Some(self.branches.unwrap_or_default().plus(&branches));
        }
        let entry = self.by_file.entry(file.to_string()).or_default();
        *entry = entry.plus(&lines);
    }

    /// Adds what another file's report read (before either is finished).
    pub(super) fn merge(&mut self, other: CoverageReport) {
        if other.branches.is_some() {
            self.measured_branches();
        }
        for (file, lines) in other.by_file {
            self.add_file(&file, lines, None);
        }
        if let (Some(mine), Some(theirs)) = (self.branches.as_mut(), other.branches) {
            *mine = mine.plus(&theirs);
        }
    }

    /// Says that branches were measured, even if none were found.
    pub fn measured_branches(&mut self) {
        self.branches.get_or_insert_default();
    }

    pub(super) fn finish(&mut self) {
        self.line_pct = self.lines.pct();
        self.branch_pct = self.branches.and_then(|b| b.pct());
        self.files = self.by_file.len();
        let mut files: Vec<FileCoverage> = std::mem::take(&mut self.by_file)
            .into_iter()
            .filter(|(_, lines)| lines.total() > 0)
            .map(|(file, lines)| FileCoverage {
                file,
                lines,
                line_pct: lines.pct(),
            })
            .collect();
        files.sort_by(|a, b| {
            let (x, y) = (a.line_pct.unwrap_or(100.0), b.line_pct.unwrap_or(100.0));
            x.total_cmp(&y).then(b.lines.missed.cmp(&a.lines.missed))
        });
        files.truncate(LEAST_COVERED);
        self.least_covered = files;
    }
}
