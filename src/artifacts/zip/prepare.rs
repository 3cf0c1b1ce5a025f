//! A member made ready for the zip by a worker: read and deflated (or stored, when deflate
//! does not shrink it) into memory, or opened to be streamed when it is too big to hold.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek};
use std::time::SystemTime;

use flate2::{Compress, Compression, FlushCompress, Status};

use super::{CHUNK, ZipOptions};
use crate::artifacts::{ArtifactError, Entry, EntryKind};

/// A member made ready by a worker.
pub(super) enum Prepared {
    /// Compressed (or stored) in memory; `data` is what goes into the zip.
    Memory {
        crc: u32,
        size: u64,
        method: u16,
        data: Vec<u8>,
        mtime: Option<SystemTime>,
    },
    /// Too big for memory: the writer streams it from the open file.
    Stream {
        file: File,
        mtime: Option<SystemTime>,
        len: u64,
    },
}

impl Prepared {
    /// What this result counts against [`ZipOptions::memory_budget`]: its bytes, or for an
    /// opened big file one read chunk, which also bounds how many files are held open.
    pub(super) fn held(&self) -> u64 {
        match self {
            // Capacity, not length: that is what the allocator holds for it.
            Prepared::Memory { data, .. } => data.capacity() as u64,
            Prepared::Stream { .. } => CHUNK as u64,
        }
    }
}

/// Reads and compresses one entry, or opens it for streaming.
pub(super) fn prepare(entry: &Entry, options: &ZipOptions) -> Result<Prepared, ArtifactError> {
    let read_err = |source| ArtifactError::Read {
        path: entry.source.clone(),
        source,
    };
    if let EntryKind::Symlink { target } = &entry.kind {
        let meta = std::fs::symlink_metadata(&entry.source).map_err(read_err)?;
        let data = target.as_bytes().to_vec();
        return Ok(Prepared::Memory {
            crc: crc32fast::hash(&data),
            size: data.len() as u64,
            method: 0,
            data,
            mtime: meta.modified().ok(),
        });
    }
    let mut file = File::open(&entry.source).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let mtime = meta.modified().ok();
    let threshold = options.stream_threshold;
    if meta.len() > threshold {
        let len = meta.len();
        return Ok(Prepared::Stream { file, mtime, len });
    }
    let mut raw = Vec::with_capacity(meta.len() as usize + 1);
    (&mut file)
        .take(threshold + 1)
        .read_to_end(&mut raw)
        .map_err(read_err)?;
    if raw.len() as u64 > threshold {
        // The file grew since it was measured: stream it from the start instead.
        file.rewind().map_err(read_err)?;
        let len = raw.len() as u64;
        return Ok(Prepared::Stream { file, mtime, len });
    }
    let crc = crc32fast::hash(&raw);
    let size = raw.len() as u64;
    // Random or already compressed data is stored: a sample says so before the whole file is
    // deflated for nothing.
    if looks_incompressible(&raw, options.level) {
        return Ok(Prepared::Memory {
            crc,
            size,
            method: 0,
            data: raw,
            mtime,
        });
    }
    Ok(match deflate_in_memory(&raw, options.level) {
        Some(data) => Prepared::Memory {
            crc,
            size,
            method: 8,
            data,
            mtime,
        },
        None => Prepared::Memory {
            crc,
            size,
            method: 0,
            data: raw,
            mtime,
        },
    })
}

/// How much of a file is deflated to judge the whole.
const SAMPLE: usize = 16 * 1024;

/// Whether deflating `data` would save next to nothing, judged from its first [`SAMPLE`] bytes
/// (a file of up to two samples is judged whole, by deflating it).
pub(super) fn looks_incompressible(data: &[u8], level: u32) -> bool {
    if data.len() <= 2 * SAMPLE {
        return false;
    }
    // Less than 2% saved on the sample: not worth deflating the rest. The room is more than
    // deflate can need (stored blocks add 5 bytes in 16 KiB), so the stream always ends.
    deflate_into(&data[..SAMPLE], level, SAMPLE + SAMPLE / 16 + 64)
        .is_none_or(|d| d.len() * 50 > SAMPLE * 49)
}

thread_local! {
    /// Each worker's deflate state (some 300 KiB at level 2), reset between entries rather than
    /// made anew for each: a thousand small files cost no allocator churn. Only a state whose
    /// stream ended is kept (zlib-rs cannot reset one abandoned midway).
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

/// Raw-deflates `data`; `None` when the result would not be smaller than `data`.
pub(super) fn deflate_in_memory(data: &[u8], level: u32) -> Option<Vec<u8>> {
    deflate_into(data, level, data.len()).filter(|out| out.len() < data.len())
}

/// Raw-deflates `data` into at most `room` bytes; `None` when they were not enough.
fn deflate_into(data: &[u8], level: u32, room: usize) -> Option<Vec<u8>> {
    DEFLATE.with_borrow_mut(|slot| {
        let mut compress = match slot.take() {
            Some((kept, mut compress)) if kept == level => {
                compress.reset();
                compress
            }
            _ => Compress::new(Compression::new(level), false),
        };
        let out = deflate_with(&mut compress, data, room)?;
        *slot = Some((level, compress));
        Some(out)
    })
}

/// The whole of `data` deflated into at most `room` bytes; `None` when they were not enough
/// (the stream is left unfinished).
fn deflate_with(compress: &mut Compress, data: &[u8], room: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(room);
    loop {
        let (before_in, before_out) = (compress.total_in(), compress.total_out());
        let consumed = usize::try_from(before_in).ok()?;
        let status = compress
            .compress_vec(data.get(consumed..)?, &mut out, FlushCompress::Finish)
            .ok()?;
        if status == Status::StreamEnd {
            // The buffer was as big as the input; a well-compressed entry waiting for the
            // writer keeps only what it needs.
            out.shrink_to_fit();
            return Some(out);
        }
        let stalled = compress.total_in() == before_in && compress.total_out() == before_out;
        if out.len() == out.capacity() || stalled {
            return None;
        }
    }
}
