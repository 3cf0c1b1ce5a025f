//! A streaming zip writer: it only ever calls `write` on its output, so the zip can go straight
//! into a pipe or an upload.
//!
//! Files up to [`ZipOptions::stream_threshold`] are read and deflated by worker threads into
//! memory buffers, a bounded window ahead of the writer, so their local headers carry the real
//! sizes and CRC. Bigger files are deflated as a stream by the writing thread, with a data
//! descriptor after the data. A member is stored instead of deflated when deflate does not shrink
//! it (judged on the first chunk for streamed files; for others, a file whose first 16 KiB
//! deflate by less than 2% is stored without deflating the rest). Zip64 records are written where sizes,
//! offsets or the entry count need them. Members keep their Unix modes; links are stored as links.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::time::SystemTime;

use flate2::Compression;
use sha2::{Digest, Sha256};

use super::{ArtifactError, Entry, ZipSummary};

mod format;
mod pipeline;
mod prepare;

use prepare::{Prepared, deflate_in_memory};
#[cfg(test)]
mod testing;

use format::{Record, central_header, end_records, local_header};
use pipeline::{Pipeline, StopOnDrop};

/// Tuning of [`write_zip_with`]; [`Default`] suits most builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipOptions {
    /// Threads compressing small files (default: the number of available cores).
    pub workers: usize,
    /// Files larger than this are streamed by the writing thread instead of being compressed in
    /// memory (default 4 MiB; capped below 4 GiB).
    pub stream_threshold: u64,
    /// Compressed bytes the workers may hold ahead of the writer (default 4 MiB). Peak memory
    /// is about this plus `workers * 2 * stream_threshold`.
    pub memory_budget: u64,
    /// Deflate level, 1 (fastest) to 9; the default, 2, is still faster than `zip -1` and gives
    /// smaller zips than it (zlib-rs's level 1 gives ~9% bigger ones).
    pub level: u32,
    /// Writes Zip64 records for every member even when not needed (for testing readers).
    pub force_zip64: bool,
}

impl Default for ZipOptions {
    fn default() -> Self {
        ZipOptions {
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            stream_threshold: 4 << 20,
            memory_budget: 4 << 20,
            level: 2,
            force_zip64: false,
        }
    }
}

/// Read size for streamed files.
pub(super) const CHUNK: usize = 1 << 20;
/// Streamed files at least this big get Zip64 local records up front (sizes are known only after).
const ZIP64_STREAM_HINT: u64 = 0xF000_0000;

/// Writes `entries`, in order, as a zip to `out` with [`ZipOptions::default`].
pub fn write_zip<W: Write>(entries: &[Entry], out: W) -> Result<ZipSummary, ArtifactError> {
    write_zip_with(entries, out, &ZipOptions::default())
}

/// Writes `entries`, in order, as a zip to `out`, compressing on `options.workers` threads.
pub fn write_zip_with<W: Write>(
    entries: &[Entry],
    out: W,
    options: &ZipOptions,
) -> Result<ZipSummary, ArtifactError> {
    let mut options = options.clone();
    options.workers = options.workers.max(1);
    options.stream_threshold = options.stream_threshold.clamp(1, 0xF000_0000);
    options.level = options.level.clamp(1, 9);
    let pipeline = Pipeline::new();
    let mut sink = Sink {
        inner: BufWriter::with_capacity(256 << 10, out),
        hasher: Sha256::new(),
        count: 0,
    };
    std::thread::scope(|scope| {
        for _ in 0..options.workers.min(entries.len()) {
            scope.spawn(|| pipeline.work(entries, &options));
        }
        let _stop = StopOnDrop(&pipeline);
        write_all(&pipeline, entries, &options, &mut sink)
    })
}

/// Writes every member, then the central directory.
fn write_all<W: Write>(
    pipeline: &Pipeline,
    entries: &[Entry],
    options: &ZipOptions,
    sink: &mut Sink<W>,
) -> Result<ZipSummary, ArtifactError> {
    let mut records = Vec::with_capacity(entries.len());
    let mut header = Vec::with_capacity(512);
    let mut bytes_in = 0u64;
    for (index, entry) in entries.iter().enumerate() {
        let record = match pipeline.take(index)? {
            Prepared::Memory {
                crc,
                size,
                method,
                data,
                mtime,
            } => {
                let record = Record::new(entry, method, mtime, crc, data.len() as u64, size)
                    .with_offset(sink.count)
                    .with_zip64(options.force_zip64);
                header.clear();
                local_header(&mut header, &record, false);
                sink.put(&header)?;
                sink.put(&data)?;
                record
            }
            Prepared::Stream { file, mtime, len } => {
                stream_file(sink, entry, file, mtime, len, options, &mut header)?
            }
        };
        bytes_in += record.size;
        records.push(record);
    }
    let cd_offset = sink.count;
    for record in &records {
        header.clear();
        central_header(&mut header, record);
        sink.put(&header)?;
    }
    let cd_size = sink.count - cd_offset;
    header.clear();
    end_records(
        &mut header,
        records.len() as u64,
        cd_offset,
        cd_size,
        options.force_zip64,
    );
    sink.put(&header)?;
    sink.inner.flush().map_err(write_err)?;
    let sha256 = sink
        .hasher
        .finalize_reset()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(ZipSummary {
        entries: records.len(),
        bytes_in,
        bytes_out: sink.count,
        sha256,
    })
}

/// Streams a big file: local header with a data-descriptor flag, data, then the descriptor.
fn stream_file<W: Write>(
    sink: &mut Sink<W>,
    entry: &Entry,
    mut file: File,
    mtime: Option<SystemTime>,
    len: u64,
    options: &ZipOptions,
    header: &mut Vec<u8>,
) -> Result<Record, ArtifactError> {
    let read_err = |source| ArtifactError::Read {
        path: entry.source.clone(),
        source,
    };
    let mut buf = vec![0u8; CHUNK];
    let filled = read_full(&mut file, &mut buf).map_err(read_err)?;
    let method = if deflate_in_memory(&buf[..filled], options.level).is_some() {
        8
    } else {
        0
    };
    let zip64 = options.force_zip64 || len >= ZIP64_STREAM_HINT;
    let mut record = Record::new(entry, method, mtime, 0, 0, 0)
        .with_offset(sink.count)
        .with_zip64(zip64)
        .with_descriptor();
    header.clear();
    local_header(header, &record, true);
    sink.put(header)?;

    let start = sink.count;
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0u64;
    if method == 8 {
        let level = Compression::new(options.level);
        let mut encoder = flate2::write::DeflateEncoder::new(&mut *sink, level);
        pump(
            &mut encoder,
            &mut file,
            &mut buf,
            filled,
            &mut crc,
            &mut size,
        )
        .map_err(|e| e.at(entry))?;
        encoder.finish().map_err(write_err)?;
    } else {
        pump(sink, &mut file, &mut buf, filled, &mut crc, &mut size).map_err(|e| e.at(entry))?;
    }
    record.crc = crc.finalize();
    record.size = size;
    record.compressed = sink.count - start;
    if !zip64 && (record.size >= 0xFFFF_FFFF || record.compressed >= 0xFFFF_FFFF) {
        return Err(ArtifactError::FileGrew {
            path: entry.source.clone(),
        });
    }
    header.clear();
    format::data_descriptor(header, &record);
    sink.put(header)?;
    Ok(record)
}

/// Where [`pump`] failed: reading the file or writing the output.
enum PumpError {
    Read(io::Error),
    Write(io::Error),
}

impl PumpError {
    fn at(self, entry: &Entry) -> ArtifactError {
        match self {
            PumpError::Read(source) => ArtifactError::Read {
                path: entry.source.clone(),
                source,
            },
            PumpError::Write(source) => ArtifactError::Write { source },
        }
    }
}

/// Copies the rest of `file` to `out`, starting with the `filled` bytes already in `buf`,
/// updating the CRC and the size.
fn pump(
    out: &mut impl Write,
    file: &mut File,
    buf: &mut [u8],
    mut filled: usize,
    crc: &mut crc32fast::Hasher,
    size: &mut u64,
) -> Result<(), PumpError> {
    while filled > 0 {
        let chunk = &buf[..filled];
        crc.update(chunk);
        *size += filled as u64;
        out.write_all(chunk).map_err(PumpError::Write)?;
        filled = read_full(file, buf).map_err(PumpError::Read)?;
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns the number of bytes read.
pub(super) fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

fn write_err(source: io::Error) -> ArtifactError {
    ArtifactError::Write { source }
}

/// The output: counts and hashes every byte on its way to the buffered writer.
struct Sink<W: Write> {
    inner: BufWriter<W>,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Sink<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), ArtifactError> {
        self.write_all(bytes).map_err(write_err)
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[path = "zip_tests.rs"]
mod tests;
