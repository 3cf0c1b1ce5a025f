//! placeholder until the artifacts branch lands: the contract only.
use crate::buildspec::ArtifactSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("no matching artifact paths found for `{pattern}`")]
    NoMatch { pattern: String },
}
pub struct Selection {
    pub entries: Vec<Entry>,
    pub warnings: Vec<String>,
}
pub struct Entry {
    pub source: PathBuf,
    pub zip_path: String,
    pub kind: EntryKind,
}
pub enum EntryKind {
    File { mode: u32 },
    Symlink { target: String },
}
pub struct ZipSummary {
    pub entries: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub sha256: String,
}
pub fn select(_src_dir: &Path, _set: &ArtifactSet) -> Result<Selection, ArtifactError> {
    todo!()
}
pub fn write_zip<W: std::io::Write>(
    _entries: &[Entry],
    _out: W,
) -> Result<ZipSummary, ArtifactError> {
    todo!()
}
