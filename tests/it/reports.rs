//! Test and coverage reports through the real binaries: `pushbuild run` with pytest making the
//! JUnit XML inside the build (and LCOV beside it), auto-discovery on and off, and the function
//! on the S3 server with a 100,000-case file, a malformed file, a billion laughs and Cobertura
//! with its external DTD, the reports stored as objects and summed up in its answer.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::function::{Harness, MINUTE, builds, sample};

const SECRET: &str = "report-s3cret-value-9";

const CALC_TESTS: &str = r#"import pytest


def test_adds():
    assert 1 + 1 == 2


def test_subtracts():
    assert 3 - 1 == 2


def test_divides():
    import os
    assert 7 // 2 == 3.5, "integer division with " + os.environ["API_TOKEN"]


@pytest.mark.skip(reason="not yet")
def test_later():
    pass
"#;

/// `pushbuild run` of `project`, its store in `store`.
fn run(project: &Path, store: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .arg("run")
        .arg(project)
        .arg("--store")
        .arg(store)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("pushbuild runs")
}

/// The one record under `store`.
fn only_record(store: &Path) -> Value {
    let records: Vec<_> = walkdir::WalkDir::new(store.join("builds"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "build.json")
        .collect();
    assert_eq!(records.len(), 1);
    serde_json::from_slice(&std::fs::read(records[0].path()).unwrap()).unwrap()
}

#[test]
fn pushbuild_run_reads_pytests_report_and_lcov_and_names_the_failed_test() {
    let python = crate::tools::python().expect("the tests' Python, with pytest");
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("calc");
    std::fs::create_dir_all(project.join("tests")).unwrap();
    std::fs::write(project.join("tests/test_calc.py"), CALC_TESTS).unwrap();
    let spec = format!(
        "version: 0.2\nenv:\n  parameter-store:\n    API_TOKEN: /ci/token\n\
         phases:\n  build:\n    commands:\n      \
         - {} -m pytest -p no:cacheprovider --junitxml=reports/junit.xml tests\n  \
         post_build:\n    commands:\n      \
         - printf 'SF:src/calc.py\\nDA:1,1\\nDA:2,1\\nDA:3,0\\nend_of_record\\n' > lcov.info\n\
         reports:\n  unit:\n    files: [junit.xml]\n    base-directory: reports\n  \
         coverage:\n    files: [lcov.info]\n    file-format: LCOV\n",
        python.display()
    );
    std::fs::write(project.join("buildspec.yml"), spec).unwrap();
    let store = work.path().join("store");
    let output = run(&project, &store, &[("API_TOKEN", SECRET)]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // pytest failed, so the build did; its reports were read all the same.
    assert!(!output.status.success(), "{stdout}");
    for expected in [
        "Reports",
        "2 passed, 1 failed, 1 skipped",
        "failed: tests.test_calc › test_divides",
        "66% lines",
        "Report unit (JUNITXML): FAILED",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in:\n{stdout}");
    }
    let record = only_record(&store);
    assert_eq!(record["status"], "FAILED");
    let unit = &record["reports"][0];
    assert_eq!(unit["group"], "unit");
    assert_eq!(unit["counts"]["failed"], 1);
    assert_eq!(unit["counts"]["succeeded"], 2);
    assert_eq!(record["reports"][1]["line_pct"], 66.67);
    let key = format!(
        "reports/calc/{}/unit.json",
        record["build_id"].as_str().unwrap()
    );
    let report: Value = serde_json::from_slice(&std::fs::read(store.join(&key)).unwrap()).unwrap();
    let first = &report["tests"]["cases"][0];
    assert_eq!(first["status"], "FAILED");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("integer division with ***"),
        "{first}"
    );
    // The secret pytest printed is masked wherever the report went.
    for file in walkdir::WalkDir::new(&store) {
        let file = file.unwrap();
        if file.file_type().is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(file.path()).unwrap()).into_owned();
            assert!(
                !text.contains(SECRET),
                "{} holds the secret",
                file.path().display()
            );
        }
    }
    assert!(!stdout.contains(SECRET));
}

#[test]
fn without_a_reports_section_junit_the_build_wrote_is_discovered_unless_turned_off() {
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("found");
    std::fs::create_dir_all(project.join("fixtures")).unwrap();
    // The repository's own fixture is older than the build: not the build's result.
    std::fs::write(
        project.join("fixtures/old.xml"),
        "<testsuite><testcase name=\"old\"><failure/></testcase></testsuite>",
    )
    .unwrap();
    std::fs::write(
        project.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out\n      \
         - echo '<testsuite name=\"s\"><testcase name=\"a\"/><testcase name=\"b\"/></testsuite>' > out/TEST-s.xml\n",
    )
    .unwrap();
    let store = work.path().join("store");
    let output = run(&project, &store, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let record = only_record(&store);
    let found = &record["reports"][0];
    assert_eq!(found["group"], "found-JUNITXML-AutoDiscovered", "{record}");
    assert_eq!(found["counts"]["succeeded"], 2);
    assert_eq!(found["counts"]["failed"], 0, "the old fixture was not read");

    let store = work.path().join("store-off");
    let output = run(
        &project,
        &store,
        &[("CODEBUILD_CONFIG_AUTO_DISCOVER", "false")],
    );
    assert!(output.status.success());
    assert!(only_record(&store).get("reports").is_none());
}

/// A billion laughs: nine levels of ten.
fn laughs() -> String {
    let mut text =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for n in 1..10 {
        let prev = if n == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", n - 1)
        };
        let _ = writeln!(
            text,
            "<!ENTITY lol{n} \"{}\">",
            format!("&{prev};").repeat(10)
        );
    }
    text.push_str("]>\n<testsuite name=\"laughs\"><testcase name=\"&lol9;\"/></testsuite>\n");
    text
}

/// Writes 100,000 cases, every thousandth failing; a cut file; the laughs.
const GENERATE: &str = r#"set -e
mkdir -p out
{ echo '<testsuites><testsuite name="big">'
  seq 1 100000 | awk '{ if ($1 % 1000 == 0) printf "<testcase classname=\"big.Suite\" name=\"case %d\"><failure message=\"boom %d\">at line %d</failure></testcase>\n", $1, $1, $1; else printf "<testcase classname=\"big.Suite\" name=\"case %d\" time=\"0.001\"/>\n", $1 }'
  echo '</testsuite></testsuites>'; } > out/big.xml
printf '<testsuite><testcase name="a">' > out/cut.xml
cp fixtures/laughs.xml out/laughs.xml
"#;

#[test]
fn the_function_stores_each_groups_report_and_answers_with_the_counts() {
    let cobertura = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reports/fixtures/COBERTURAXML/cobertura-2.1.1-java.xml"),
    )
    .expect("the shared Cobertura report");
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - bash generate.sh\n\
                reports:\n  arn:aws:codebuild:us-east-1:123456789012:report-group/unit:\n    \
                files: ['out/*.xml']\n  cov:\n    files: [coverage.xml]\n    \
                file-format: COBERTURAXML\n";
    let laughs = laughs();
    let h = Harness::start(
        &[
            ("ci/buildspec.yml", spec.as_bytes()),
            ("generate.sh", GENERATE.as_bytes()),
            ("fixtures/laughs.xml", laughs.as_bytes()),
            ("coverage.xml", &cobertura),
        ],
        "reports",
        &[],
    );
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    let build_id = answer[0]["buildId"]
        .as_str()
        .expect("a build id")
        .to_string();
    let log = h.log(&build_id);
    // The reports fail, the build does not.
    assert_eq!(answer[0]["status"], "SUCCEEDED", "{log}");
    assert_eq!(
        answer[0]["tests"], "99901 passed, 100 failed · 66% lines · 1 report(s) unreadable",
        "{answer:?}"
    );
    let record = h.record(&build_id);
    let unit = &record["reports"][0];
    assert_eq!(unit["status"], "FAILED");
    assert_eq!(unit["counts"]["succeeded"], 99_901);
    let problems = unit["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .starts_with("out/cut.xml: the file ends inside 2 open element(s)"),
        "{problems:?}"
    );
    assert_eq!(unit["failed"][0], "big.Suite › case 1000");
    let project = record["repository"].as_str().unwrap();
    let stored: Value =
        serde_json::from_slice(&h.object(&format!("reports/{project}/{build_id}/unit.json")))
            .unwrap();
    let tests = &stored["tests"];
    assert_eq!(tests["cases"].as_array().unwrap().len(), 500);
    assert_eq!(tests["truncated"], true);
    assert_eq!(tests["cases"][99]["message"], "boom 100000");
    assert_eq!(tests["cases"][100]["status"], "SUCCEEDED");
    // The laughs were read as one case (99,900 + 1 passed), their entity left unexpanded.
    assert_eq!(
        stored["files"],
        serde_json::json!(["out/big.xml", "out/laughs.xml"])
    );
    assert!(
        !String::from_utf8_lossy(&h.object(&format!("reports/{project}/{build_id}/unit.json")))
            .contains("lollol")
    );
    let cov: Value =
        serde_json::from_slice(&h.object(&format!("reports/{project}/{build_id}/cov.json")))
            .unwrap();
    assert_eq!(cov["coverage"]["line_pct"], 66.67);
    assert_eq!(cov["coverage"]["branch_pct"], 25.0);
    assert!(
        log.contains("Report cov (COBERTURAXML): SUCCEEDED"),
        "{log}"
    );
}
