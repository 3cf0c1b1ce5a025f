//! Artifact packaging: choose a build's artifact files as the buildspec's `artifacts` section says
//! ([`select`]) and stream them into a zip ([`write_zip`]).
//!
//! The two steps are separate so that the zip can go anywhere that takes bytes in order: a file,
//! a pipe, or (later) an S3 multipart upload. [`package`] runs both.

mod select;
mod zip;

use std::path::PathBuf;

pub use select::select;
pub use zip::{ZipOptions, write_zip, write_zip_with};

use crate::buildspec::ArtifactSet;

/// What [`select`] chose: the entries of the zip, sorted by zip path, and what the user should be
/// told about things it skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// The files and links to package, sorted by [`Entry::zip_path`], without duplicates.
    pub entries: Vec<Entry>,
    /// Human-readable notes on skipped or renamed files (symlinks leaving the source, name
    /// collisions under `discard-paths`, ...).
    pub warnings: Vec<String>,
}

/// One member of the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where the bytes come from on disk (for a link kept as a link: the link itself).
    pub source: PathBuf,
    /// The name inside the zip: relative, `/`-separated, never empty.
    pub zip_path: String,
    /// Whether the member is a regular file or a symbolic link.
    pub kind: EntryKind,
}

/// The kind of a zip member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; `mode` holds the permission bits (`0o7777` at most, e.g. `0o755`).
    File { mode: u32 },
    /// A symbolic link stored as a link; `target` is the link's own text, unresolved.
    Symlink { target: String },
}

/// What [`write_zip`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// Number of members written.
    pub entries: usize,
    /// Sum of the members' uncompressed sizes.
    pub bytes_in: u64,
    /// Size of the whole zip.
    pub bytes_out: u64,
    /// SHA-256 of the zip bytes, lowercase hex.
    pub sha256: String,
}

/// Why selecting or packaging artifacts failed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A `files` pattern matched no file (CodeBuild fails the build the same way).
    #[error("no matching artifact paths found for pattern `{pattern}`")]
    NoMatch { pattern: String },
    /// Every path a `files` pattern matched was skipped (links out of the source, loops): the
    /// pattern matched nothing that can be archived.
    #[error(
        "no artifact paths can be archived for pattern `{pattern}`: every path it matched was \
         skipped (a link out of the source or to a directory, a missing target, a special file)"
    )]
    OnlySkipped { pattern: String },
    /// The `base-directory` does not exist or is not a directory.
    #[error("no matching base directory path found for `{path}`")]
    NoBaseDirectory { path: String },
    /// A `base-directory` or pattern that is absolute, contains `..`, or resolves outside the
    /// source directory.
    #[error("artifact path `{path}` leaves the source directory")]
    OutsideSource { path: String },
    /// A `files` or `exclude-paths` pattern that is not a valid glob.
    #[error("invalid artifact pattern `{pattern}`")]
    BadPattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    /// Reading a file or directory of the source failed.
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the zip failed.
    #[error("cannot write the artifact zip")]
    Write {
        #[source]
        source: std::io::Error,
    },
    /// A file changed size while it was being packaged beyond what its zip record allows.
    #[error("`{path}` grew past 4 GiB while it was being packaged")]
    FileGrew { path: PathBuf },
    /// A packaging worker thread panicked.
    #[error("an artifact packaging worker failed unexpectedly")]
    WorkerPanicked,
}

/// Selects `set`'s files under `src_dir` and writes them as a zip to `out`.
///
/// Returns the selection's warnings with the summary of the zip.
pub fn package<W: std::io::Write>(
    src_dir: &std::path::Path,
    set: &ArtifactSet,
    out: W,
) -> Result<(ZipSummary, Vec<String>), ArtifactError> {
    let selection = select(src_dir, set)?;
    let summary = write_zip(&selection.entries, out)?;
    Ok((summary, selection.warnings))
}
