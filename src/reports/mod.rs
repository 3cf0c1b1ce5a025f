//! Test and coverage reports: the files a build's tests leave, read as CodeBuild reads them
//! (the buildspec's `reports` groups, or JUnit XML found by auto-discovery), into one report per
//! group: its status, its test cases' counts by CodeBuild's statuses, the cases themselves (the
//! failed first, at most [`MAX_CASES`]), and for coverage the lines and branches covered and the
//! files least covered.
//!
//! Every file is data, never trusted: XML is read by a streaming parser that expands no entity
//! but XML's own five and character references and fetches no DTD; each file is read up to
//! [`MAX_FILE_BYTES`]; a file that cannot be read makes its group's report `FAILED`, naming the
//! file and the reason, and never fails the build.

mod collect;
mod coverage;
mod coverage_text;
mod coverage_xml;
mod cucumber;
mod discover;
mod dotnet;
mod junit;
mod model;
mod summary;
mod testng;
mod xml;

pub use collect::{ReportFiles, collect, read_files};
pub use discover::{DISCOVER_MAX_FILES, DISCOVER_MAX_SECONDS, DISCOVER_MAX_VISITS, discover};
pub use model::{
    Case, CaseStatus, CounterPair, Counts, CoverageReport, FileCoverage, Format, GroupReport, Kind,
    Problem, ReportStatus, TestReport,
};
pub use summary::{ReportSummary, case_name};

/// The most test cases a report keeps (the failed and errored first); the counts stay whole.
pub const MAX_CASES: usize = 500;
/// The longest message kept of a case, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1_000;
/// The largest report file read; a larger one fails its group's report.
pub const MAX_FILE_BYTES: u64 = 128 << 20;
/// The most files one group reads.
pub const MAX_FILES: usize = 1_000;
/// The files least covered a coverage report lists.
pub const LEAST_COVERED: usize = 10;

/// Reads one report file of `format` from `input` into `into`: test cases into a test report,
/// lines and branches into a coverage report. The error says what is wrong, and where.
pub fn read(
    format: Format,
    input: impl std::io::BufRead,
    into: &mut GroupReport,
) -> Result<(), String> {
    match format {
        Format::Junitxml => junit::read(input, into.tests()),
        Format::Nunitxml | Format::Nunit3xml => dotnet::read_nunit(input, into.tests()),
        Format::Visualstudiotrx => dotnet::read_trx(input, into.tests()),
        Format::Testngxml => testng::read(input, into.tests()),
        Format::Cucumberjson => cucumber::read(input, into.tests()),
        Format::Coberturaxml => coverage_xml::read_cobertura(input, into.coverage()),
        Format::Jacocoxml => coverage_xml::read_jacoco(input, into.coverage()),
        Format::Cloverxml => coverage_xml::read_clover(input, into.coverage()),
        Format::Simplecov => coverage_text::read_simplecov(input, into.coverage()),
        Format::Lcov => coverage_text::read_lcov(input, into.coverage()),
    }
}

/// A test case's text, cut to [`MAX_MESSAGE_CHARS`] (with `…` where it was cut).
pub(crate) fn cut(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod fixtures_tests;
#[cfg(test)]
mod tests;
