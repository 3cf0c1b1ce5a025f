//! Starting the shell's keeper as `posix_spawn` starts a program, plus the one step
//! `posix_spawn` has no action for: the child makes itself a child subreaper (see `reap.rs`)
//! before it becomes the keeper.
//!
//! `fork` copies pushbuild's page tables and marks every writable page copy-on-write, and the
//! parent waits until the child has exec'd: about 0.7 ms of each build's start, and page
//! faults after it. Here the child shares pushbuild's memory (`CLONE_VM | CLONE_VFORK`, as
//! glibc's `posix_spawn` does): the calling thread is suspended until the child has exec'd or
//! exited, and nothing is copied. The child runs on a stack of its own and makes only system
//! calls: no allocation, no lock, nothing another thread of pushbuild could be holding.

use std::ffi::{CString, OsStr, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The child's stack: its few system calls need little.
const CHILD_STACK: usize = 64 * 1024;

/// A program to start: its path, its arguments (the first is its name), its whole environment,
/// its working directory and its standard input, output and error.
pub struct Spawn<'a> {
    pub program: &'a Path,
    pub args: &'a [&'a OsStr],
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    pub stdio: [BorrowedFd<'a>; 3],
    /// Given to the program as descriptor 3 when set (the keeper's lifeline, see `shell.rs`).
    pub fd3: Option<BorrowedFd<'a>>,
}

/// A started process, in its own process group and a child subreaper, until it is collected.
#[derive(Debug)]
pub struct Process {
    pid: Pid,
    /// Once collected: its exit code (`None` if another waiter collected it first).
    collected: Option<Option<i32>>,
}

/// What the child reads: pointers into the parent's memory, valid while the parent is
/// suspended. `error` is the one thing it writes.
struct ChildArgs {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    stdio: [c_int; 3],
    /// Descriptor 3's source, or -1.
    fd3: c_int,
    error: AtomicI32,
}

impl Spawn<'_> {
    /// Starts the program; an error when it could not be (its `errno`: no such program, a
    /// working directory that is gone, …).
    // Longer than 80 lines because the C strings, the stack and the `clone` must stay in one
    // frame: the child runs on them until it execs, sharing this memory (CLONE_VM), so none of
    // them may be built in, or outlive, a helper's frame.
    pub fn start(&self) -> io::Result<Process> {
        let cstring = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a NUL byte in a spawn argument",
                )
            })
        };
        let program = cstring(self.program.as_os_str().as_bytes())?;
        let cwd = cstring(self.cwd.as_os_str().as_bytes())?;
        let args = self
            .args
            .iter()
            .map(|arg| cstring(arg.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        // A name given twice has its last value, as with `Command::envs`.
        let mut last = std::collections::HashMap::new();
        for (at, (name, _)) in self.env.iter().enumerate() {
            last.insert(name.as_str(), at);
        }
        let env = self
            .env
            .iter()
            .enumerate()
            .filter(|(at, (name, _))| last.get(name.as_str()) == Some(at))
            .map(|(_, (name, value))| cstring(format!("{name}={value}").as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let argv = null_terminated(&args);
        let envp = null_terminated(&env);
        // Each descriptor the child moves to 0, 1 or 2 is above 2 first, so that no move
        // overwrites one still to be moved.
        let lifted = self
            .stdio
            .iter()
            .map(|fd| lift(*fd))
            .collect::<io::Result<Vec<_>>>()?;
        let stdio: Vec<c_int> = lifted
            .iter()
            .zip(&self.stdio)
            .map(|(lifted, fd)| lifted.as_ref().map_or(fd.as_raw_fd(), AsRawFd::as_raw_fd))
            .collect();
        let lifted_fd3 = self.fd3.map(lift).transpose()?;
        let fd3 = match (&lifted_fd3, self.fd3) {
            (Some(Some(lifted)), _) => lifted.as_raw_fd(),
            (_, Some(fd)) => fd.as_raw_fd(),
            (_, None) => -1,
        };
        let child_args = ChildArgs {
            program: program.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            cwd: cwd.as_ptr(),
            stdio: [stdio[0], stdio[1], stdio[2]],
            fd3,
            error: AtomicI32::new(0),
        };
        // Left unwritten (the child touches a few pages of it, and only those are faulted in).
        let mut stack = Vec::<u8>::with_capacity(CHILD_STACK);
        // The stack grows down from its end, which must be 16-byte aligned.
        let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;
        let pid = {
            // No signal handler of pushbuild's may run in the child, which shares its memory:
            // every signal is blocked across the clone (the child unblocks them as it execs).
            let _blocked = BlockedSignals::new()?;
            // SAFETY: the child runs `child_main` on its own stack, reads only `child_args`
            // (alive until this call returns: CLONE_VFORK suspends this thread until the
            // child has exec'd or exited) and makes only async-signal-safe system calls.
            unsafe {
                libc::clone(
                    child_main,
                    top as *mut c_void,
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                    std::ptr::from_ref(&child_args).cast_mut().cast(),
                )
            }
        };
        if pid == -1 {
            return Err(io::Error::last_os_error());
        }
        let mut process = Process {
            pid: Pid::from_raw(pid),
            collected: None,
        };
        match child_args.error.load(Ordering::Relaxed) {
            0 => Ok(process),
            errno => {
                process.wait();
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }
}

/// `items` as a C array of pointers, ending with a null one.
fn null_terminated(items: &[CString]) -> Vec<*const c_char> {
    items
        .iter()
        .map(|item| item.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A copy of `fd` above 2 (closed on exec), where `fd` is 0, 1 or 2.
fn lift(fd: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    if fd.as_raw_fd() > 2 {
        return Ok(None);
    }
    Ok(Some(
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
            .map(|raw| {
                // SAFETY: `raw` was just made by F_DUPFD_CLOEXEC and is owned by nothing else.
                unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) }
            })
            .map_err(io::Error::from)?,
    ))
}

/// The child, between the clone and its exec: subreaper, own process group, descriptors,
/// working directory, SIGPIPE back to its default (Rust ignores it), signals unblocked, exec.
/// On a failure it leaves `errno` in `error` and exits.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while the parent is suspended.
    let args = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: plain system calls on the values `Spawn::start` prepared; none allocates.
    unsafe {
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1 || libc::setpgid(0, 0) == -1
        {
            child_failed(args);
        }
        for (target, &fd) in args.stdio.iter().enumerate() {
            if libc::dup2(fd, target as c_int) == -1 {
                child_failed(args);
            }
        }
        // Above 2 (lifted), so the moves to 0, 1 and 2 left it alone; one already at 3 only
        // loses its close-on-exec.
        if args.fd3 >= 0 {
            let moved = if args.fd3 == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(args.fd3, 3)
            };
            if moved == -1 {
                child_failed(args);
            }
        }
        if libc::chdir(args.cwd) == -1 {
            child_failed(args);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(args.program, args.argv, args.envp);
    }
    child_failed(args)
}

/// The child's way out when a step failed: `errno` for the parent, then exit.
fn child_failed(args: &ChildArgs) -> ! {
    args.error
        .store(Errno::last_raw().max(1), Ordering::Relaxed);
    // SAFETY: _exit ends the child without running anything of the parent's (no atexit
    // handlers, no buffers flushed from the shared memory).
    unsafe { libc::_exit(127) }
}

/// Every signal blocked for the calling thread, until dropped.
struct BlockedSignals(libc::sigset_t);

impl BlockedSignals {
    fn new() -> io::Result<BlockedSignals> {
        // SAFETY: sigset_t is plain data, filled by sigfillset; pthread_sigmask writes the old
        // mask into `old`.
        unsafe {
            let mut all = std::mem::zeroed::<libc::sigset_t>();
            let mut old = std::mem::zeroed::<libc::sigset_t>();
            libc::sigfillset(&mut all);
            match libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) {
                0 => Ok(BlockedSignals(old)),
                err => Err(io::Error::from_raw_os_error(err)),
            }
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut());
        }
    }
}

impl Process {
    pub fn id(&self) -> Pid {
        self.pid
    }

    /// Kills it with SIGKILL, unless it has been collected (its pid may be another's by then).
    pub fn kill(&self) {
        if self.collected.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
    }

    /// Waits for it to end and collects it: its exit code, or 128 + the signal that killed it
    /// (as a shell reports it); `None` when it was collected elsewhere.
    pub fn wait(&mut self) -> Option<i32> {
        while self.collected.is_none() {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                Ok(status) => self.collected = Some(code(status)),
                // Not a child to wait for any more: another waiter collected it.
                Err(_) => self.collected = Some(None),
            }
        }
        self.collected.flatten()
    }

    /// Whether it has ended (collecting it if so), without waiting.
    pub fn has_ended(&mut self) -> bool {
        if self.collected.is_none() {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return false,
                Ok(status) => self.collected = Some(code(status)),
                Err(Errno::EINTR) => return false,
                Err(_) => self.collected = Some(None),
            }
        }
        true
    }
}

fn code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

/// Where `program` is, searched for as `execvp` does: as given when it holds a `/`, else in the
/// environment's `PATH`. A shell that is not there is pushbuild's failure to start it, so it is
/// found here rather than by the keeper.
pub fn find_program(program: &str, env: &[(String, String)]) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let not_found = || io::Error::new(io::ErrorKind::NotFound, format!("`{program}` not found"));
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if runnable(&path) {
            Ok(path)
        } else {
            Err(not_found())
        };
    }
    let search = env
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map_or("/usr/local/bin:/usr/bin:/bin", |(_, value)| value.as_str());
    search
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|path| runnable(path))
        .ok_or_else(not_found)
}

#[cfg(test)]
#[path = "spawn_tests.rs"]
mod tests;
