//! One shell process that runs a build's commands in order, so that `cd`, `export`, shell
//! variables and functions carry from one command to the next.
//!
//! The shell runs a small loop: it reads the path of a command file from its standard input,
//! sources that file (with standard input from /dev/null), and prints a marker with the exit status
//! on a private copy of its output descriptor. Output and markers share one pipe, so a marker
//! always follows the output of its command; the reader thread turns the pipe into log lines and
//! status events. The shell leads its own process group, which is killed at a deadline and at the
//! end of the build (so background processes do not outlive it).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::log::BuildLog;
use crate::buildspec::Shell;

/// How long to wait for output to drain after the shell has gone.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How often the waiting side looks at the deadline and the shell's health.
const POLL: Duration = Duration::from_millis(200);
/// Reads from the output pipe are this large.
const CHUNK: usize = 256 * 1024;
/// The pipe's size (Linux's default limit for an unprivileged process is 1 MiB).
const PIPE_SIZE: i32 = 1024 * 1024;
/// A read smaller than this is a trickle (lines printed one by one).
const TRICKLE_BYTES: usize = 1024;
/// The pause after a small read, for output to gather (bounds the log's latency).
const TRICKLE_PAUSE: Duration = Duration::from_millis(2);
/// A line longer than this (no newline yet) is logged in pieces.
const MAX_LINE: usize = 256 * 1024;

/// How one command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEnd {
    /// The command finished with this exit status; the shell goes on.
    Exited(i32),
    /// The shell itself ended (`exit`, `set -e`, a signal) with this status; a new shell is needed.
    ShellEnded(i32),
    /// The deadline passed; the process group was killed.
    TimedOut,
}

impl CommandEnd {
    /// The exit status, where there is one.
    pub fn status(self) -> Option<i32> {
        match self {
            CommandEnd::Exited(code) | CommandEnd::ShellEnded(code) => Some(code),
            CommandEnd::TimedOut => None,
        }
    }

    pub fn succeeded(self) -> bool {
        self.status() == Some(0)
    }
}

enum Event {
    Status(i32),
    Eof,
}

/// A running shell.
pub struct ShellSession {
    child: Child,
    control: Option<ChildStdin>,
    events: Receiver<Event>,
    ctl_dir: PathBuf,
    counter: u64,
    ended: bool,
}

/// The program a buildspec's `env.shell` names.
pub fn program(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "bash",
        Shell::Sh => "/bin/sh",
    }
}

impl ShellSession {
    /// Starts `shell` in `cwd` with exactly `env` as its environment; command files are written
    /// under `ctl_dir`, and all output goes to `log`.
    pub fn start(
        shell: Shell,
        cwd: &Path,
        env: &[(String, String)],
        ctl_dir: &Path,
        log: &BuildLog,
    ) -> io::Result<ShellSession> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let marker = format!("\x1ePUSHBUILD:{nonce}:").into_bytes();
        // fd 9 is the loop's own copy of the output pipe: a command's `exec >file` cannot hide the
        // marker, and commands do not see fd 9 at all.
        let script = format!(
            "exec 9>&1\n\
             while IFS= read -r __pushbuild_cmd; do\n\
             . \"$__pushbuild_cmd\" </dev/null 9>&-\n\
             printf '\\036PUSHBUILD:{nonce}:%d\\n' \"$?\" >&9\n\
             done\n"
        );
        let program = program(shell);
        let (reader, writer) = io::pipe()?;
        // A roomy pipe lets a fast command write on while the reader is busy or pausing; if the
        // system refuses the size, the default pipe still works.
        let _ = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let mut command = Command::new(program);
        command
            .arg("-c")
            .arg(script)
            .current_dir(cwd)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::from(writer.try_clone()?))
            .stderr(Stdio::from(writer));
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn()?;
        // Our copies of the pipe's write end must be gone, or the reader never sees its end.
        drop(command);
        let control = child.stdin.take();
        let (tx, events) = mpsc::channel();
        let reader_log = log.clone();
        let reader_marker = marker.clone();
        thread::Builder::new()
            .name("build-output".into())
            .spawn(move || read_output(reader, &reader_marker, &reader_log, &tx))?;
        Ok(ShellSession {
            child,
            control,
            events,
            ctl_dir: ctl_dir.to_path_buf(),
            counter: 0,
            ended: false,
        })
    }

    /// Runs one command (any shell text, several lines allowed) and waits for it, or for the
    /// deadline. After `ShellEnded` or `TimedOut` the session is over.
    pub fn run(&mut self, text: &str, deadline: Option<Instant>) -> io::Result<CommandEnd> {
        if self.ended {
            return Ok(CommandEnd::ShellEnded(self.exit_code()));
        }
        self.counter += 1;
        let path = self.ctl_dir.join(format!("command-{}.sh", self.counter));
        std::fs::write(&path, format!("{text}\n"))?;
        let line = format!("{}\n", path.display());
        let sent = match self.control.as_mut() {
            Some(control) => control
                .write_all(line.as_bytes())
                .and_then(|()| control.flush()),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        };
        if sent.is_err() {
            return Ok(self.shell_ended());
        }
        loop {
            let wait = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.kill();
                        return Ok(CommandEnd::TimedOut);
                    }
                    left.min(POLL)
                }
                None => POLL,
            };
            match self.events.recv_timeout(wait) {
                Ok(Event::Status(code)) => return Ok(CommandEnd::Exited(code)),
                Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    return Ok(self.shell_ended());
                }
                Err(RecvTimeoutError::Timeout) => {
                    if matches!(self.child.try_wait(), Ok(Some(_))) {
                        // The shell is gone; its marker may still be in the pipe.
                        return Ok(match self.events.recv_timeout(DRAIN_GRACE) {
                            Ok(Event::Status(code)) => CommandEnd::Exited(code),
                            _ => self.shell_ended(),
                        });
                    }
                }
            }
        }
    }

    fn shell_ended(&mut self) -> CommandEnd {
        self.ended = true;
        // Whatever the shell left running goes with it.
        let _ = killpg(self.pgid(), Signal::SIGKILL);
        CommandEnd::ShellEnded(self.exit_code())
    }

    fn exit_code(&mut self) -> i32 {
        match self.child.wait() {
            Ok(status) => exit_code(status),
            Err(_) => -1,
        }
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Kills the shell's whole process group and waits for the output to drain.
    pub fn kill(&mut self) {
        self.ended = true;
        self.control = None;
        let _ = killpg(self.pgid(), Signal::SIGKILL);
        let _ = self.child.wait();
        self.drain();
    }

    /// Ends the session: the shell's loop ends, then anything it left running is killed.
    pub fn finish(mut self) {
        self.control = None;
        let deadline = Instant::now() + DRAIN_GRACE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
            }
        }
        self.kill();
    }

    fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN_GRACE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Status(_)) => continue,
                Ok(Event::Eof) | Err(_) => break,
            }
        }
    }
}

impl Drop for ShellSession {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = killpg(self.pgid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

/// The reader thread: output pipe ─▶ log lines and status events.
fn read_output(mut pipe: io::PipeReader, marker: &[u8], log: &BuildLog, events: &Sender<Event>) {
    let mut pending: Vec<u8> = Vec::with_capacity(2 * CHUNK);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&chunk[..n]);
                let used = split_output(&pending, marker, log, events);
                pending.drain(..used);
                if n < TRICKLE_BYTES {
                    // A trickle: let a few milliseconds of output gather in the pipe, so a
                    // command printing many short lines costs one read and one write per batch,
                    // not per line. What was read is already in the log.
                    thread::sleep(TRICKLE_PAUSE);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if !pending.is_empty() {
        log.output_lines(lines_of(&pending));
    }
    let _ = events.send(Event::Eof);
}

/// Logs the complete lines of `buf` and sends an event for each complete marker; returns how
/// many bytes were used (the rest, a partial line, waits for more output).
fn split_output(buf: &[u8], marker: &[u8], log: &BuildLog, events: &Sender<Event>) -> usize {
    let mut used = 0;
    loop {
        let rest = &buf[used..];
        if let Some(at) = memchr::memmem::find(rest, marker) {
            let after = at + marker.len();
            if let Some(end) = memchr::memchr(b'\n', &rest[after..]) {
                // Output before the marker, even without a final newline, belongs to the command.
                if at > 0 {
                    log.output_lines(lines_of(&rest[..at]));
                }
                let code = std::str::from_utf8(&rest[after..after + end])
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(-1);
                used += after + end + 1;
                let _ = events.send(Event::Status(code));
                continue;
            }
        }
        // No complete marker: log the complete lines, keep the partial one.
        match memchr::memrchr(b'\n', rest) {
            Some(nl) => {
                log.output_lines(lines_of(&rest[..nl + 1]));
                used += nl + 1;
            }
            None if rest.len() > MAX_LINE => {
                // An endless line: log it in pieces, keeping room for a marker that may have begun.
                let cut = rest.len() - marker.len() - 16;
                log.output_lines([&rest[..cut]]);
                used += cut;
            }
            None => {}
        }
        return used;
    }
}

/// The lines of `text`: split at `\n`, a final newline ends the last line, a trailing `\r` is dropped.
fn lines_of(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    text.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
