//! One shell process that runs a build's commands in order, so that `cd`, `export`, shell
//! variables and functions carry from one command to the next.
//!
//! The shell runs a small loop: for each line on its standard input it sources the session's
//! command file (with standard input from /dev/null), which pushbuild has just written with the
//! next command, and prints a marker with the exit status on a private copy of its output
//! descriptor; an empty line ends the loop. Output and markers share one pipe, so a marker always
//! follows the output of its command; the reader thread turns the pipe into log lines and status
//! events. Before the loop the shell reads one line of shell
//! text: what of the build's environment a shell started ahead of its build was started without
//! ([`ShellSession::amend_env`]), or nothing.
//!
//! The shell runs under a keeper: a `/bin/sh` that is a child subreaper (see `reap.rs`), leads
//! the session's process group, starts the shell, and when the shell ends prints an end marker
//! with its status and waits to be killed (reading the control pipe, which pushbuild closes
//! after that). Whatever the commands leave behind (background jobs, `setsid`, double forks,
//! `nohup`) stays in the keeper's tree, and the whole tree is killed at a deadline, when the
//! shell ends and at the end of the build.
//!
//! If pushbuild itself dies (SIGKILL, the out-of-memory killer, a sandbox torn down), nobody is
//! left to kill the tree. The keeper holds a lifeline for that: the read end of a pipe whose
//! only write end is pushbuild's (close-on-exec, so no other process inherits it). A small
//! watcher the keeper starts waits on it; its end-of-file comes when pushbuild is gone, and the
//! watcher then kills the session's whole process group (the keeper, the shell and what runs in
//! it). While pushbuild lives the watcher only waits, and it goes with the tree.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::Deadline;
use super::log::BuildLog;
use super::output::{Event, read_output};
use super::reap;
use super::spawn::{Process, Spawn, find_program};
use crate::buildspec::Shell;

/// How long to wait for output to drain after the shell has gone.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How often the waiting side looks at the deadline and the shell's health.
const POLL: Duration = Duration::from_millis(200);
/// The pipe's size (Linux's default limit for an unprivileged process is 1 MiB).
const PIPE_SIZE: i32 = 1024 * 1024;

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

/// A running shell.
pub struct ShellSession {
    child: Process,
    control: Option<io::PipeWriter>,
    events: Receiver<Event>,
    /// The file each command is written to in turn (the shell has finished reading one before
    /// the next is written): one file for the session, not one per command.
    command_file: PathBuf,
    /// Whether the line before the loop has been sent.
    amended: bool,
    ended: bool,
    /// The shell's exit status, once it has ended.
    status: Option<i32>,
    /// The lifeline's write end: the keeper's watcher kills the session's group when it closes
    /// (when pushbuild is gone). Dropped with the session, after the tree is killed.
    _lifeline: io::PipeWriter,
}

/// The keeper: $1 is the shell, $2 its loop, $3 the marker's nonce. It outlives the shell
/// (so orphans have a subreaper until the tree is killed): it then reads the control pipe
/// to its end, which comes after the tree is killed (or if pushbuild itself is gone).
/// Its first line starts the watcher on the lifeline (descriptor 3; nothing else of the
/// session's: it holds no pipe the output's end waits for), which neither the keeper nor
/// the shell keeps.
const KEEPER: &str = "( read -r __pushbuild_life <&3; kill -KILL 0 ) </dev/null >/dev/null 2>&1 &\n\
      exec 3<&-\n\
      \"$1\" -c \"$2\"\n\
      __pushbuild_status=$?\n\
      printf '\\036PUSHBUILD:%s:end:%d\\n' \"$3\" \"$__pushbuild_status\"\n\
      while read -r __pushbuild_hold; do :; done\n";

/// The program a buildspec's `env.shell` names.
pub fn program(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "bash",
        Shell::Sh => "/bin/sh",
    }
}

impl ShellSession {
    /// Starts `shell` in `cwd` with exactly `env` as its environment; its command file is written
    /// in `ctl_dir`, and all output goes to `log`.
    pub fn start(
        shell: Shell,
        cwd: &Path,
        env: &[(String, String)],
        ctl_dir: &Path,
        log: &BuildLog,
    ) -> io::Result<ShellSession> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let marker = format!("\x1ePUSHBUILD:{nonce}:").into_bytes();
        let command_file = ctl_dir.join(format!(
            "command-{}.sh",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        // fd 9 is the loop's own copy of the output pipe: a command's `exec >file` cannot hide the
        // marker, and commands do not see fd 9 at all. The command file's path is in the loop
        // itself: a line per command says "go" in two bytes (the shell reads a pipe a byte at a
        // time).
        let script = format!(
            "exec 9>&1\n\
             IFS= read -r __pushbuild_cmd && eval \"$__pushbuild_cmd\"\n\
             while IFS= read -r __pushbuild_cmd; do\n\
             case $__pushbuild_cmd in '') break ;; esac\n\
             . {} </dev/null 9>&-\n\
             printf '\\036PUSHBUILD:{nonce}:%d\\n' \"$?\" >&9\n\
             done\n",
            single_quoted(&command_file.to_string_lossy())
        );
        let program = find_program(program(shell), env)?;
        let (reader, writer) = io::pipe()?;
        // A roomy pipe lets a fast command write on while the reader is busy or pausing; if the
        // system refuses the size, the default pipe still works.
        let _ = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let (control_reader, control) = io::pipe()?;
        let (lifeline_reader, lifeline) = io::pipe()?;
        let child = Spawn {
            program: Path::new("/bin/sh"),
            args: &[
                OsStr::new("/bin/sh"),
                OsStr::new("-c"),
                OsStr::new(KEEPER),
                OsStr::new("pushbuild-keeper"),
                program.as_os_str(),
                OsStr::new(&script),
                OsStr::new(&nonce),
            ],
            env,
            cwd,
            stdio: [control_reader.as_fd(), writer.as_fd(), writer.as_fd()],
            fd3: Some(lifeline_reader.as_fd()),
        }
        .start()?;
        // Our copies of the pipes' other ends must be gone, or the reader never sees its end.
        drop((control_reader, writer, lifeline_reader));
        let (tx, events) = mpsc::channel();
        let reader_log = log.clone();
        let reader_marker = marker.clone();
        thread::Builder::new()
            .name("build-output".into())
            .spawn(move || read_output(reader, &reader_marker, &reader_log, &tx))?;
        Ok(ShellSession {
            child,
            control: Some(control),
            events,
            command_file,
            amended: false,
            ended: false,
            status: None,
            _lifeline: lifeline,
        })
    }

    /// Runs one command (any shell text, several lines allowed) and waits for it, or for the
    /// deadline. After `ShellEnded` or `TimedOut` the session is over.
    pub fn run(&mut self, text: &str, deadline: &Deadline) -> io::Result<CommandEnd> {
        if self.ended {
            return Ok(CommandEnd::ShellEnded(self.exit_code()));
        }
        std::fs::write(&self.command_file, format!("{text}\n"))?;
        // The line before the loop (if not sent yet), then "go".
        let line = if self.amended { "1\n" } else { "\n1\n" };
        self.amended = true;
        if self.send(line).is_err() {
            return Ok(self.shell_ended(None));
        }
        loop {
            let wait = match deadline.at() {
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
                Ok(Event::Ended(code)) => return Ok(self.shell_ended(Some(code))),
                Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    return Ok(self.shell_ended(None));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.child.has_ended() {
                        // The keeper is gone (killed from inside); a marker may still be in
                        // the pipe.
                        return Ok(match self.events.recv_timeout(DRAIN_GRACE) {
                            Ok(Event::Status(code)) => CommandEnd::Exited(code),
                            Ok(Event::Ended(code)) => self.shell_ended(Some(code)),
                            _ => self.shell_ended(None),
                        });
                    }
                }
            }
        }
    }

    /// Before the first command: runs `text` (one line of shell text, such as `export NAME='…'`)
    /// in the shell before its loop, without a command file or a marker. An error when the
    /// text holds a line break or the shell has had its first line.
    pub fn amend_env(&mut self, text: &str) -> io::Result<()> {
        if self.amended || text.contains(['\n', '\r']) {
            return Err(io::Error::other(
                "the shell's first line is one line, sent once",
            ));
        }
        self.amended = true;
        self.send(&format!("{text}\n"))
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        match self.control.as_mut() {
            Some(control) => control
                .write_all(line.as_bytes())
                .and_then(|()| control.flush()),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// The shell ended with `code` (from the keeper's marker; `None` when the keeper itself is
    /// gone): whatever it left running goes with it, and the keeper too.
    fn shell_ended(&mut self, mut code: Option<i32>) -> CommandEnd {
        self.ended = true;
        if code.is_none() {
            // The keeper's marker may still be on its way.
            let deadline = Instant::now() + DRAIN_GRACE;
            while let Ok(event) = self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                match event {
                    Event::Status(_) => continue,
                    Event::Ended(status) => code = Some(status),
                    Event::Eof => {}
                }
                break;
            }
        }
        self.kill_all();
        let keeper = self.child.wait().unwrap_or(-1);
        self.status = Some(code.unwrap_or(keeper));
        CommandEnd::ShellEnded(self.exit_code())
    }

    fn exit_code(&self) -> i32 {
        self.status.unwrap_or(-1)
    }

    /// Kills the keeper's whole tree, its process group, then the keeper.
    fn kill_all(&mut self) {
        reap::kill_tree(self.pgid());
        let _ = killpg(self.pgid(), Signal::SIGKILL);
        self.child.kill();
    }

    fn pgid(&self) -> Pid {
        self.child.id()
    }

    /// Kills the shell, everything it started and the keeper, and waits for the output to
    /// drain.
    pub fn kill(&mut self) {
        self.ended = true;
        self.kill_all();
        self.collect();
    }

    /// After the kill: the output's end, which comes once the keeper is gone (it waits for the
    /// control pipe's end, and was killed before it could see it), then the keeper itself.
    fn collect(&mut self) {
        self.control = None;
        self.drain();
        self.child.wait();
    }

    /// Ends the session: the shell's loop ends (running its exit traps), then anything it left
    /// running is killed.
    pub fn finish(self) {
        self.end().collect();
    }

    /// [`finish`](Self::finish) up to the kill: the shell has ended and what it left is killed;
    /// what is left to do (the killed processes' last output, collecting the keeper) is the
    /// [`ShellTail`]'s, for later.
    pub fn end(mut self) -> ShellTail {
        if !self.ended {
            // An empty line ends the loop (after the line before it); a keeper that is gone
            // cannot take it.
            let end = if self.amended { "\n" } else { "\n\n" };
            self.amended = true;
            let _ = self.send(end);
            let deadline = Instant::now() + DRAIN_GRACE;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.events.recv_timeout(left) {
                    Ok(Event::Status(_)) => continue,
                    Ok(Event::Ended(_) | Event::Eof) | Err(_) => break,
                }
            }
        }
        self.ended = true;
        self.kill_all();
        ShellTail(self)
    }

    fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN_GRACE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Status(_) | Event::Ended(_)) => continue,
                Ok(Event::Eof) | Err(_) => break,
            }
        }
    }
}

/// A session whose shell has ended and whose processes are killed: their last output and the
/// keeper are collected by [`ShellTail::collect`], or when it is dropped.
pub struct ShellTail(ShellSession);

impl ShellTail {
    pub fn collect(mut self) {
        self.0.collect();
    }
}

impl Drop for ShellTail {
    fn drop(&mut self) {
        if self.0.control.is_some() {
            self.0.collect();
        }
    }
}

impl Drop for ShellSession {
    fn drop(&mut self) {
        if !self.ended {
            self.kill_all();
            self.child.wait();
        }
    }
}

/// `text` as one shell word, in single quotes.
fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
