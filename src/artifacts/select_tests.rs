//! Tests of artifact selection, on a small source tree made in a temporary directory.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;

/// A source tree with files, an executable, and links inside, outside and dangling:
///
/// ```text
/// outside.txt   outside/secret.txt        (beside src/, not in it)
/// src/README.md  src/run.sh (0755)  src/docs/{a.txt,b.md}  src/dup/a.txt  src/logs/build.log
/// src/target/{app.jar, classes/A.class, classes/b/B.class, lib/x.jar}
/// src/links/in -> ../docs/a.txt     src/links/dir -> ../docs     src/links/out -> outside.txt
/// src/links/dangling -> missing     src/links/outdir -> outside/
/// ```
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let src = root.join("src");
    for (path, body) in [
        ("README.md", "readme"),
        ("run.sh", "#!/bin/sh\n"),
        ("docs/a.txt", "docs a"),
        ("docs/b.md", "docs b"),
        ("dup/a.txt", "dup a"),
        ("logs/build.log", "log"),
        ("target/app.jar", "jar"),
        ("target/classes/A.class", "A"),
        ("target/classes/b/B.class", "B"),
        ("target/lib/x.jar", "x"),
    ] {
        let file = src.join(path);
        fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        fs::write(&file, body).expect("write");
    }
    fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::set_permissions(src.join("docs/a.txt"), fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(root.join("outside.txt"), "secret").expect("write");
    fs::create_dir(root.join("outside")).expect("mkdir");
    fs::write(root.join("outside/secret.txt"), "secret").expect("write");
    let links = src.join("links");
    fs::create_dir(&links).expect("mkdir");
    symlink("../docs/a.txt", links.join("in")).expect("link");
    symlink("../docs", links.join("dir")).expect("link");
    symlink(root.join("outside.txt"), links.join("out")).expect("link");
    symlink("missing", links.join("dangling")).expect("link");
    symlink(root.join("outside"), links.join("outdir")).expect("link");
    dir
}

/// What a case expects.
enum Want<'a> {
    /// These zip paths, and warnings containing each of these texts (and no other warnings).
    Paths(&'a [&'a str], &'a [&'a str]),
    NoMatch(&'a str),
    /// The pattern matched only paths that were skipped.
    OnlySkipped(&'a str),
    Outside(&'a str),
    NoBase,
}

/// The `ArtifactSet` a case runs with.
#[derive(Default)]
struct Set<'a> {
    files: &'a [&'a str],
    base: Option<&'a str>,
    discard: bool,
    exclude: &'a [&'a str],
    links: bool,
}

fn set_of(s: &Set<'_>) -> ArtifactSet {
    ArtifactSet {
        files: s.files.iter().map(|f| f.to_string()).collect(),
        base_directory: s.base.map(str::to_owned),
        discard_paths: s.discard,
        exclude_paths: s.exclude.iter().map(|f| f.to_string()).collect(),
        enable_symlinks: s.links,
        ..ArtifactSet::default()
    }
}

#[track_caller]
fn case(src: &Path, set: Set<'_>, want: Want<'_>) {
    let got = select(src, &set_of(&set));
    match (got, want) {
        (Ok(selection), Want::Paths(paths, warnings)) => {
            let names: Vec<&str> = selection
                .entries
                .iter()
                .map(|e| e.zip_path.as_str())
                .collect();
            assert_eq!(names, paths, "files {:?}", set.files);
            for text in warnings {
                assert!(
                    selection.warnings.iter().any(|w| w.contains(text)),
                    "no warning with {text:?} in {:?}",
                    selection.warnings
                );
            }
            assert_eq!(
                selection.warnings.len(),
                warnings.len(),
                "{:?}",
                selection.warnings
            );
        }
        (Err(ArtifactError::NoMatch { pattern }), Want::NoMatch(want)) => assert_eq!(pattern, want),
        (Err(ArtifactError::OnlySkipped { pattern }), Want::OnlySkipped(want)) => {
            assert_eq!(pattern, want)
        }
        (Err(ArtifactError::OutsideSource { path }), Want::Outside(want)) => assert_eq!(path, want),
        (Err(ArtifactError::NoBaseDirectory { .. }), Want::NoBase) => {}
        (other, _) => panic!("files {:?}: unexpected {other:?}", set.files),
    }
}

const LINK_WARNINGS: &[&str] = &[
    "`links/dangling`: its target does not exist",
    "`links/dir`: it points to a directory",
    "`links/out`: it points outside",
    "`links/outdir`: it points outside",
];

#[test]
fn selection_table() {
    let dir = tree();
    let src = &dir.path().join("src");
    let all = &[
        "README.md",
        "docs/a.txt",
        "docs/b.md",
        "dup/a.txt",
        "links/in",
        "logs/build.log",
        "run.sh",
        "target/app.jar",
        "target/classes/A.class",
        "target/classes/b/B.class",
        "target/lib/x.jar",
    ];
    let target_all = &[
        "app.jar",
        "classes/A.class",
        "classes/b/B.class",
        "lib/x.jar",
    ];
    let classes = &["target/classes/A.class", "target/classes/b/B.class"];
    use Want::*;
    #[rustfmt::skip]
    let table: Vec<(Set, Want)> = vec![
        (Set { files: &["**/*"], ..Set::default() }, Paths(all, LINK_WARNINGS)),
        (Set { files: &["*"], ..Set::default() }, Paths(&["README.md", "run.sh"], &[])),
        (Set { files: &["target/**/*"], ..Set::default() },
            Paths(&["target/app.jar", "target/classes/A.class", "target/classes/b/B.class", "target/lib/x.jar"], &[])),
        (Set { files: &["target/*"], ..Set::default() }, Paths(&["target/app.jar"], &[])),
        (Set { files: &["target/app.jar"], ..Set::default() }, Paths(&["target/app.jar"], &[])),
        (Set { files: &["target/classes"], ..Set::default() }, Paths(classes, &[])),
        (Set { files: &["./target/classes/"], ..Set::default() }, Paths(classes, &[])),
        (Set { files: &["**/*.md", "README.md"], ..Set::default() }, Paths(&["README.md", "docs/b.md"], &[])),
        (Set { files: &["{docs,dup}/*.txt"], ..Set::default() }, Paths(&["docs/a.txt", "dup/a.txt"], &[])),
        // base-directory
        (Set { files: &["**/*"], base: Some("target"), ..Set::default() }, Paths(target_all, &[])),
        (Set { files: &["*.jar"], base: Some("./target/"), ..Set::default() }, Paths(&["app.jar"], &[])),
        (Set { files: &["."], base: Some("target/classes"), ..Set::default() }, Paths(&["A.class", "b/B.class"], &[])),
        (Set { files: &["**/*"], base: Some("nope"), ..Set::default() }, NoBase),
        (Set { files: &["**/*"], base: Some("README.md"), ..Set::default() }, NoBase),
        // discard-paths
        (Set { files: &["target/**/*"], discard: true, ..Set::default() },
            Paths(&["A.class", "B.class", "app.jar", "x.jar"], &[])),
        (Set { files: &["docs/*", "dup/*"], discard: true, ..Set::default() },
            Paths(&["a.txt", "b.md"], &["`docs/a.txt` and `dup/a.txt` both become `a.txt`; kept `docs/a.txt`"])),
        // exclude-paths
        (Set { files: &["**/*"], base: Some("target"), exclude: &["classes"], ..Set::default() },
            Paths(&["app.jar", "lib/x.jar"], &[])),
        (Set { files: &["**/*"], base: Some("target"), exclude: &["**/*.class"], ..Set::default() },
            Paths(&["app.jar", "lib/x.jar"], &[])),
        (Set { files: &["**/*"], base: Some("target"), exclude: &["*.jar"], ..Set::default() },
            Paths(&["classes/A.class", "classes/b/B.class", "lib/x.jar"], &[])),
        (Set { files: &["target/**/*"], exclude: &["target/lib/**", "target/app.jar"], ..Set::default() },
            Paths(classes, &[])),
        (Set { files: &["*.md"], exclude: &["../x"], ..Set::default() }, Outside("../x")),
        // no match
        (Set { files: &["nothing/*"], ..Set::default() }, NoMatch("nothing/*")),
        (Set { files: &["*.md", "*.war"], ..Set::default() }, NoMatch("*.war")),
        (Set { files: &["*.jar"], ..Set::default() }, NoMatch("*.jar")),
        // leaving the source
        (Set { files: &["../outside.txt"], ..Set::default() }, Outside("../outside.txt")),
        (Set { files: &["target/../README.md"], ..Set::default() }, Outside("target/../README.md")),
        (Set { files: &["/etc/passwd"], ..Set::default() }, Outside("/etc/passwd")),
        (Set { files: &["**/*"], base: Some(".."), ..Set::default() }, Outside("..")),
        (Set { files: &["**/*"], base: Some("/tmp"), ..Set::default() }, Outside("/tmp")),
        (Set { files: &["**/*"], base: Some("links/outdir"), ..Set::default() }, Outside("links/outdir")),
        // symlinks
        (Set { files: &["links/*"], ..Set::default() }, Paths(&["links/in"], LINK_WARNINGS)),
        (Set { files: &["links/*"], links: true, ..Set::default() },
            Paths(&["links/dir", "links/in"], &["`links/dangling`", "`links/out`", "`links/outdir`"])),
        (Set { files: &["links/out"], ..Set::default() }, OnlySkipped("links/out")),
        (Set { files: &["links/d*"], ..Set::default() }, OnlySkipped("links/d*")),
        (Set { files: &["links/o*", "*.md"], ..Set::default() }, OnlySkipped("links/o*")),
        // A path excluded on purpose still counts as matched.
        (Set { files: &["*.md"], exclude: &["*.md"], ..Set::default() }, Paths(&[], &[])),
        (Set { files: &["links/dir/*"], ..Set::default() }, NoMatch("links/dir/*")),
        (Set { files: &["*"], base: Some("links/dir"), ..Set::default() }, Paths(&["a.txt", "b.md"], &[])),
    ];
    for (set, want) in table {
        case(src, set, want);
    }
}

#[test]
fn kinds_modes_and_sources() {
    let dir = tree();
    let src = dir.path().join("src");
    let plain = select(
        &src,
        &set_of(&Set {
            files: &["run.sh", "links/in"],
            ..Set::default()
        }),
    )
    .expect("select");
    let kinds: Vec<(&str, &EntryKind)> = plain
        .entries
        .iter()
        .map(|e| (e.zip_path.as_str(), &e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("links/in", &EntryKind::File { mode: 0o644 }),
            ("run.sh", &EntryKind::File { mode: 0o755 })
        ]
    );
    // A link taken as a file reads through the link, inside the source.
    assert_eq!(fs::read(&plain.entries[0].source).expect("read"), b"docs a");
    assert!(
        plain
            .entries
            .iter()
            .all(|e| e.source.starts_with(fs::canonicalize(&src).expect("canon")))
    );

    let linked = select(
        &src,
        &set_of(&Set {
            files: &["links/in", "links/dir"],
            links: true,
            ..Set::default()
        }),
    )
    .expect("select");
    let kinds: Vec<&EntryKind> = linked.entries.iter().map(|e| &e.kind).collect();
    assert_eq!(
        kinds,
        [
            &EntryKind::Symlink {
                target: "../docs".into()
            },
            &EntryKind::Symlink {
                target: "../docs/a.txt".into()
            }
        ]
    );
}

#[test]
fn normalize_table() {
    #[track_caller]
    fn case(input: &str, want: Option<&str>) {
        assert_eq!(normalize(input).ok().as_deref(), want, "{input:?}");
    }
    case("a/b", Some("a/b"));
    case("./a//b/", Some("a/b"));
    case(".", Some(""));
    case("  a/*.txt ", Some("a/*.txt"));
    case("a/..b", Some("a/..b"));
    case("..", None);
    case("a/../b", None);
    case("/abs", None);
}
