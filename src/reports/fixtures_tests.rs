//! Every real report in `../shared/reports/fixtures/` read to the counts its manifest gives.

use std::path::PathBuf;

use serde_json::Value;

use super::{Format, read_files};
use crate::reports::ReportFiles;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reports")
}

#[test]
fn every_fixture_is_read_to_the_manifests_counts() {
    let manifest: Vec<Value> = serde_json::from_slice(
        &std::fs::read(shared().join("manifest.json")).expect("../shared/reports/manifest.json"),
    )
    .expect("the manifest is JSON");
    assert!(manifest.len() >= 27, "{} fixtures", manifest.len());
    let mut wrong = Vec::new();
    for entry in &manifest {
        let file = entry["file"].as_str().expect("a file");
        let format = Format::parse(entry["format"].as_str().expect("a format")).expect("known");
        let report = read_files(ReportFiles {
            group: "fixture".into(),
            format,
            files: vec![(file.to_string(), shared().join("fixtures").join(file))],
        });
        assert!(report.problems.is_empty(), "{file}: {:?}", report.problems);
        let want = &entry["expected"];
        let got = match (&report.tests, &report.coverage) {
            (Some(tests), _) => {
                let c = tests.counts;
                serde_json::json!({
                    "total": c.total(), "passed": c.succeeded, "failed": c.failed,
                    "error": c.error, "skipped": c.skipped,
                })
            }
            (_, Some(coverage)) => {
                let mut got = serde_json::json!({
                    "line_pct": coverage.line_pct,
                    "lines_covered": coverage.lines.covered,
                    "lines_total": coverage.lines.total(),
                });
                if want.get("branches_total").is_some() {
                    let branches = coverage.branches.unwrap_or_default();
                    got["branch_pct"] = serde_json::json!(coverage.branch_pct);
                    got["branches_covered"] = branches.covered.into();
                    got["branches_total"] = branches.total().into();
                } else {
                    assert_eq!(coverage.branches, None, "{file} measured no branches");
                }
                got
            }
            _ => panic!("{file}: nothing read"),
        };
        if &got != want {
            wrong.push(format!("{file}: got {got}, want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
