//! What a report holds: a group's test cases and their counts, or its coverage; and the
//! summary of it the build's record keeps.

use serde::{Deserialize, Serialize};

use super::MAX_CASES;
pub use super::coverage::{CounterPair, CoverageReport, FileCoverage};

/// A report file's format: CodeBuild's `file-format` values, and `LCOV` for LCOV's `lcov.info`
/// (CodeBuild reads LCOV without naming a value for it; `LCOVINFO` is taken too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Format {
    Junitxml,
    Nunitxml,
    Nunit3xml,
    Testngxml,
    Cucumberjson,
    Visualstudiotrx,
    Cloverxml,
    Coberturaxml,
    Jacocoxml,
    Simplecov,
    Lcov,
}

const FORMATS: [(Format, &str); 11] = [
    (Format::Junitxml, "JUNITXML"),
    (Format::Nunitxml, "NUNITXML"),
    (Format::Nunit3xml, "NUNIT3XML"),
    (Format::Testngxml, "TESTNGXML"),
    (Format::Cucumberjson, "CUCUMBERJSON"),
    (Format::Visualstudiotrx, "VISUALSTUDIOTRX"),
    (Format::Cloverxml, "CLOVERXML"),
    (Format::Coberturaxml, "COBERTURAXML"),
    (Format::Jacocoxml, "JACOCOXML"),
    (Format::Simplecov, "SIMPLECOV"),
    (Format::Lcov, "LCOV"),
];

impl Format {
    /// A `file-format` value, in any case; the error lists the values there are.
    pub fn parse(text: &str) -> Result<Format, String> {
        let upper = text.trim().to_ascii_uppercase();
        let upper = if upper == "LCOVINFO" {
            "LCOV".into()
        } else {
            upper
        };
        FORMATS
            .iter()
            .find(|(_, name)| *name == upper)
            .map(|(format, _)| *format)
            .ok_or_else(|| {
                let names: Vec<&str> = FORMATS.iter().map(|(_, name)| *name).collect();
                format!(
                    "`{text}` is not a report format (one of {})",
                    names.join(", ")
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        FORMATS
            .iter()
            .find(|(format, _)| *format == self)
            .map_or("JUNITXML", |(_, name)| name)
    }

    /// Whether the format holds test cases or code coverage.
    pub fn kind(self) -> Kind {
        match self {
            Format::Cloverxml
            | Format::Coberturaxml
            | Format::Jacocoxml
            | Format::Simplecov
            | Format::Lcov => Kind::CodeCoverage,
            _ => Kind::Test,
        }
    }
}

/// CodeBuild's report types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Test,
    CodeCoverage,
}

/// A test case's status, as CodeBuild names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaseStatus {
    Succeeded,
    Failed,
    Error,
    Skipped,
    Unknown,
}

impl CaseStatus {
    /// Failed or errored: the cases a report shows first.
    pub fn is_bad(self) -> bool {
        matches!(self, CaseStatus::Failed | CaseStatus::Error)
    }
}

/// A report's status: `FAILED` when a test failed or errored, or a file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReportStatus {
    Succeeded,
    Failed,
}

/// Test cases counted by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub succeeded: u64,
    pub failed: u64,
    pub error: u64,
    pub skipped: u64,
    pub unknown: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.succeeded + self.failed + self.error + self.skipped + self.unknown
    }

    pub fn add(&mut self, status: CaseStatus) {
        *match status {
            CaseStatus::Succeeded => &mut self.succeeded,
            CaseStatus::Failed => &mut self.failed,
            CaseStatus::Error => &mut self.error,
            CaseStatus::Skipped => &mut self.skipped,
            CaseStatus::Unknown => &mut self.unknown,
        } += 1;
    }

    pub fn plus(&self, other: &Counts) -> Counts {
        Counts {
            succeeded: self.succeeded + other.succeeded,
            failed: self.failed + other.failed,
            error: self.error + other.error,
            skipped: self.skipped + other.skipped,
            unknown: self.unknown + other.unknown,
        }
    }
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Its suite or class (`com.acme.CalcTest`); empty when the format has none.
    pub suite: String,
    pub name: String,
    pub status: CaseStatus,
    pub duration_ms: u64,
    /// Why it failed, errored or was skipped, cut to [`super::MAX_MESSAGE_CHARS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A group's test cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub counts: Counts,
    /// The cases' durations added up.
    pub duration_ms: u64,
    /// Whether cases were left out (the counts still count them).
    pub truncated: bool,
    /// At most [`MAX_CASES`], the failed and errored first, each kind in file order.
    pub cases: Vec<Case>,
    #[serde(skip)]
    others: Vec<Case>,
}

impl TestReport {
    /// Counts `case`, and keeps it while there is room for its kind.
    pub fn add(&mut self, case: Case) {
        self.counts.add(case.status);
        self.duration_ms = self.duration_ms.saturating_add(case.duration_ms);
        let kept = if case.status.is_bad() {
            &mut self.cases
        } else {
            &mut self.others
        };
        if kept.len() < MAX_CASES {
            kept.push(case);
        }
    }

    /// Adds what another file's report read (before either is finished).
    fn merge(&mut self, other: TestReport) {
        self.counts = self.counts.plus(&other.counts);
        self.duration_ms = self.duration_ms.saturating_add(other.duration_ms);
        for (kept, more) in [
            (&mut self.cases, other.cases),
            (&mut self.others, other.others),
        ] {
            let room = MAX_CASES.saturating_sub(kept.len());
            kept.extend(more.into_iter().take(room));
        }
    }

    fn finish(&mut self) {
        let room = MAX_CASES.saturating_sub(self.cases.len());
        self.others.truncate(room);
        self.cases.append(&mut self.others);
        self.truncated = (self.cases.len() as u64) < self.counts.total();
    }
}

/// A file a group could not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub file: String,
    pub reason: String,
}

/// One group's report: what `reports/<project>/<build-id>/<group>.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The group's name (or ARN) as the buildspec gives it.
    pub group: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub format: Format,
    pub status: ReportStatus,
    /// The files read, relative to the source folder.
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageReport>,
}

impl GroupReport {
    pub fn new(group: &str, format: Format) -> GroupReport {
        GroupReport {
            group: group.to_string(),
            kind: format.kind(),
            format,
            status: ReportStatus::Succeeded,
            files: Vec::new(),
            problems: Vec::new(),
            tests: None,
            coverage: None,
        }
    }

    pub fn tests(&mut self) -> &mut TestReport {
        self.tests.get_or_insert_default()
    }

    pub fn coverage(&mut self) -> &mut CoverageReport {
        self.coverage.get_or_insert_default()
    }

    pub fn problem(&mut self, file: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            file: file.to_string(),
            reason: reason.into(),
        });
    }

    /// Passes every text the build's files put in the report through `mask` (the build's
    /// secret values become `***`, as in its log).
    pub fn mask(&mut self, mask: &dyn Fn(&str) -> String) {
        if let Some(tests) = self.tests.as_mut() {
            for case in &mut tests.cases {
                case.suite = mask(&case.suite);
                case.name = mask(&case.name);
                case.message = case.message.as_deref().map(mask);
            }
        }
        if let Some(coverage) = self.coverage.as_mut() {
            for file in &mut coverage.least_covered {
                file.file = mask(&file.file);
            }
        }
        for problem in &mut self.problems {
            problem.reason = mask(&problem.reason);
        }
    }

    /// Adds what another file of the group read.
    pub fn merge(&mut self, other: GroupReport) {
        if let Some(tests) = other.tests {
            self.tests().merge(tests);
        }
        if let Some(coverage) = other.coverage {
            self.coverage().merge(coverage);
        }
    }

    /// Settles the report once every file is read: its status, its cases, its least covered.
    pub fn finish(&mut self) {
        match self.kind {
            Kind::Test => self.tests().finish(),
            Kind::CodeCoverage => self.coverage().finish(),
        }
        let failed = self
            .tests
            .as_ref()
            .is_some_and(|t| t.counts.failed + t.counts.error > 0);
        self.status = if failed || !self.problems.is_empty() {
            ReportStatus::Failed
        } else {
            ReportStatus::Succeeded
        };
    }
}
