//! An in-memory pipe between two threads of one process, bounded so that neither side runs far
//! ahead: how packing and compressing (or decompressing and unpacking) overlap.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// The size of the chunks that cross.
const CHUNK: usize = 128 << 10;
/// How many chunks may wait.
const DEPTH: usize = 8;

/// The writing end: bytes are sent in chunks of [`CHUNK`].
pub struct PipeWriter {
    sender: SyncSender<io::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

/// The reading end.
pub struct PipeReader {
    receiver: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

/// A new pipe: at most `CHUNK × (DEPTH + 2)` bytes are held at once.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (sender, receiver) = sync_channel(DEPTH);
    (
        PipeWriter {
            sender,
            buffer: Vec::with_capacity(CHUNK),
        },
        PipeReader {
            receiver,
            chunk: Vec::new(),
            at: 0,
        },
    )
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.sender
            .send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reading side is gone"))
    }

    /// Ends the stream with `err`: the reader reads it after what was sent before.
    pub fn fail(mut self, err: io::Error) {
        let _ = self.send();
        let _ = self.sender.send(Err(err));
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads what `open` makes on a thread of its own (named `name`), through a pipe.
pub fn reading_thread<R, F>(open: F, name: &str) -> PipeReader
where
    R: Read,
    F: FnOnce() -> io::Result<R> + Send + 'static,
{
    let (mut writer, reader) = pipe();
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let copied = open().and_then(|mut source| io::copy(&mut source, &mut writer));
            match copied {
                Ok(_) => drop(writer),
                Err(err) => writer.fail(err),
            }
        });
    if let Err(err) = spawned {
        let (writer, reader) = pipe();
        writer.fail(err);
        return reader;
    }
    reader
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_in_order_and_errors_after_them() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let source = data.clone();
        let mut reader = reading_thread(move || Ok(io::Cursor::new(source)), "t");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);

        let mut failing =
            reading_thread(|| Ok(io::Cursor::new(b"abc".to_vec()).chain(Broken)), "t");
        let mut out = Vec::new();
        let err = failing.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.to_string(), "broken");
        assert_eq!(out, b"abc");
    }

    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("broken"))
        }
    }
}
