//! Reports from files made here: hostile XML stays data, a bad file fails its group and names
//! itself, at most 500 cases are kept with the failed first, and the summary's line.

use std::fmt::Write as _;
use std::path::Path;

use super::*;

fn junit_of(cases: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"s\">{cases}</testsuite></testsuites>\n"
    )
}

fn group_of(dir: &Path, files: &[(&str, &str)], format: Format) -> GroupReport {
    let mut found = Vec::new();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
        found.push((name.to_string(), dir.join(name)));
    }
    read_files(ReportFiles {
        group: "unit".into(),
        format,
        files: found,
    })
}

#[test]
fn a_billion_laughs_and_an_external_entity_are_left_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut laughs =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for n in 1..10 {
        let prev = if n == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", n - 1)
        };
        let _ = writeln!(
            laughs,
            "<!ENTITY lol{n} \"{}\">",
            format!("&{prev};").repeat(10)
        );
    }
    laughs.push_str("<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n");
    laughs.push_str(
        "<testsuite name=\"&lol9;\"><testcase classname=\"c\" name=\"n &amp; &#x41;\">\
         <failure message=\"&lol9; &xxe;\">&lol9;&xxe;</failure></testcase></testsuite>",
    );
    let report = group_of(dir.path(), &[("laughs.xml", &laughs)], Format::Junitxml);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let tests = report.tests.as_ref().unwrap();
    assert_eq!(tests.counts.failed, 1);
    let case = &tests.cases[0];
    assert_eq!(
        case.name, "n & A",
        "predefined and character references resolve"
    );
    let message = case.message.as_deref().unwrap();
    assert_eq!(message, "&lol9; &xxe;", "no entity expanded, no file read");
    assert!(!serde_json::to_string(&report).unwrap().contains("root:"));
}

#[test]
fn a_malformed_or_foreign_file_fails_its_group_naming_the_file_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let good = junit_of("<testcase name=\"ok\"/>");
    let report = group_of(
        dir.path(),
        &[
            ("good.xml", &good),
            ("cut.xml", "<testsuite><testcase name=\"a\"></testsuite>"),
            ("pom.xml", "<project><modelVersion/></project>"),
            ("empty.xml", ""),
        ],
        Format::Junitxml,
    );
    assert_eq!(report.status, ReportStatus::Failed);
    assert_eq!(report.files, ["good.xml"]);
    assert_eq!(report.tests.as_ref().unwrap().counts.succeeded, 1);
    let problems: Vec<String> = report
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.file, p.reason))
        .collect();
    assert!(
        problems[0].starts_with("cut.xml: not well-formed XML at byte"),
        "{problems:?}"
    );
    assert_eq!(
        problems[1],
        "pom.xml: the root element is <project>, not <testsuites> or <testsuite>"
    );
    assert_eq!(problems[2], "empty.xml: no XML element in the file");
    // A half-read file adds nothing: `cut.xml`'s case is not counted.
    assert_eq!(report.tests.as_ref().unwrap().counts.total(), 1);
}

#[test]
fn five_hundred_cases_are_kept_the_failed_first_and_the_counts_stay_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = String::new();
    for n in 0..1_200 {
        let outcome = match n % 100 {
            7 => "<failure message=\"boom\"/>",
            8 => "<error>stack</error>",
            9 => "<skipped/>",
            _ => "",
        };
        let _ = write!(
            cases,
            "<testcase classname=\"C\" name=\"t{n}\" time=\"0.5\">{outcome}</testcase>"
        );
    }
    let report = group_of(
        dir.path(),
        &[("big.xml", &junit_of(&cases))],
        Format::Junitxml,
    );
    let tests = report.tests.as_ref().unwrap();
    assert_eq!(
        (
            tests.counts.total(),
            tests.counts.failed,
            tests.counts.error,
            tests.counts.skipped
        ),
        (1_200, 12, 12, 12)
    );
    assert_eq!(tests.duration_ms, 600_000);
    assert_eq!(tests.cases.len(), MAX_CASES);
    assert!(tests.truncated);
    assert!(tests.cases[..24].iter().all(|c| c.status.is_bad()));
    assert_eq!(tests.cases[0].name, "t7");
    assert_eq!(tests.cases[0].message.as_deref(), Some("boom"));
    assert_eq!(tests.cases[1].message.as_deref(), Some("stack"));
    let summary = report.summary("file:///r.json".into());
    assert_eq!(summary.failed.len(), 10);
    assert_eq!(summary.failed[0], "C › t7");
    assert_eq!(
        ReportSummary::line(&[summary]).as_deref(),
        Some("1164 passed, 24 failed, 12 skipped")
    );
}

#[test]
fn lcov_names_the_line_that_is_wrong_and_the_summary_adds_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let bad = group_of(
        dir.path(),
        &[("lcov.info", "SF:a.js\nDA:1,1\nDA:two,1\nend_of_record\n")],
        Format::Lcov,
    );
    assert_eq!(
        bad.problems[0].reason,
        "line 3: `DA:<line>,<hits>`, not `DA:two,1`"
    );
    let good = group_of(
        dir.path(),
        &[(
            "lcov.info",
            "SF:a.js\nDA:1,1\nDA:2,0\nBRDA:1,0,0,1\nBRDA:1,0,1,-\nend_of_record\n\
             SF:b.js\nDA:1,3\nDA:2,2\nDA:3,1\nDA:4,1\nend_of_record\n",
        )],
        Format::Lcov,
    );
    let coverage = good.coverage.as_ref().unwrap();
    assert_eq!((coverage.lines.covered, coverage.lines.total()), (5, 6));
    assert_eq!(coverage.line_pct, Some(83.33));
    assert_eq!(coverage.branch_pct, Some(50.0));
    assert_eq!(coverage.least_covered[0].file, "a.js");
    let tests = group_of(
        dir.path(),
        &[("t.xml", &junit_of("<testcase name=\"a\"/>"))],
        Format::Junitxml,
    );
    let line = ReportSummary::line(&[tests.summary(String::new()), good.summary(String::new())]);
    assert_eq!(line.as_deref(), Some("1 passed · 83% lines"));
}

#[test]
fn formats_are_named_as_codebuild_names_them() {
    assert_eq!(Format::parse("JunitXml"), Ok(Format::Junitxml));
    assert_eq!(Format::parse("lcovinfo"), Ok(Format::Lcov));
    assert_eq!(Format::Coberturaxml.kind(), Kind::CodeCoverage);
    let err = Format::parse("XUNIT").unwrap_err();
    assert!(
        err.starts_with("`XUNIT` is not a report format (one of JUNITXML, "),
        "{err}"
    );
}

#[test]
fn discovery_takes_junit_files_the_build_wrote_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("fixtures")).unwrap();
    std::fs::write(dir.path().join("fixtures/old.xml"), junit_of("")).unwrap();
    let since = std::time::SystemTime::now() + std::time::Duration::from_millis(10);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/TEST-a.xml"), junit_of("")).unwrap();
    std::fs::write(dir.path().join("out/pom.xml"), "<project/>").unwrap();
    std::fs::create_dir_all(dir.path().join("node_modules/x")).unwrap();
    std::fs::write(dir.path().join("node_modules/x/j.xml"), junit_of("")).unwrap();
    let (found, note) = discover(dir.path(), since, None);
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["out/TEST-a.xml"]);
    assert_eq!(note, None);
    let (found, _) = discover(dir.path(), since, Some("reports/*.xml"));
    assert!(found.is_empty());
}

#[test]
fn a_file_over_the_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.xml");
    // Sparse: the size without the bytes.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    let report = read_files(ReportFiles {
        group: "unit".into(),
        format: Format::Junitxml,
        files: vec![("huge.xml".into(), path)],
    });
    assert_eq!(report.status, ReportStatus::Failed);
    assert_eq!(
        report.problems[0].reason,
        format!(
            "{} bytes, over the limit of {MAX_FILE_BYTES} bytes a report file may have",
            MAX_FILE_BYTES + 1
        )
    );
}
