//! Artifact packaging end to end: select from a build tree, write the zip to a file, and check
//! it with Info-ZIP's `unzip` and `zipinfo`.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use pushbuild::artifacts::{ArtifactError, package};
use pushbuild::buildspec::ArtifactSet;

fn write(path: &Path, data: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, data).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A build tree: a binary, scripts, a big log and a node_modules folder to exclude.
fn build_tree(src: &Path) {
    write(
        &src.join("dist/bin/app"),
        &[0x7f, b'E', b'L', b'F', 1, 2, 3],
        0o755,
    );
    write(
        &src.join("dist/scripts/start.sh"),
        b"#!/bin/sh\nexec ./bin/app\n",
        0o750,
    );
    let log: Vec<u8> = b"step ok\n"
        .iter()
        .copied()
        .cycle()
        .take(12 << 20)
        .collect();
    write(&src.join("dist/logs/build.log"), &log, 0o644);
    write(
        &src.join("dist/node_modules/dep/index.js"),
        b"module.exports = 1;\n",
        0o644,
    );
    write(&src.join("src/main.rs"), b"fn main() {}\n", 0o644);
    symlink("bin/app", src.join("dist/current")).expect("symlink");
}

fn set(files: &[&str]) -> ArtifactSet {
    ArtifactSet {
        files: files.iter().map(|f| f.to_string()).collect(),
        ..ArtifactSet::default()
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn packages_a_build_tree_that_unzips_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    build_tree(&src);
    let spec = ArtifactSet {
        base_directory: Some("dist".into()),
        exclude_paths: vec!["node_modules".into()],
        enable_symlinks: true,
        ..set(&["**/*"])
    };
    let zip = dir.path().join("artifact.zip");
    let file = fs::File::create(&zip).expect("create");
    let (summary, warnings) = package(&src, &spec, file).expect("package");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(summary.entries, 4);
    assert_eq!(summary.bytes_out, fs::metadata(&zip).expect("stat").len());
    assert!(
        summary.bytes_out < summary.bytes_in / 10,
        "the log compresses"
    );

    assert!(run(Command::new("unzip").arg("-t").arg(&zip)).contains("No errors detected"));
    let listing = run(Command::new("zipinfo").arg(&zip));
    for (mode, name) in [
        ("-rwxr-xr-x", "bin/app"),
        ("-rwxr-x---", "scripts/start.sh"),
        ("-rw-r--r--", "logs/build.log"),
        ("lrwxrwxrwx", "current"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(name)),
            "{mode} {name} in\n{listing}"
        );
    }
    assert!(!listing.contains("node_modules"));

    let out = dir.path().join("out");
    run(Command::new("unzip")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(&out));
    for (name, mode) in [
        ("bin/app", 0o755),
        ("scripts/start.sh", 0o750),
        ("logs/build.log", 0o644),
    ] {
        let (got, want) = (out.join(name), src.join("dist").join(name));
        assert_eq!(
            fs::read(&got).expect("read"),
            fs::read(&want).expect("read"),
            "{name}"
        );
        let got_mode = fs::metadata(&got).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(got_mode, mode, "{name}");
    }
    assert_eq!(
        fs::read_link(out.join("current")).expect("readlink"),
        Path::new("bin/app")
    );
}

#[test]
fn discard_paths_flattens_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    build_tree(&src);
    let spec = ArtifactSet {
        discard_paths: true,
        ..set(&["dist/bin/app", "dist/scripts/*.sh", "src"])
    };
    let mut zip = Vec::new();
    let (summary, _) = package(&src, &spec, &mut zip).expect("package");
    assert_eq!(summary.entries, 3);
    let path = dir.path().join("flat.zip");
    fs::write(&path, &zip).expect("write");
    let names = run(Command::new("zipinfo").arg("-1").arg(&path));
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["app", "main.rs", "start.sh"]
    );
}

#[test]
fn a_pattern_matching_nothing_fails_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    build_tree(&src);
    let mut zip = Vec::new();
    let err = package(&src, &set(&["dist/**/*", "target/*.jar"]), &mut zip).expect_err("no match");
    assert!(matches!(&err, ArtifactError::NoMatch { pattern } if pattern == "target/*.jar"));
    assert_eq!(
        err.to_string(),
        "no matching artifact paths found for pattern `target/*.jar`"
    );
    assert!(zip.is_empty());
}
