//! Tests of `artifacts`, `reports`, `cache`, `proxy` and `batch`.

use super::*;

#[test]
fn artifacts() {
    let src = format!(
        "{HEAD}phases: {{}}\nartifacts:\n  files: target/app.jar\n  name: app-$(date +%s)\n  base-directory: out\n  discard-paths: yes\n  exclude-paths: '**/*.tmp'\n  enable-symlinks: no\n  s3-prefix: builds\n  secondary-artifacts:\n    docs:\n      files:\n        - docs/**/*\n      discard-paths: no\n"
    );
    let artifacts = ok(&src).spec.artifacts.unwrap_or_default();
    let p = &artifacts.primary;
    assert_eq!(p.files, ["target/app.jar"]);
    assert_eq!(
        (p.name.as_deref(), p.base_directory.as_deref()),
        (Some("app-$(date +%s)"), Some("out"))
    );
    assert!(p.discard_paths && !p.enable_symlinks);
    assert_eq!(
        (p.exclude_paths.as_slice(), p.s3_prefix.as_deref()),
        (&["**/*.tmp".to_string()][..], Some("builds"))
    );
    assert_eq!(artifacts.secondary.len(), 1);
    assert_eq!(artifacts.secondary[0].0, "docs");
    assert_eq!(artifacts.secondary[0].1.files, ["docs/**/*"]);

    let head = format!("{HEAD}phases: {{}}\n");
    case(
        &format!("{head}artifacts:\n  name: x\n"),
        3,
        "artifacts",
        "a `files` list",
        "no `files` key",
    );
    case(
        &format!("{head}artifacts:\n"),
        3,
        "artifacts",
        "a `files` list",
        "no `files` key",
    );
    case(
        &format!("{head}artifacts: [a]\n"),
        3,
        "artifacts",
        "a mapping with `files`",
        "a list",
    );
    case(
        &format!("{head}artifacts:\n  files: {{a: 1}}\n"),
        4,
        "artifacts.files",
        "a list of strings",
        "a mapping",
    );
    case(
        &format!("{head}artifacts:\n  files:\n    - a\n    - [b]\n"),
        6,
        "artifacts.files[1]",
        "a string",
        "a list",
    );
    let nested = format!(
        "{head}artifacts:\n  files: [a]\n  secondary-artifacts:\n    out1:\n      name: x\n"
    );
    case(
        &nested,
        6,
        "artifacts.secondary-artifacts.out1",
        "a `files` list",
        "no `files` key",
    );
    let deeper = format!(
        "{head}artifacts:\n  files: [a]\n  secondary-artifacts:\n    out1:\n      files: [b]\n      secondary-artifacts: {{}}\n"
    );
    warns(
        &deeper,
        8,
        "artifacts.secondary-artifacts.out1.secondary-artifacts",
        "unknown key",
    );
}

#[test]
fn reports_cache_proxy_batch() {
    let src = format!(
        "{HEAD}phases: {{}}\nreports:\n  arn:aws:codebuild:eu-west-1:1:report-group/unit:\n    files: '**/*.xml'\n    base-directory: build/test-results\n    discard-paths: yes\n    file-format: JunitXml\ncache:\n  paths:\n    - /root/.m2/**/*\n  key: deps-$(cat lockfile)\n  fallback-keys: deps-\n  action: restore\nproxy:\n  upload-artifacts: yes\n  logs: no\nbatch:\n  fast-fail: true\n  build-matrix:\n    dynamic: {{}}\n"
    );
    let spec = ok(&src).spec;
    let (group, report) = &spec.reports[0];
    assert_eq!(group, "arn:aws:codebuild:eu-west-1:1:report-group/unit");
    assert_eq!(report.files, ["**/*.xml"]);
    assert_eq!(report.base_directory.as_deref(), Some("build/test-results"));
    assert!(report.discard_paths);
    assert_eq!(report.file_format.as_deref(), Some("JunitXml"));
    let cache = spec.cache.unwrap_or_default();
    assert_eq!(
        (cache.paths.as_slice(), cache.key.as_deref()),
        (
            &["/root/.m2/**/*".to_string()][..],
            Some("deps-$(cat lockfile)")
        )
    );
    assert_eq!(
        (cache.fallback_keys.as_slice(), cache.action.as_deref()),
        (&["deps-".to_string()][..], Some("restore"))
    );
    let proxy = spec.proxy.unwrap_or_default();
    assert!(proxy.upload_artifacts && !proxy.logs);
    let batch = spec.batch.unwrap_or_default();
    assert!(batch.fast_fail);
    assert_eq!(batch.kind.as_deref(), Some("build-matrix"));

    let empty_cache = ok(&format!(
        "{HEAD}phases: {{}}\ncache:\n  paths:\n    # - none yet\n"
    ))
    .spec
    .cache;
    assert_eq!(empty_cache, Some(Default::default()));

    let head = format!("{HEAD}phases: {{}}\n");
    case(
        &format!("{head}batch:\n  build-list: []\n  build-graph: []\n"),
        5,
        "batch.build-graph",
        "only one of",
        "`build-list` and `build-graph`",
    );
    case(
        &format!("{head}reports:\n  unit: [a]\n"),
        4,
        "reports.unit",
        "a mapping with `files`",
        "a list",
    );
    case(
        &format!("{head}reports: x\n"),
        3,
        "reports",
        "a mapping of report group names",
        "`x`",
    );
    case(
        &format!("{head}cache:\n  paths:\n    a: b\n"),
        5,
        "cache.paths",
        "a list of strings",
        "a mapping",
    );
    case(
        &format!("{head}proxy:\n  logs: [yes]\n"),
        4,
        "proxy.logs",
        "yes or no",
        "a list",
    );
}
