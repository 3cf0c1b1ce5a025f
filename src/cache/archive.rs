//! A cache's archive: a tar stream (modes, times, links and empty folders kept) compressed with
//! zstd, written and read as it streams. Members are named `<root>/<path>`, the root being
//! `source` or `home`; nothing is ever written outside those roots on restore.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::pipe;

/// zstd's level: its own default, as `zstd` uses without options.
const LEVEL: i32 = 3;

/// The roots a cache's files live under, by their names in the archive.
#[derive(Debug, Clone)]
pub struct Roots {
    pub source: PathBuf,
    pub home: Option<PathBuf>,
}

impl Roots {
    /// The directory the root named `name` stands for.
    pub fn get(&self, name: &str) -> Option<&Path> {
        match name {
            "source" => Some(&self.source),
            "home" => self.home.as_deref(),
            _ => None,
        }
    }
}

/// What went into or came out of an archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Files, links and folders.
    pub entries: u64,
    /// The files' bytes, uncompressed.
    pub bytes: u64,
}

/// Writes the `members` (archive name ─▶ path on disk) as a compressed archive to `out`, and
/// gives `out` back. The archive is built on this thread and compressed on another, as
/// `tar | zstd` would.
pub fn pack<W: Write + Send>(
    members: &BTreeMap<String, PathBuf>,
    out: W,
    stop: &dyn Fn() -> bool,
) -> io::Result<(Counts, W)> {
    std::thread::scope(|scope| {
        let (pipe_in, pipe_out) = pipe::pipe();
        let compress = scope.spawn(move || -> io::Result<W> {
            let mut encoder = zstd::Encoder::new(out, LEVEL)?;
            io::copy(&mut { pipe_out }, &mut encoder)?;
            let mut out = encoder.finish()?;
            out.flush()?;
            Ok(out)
        });
        let packed = write_tar(members, pipe_in, stop);
        let compressed = compress
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the compressing thread panicked")));
        Ok((packed?, compressed?))
    })
}

fn write_tar(
    members: &BTreeMap<String, PathBuf>,
    out: impl Write,
    stop: &dyn Fn() -> bool,
) -> io::Result<Counts> {
    let mut builder = tar::Builder::new(io::BufWriter::with_capacity(256 << 10, out));
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    let mut counts = Counts::default();
    for (name, path) in members {
        if stop() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the deadline came"));
        }
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            // Gone since it was listed (a build's own temporary file): not cached.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if !(meta.is_file() || meta.is_dir() || meta.file_type().is_symlink()) {
            continue;
        }
        builder.append_path_with_name(path, name)?;
        counts.entries += 1;
        if meta.is_file() {
            counts.bytes += meta.len();
        }
    }
    builder.into_inner()?.flush()?;
    Ok(counts)
}

/// Why an archive was not restored whole.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A member that would land outside the roots, or a link pointing out of them.
    #[error("refused `{member}`: {why}")]
    Refused { member: String, why: &'static str },
    #[error("cannot restore `{member}`: {source}")]
    Write {
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the archive: {0}")]
    Read(#[source] io::Error),
    #[error("the deadline came")]
    Deadline,
}

/// Restores the compressed archive read from `input` under `roots`. Decompression runs on a
/// thread of its own. Stops at the first member that would escape (`..`, an absolute name, a
/// link on the way, a link pointing out of its root); what was restored before it stays.
pub fn unpack(
    input: impl Read + Send + 'static,
    roots: &Roots,
    stop: &dyn Fn() -> bool,
) -> Result<Counts, UnpackError> {
    let decoded = pipe::reading_thread(move || zstd::Decoder::new(input), "pushbuild-unzstd");
    let mut archive = tar::Archive::new(decoded);
    let mut counts = Counts::default();
    let mut folders = Vec::new();
    for entry in archive.entries().map_err(UnpackError::Read)? {
        if stop() {
            return Err(UnpackError::Deadline);
        }
        let mut entry = entry.map_err(UnpackError::Read)?;
        let restored = restore_entry(&mut entry, roots)?;
        counts.entries += 1;
        counts.bytes += restored.bytes;
        folders.extend(restored.folder);
    }
    // Folders' modes and times last, once nothing more is written in them (read-only ones).
    for (path, mode, mtime) in folders.into_iter().rev() {
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(mode));
        let _ = fs::File::open(&path).and_then(|dir| dir.set_modified(mtime));
    }
    Ok(counts)
}

struct Restored {
    bytes: u64,
    folder: Option<(PathBuf, u32, SystemTime)>,
}

fn restore_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    roots: &Roots,
) -> Result<Restored, UnpackError> {
    let name = entry.path_bytes();
    let member = String::from_utf8_lossy(&name).into_owned();
    let refuse = |why| UnpackError::Refused {
        member: member.clone(),
        why,
    };
    let (root, rel) = split_member(&member, roots).map_err(refuse)?;
    let dest = root.join(&rel);
    parents_inside(root, &rel).map_err(refuse)?;
    let write_error = |source| UnpackError::Write {
        member: member.clone(),
        source,
    };
    let header = entry.header();
    let mode = header.mode().unwrap_or(0o644) & 0o1777;
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(header.mtime().unwrap_or(0));
    let kind = header.entry_type();
    let mut restored = Restored {
        bytes: 0,
        folder: None,
    };
    match kind {
        tar::EntryType::Directory => {
            match fs::symlink_metadata(&dest) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(refuse("a file or link stands where its folder goes")),
                Err(_) => fs::create_dir(&dest).map_err(write_error)?,
            }
            // Its own mode once its contents are in (made 0755 by `create_dir` meanwhile).
            restored.folder = Some((dest, mode, mtime));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            remove_existing(&dest).map_err(refuse)?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&dest)
                .map_err(write_error)?;
            restored.bytes = io::copy(entry, &mut file).map_err(write_error)?;
            // The mode as saved, whatever the umask took away at creation.
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(write_error)?;
            file.set_modified(mtime).map_err(write_error)?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(UnpackError::Read)?
                .ok_or_else(|| refuse("a link without a target"))?
                .into_owned();
            link_inside(root, &rel, &target).map_err(refuse)?;
            remove_existing(&dest).map_err(refuse)?;
            std::os::unix::fs::symlink(&target, &dest).map_err(write_error)?;
        }
        _ => {
            return Err(refuse(
                "only files, folders and symbolic links are restored",
            ));
        }
    }
    Ok(restored)
}

/// The root a member belongs to and its path below it: plain parts only.
fn split_member<'r>(member: &str, roots: &'r Roots) -> Result<(&'r Path, PathBuf), &'static str> {
    let path = Path::new(member.trim_end_matches('/'));
    let mut parts = path.components();
    let root = match parts.next() {
        Some(Component::Normal(first)) => first.to_str().and_then(|name| roots.get(name)),
        _ => return Err("its name is absolute or leaves its root"),
    }
    .ok_or("it names no root this build has")?;
    let rel: PathBuf = parts.as_path().to_path_buf();
    if rel.as_os_str().is_empty() {
        return Err("it is a root itself");
    }
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("its name leaves its root (`..` or `.`)");
    }
    Ok((root, rel))
}

/// Makes the folders above `rel` in `root` that are missing; a link or a file on the way is
/// refused, so nothing is written through a link.
fn parents_inside(root: &Path, rel: &Path) -> Result<(), &'static str> {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for part in &parents[..parents.len().saturating_sub(1)] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err("a link or a file stands on its way"),
            Err(_) => fs::create_dir(&at).map_err(|_| "its folder cannot be made")?,
        }
    }
    Ok(())
}

/// Refuses a link at `rel` whose `target` resolves outside `root` (by its text: `..` may not
/// climb above the root, and an absolute target must lie inside it).
fn link_inside(root: &Path, rel: &Path, target: &Path) -> Result<(), &'static str> {
    let (mut depth, parts): (i64, Vec<Component>) = if target.is_absolute() {
        let inside = target
            .strip_prefix(root)
            .map_err(|_| "a link pointing out of its root")?;
        (0, inside.components().collect())
    } else {
        let above = rel.components().count() as i64 - 1;
        (above, target.components().collect())
    };
    for part in parts {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {}
        }
        if depth < 0 {
            return Err("a link pointing out of its root");
        }
    }
    Ok(())
}

/// Removes what stands at `dest` before a file or link takes its place; a folder is refused.
fn remove_existing(dest: &Path) -> Result<(), &'static str> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => Err("a folder stands where a file goes"),
        Ok(_) => fs::remove_file(dest).map_err(|_| "what stands there cannot be removed"),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
