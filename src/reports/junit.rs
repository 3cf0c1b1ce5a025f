//! JUnit XML (Surefire, Gradle, pytest, jest-junit, go-junit-report, nextest, mocha, PHPUnit,
//! unittest-xml-reporting): each `<testcase>` is a case, whatever the suites' totals say. Its
//! status comes from its own children: `<failure>` FAILED, else `<error>` ERROR, else
//! `<skipped>` SKIPPED, else SUCCEEDED. A rerun's `<rerunFailure>` or `<flakyFailure>` is not an
//! outcome (the case passed on a later try, or its `<failure>` says it did not).

use std::io::BufRead;

use super::model::{Case, CaseStatus, TestReport};
use super::xml::{Attrs, Ev, expect_root, walk};
use super::{MAX_MESSAGE_CHARS, cut};

/// A case being read: its element depth and what its children said so far.
struct Open {
    depth: usize,
    case: Case,
    /// Reading the text of the outcome element (`<failure>`), at this depth.
    text_at: Option<usize>,
    text: String,
}

impl Open {
    /// The `<testcase>` at `depth`, in the suite `suite` unless it names its class.
    fn new(depth: usize, attrs: &Attrs, suite: Option<&str>) -> Open {
        let suite = attrs
            .get("classname")
            .filter(|c| !c.is_empty())
            .or(suite)
            .unwrap_or_default();
        Open {
            depth,
            case: Case {
                suite: suite.to_string(),
                name: attrs.get("name").unwrap_or_default().to_string(),
                status: CaseStatus::Succeeded,
                duration_ms: attrs.seconds_ms("time"),
                message: None,
            },
            text_at: None,
            text: String::new(),
        }
    }
}

pub(super) fn read(input: impl BufRead, into: &mut TestReport) -> Result<(), String> {
    let mut root = None;
    let mut depth = 0usize;
    let mut suites: Vec<(usize, String)> = Vec::new();
    let mut open: Option<Open> = None;
    walk(input, |ev| {
        match ev {
            Ev::Open(name, attrs) => {
                expect_root(name, &mut root, &["testsuites", "testsuite"])?;
                depth += 1;
                match (name, open.as_mut()) {
                    ("testsuite", _) => {
                        suites.push((depth, attrs.get("name").unwrap_or_default().to_string()));
                    }
                    ("testcase", None) => {
                        let suite = suites.last().map(|(_, name)| name.as_str());
                        open = Some(Open::new(depth, attrs, suite));
                    }
                    (outcome, Some(case)) if depth == case.depth + 1 => {
                        let status = match outcome {
                            "failure" => CaseStatus::Failed,
                            "error" => CaseStatus::Error,
                            "skipped" => CaseStatus::Skipped,
                            _ => return Ok(()),
                        };
                        if rank(status) > rank(case.case.status) {
                            case.case.status = status;
                            case.case.message = attrs
                                .get("message")
                                .filter(|m| !m.trim().is_empty())
                                .map(cut);
                            case.text_at = Some(depth);
                            case.text.clear();
                        }
                    }
                    _ => {}
                }
            }
            Ev::Text(text) => {
                if let Some(case) = open.as_mut().filter(|c| c.text_at == Some(depth)) {
                    if case.text.len() < MAX_MESSAGE_CHARS * 4 {
                        case.text.push_str(text);
                    }
                }
            }
            Ev::Close(name) => {
                if let Some(case) = open.as_mut() {
                    if case.text_at == Some(depth) {
                        case.text_at = None;
                        if case.case.message.is_none() && !case.text.trim().is_empty() {
                            case.case.message = Some(cut(&case.text));
                        }
                    }
                }
                if name == "testcase" && open.as_ref().is_some_and(|c| c.depth == depth) {
                    into.add(open.take().map(|o| o.case).expect("an open case"));
                }
                if suites.last().is_some_and(|(at, _)| *at == depth) {
                    suites.pop();
                }
                depth = depth.saturating_sub(1);
            }
        }
        Ok(())
    })
}

/// Which outcome wins when a case has several: a failure over an error over a skip.
fn rank(status: CaseStatus) -> u8 {
    match status {
        CaseStatus::Failed => 3,
        CaseStatus::Error => 2,
        CaseStatus::Skipped => 1,
        _ => 0,
    }
}
