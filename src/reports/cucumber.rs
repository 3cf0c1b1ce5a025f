//! Cucumber's JSON (Ruby, JS, JVM): each element of `type: "scenario"` is a case (backgrounds
//! are not; cucumber-js folds them into its scenarios already). A scenario with a `failed` step
//! is FAILED; else one with a `skipped`, `pending`, `undefined` or `ambiguous` step is SKIPPED
//! (it did not run to the end); else SUCCEEDED. Its duration is its steps' (nanoseconds), its
//! message the failed step's `error_message`.

use std::io::BufRead;

use serde::Deserialize;

use super::cut;
use super::model::{Case, CaseStatus, TestReport};

#[derive(Deserialize)]
struct Feature {
    #[serde(default)]
    name: String,
    #[serde(default)]
    elements: Vec<Element>,
}

#[derive(Deserialize)]
struct Element {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    #[serde(default)]
    result: Option<StepResult>,
}

#[derive(Deserialize)]
struct StepResult {
    #[serde(default)]
    status: String,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    error_message: Option<String>,
}

pub(super) fn read(mut input: impl BufRead, into: &mut TestReport) -> Result<(), String> {
    skip_bom(&mut input).map_err(|err| format!("cannot read: {err}"))?;
    let features: Vec<Feature> = serde_json::from_reader(input)
        .map_err(|err| format!("not a Cucumber JSON report (an array of features): {err}"))?;
    for feature in features {
        for element in feature.elements {
            if element.kind != "scenario" {
                continue;
            }
            let results = || element.steps.iter().filter_map(|s| s.result.as_ref());
            let failed = results().find(|r| r.status == "failed");
            let status = if failed.is_some() {
                CaseStatus::Failed
            } else if results().any(|r| {
                matches!(
                    r.status.as_str(),
                    "skipped" | "pending" | "undefined" | "ambiguous"
                )
            }) {
                CaseStatus::Skipped
            } else {
                CaseStatus::Succeeded
            };
            let nanos: f64 = results()
                .filter_map(|r| r.duration)
                .filter(|d| d.is_finite() && *d > 0.0)
                .sum();
            into.add(Case {
                suite: feature.name.clone(),
                name: element.name.clone(),
                status,
                duration_ms: (nanos / 1e6).round() as u64,
                message: failed.and_then(|r| r.error_message.as_deref()).map(cut),
            });
        }
    }
    Ok(())
}

/// Skips a UTF-8 byte order mark.
pub(super) fn skip_bom(input: &mut impl BufRead) -> std::io::Result<()> {
    if input.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
    }
    Ok(())
}
