//! Tests of the zip writer: archives are checked with Info-ZIP's `unzip` and with a small
//! central-directory reader written here.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::testing::read_directory;
use super::*;
use crate::artifacts::EntryKind;

fn file_entry(dir: &Path, name: &str, data: &[u8], mode: u32) -> Entry {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&path, data).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
    Entry {
        source: path,
        zip_path: name.to_owned(),
        kind: EntryKind::File { mode },
    }
}

fn link_entry(dir: &Path, name: &str, target: &str) -> Entry {
    let path = dir.join(name);
    symlink(target, &path).expect("symlink");
    Entry {
        source: path,
        zip_path: name.to_owned(),
        kind: EntryKind::Symlink {
            target: target.to_owned(),
        },
    }
}

/// Deterministic incompressible bytes (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    let line = b"pushbuild packages artifacts into zips, line after line\n";
    line.iter().copied().cycle().take(len).collect()
}

/// A mixed set of members; files above 64 KiB are streamed with the options of [`small`].
fn sample(dir: &Path) -> Vec<Entry> {
    let mut entries = vec![
        file_entry(dir, "a/empty.txt", b"", 0o644),
        file_entry(dir, "a/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
        file_entry(dir, "b/text.txt", &text(50_000), 0o644),
        file_entry(dir, "b/noise.bin", &noise(40_000, 7), 0o600),
        file_entry(dir, "big/text.log", &text(3_000_000), 0o644),
        file_entry(dir, "big/noise.bin", &noise(2_500_000, 9), 0o755),
        file_entry(dir, "unicodé.txt", b"caf\xc3\xa9", 0o644),
    ];
    entries.push(link_entry(dir, "link", "a/run.sh"));
    entries.sort_by(|a, b| a.zip_path.cmp(&b.zip_path));
    entries
}

fn small() -> ZipOptions {
    ZipOptions {
        stream_threshold: 64 << 10,
        ..ZipOptions::default()
    }
}

fn write_to(path: &Path, entries: &[Entry], options: &ZipOptions) -> ZipSummary {
    let file = fs::File::create(path).expect("create zip");
    write_zip_with(entries, file, options).expect("write zip")
}

fn unzip_test(zip: &Path) {
    let out = Command::new("unzip")
        .arg("-t")
        .arg(zip)
        .output()
        .expect("run unzip");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unzip -t failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("No errors detected"), "{stdout}");
}

/// Extracts with `unzip` and checks every member against its source.
fn assert_round_trip(zip: &Path, entries: &[Entry]) -> PathBuf {
    let out_dir = zip.with_extension("out");
    let status = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(zip)
        .arg("-d")
        .arg(&out_dir)
        .status()
        .expect("run unzip");
    assert!(status.success());
    for entry in entries {
        let got = out_dir.join(&entry.zip_path);
        match &entry.kind {
            EntryKind::File { mode } => {
                assert_eq!(
                    fs::read(&got).expect("read"),
                    fs::read(&entry.source).expect("read"),
                    "{}",
                    entry.zip_path
                );
                let meta = fs::symlink_metadata(&got).expect("stat");
                assert_eq!(
                    meta.permissions().mode() & 0o7777,
                    *mode,
                    "{}",
                    entry.zip_path
                );
            }
            EntryKind::Symlink { target } => {
                assert_eq!(fs::read_link(&got).expect("readlink"), Path::new(target));
            }
        }
    }
    out_dir
}

#[test]
fn round_trips_through_unzip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = sample(&dir.path().join("src"));
    let zip = dir.path().join("out.zip");
    let summary = write_to(&zip, &entries, &small());
    unzip_test(&zip);
    assert_round_trip(&zip, &entries);

    let bytes = fs::read(&zip).expect("read zip");
    assert_eq!(summary.entries, entries.len());
    assert_eq!(summary.bytes_out, bytes.len() as u64);
    let hex: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(summary.sha256, hex);
    let expect_in: u64 = entries
        .iter()
        .map(|e| {
            fs::symlink_metadata(&e.source)
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(summary.bytes_in, expect_in);
}

#[test]
fn modes_methods_and_links_in_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = sample(&dir.path().join("src"));
    let zip = dir.path().join("out.zip");
    write_to(&zip, &entries, &small());
    let directory = read_directory(&fs::read(&zip).expect("read zip"));
    assert!(!directory.zip64_end);
    let by_name = |name: &str| {
        directory
            .members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    // (name, mode with type bits, method)
    let table: &[(&str, u32, u16)] = &[
        ("a/empty.txt", 0o100644, 0),
        ("a/run.sh", 0o100755, 0),
        ("b/text.txt", 0o100644, 8),
        ("b/noise.bin", 0o100600, 0),
        ("big/text.log", 0o100644, 8),
        ("big/noise.bin", 0o100755, 0),
        ("link", 0o120777, 0),
    ];
    for &(name, mode, method) in table {
        let m = by_name(name);
        assert_eq!(
            (m.mode, m.method, m.made_by >> 8),
            (mode, method, 3),
            "{name}"
        );
        if method == 0 {
            assert_eq!(m.size, m.compressed, "{name}");
        } else {
            assert!(m.compressed < m.size, "{name}");
        }
    }
    let zipinfo = Command::new("zipinfo").arg(&zip).output().expect("zipinfo");
    let listing = String::from_utf8_lossy(&zipinfo.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("a/run.sh")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("lrwxrwxrwx") && l.ends_with("link")),
        "{listing}"
    );
}

#[test]
fn forced_zip64_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = sample(&dir.path().join("src"));
    let zip = dir.path().join("out.zip");
    let options = ZipOptions {
        force_zip64: true,
        ..small()
    };
    write_to(&zip, &entries, &options);
    unzip_test(&zip);
    assert_round_trip(&zip, &entries);
    assert!(read_directory(&fs::read(&zip).expect("read")).zip64_end);
}

#[test]
fn more_than_65535_entries_use_zip64_end_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = file_entry(dir.path(), "one.txt", b"x", 0o644);
    let entries: Vec<Entry> = (0..70_000)
        .map(|i| Entry {
            zip_path: format!("d{}/f{i}", i % 100),
            ..one.clone()
        })
        .collect();
    let mut zip = Vec::new();
    let summary = write_zip(&entries, &mut zip).expect("write");
    assert_eq!(summary.entries, 70_000);
    let directory = read_directory(&zip);
    assert!(directory.zip64_end);
    assert_eq!(directory.members.len(), 70_000);
    let path = dir.path().join("many.zip");
    fs::write(&path, &zip).expect("write");
    unzip_test(&path);
}

#[test]
fn output_does_not_depend_on_worker_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = sample(&dir.path().join("src"));
    let run = |workers, memory_budget| {
        let mut out = Vec::new();
        let options = ZipOptions {
            workers,
            memory_budget,
            ..small()
        };
        write_zip_with(&entries, &mut out, &options).expect("write");
        out
    };
    let one = run(1, 32 << 20);
    assert_eq!(one, run(4, 32 << 20));
    assert_eq!(one, run(3, 1));
}

#[test]
fn empty_zip() {
    let mut out = Vec::new();
    let summary = write_zip(&[], &mut out).expect("write");
    assert_eq!((summary.entries, out.len()), (0, 22));
}

#[test]
fn missing_source_is_a_read_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut entries = sample(dir.path());
    let gone = dir.path().join("gone.txt");
    entries.insert(
        2,
        Entry {
            source: gone.clone(),
            zip_path: "gone.txt".into(),
            kind: EntryKind::File { mode: 0o644 },
        },
    );
    let err = write_zip(&entries, Vec::new()).expect_err("must fail");
    match err {
        ArtifactError::Read { path, .. } => assert_eq!(path, gone),
        other => panic!("unexpected {other:?}"),
    }
}

/// A writer that fails after `left` bytes.
struct Failing {
    left: usize,
}

impl std::io::Write for Failing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("disk full"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_errors_are_write_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = sample(dir.path());
    for left in [0, 1000, 400_000] {
        let err = write_zip_with(&entries, Failing { left }, &small()).expect_err("must fail");
        assert!(
            matches!(err, ArtifactError::Write { .. }),
            "{left}: {err:?}"
        );
    }
}

#[test]
fn a_kept_deflate_state_serves_entry_after_entry_whatever_came_before() {
    // Random data abandons a stream midway (too big a result); text after it must still
    // deflate, and the sample's stream always ends, so its state is kept.
    let text = b"pushbuild reference artifact: a line of text\n".repeat(5000);
    let mut x: u64 = 1;
    let random: Vec<u8> = (0..204_800)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for _ in 0..5 {
        assert!(super::prepare::looks_incompressible(&random, 2));
        assert!(super::deflate_in_memory(&random, 2).is_none());
        let out = super::deflate_in_memory(&text, 2).expect("text deflates");
        assert!(out.len() < text.len() / 100, "{}", out.len());
        assert_eq!(out.capacity(), out.len(), "no room kept beyond the result");
        assert!(!super::prepare::looks_incompressible(&text, 2));
    }
}
