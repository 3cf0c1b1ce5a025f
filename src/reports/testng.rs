//! TestNG's `testng-results.xml`: each `<test-method>` that is not a configuration method
//! (`is-config="true"`: set-ups and tear-downs) is a case, every invocation its own (a data
//! provider's eight runs of one method are eight cases). PASS is SUCCEEDED, FAIL FAILED, SKIP
//! SKIPPED; anything else UNKNOWN.

use std::io::BufRead;

use super::cut;
use super::model::{Case, CaseStatus, TestReport};
use super::xml::{Ev, expect_root, walk};

pub(super) fn read(input: impl BufRead, into: &mut TestReport) -> Result<(), String> {
    let mut root = None;
    let mut class = String::new();
    let mut open: Option<Case> = None;
    let mut in_message = false;
    let mut text = String::new();
    walk(input, |ev| {
        match ev {
            Ev::Open(name, attrs) => {
                expect_root(name, &mut root, &["testng-results"])?;
                match name {
                    "class" => class = attrs.get("name").unwrap_or_default().to_string(),
                    "test-method" if attrs.get("is-config") != Some("true") => {
                        let status = match attrs.get("status") {
                            Some("PASS") => CaseStatus::Succeeded,
                            Some("FAIL") => CaseStatus::Failed,
                            Some("SKIP") => CaseStatus::Skipped,
                            _ => CaseStatus::Unknown,
                        };
                        open = Some(Case {
                            suite: class.clone(),
                            name: attrs.get("name").unwrap_or_default().to_string(),
                            status,
                            duration_ms: attrs.number("duration-ms"),
                            message: None,
                        });
                    }
                    "message" if open.as_ref().is_some_and(|c| c.message.is_none()) => {
                        in_message = true;
                        text.clear();
                    }
                    _ => {}
                }
            }
            Ev::Text(part) => {
                if in_message && text.len() < super::MAX_MESSAGE_CHARS * 4 {
                    text.push_str(part);
                }
            }
            Ev::Close(name) => match name {
                "message" if in_message => {
                    in_message = false;
                    if let Some(case) = open.as_mut().filter(|_| !text.trim().is_empty()) {
                        case.message = Some(cut(&text));
                    }
                }
                "test-method" => {
                    if let Some(case) = open.take() {
                        into.add(case);
                    }
                }
                _ => {}
            },
        }
        Ok(())
    })
}
