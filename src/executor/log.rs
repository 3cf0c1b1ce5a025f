//! The build log, as CodeBuild writes it: the build's output as it was printed and pushbuild's
//! own marker lines (`[Container] <time> <text>`), with secret values masked, streamed to the log
//! file (and to a terminal) as it is printed. Output lines carry no timestamp, as in CodeBuild's
//! log, so a command printing a million short lines costs a copy, not a million stamps.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;

use super::{PhaseContext, RunStatus};

/// Whether and where the log is echoed as it is written (besides the log file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Not echoed (the log file only).
    Off,
    /// To pushbuild's standard output; `color` puts phase markers in colour (a terminal).
    Stdout { color: bool },
    /// To pushbuild's standard error (when standard output carries JSON).
    Stderr { color: bool },
}

impl Echo {
    fn color(self) -> bool {
        matches!(
            self,
            Echo::Stdout { color: true } | Echo::Stderr { color: true }
        )
    }
}

/// How many bytes of the most recent output are kept for `on-failure: RETRY-<regex>` matching.
const TAIL_LIMIT: usize = 256 * 1024;

const MASK: &[u8] = b"***";

/// A handle on the build log, cheap to clone; all clones write to the same log.
#[derive(Clone)]
pub struct BuildLog {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    file: Box<dyn Write + Send>,
    echo: Echo,
    secrets: Vec<Vec<u8>>,
    tail: Vec<u8>,
    error: Option<io::Error>,
    scratch: Vec<u8>,
    keep_tail: bool,
}

/// The timestamp that starts every log line: `2026/11/22 23:10:00.123456`.
fn timestamp() -> String {
    Utc::now().format("%Y/%m/%d %H:%M:%S%.6f").to_string()
}

impl BuildLog {
    /// A log written to `file`, echoed as `echo` says.
    pub fn new(file: Box<dyn Write + Send>, echo: Echo) -> Self {
        BuildLog {
            inner: Arc::new(Mutex::new(Inner {
                file,
                echo,
                secrets: Vec::new(),
                tail: Vec::new(),
                error: None,
                scratch: Vec::new(),
                keep_tail: false,
            })),
        }
    }

    /// A log kept nowhere (for tests and dry runs).
    pub fn sink() -> Self {
        Self::new(Box::new(io::sink()), Echo::Off)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves bytes, not broken invariants: keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Values to mask wherever they appear from now on; empty values are ignored.
    pub fn add_secrets<I: IntoIterator<Item = String>>(&self, values: I) {
        let mut inner = self.lock();
        inner.secrets.extend(
            values
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(String::into_bytes),
        );
        // Longest first, so a secret that contains another is masked whole; each once.
        inner
            .secrets
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        inner.secrets.dedup();
    }

    /// A marker line of pushbuild's own, as CodeBuild writes them: `[Container] <time> <text>`.
    pub fn marker(&self, text: &str) {
        self.write_marker(text, Style::Marker);
    }

    /// A marker line that reports a failure (red on a terminal).
    pub fn marker_failed(&self, text: &str) {
        self.write_marker(text, Style::Failure);
    }

    /// A marker line that reports a success (green on a terminal).
    pub fn marker_ok(&self, text: &str) {
        self.write_marker(text, Style::Success);
    }

    /// The end of a phase, as CodeBuild logs it: `Phase complete: <PHASE> State: <STATUS>`, then
    /// `Phase context status code: <CODE> Message: <message>` (both empty when it succeeded).
    pub fn phase_complete(&self, phase: &str, status: RunStatus, context: Option<&PhaseContext>) {
        let complete = format!("Phase complete: {phase} State: {status}");
        if status == RunStatus::Succeeded {
            self.marker_ok(&complete);
        } else {
            self.marker_failed(&complete);
        }
        let (code, message) = context.map_or(("", ""), |c| (c.code.as_str(), c.message.as_str()));
        self.marker(&format!(
            "Phase context status code: {code} Message: {message}"
        ));
    }

    fn write_marker(&self, text: &str, style: Style) {
        let mut inner = self.lock();
        let stamp = timestamp();
        let mut line = Vec::with_capacity(text.len() + 40);
        // A multi-line text (a multi-line command) gets the prefix on every line.
        for part in text.trim_end_matches('\n').split('\n') {
            line.extend_from_slice(b"[Container] ");
            line.extend_from_slice(stamp.as_bytes());
            line.push(b' ');
            mask_into(&inner.secrets, part.as_bytes(), &mut line);
            line.push(b'\n');
        }
        inner.write_file(&line);
        if inner.echo.color() {
            let mut colored = Vec::with_capacity(line.len() + 16);
            colored.extend_from_slice(style.ansi().as_bytes());
            colored.extend_from_slice(&line[..line.len() - 1]);
            colored.extend_from_slice(b"\x1b[0m\n");
            echo(inner.echo, &colored);
        } else {
            echo(inner.echo, &line);
        }
        inner.flush();
    }

    /// Output of the build's commands as it was printed: complete lines, or the last piece of
    /// one (which is ended here, so a marker always starts a line).
    pub fn output(&self, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let open = !text.ends_with(b"\n");
        if inner.secrets.is_empty() && !open {
            // The bytes go out as they came: no copy.
            inner.emit_output(text);
        } else {
            let mut scratch = std::mem::take(&mut inner.scratch);
            scratch.clear();
            mask_into(&inner.secrets, text, &mut scratch);
            if open {
                scratch.push(b'\n');
            }
            inner.emit_output(&scratch);
            inner.scratch = scratch;
        }
    }

    /// Keeps the most recent output from now on, for [`BuildLog::tail`].
    pub fn keep_tail(&self) {
        self.lock().keep_tail = true;
    }

    /// Forgets the recent output (at the start of a phase attempt).
    pub fn clear_tail(&self) {
        self.lock().tail.clear();
    }

    /// The most recent output (masked), up to 256 KiB.
    pub fn tail(&self) -> String {
        let inner = self.lock();
        let start = inner.tail.len().saturating_sub(TAIL_LIMIT);
        String::from_utf8_lossy(&inner.tail[start..]).into_owned()
    }

    /// Masks the secrets in `text` (for values reported outside the log).
    pub fn mask(&self, text: &str) -> String {
        let inner = self.lock();
        let mut out = Vec::with_capacity(text.len());
        mask_into(&inner.secrets, text.as_bytes(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The first write or flush error, if any (the build goes on; the caller reports it).
    pub fn take_error(&self) -> Option<io::Error> {
        self.lock().error.take()
    }
}

impl Inner {
    /// Writes masked output to the file, the echo and (when kept) the tail.
    fn emit_output(&mut self, bytes: &[u8]) {
        if self.keep_tail {
            self.tail.extend_from_slice(bytes);
            if self.tail.len() > TAIL_LIMIT * 2 {
                let cut = self.tail.len() - TAIL_LIMIT;
                self.tail.drain(..cut);
            }
        }
        self.write_file(bytes);
        echo(self.echo, bytes);
        self.flush();
    }

    fn write_file(&mut self, bytes: &[u8]) {
        if let Err(err) = self.file.write_all(bytes) {
            self.error.get_or_insert(err);
        }
    }

    fn flush(&mut self) {
        if let Err(err) = self.file.flush() {
            self.error.get_or_insert(err);
        }
    }
}

fn echo(to: Echo, bytes: &[u8]) {
    // A closed terminal must not stop the build: the log file still has every line.
    let _ = match to {
        Echo::Off => Ok(()),
        Echo::Stdout { .. } => {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Echo::Stderr { .. } => io::stderr().lock().write_all(bytes),
    };
}

#[derive(Clone, Copy)]
enum Style {
    Marker,
    Failure,
    Success,
}

impl Style {
    fn ansi(self) -> &'static str {
        match self {
            Style::Marker => "\x1b[36m",
            Style::Failure => "\x1b[1;31m",
            Style::Success => "\x1b[32m",
        }
    }
}

/// Appends `text` to `out` with every occurrence of every secret replaced by `***`.
fn mask_into(secrets: &[Vec<u8>], text: &[u8], out: &mut Vec<u8>) {
    if secrets.is_empty() {
        out.extend_from_slice(text);
        return;
    }
    let mut rest = text;
    'scan: while !rest.is_empty() {
        let mut first: Option<(usize, usize)> = None;
        for secret in secrets {
            if let Some(at) = memchr::memmem::find(rest, secret) {
                if first.is_none_or(|(best, _)| at < best) {
                    first = Some((at, secret.len()));
                }
            }
        }
        match first {
            Some((at, len)) => {
                out.extend_from_slice(&rest[..at]);
                out.extend_from_slice(MASK);
                rest = &rest[at + len..];
            }
            None => {
                out.extend_from_slice(rest);
                break 'scan;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn case(secrets: &[&str], text: &str, want: &str) {
        let mut secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = Vec::new();
        mask_into(&secrets, text.as_bytes(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn masks_every_occurrence_of_every_secret() {
        case(&[], "password=hunter2", "password=hunter2");
        case(&["hunter2"], "password=hunter2", "password=***");
        case(&["hunter2"], "hunter2hunter2 and hunter2", "****** and ***");
        case(&["ab", "abcd"], "xabcdx ab", "x***x ***");
        case(&["s3cr3t", "tok"], "tok:s3cr3t", "***:***");
    }

    /// A writer whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn markers_are_timestamped_output_is_masked_and_the_tail_is_kept() {
        let file = Shared::default();
        let log = BuildLog::new(Box::new(file.clone()), Echo::Off);
        log.keep_tail();
        log.add_secrets(["pa55".to_string(), String::new()]);
        log.marker("Running command echo pa55");
        log.output(b"the pa55 is\nsecond");
        let text = String::from_utf8(file.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("[Container] 20"), "{}", lines[0]);
        assert!(
            lines[0].ends_with(" Running command echo ***"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "the *** is", "output as printed, masked");
        assert_eq!(lines[2], "second", "an open last line is ended");
        assert!(!text.contains("pa55"));
        assert_eq!(log.tail(), "the *** is\nsecond\n");
        log.clear_tail();
        assert_eq!(log.tail(), "");
    }
}
