//! The conformance suite, artifacts: one case per rule of the `artifacts` section, each run as
//! a whole build and asserting the zips it stores.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::{Options, build, build_dir, write_file};

const TREE: &[(&str, &str)] = &[
    ("dist/app.js", "app"),
    ("dist/lib/util.js", "util"),
    ("dist/lib/deep/x.map", "map"),
    ("dist/run.sh@x", "#!/bin/sh\necho run\n"),
    ("README.md", "readme"),
];

fn spec(artifacts: &str) -> String {
    format!("version: 0.2\nphases:\n  build:\n    commands: [echo built]\nartifacts:\n{artifacts}")
}

#[test]
fn double_star_globs_select_recursively_relative_to_the_base_directory() {
    let b = build(&spec("  base-directory: dist\n  files: ['**/*']\n"), TREE);
    assert_eq!(b.record.status.as_str(), "SUCCEEDED");
    assert_eq!(
        b.artifact_listing("proj.zip"),
        ["app.js", "lib/deep/x.map", "lib/util.js", "run.sh"]
    );
    let b = build(&spec("  files: ['dist/*.js', README.md]\n"), TREE);
    assert_eq!(
        b.artifact_listing("proj.zip"),
        ["README.md", "dist/app.js"],
        "* does not cross /"
    );
}

#[test]
fn discard_paths_keeps_only_file_names() {
    let b = build(
        &spec("  files: ['dist/**/*.js']\n  discard-paths: yes\n"),
        TREE,
    );
    assert_eq!(b.artifact_listing("proj.zip"), ["app.js", "util.js"]);
}

#[test]
fn exclude_paths_drop_matching_files() {
    let b = build(
        &spec(
            "  base-directory: dist\n  files: ['**/*']\n  exclude-paths: ['**/*.map', 'run.sh']\n",
        ),
        TREE,
    );
    assert_eq!(b.artifact_listing("proj.zip"), ["app.js", "lib/util.js"]);
}

#[test]
fn each_secondary_artifact_is_its_own_zip_with_its_own_name() {
    let b = build(
        &spec(
            "  files: [README.md]\n  name: main-$CODEBUILD_BUILD_NUMBER\n  secondary-artifacts:\n    scripts:\n      base-directory: dist\n      files: ['*.sh']\n    maps:\n      name: sourcemaps.zip\n      files: ['dist/lib/**/*.map']\n",
        ),
        TREE,
    );
    let names: Vec<&str> = b.record.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["main-4.zip", "scripts.zip", "sourcemaps.zip"]);
    assert_eq!(b.artifact_listing("main-4.zip"), ["README.md"]);
    assert_eq!(b.artifact_listing("scripts.zip"), ["run.sh"]);
    assert_eq!(
        b.artifact_listing("sourcemaps.zip"),
        ["dist/lib/deep/x.map"]
    );
    let ids: Vec<Option<&str>> = b
        .record
        .artifacts
        .iter()
        .map(|a| a.identifier.as_deref())
        .collect();
    assert_eq!(ids, [None, Some("scripts"), Some("maps")]);
    for artifact in &b.record.artifacts {
        assert!(
            artifact.uri.contains("/artifacts/proj/b-test/"),
            "{}",
            artifact.uri
        );
        assert_eq!(artifact.sha256.len(), 64);
    }
}

#[test]
fn zips_keep_file_modes() {
    let b = build(&spec("  base-directory: dist\n  files: ['*']\n"), TREE);
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("unzip")
        .arg("-q")
        .arg(b.artifact_path("proj.zip"))
        .arg("-d")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mode = |name: &str| {
        std::fs::metadata(out.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("run.sh"), 0o755);
    assert_eq!(
        mode("app.js") & 0o111,
        0,
        "a plain file stays non-executable"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("run.sh")).unwrap(),
        "#!/bin/sh\necho run\n"
    );
}

#[test]
fn symlinks_go_in_as_links_only_with_enable_symlinks() {
    let make = |enable: bool| {
        let src = tempfile::tempdir().unwrap();
        write_file(src.path(), "out/real.txt", "real", false);
        std::os::unix::fs::symlink("real.txt", src.path().join("out/link.txt")).unwrap();
        let text = spec(&format!(
            "  base-directory: out\n  files: ['*']\n  enable-symlinks: {}\n",
            if enable { "yes" } else { "no" }
        ));
        std::fs::write(src.path().join("buildspec.yml"), text).unwrap();
        build_dir(src, Options::default())
    };
    let zipinfo = |b: &crate::support::Built| {
        let out = Command::new("unzip")
            .arg("-Z")
            .arg(b.artifact_path("proj.zip"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let linked = make(true);
    let info = zipinfo(&linked);
    let link_line = info
        .lines()
        .find(|l| l.ends_with("link.txt"))
        .unwrap_or_default();
    assert!(link_line.starts_with('l'), "a link entry: {info}");

    let copied = make(false);
    let info = zipinfo(&copied);
    let link_line = info
        .lines()
        .find(|l| l.ends_with("link.txt"))
        .unwrap_or_default();
    assert!(
        link_line.starts_with('-'),
        "the target's content as a file: {info}"
    );
}

#[test]
fn a_files_pattern_that_matches_nothing_fails_the_build() {
    let b = build(&spec("  files: ['dist/*.js', 'missing/**/*']\n"), TREE);
    assert_eq!(b.record.status.as_str(), "FAILED");
    let upload = b.record.phases.last().unwrap();
    assert_eq!(upload.phase, "UPLOAD_ARTIFACTS");
    assert_eq!(upload.status.as_str(), "FAILED");
    assert!(
        upload
            .context
            .as_ref()
            .is_some_and(|c| c.to_string().contains("missing/**/*")),
        "{upload:?}"
    );
    assert!(b.record.artifacts.is_empty());
}

#[test]
fn nothing_outside_the_source_directory_is_ever_packaged() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside").unwrap();
    let cases = [
        "  files: ['../*']\n".to_string(),
        format!("  files: ['{}/secret.txt']\n", outside.path().display()),
        "  base-directory: ..\n  files: ['**/*']\n".to_string(),
    ];
    for case in cases {
        let b = build(&spec(&case), TREE);
        assert_eq!(b.record.status.as_str(), "FAILED", "{case}");
        assert!(b.record.artifacts.is_empty(), "{case}");
    }
    // A symlink that points out of the source is never followed.
    let src = tempfile::tempdir().unwrap();
    write_file(src.path(), "out/ok.txt", "ok", false);
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        src.path().join("out/escape.txt"),
    )
    .unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        spec("  base-directory: out\n  files: ['*']\n"),
    )
    .unwrap();
    let b = build_dir(src, Options::default());
    assert_eq!(b.artifact_listing("proj.zip"), ["ok.txt"]);
    assert!(
        b.record.warnings.iter().any(|w| w.contains("escape.txt")),
        "{:?}",
        b.record.warnings
    );
}
