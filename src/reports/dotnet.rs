//! .NET's reports: NUnit 2 and 3 (`<test-case>` with its `result`) and Visual Studio's TRX
//! (`<UnitTestResult>` with its `outcome`), each case counted from its own element.
//!
//! NUnit: Passed or Success is SUCCEEDED; Failed is ERROR with `label="Error"`, else FAILED;
//! Failure FAILED; Error ERROR; Skipped, Ignored, NotRunnable and Inconclusive SKIPPED (they did
//! not run to a verdict); NUnit 2.2's `executed`/`success` where there is no `result`. TRX:
//! Passed SUCCEEDED; Failed and Timeout FAILED; Error and Aborted ERROR; NotExecuted and
//! Inconclusive SKIPPED. Anything else is UNKNOWN.

use std::collections::HashMap;
use std::io::BufRead;

use super::cut;
use super::model::{Case, CaseStatus, TestReport};
use super::xml::{Attrs, Ev, expect_root, walk};

/// A case being read, and the text of its first `<message>` / `<Message>`.
struct Open {
    depth: usize,
    case: Case,
    in_message: bool,
    text: String,
}

impl Open {
    fn text(&mut self, text: &str) {
        if self.in_message && self.text.len() < super::MAX_MESSAGE_CHARS * 4 {
            self.text.push_str(text);
        }
    }

    fn close_message(&mut self) {
        self.in_message = false;
        if self.case.message.is_none() && !self.text.trim().is_empty() {
            self.case.message = Some(cut(&self.text));
        }
    }
}

pub(super) fn read_nunit(input: impl BufRead, into: &mut TestReport) -> Result<(), String> {
    let mut root = None;
    let mut depth = 0usize;
    let mut suites: Vec<(usize, String)> = Vec::new();
    let mut open: Option<Open> = None;
    walk(input, |ev| {
        match ev {
            Ev::Open(name, attrs) => {
                expect_root(name, &mut root, &["test-run", "test-results"])?;
                depth += 1;
                match (name, open.as_mut()) {
                    ("test-suite", _) => {
                        suites.push((depth, attrs.get("name").unwrap_or_default().to_string()));
                    }
                    ("test-case", None) => {
                        let suite = attrs
                            .get("classname")
                            .map(str::to_string)
                            .or_else(|| suites.last().map(|(_, name)| name.clone()))
                            .unwrap_or_default();
                        let duration_ms = match attrs.get("duration") {
                            Some(_) => attrs.seconds_ms("duration"),
                            None => attrs.seconds_ms("time"),
                        };
                        open = Some(Open {
                            depth,
                            case: Case {
                                suite,
                                name: attrs.get("name").unwrap_or_default().to_string(),
                                status: nunit_status(attrs),
                                duration_ms,
                                message: None,
                            },
                            in_message: false,
                            text: String::new(),
                        });
                    }
                    ("message", Some(case)) => case.in_message = case.case.message.is_none(),
                    _ => {}
                }
            }
            Ev::Text(text) => {
                if let Some(case) = open.as_mut() {
                    case.text(text);
                }
            }
            Ev::Close(name) => {
                match (name, open.as_mut()) {
                    ("message", Some(case)) => case.close_message(),
                    ("test-case", Some(case)) if case.depth == depth => {
                        into.add(open.take().map(|o| o.case).expect("an open case"));
                    }
                    _ => {}
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

fn nunit_status(attrs: &Attrs) -> CaseStatus {
    match attrs.get("result") {
        Some("Passed" | "Success") => CaseStatus::Succeeded,
        Some("Failed") if attrs.get("label") == Some("Error") => CaseStatus::Error,
        Some("Failed" | "Failure") => CaseStatus::Failed,
        Some("Error") => CaseStatus::Error,
        Some("Skipped" | "Ignored" | "NotRunnable" | "Inconclusive") => CaseStatus::Skipped,
        Some(_) => CaseStatus::Unknown,
        None => {
            let yes = |name| {
                attrs
                    .get(name)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            };
            if !yes("executed") {
                CaseStatus::Skipped
            } else if yes("success") {
                CaseStatus::Succeeded
            } else {
                CaseStatus::Failed
            }
        }
    }
}

pub(super) fn read_trx(input: impl BufRead, into: &mut TestReport) -> Result<(), String> {
    let mut root = None;
    // The results come before the definitions that name their classes: held until the end.
    let mut results: Vec<(String, Case)> = Vec::new();
    let mut classes: HashMap<String, String> = HashMap::new();
    let mut open: Option<(String, Open)> = None;
    let mut unit_test: Option<String> = None;
    walk(input, |ev| {
        match ev {
            Ev::Open(name, attrs) => {
                expect_root(name, &mut root, &["TestRun"])?;
                match name {
                    "UnitTestResult" => {
                        let case = Case {
                            suite: String::new(),
                            name: attrs.get("testName").unwrap_or_default().to_string(),
                            status: trx_status(attrs.get("outcome").unwrap_or_default()),
                            duration_ms: attrs.get("duration").map_or(0, timespan_ms),
                            message: None,
                        };
                        let id = attrs.get("testId").unwrap_or_default().to_string();
                        if let Some((id, done)) = open.take() {
                            results.push((id, done.case));
                        }
                        open = Some((
                            id,
                            Open {
                                depth: 0,
                                case,
                                in_message: false,
                                text: String::new(),
                            },
                        ));
                    }
                    "Message" => {
                        if let Some((_, case)) = open.as_mut() {
                            case.in_message = case.case.message.is_none();
                        }
                    }
                    "UnitTest" => unit_test = attrs.get("id").map(str::to_string),
                    "TestMethod" => {
                        if let (Some(id), Some(class)) = (&unit_test, attrs.get("className")) {
                            classes.insert(id.clone(), class.to_string());
                        }
                    }
                    _ => {}
                }
            }
            Ev::Text(text) => {
                if let Some((_, case)) = open.as_mut() {
                    case.text(text);
                }
            }
            Ev::Close(name) => match name {
                "Message" => {
                    if let Some((_, case)) = open.as_mut() {
                        case.close_message();
                    }
                }
                "UnitTestResult" => {
                    if let Some((id, done)) = open.take() {
                        results.push((id, done.case));
                    }
                }
                _ => {}
            },
        }
        Ok(())
    })?;
    for (id, mut case) in results {
        if let Some(class) = classes.get(&id) {
            case.suite = class.clone();
        }
        into.add(case);
    }
    Ok(())
}

fn trx_status(outcome: &str) -> CaseStatus {
    match outcome {
        "Passed" | "PassedButRunAborted" => CaseStatus::Succeeded,
        "Failed" | "Timeout" => CaseStatus::Failed,
        "Error" | "Aborted" => CaseStatus::Error,
        "NotExecuted" | "Inconclusive" | "NotRunnable" | "Disconnected" => CaseStatus::Skipped,
        _ => CaseStatus::Unknown,
    }
}

/// A TRX duration, `hh:mm:ss.fffffff`, in milliseconds.
fn timespan_ms(text: &str) -> u64 {
    let mut parts = text.trim().splitn(3, ':');
    let (Some(h), Some(m), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return 0;
    };
    let seconds = h.parse::<f64>().unwrap_or(0.0) * 3600.0
        + m.parse::<f64>().unwrap_or(0.0) * 60.0
        + s.parse::<f64>().unwrap_or(0.0);
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round() as u64
    } else {
        0
    }
}
