//! The reader side of a build's shell: its one output pipe turned into log output and events (a
//! command's status, the shell's end), markers found even when split across reads.

use std::io::{self, Read};
use std::sync::mpsc::Sender;
use std::thread;
use std::time::Duration;

use super::log::BuildLog;

/// Reads from the output pipe are this large.
const CHUNK: usize = 256 * 1024;
/// A read smaller than this is a trickle: lines printed one by one, or a fast command's small
/// writes (4 KiB from stdio) each read as it lands.
const TRICKLE_BYTES: usize = 64 * 1024;
/// The pause after a small read, for output to gather in the (1 MiB) pipe; bounds the log's
/// latency. Short enough that a fast writer (500 MB/s) does not fill the pipe and wait.
const TRICKLE_PAUSE: Duration = Duration::from_micros(500);
/// A line longer than this (no newline yet) is logged in pieces.
const MAX_LINE: usize = 256 * 1024;

/// What the pipe said besides output.
pub(super) enum Event {
    /// A command ended with this status.
    Status(i32),
    /// The shell ended with this status (the keeper's marker).
    Ended(i32),
    /// The pipe closed: everything that held it is gone.
    Eof,
}

/// The reader thread: output pipe ─▶ log output and status events.
pub(super) fn read_output(
    mut pipe: io::PipeReader,
    marker: &[u8],
    log: &BuildLog,
    events: &Sender<Event>,
) {
    // Reads land after what is held (a partial line, at most MAX_LINE), so no byte is copied
    // on its way to the log but that partial line.
    let mut buf = vec![0u8; MAX_LINE + CHUNK];
    let mut held = 0;
    loop {
        match pipe.read(&mut buf[held..held + CHUNK]) {
            Ok(0) => break,
            Ok(n) => {
                let (used, markers) = split_output(&buf[..held + n], marker, log, events);
                buf.copy_within(used..held + n, 0);
                held = held + n - used;
                // After a marker, what comes next waits on pushbuild (the next command) or is the
                // pipe's end: no pause.
                if n < TRICKLE_BYTES && markers == 0 {
                    // A trickle: let a few milliseconds of output gather in the pipe, so a
                    // command printing many short lines costs one read and one write per batch,
                    // not per line or per 4 KiB. What was read is already in the log.
                    thread::sleep(TRICKLE_PAUSE);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if held > 0 {
        log.output(&buf[..held]);
    }
    let _ = events.send(Event::Eof);
}

/// Logs the complete lines of `buf` and sends an event for each complete marker; returns how
/// many bytes were used (the rest, a partial line of at most `MAX_LINE` bytes, waits for more
/// output) and how many markers were found.
pub(super) fn split_output(
    buf: &[u8],
    marker: &[u8],
    log: &BuildLog,
    events: &Sender<Event>,
) -> (usize, usize) {
    let mut used = 0;
    let mut markers = 0;
    loop {
        let rest = &buf[used..];
        if let Some(at) = memchr::memmem::find(rest, marker) {
            let after = at + marker.len();
            if let Some(end) = memchr::memchr(b'\n', &rest[after..]) {
                // Output before the marker, even without a final newline, belongs to the command.
                if at > 0 {
                    log.output(&rest[..at]);
                }
                let text = std::str::from_utf8(&rest[after..after + end]).unwrap_or("");
                let (ended, code) = match text.strip_prefix("end:") {
                    Some(code) => (true, code),
                    None => (false, text),
                };
                let code = code.trim().parse().unwrap_or(-1);
                used += after + end + 1;
                markers += 1;
                let _ = events.send(if ended {
                    Event::Ended(code)
                } else {
                    Event::Status(code)
                });
                continue;
            }
        }
        // No complete marker: log the complete lines, keep the partial one.
        match memchr::memrchr(b'\n', rest) {
            Some(nl) => {
                log.output(&rest[..nl + 1]);
                used += nl + 1;
                if rest.len() - (nl + 1) > MAX_LINE {
                    // An endless line after the last newline: in pieces, as below.
                    continue;
                }
            }
            None if rest.len() > MAX_LINE => {
                // An endless line: log it in pieces, keeping room for a marker that may have begun.
                let cut = rest.len() - marker.len() - 16;
                log.output(&rest[..cut]);
                used += cut;
            }
            None => {}
        }
        return (used, markers);
    }
}
