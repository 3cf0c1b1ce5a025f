//! Where metric records go: standard output on Lambda (CloudWatch Logs turns EMF lines into
//! metrics), memory for tests and `pushbuild run`, or nowhere.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

/// A destination for metric records, one JSON line at a time (without its newline).
pub trait MetricSink: Send + Sync {
    /// Writes one record. Never fails the build: a sink that cannot write drops the line.
    fn emit(&self, line: &str);
}

/// Writes each record and its newline to standard output in one write under the stdout lock,
/// so records from the ticker thread and the build never interleave.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl MetricSink for StdoutSink {
    fn emit(&self, line: &str) {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let mut out = std::io::stdout().lock();
        if let Err(error) = out.write_all(&buf).and_then(|()| out.flush()) {
            tracing::warn!(%error, "a metric record could not be written to standard output");
        }
    }
}

/// Keeps every record in memory, in order.
#[derive(Debug, Default)]
pub struct MemorySink {
    lines: Mutex<Vec<String>>,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// The records so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl MetricSink for MemorySink {
    fn emit(&self, line: &str) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line.to_string());
    }
}

/// Drops every record.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl MetricSink for NullSink {
    fn emit(&self, _line: &str) {}
}
