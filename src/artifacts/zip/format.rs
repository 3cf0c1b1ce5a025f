//! The byte layout of zip records (PKWARE APPNOTE 6.3): local headers, data descriptors, central
//! directory headers and the end records, with Zip64 variants.

use std::time::SystemTime;

use super::super::{Entry, EntryKind};

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const END_SIG: u32 = 0x0605_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;

/// "Version made by": Unix (3) in the high byte, spec 4.5 in the low byte.
const MADE_BY: u16 = (3 << 8) | 45;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const MAX32: u64 = 0xFFFF_FFFF;

/// Everything the central directory needs to know about one written member.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub name: String,
    pub flags: u16,
    pub method: u16,
    pub dos_time: u16,
    pub dos_date: u16,
    /// Seconds since the epoch, for the extended-timestamp extra field.
    pub unix_time: u32,
    pub crc: u32,
    pub compressed: u64,
    pub size: u64,
    pub offset: u64,
    /// Unix mode with file-type bits.
    pub mode: u32,
    /// The member's local header carries a Zip64 extra field (so its central one does too).
    pub zip64: bool,
}

impl Record {
    pub fn new(
        entry: &Entry,
        method: u16,
        mtime: Option<SystemTime>,
        crc: u32,
        compressed: u64,
        size: u64,
    ) -> Record {
        let mode = match &entry.kind {
            EntryKind::File { mode } => S_IFREG | (mode & 0o7777),
            EntryKind::Symlink { .. } => S_IFLNK | 0o777,
        };
        let flags = if entry.zip_path.is_ascii() {
            0
        } else {
            FLAG_UTF8
        };
        let unix = mtime
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let (dos_time, dos_date) = dos_datetime(unix);
        Record {
            name: entry.zip_path.clone(),
            flags,
            method,
            dos_time,
            dos_date,
            unix_time: u32::try_from(unix).unwrap_or(u32::MAX),
            crc,
            compressed,
            size,
            offset: 0,
            mode,
            zip64: false,
        }
    }

    pub fn with_offset(mut self, offset: u64) -> Record {
        self.offset = offset;
        self
    }

    pub fn with_zip64(mut self, zip64: bool) -> Record {
        self.zip64 = zip64;
        self
    }

    pub fn with_descriptor(mut self) -> Record {
        self.flags |= FLAG_DESCRIPTOR;
        self
    }

    fn version_needed(&self, zip64: bool) -> u16 {
        match (zip64, self.method) {
            (true, _) => 45,
            (false, 8) => 20,
            (false, _) => 10,
        }
    }

    fn name_bytes(&self) -> &[u8] {
        let name = self.name.as_bytes();
        &name[..name.len().min(0xFFFF)]
    }
}

/// Appends a local file header. With `descriptor`, CRC and sizes are left to the data descriptor.
pub(super) fn local_header(buf: &mut Vec<u8>, r: &Record, descriptor: bool) {
    let name = r.name_bytes();
    let (crc, compressed, size) = if descriptor {
        (0, 0, 0)
    } else {
        (r.crc, r.compressed, r.size)
    };
    put32(buf, LOCAL_SIG);
    put16(buf, r.version_needed(r.zip64));
    put16(buf, r.flags);
    put16(buf, r.method);
    put16(buf, r.dos_time);
    put16(buf, r.dos_date);
    put32(buf, crc);
    let extra_len = 9 + if r.zip64 { 20 } else { 0 };
    if r.zip64 {
        put32(buf, MAX32 as u32);
        put32(buf, MAX32 as u32);
    } else {
        put32(buf, compressed as u32);
        put32(buf, size as u32);
    }
    put16(buf, name.len() as u16);
    put16(buf, extra_len);
    buf.extend_from_slice(name);
    put_timestamp(buf, r.unix_time);
    if r.zip64 {
        put16(buf, 0x0001);
        put16(buf, 16);
        put64(buf, size);
        put64(buf, compressed);
    }
}

/// Appends the data descriptor that follows a streamed member (8-byte sizes under Zip64).
pub(super) fn data_descriptor(buf: &mut Vec<u8>, r: &Record) {
    put32(buf, DESCRIPTOR_SIG);
    put32(buf, r.crc);
    if r.zip64 {
        put64(buf, r.compressed);
        put64(buf, r.size);
    } else {
        put32(buf, r.compressed as u32);
        put32(buf, r.size as u32);
    }
}

/// Appends a central directory header, with a Zip64 extra field for the values that need it.
pub(super) fn central_header(buf: &mut Vec<u8>, r: &Record) {
    let name = r.name_bytes();
    let big_size = r.zip64 || r.size >= MAX32;
    let big_compressed = r.zip64 || r.compressed >= MAX32;
    let big_offset = r.offset >= MAX32;
    let zip64_len = 8 * (u16::from(big_size) + u16::from(big_compressed) + u16::from(big_offset));
    let zip64 = zip64_len > 0;
    put32(buf, CENTRAL_SIG);
    put16(buf, MADE_BY);
    put16(buf, r.version_needed(zip64));
    put16(buf, r.flags);
    put16(buf, r.method);
    put16(buf, r.dos_time);
    put16(buf, r.dos_date);
    put32(buf, r.crc);
    put32(buf, clamp32(r.compressed, big_compressed));
    put32(buf, clamp32(r.size, big_size));
    put16(buf, name.len() as u16);
    put16(buf, 9 + if zip64 { 4 + zip64_len } else { 0 });
    put16(buf, 0); // comment length
    put16(buf, 0); // disk number start
    put16(buf, 0); // internal attributes
    put32(buf, r.mode << 16);
    put32(buf, clamp32(r.offset, big_offset));
    buf.extend_from_slice(name);
    put_timestamp(buf, r.unix_time);
    if zip64 {
        put16(buf, 0x0001);
        put16(buf, zip64_len);
        if big_size {
            put64(buf, r.size);
        }
        if big_compressed {
            put64(buf, r.compressed);
        }
        if big_offset {
            put64(buf, r.offset);
        }
    }
}

/// Appends the end-of-central-directory record, preceded by the Zip64 end record and locator
/// when the count, size or offset do not fit (or when `force_zip64`).
pub(super) fn end_records(
    buf: &mut Vec<u8>,
    count: u64,
    cd_offset: u64,
    cd_size: u64,
    force_zip64: bool,
) {
    let zip64 = force_zip64 || count >= 0xFFFF || cd_offset >= MAX32 || cd_size >= MAX32;
    if zip64 {
        let end64_offset = cd_offset + cd_size;
        put32(buf, ZIP64_END_SIG);
        put64(buf, 44); // size of the rest of this record
        put16(buf, MADE_BY);
        put16(buf, 45);
        put32(buf, 0); // this disk
        put32(buf, 0); // disk with the central directory
        put64(buf, count);
        put64(buf, count);
        put64(buf, cd_size);
        put64(buf, cd_offset);
        put32(buf, ZIP64_LOCATOR_SIG);
        put32(buf, 0); // disk with the Zip64 end record
        put64(buf, end64_offset);
        put32(buf, 1); // total disks
    }
    let count16 = if zip64 { 0xFFFF } else { count as u16 };
    put32(buf, END_SIG);
    put16(buf, 0);
    put16(buf, 0);
    put16(buf, count16);
    put16(buf, count16);
    put32(buf, clamp32(cd_size, zip64 && cd_size >= MAX32));
    put32(buf, clamp32(cd_offset, zip64 && cd_offset >= MAX32));
    put16(buf, 0); // comment length
}

/// The extended-timestamp extra field (0x5455) with the modification time only.
fn put_timestamp(buf: &mut Vec<u8>, unix_time: u32) {
    put16(buf, 0x5455);
    put16(buf, 5);
    buf.push(1);
    put32(buf, unix_time);
}

fn clamp32(value: u64, big: bool) -> u32 {
    if big { MAX32 as u32 } else { value as u32 }
}

/// MS-DOS time and date (UTC) of a Unix time, clamped to 1980..=2107.
fn dos_datetime(unix: u64) -> (u16, u16) {
    use chrono::{DateTime, Datelike, Timelike};
    const FIRST: (u16, u16) = (0, (1 << 5) | 1);
    const LAST: (u16, u16) = ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
    let t = match i64::try_from(unix)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
    {
        Some(t) if t.year() < 1980 => return FIRST,
        Some(t) if t.year() > 2107 => return LAST,
        Some(t) => t,
        None => return LAST,
    };
    let time = (t.hour() << 11) | (t.minute() << 5) | (t.second() / 2);
    let date = ((t.year() as u32 - 1980) << 9) | (t.month() << 5) | t.day();
    (time as u16, date as u16)
}

fn put16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn case(unix: u64, (year, month, day, hour, minute, second): (u16, u16, u16, u16, u16, u16)) {
        let time = (hour << 11) | (minute << 5) | (second / 2);
        let date = ((year - 1980) << 9) | (month << 5) | day;
        assert_eq!(dos_datetime(unix), (time, date), "{unix}");
    }

    #[test]
    fn dos_datetime_table() {
        case(0, (1980, 1, 1, 0, 0, 0)); // before 1980: clamped
        case(315_532_800, (1980, 1, 1, 0, 0, 0));
        case(1_714_979_291, (2024, 5, 6, 7, 8, 10)); // 07:08:11, halved to even seconds
        case(4_354_819_199, (2107, 12, 31, 23, 59, 58));
        case(u64::MAX, (2107, 12, 31, 23, 59, 58)); // far future: clamped
    }

    #[track_caller]
    fn end_case(count: u64, cd_offset: u64, cd_size: u64, zip64: bool) {
        let mut buf = Vec::new();
        end_records(&mut buf, count, cd_offset, cd_size, false);
        assert_eq!(
            buf.len(),
            if zip64 { 56 + 20 + 22 } else { 22 },
            "{count} {cd_offset}"
        );
    }

    #[test]
    fn zip64_end_records_only_when_needed() {
        end_case(0, 0, 0, false);
        end_case(65_534, 1 << 31, 1 << 20, false);
        end_case(65_535, 0, 0, true);
        end_case(1, 0xFFFF_FFFF, 46, true);
        end_case(1, 0, 0xFFFF_FFFF, true);
    }
}
