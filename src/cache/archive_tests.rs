use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

fn roots(dir: &Path) -> Roots {
    let roots = Roots {
        source: dir.join("src"),
        home: Some(dir.join("home")),
    };
    fs::create_dir_all(&roots.source).unwrap();
    fs::create_dir_all(roots.home.as_ref().unwrap()).unwrap();
    roots
}

fn never() -> bool {
    false
}

#[test]
fn modes_links_and_empty_folders_come_back() {
    let from = tempfile::tempdir().unwrap();
    let a = roots(from.path());
    let nm = a.source.join("node_modules");
    fs::create_dir_all(nm.join("pkg/bin")).unwrap();
    fs::create_dir_all(nm.join("empty")).unwrap();
    fs::set_permissions(nm.join("empty"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::create_dir_all(nm.join(".bin")).unwrap();
    fs::write(nm.join("pkg/index.js"), "module.exports = 1;\n").unwrap();
    fs::write(nm.join("pkg/bin/run"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(nm.join("pkg/bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("../pkg/bin/run", nm.join(".bin/run")).unwrap();
    fs::create_dir_all(a.home.as_ref().unwrap().join(".m2")).unwrap();
    fs::write(a.home.as_ref().unwrap().join(".m2/settings.xml"), "<s/>").unwrap();
    let (members, notes) =
        super::super::paths::members(&["node_modules/**/*".into(), "/root/.m2".into()], &a)
            .unwrap();
    assert!(notes.is_empty());
    assert!(members.contains_key("source/node_modules/empty"));
    assert!(members.contains_key("home/.m2/settings.xml"));

    let mut packed = Vec::new();
    let (counts, _) = pack(&members, &mut packed, &never).unwrap();
    assert_eq!(counts.entries, members.len() as u64);

    let to = tempfile::tempdir().unwrap();
    let b = roots(to.path());
    let restored = unpack(std::io::Cursor::new(packed), &b, &never).unwrap();
    assert_eq!(restored, counts);
    let nm = b.source.join("node_modules");
    assert_eq!(
        fs::read_to_string(nm.join("pkg/index.js")).unwrap(),
        "module.exports = 1;\n"
    );
    let mode = fs::metadata(nm.join("pkg/bin/run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        fs::read_link(nm.join(".bin/run")).unwrap(),
        PathBuf::from("../pkg/bin/run")
    );
    assert!(nm.join("empty").is_dir());
    let mode = fs::metadata(nm.join("empty")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o750, "a folder keeps its own mode");
    assert!(b.home.unwrap().join(".m2/settings.xml").is_file());
}

/// A hand-made hostile archive: one member, as a raw tar header (no checks on the writing side).
fn hostile(kind: tar::EntryType, name: &str, link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    {
        let bytes = header.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_mode(0o644);
    header.set_size(if link.is_some() { 0 } else { 4 });
    header.set_entry_type(kind);
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    if link.is_none() {
        let mut data = b"evil".to_vec();
        data.resize(512, 0);
        tar.extend(data);
    }
    tar.extend([0u8; 1024]);
    let mut out = Vec::new();
    let mut encoder = zstd::Encoder::new(&mut out, 3).unwrap();
    encoder.write_all(&tar).unwrap();
    encoder.finish().unwrap();
    out
}

#[test]
fn members_and_links_out_of_the_roots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = roots(&dir.path().join("b"));
    let cases = [
        (tar::EntryType::Regular, "source/../../escaped", None),
        (tar::EntryType::Regular, "/tmp/escaped", None),
        (tar::EntryType::Regular, "elsewhere/escaped", None),
        (tar::EntryType::Symlink, "source/out", Some("../../escaped")),
        (tar::EntryType::Symlink, "source/abs", Some("/etc/passwd")),
        (tar::EntryType::Link, "source/hard", Some("/etc/passwd")),
        (tar::EntryType::Char, "source/dev", None),
    ];
    for (kind, name, link) in cases {
        let err = unpack(std::io::Cursor::new(hostile(kind, name, link)), &r, &never);
        assert!(
            matches!(err, Err(UnpackError::Refused { .. })),
            "{name}: {err:?}"
        );
    }
    assert!(!dir.path().join("escaped").exists());
    assert_eq!(
        fs::read_dir(&r.source).unwrap().count(),
        0,
        "nothing was written"
    );

    // A link the source already holds is never written through.
    std::os::unix::fs::symlink(dir.path(), r.source.join("via")).unwrap();
    let err = unpack(
        std::io::Cursor::new(hostile(tar::EntryType::Regular, "source/via/escaped", None)),
        &r,
        &never,
    );
    assert!(matches!(err, Err(UnpackError::Refused { .. })), "{err:?}");
    assert!(!dir.path().join("escaped").exists());

    // A link inside its root is fine.
    let ok = unpack(
        std::io::Cursor::new(hostile(tar::EntryType::Symlink, "source/a/b", Some("../c"))),
        &r,
        &never,
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn a_broken_archive_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let r = roots(dir.path());
    let mut bytes = hostile(tar::EntryType::Regular, "source/x", None);
    bytes.truncate(bytes.len() / 2);
    assert!(unpack(std::io::Cursor::new(bytes), &r, &never).is_err());
    let err = unpack(std::io::Cursor::new(b"not zstd".to_vec()), &r, &never).unwrap_err();
    assert!(matches!(err, UnpackError::Read(_)), "{err:?}");
    let _ = BTreeMap::<String, PathBuf>::new();
}
