use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};

use super::*;

fn env() -> Vec<(String, String)> {
    vec![
        ("PATH".to_string(), "/usr/bin:/bin".to_string()),
        ("ONE".to_string(), "first".to_string()),
        ("ONE".to_string(), "last".to_string()),
    ]
}

/// Runs `program` with `args` in `cwd`: its output and exit code, and its pid.
fn run(program: &str, args: &[&str], cwd: &Path) -> (String, Option<i32>, Pid) {
    let (stdin, _keep) = io::pipe().unwrap();
    let (mut out, writer) = io::pipe().unwrap();
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let env = env();
    let mut process = Spawn {
        program: Path::new(program),
        args: &args,
        env: &env,
        cwd,
        stdio: [stdin.as_fd(), writer.as_fd(), writer.as_fd()],
        fd3: None,
    }
    .start()
    .unwrap();
    drop(writer);
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let pid = process.id();
    (text, process.wait(), pid)
}

/// Runs `script` under /bin/sh in `cwd`.
fn sh(script: &str, cwd: &Path) -> (String, Option<i32>, Pid) {
    run("/bin/sh", &["sh", "-c", script], cwd)
}

/// Starts `program` with `args` in `cwd`, its standard input, output and error all `fd`.
fn start(program: &str, args: &[&str], cwd: &Path, fd: BorrowedFd<'_>) -> io::Result<Process> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    Spawn {
        program: Path::new(program),
        args: &args,
        env: &env(),
        cwd,
        stdio: [fd, fd, fd],
        fd3: None,
    }
    .start()
}

#[test]
fn the_child_has_its_arguments_environment_directory_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let (text, code, _) = sh("pwd; env | sort; echo err >&2; exit 3", dir.path());
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(
        text,
        format!(
            "{}\nONE=last\nPATH=/usr/bin:/bin\nPWD={}\nerr\n",
            cwd.display(),
            cwd.display()
        )
    );
    assert_eq!(code, Some(3));
}

#[test]
fn the_child_leads_its_own_group_with_sigpipe_at_its_default_and_no_signal_blocked() {
    let dir = tempfile::tempdir().unwrap();
    // `cat` reports on itself: the child as it was when it exec'd.
    let (text, code, pid) = run(
        "/bin/cat",
        &["cat", "/proc/self/stat", "/proc/self/status"],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{text}");
    // stat: pid (comm) state ppid pgrp …
    let after_comm = &text[text.find(") ").unwrap() + 2..];
    let pgrp: i32 = after_comm.split(' ').nth(2).unwrap().parse().unwrap();
    assert_eq!(pgrp, pid.as_raw(), "{text}");
    let mask = |name: &str| {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "{text}");
    assert_eq!(mask("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{text}");
}

#[test]
fn the_child_is_a_subreaper_for_what_its_children_leave() {
    let dir = tempfile::tempdir().unwrap();
    // The inner shell ends at once, leaving `sleep` an orphan: adopted by the child, not init.
    let (text, code, pid) = sh(
        "sh -c 'sleep 30 & echo $! > orphan'; orphan=$(cat orphan); \
         parent=$(cut -d' ' -f4 /proc/$orphan/stat); kill $orphan; echo $parent",
        dir.path(),
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.trim(), pid.as_raw().to_string());
}

#[test]
fn a_killed_child_reports_128_and_the_signal_and_is_not_killed_after_it_is_collected() {
    let dir = tempfile::tempdir().unwrap();
    let (stdin, _keep) = io::pipe().unwrap();
    let mut process = start(
        "/bin/sh",
        &["sh", "-c", "read -r x"],
        dir.path(),
        stdin.as_fd(),
    )
    .unwrap();
    assert!(!process.has_ended());
    process.kill();
    assert_eq!(process.wait(), Some(128 + libc::SIGKILL));
    assert!(process.has_ended());
    // Collected: a second kill sends nothing (the pid may be another process's by now).
    process.kill();
    assert_eq!(process.wait(), Some(128 + libc::SIGKILL));
}

#[test]
fn a_program_or_directory_that_is_not_there_is_the_starts_error() {
    let dir = tempfile::tempdir().unwrap();
    let (stdin, _keep) = io::pipe().unwrap();
    let fd = stdin.as_fd();
    let missing = start("/no/such/program", &["x"], dir.path(), fd).unwrap_err();
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    let gone = start("/bin/sh", &["x"], &dir.path().join("gone"), fd).unwrap_err();
    assert_eq!(gone.kind(), io::ErrorKind::NotFound);
    let nul = start("/bin/sh", &["a\0b"], dir.path(), fd).unwrap_err();
    assert_eq!(nul.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_descriptor_below_3_is_lifted_above_2_before_the_moves() {
    let stdout = io::stdout();
    let lifted = lift(stdout.as_fd()).unwrap().unwrap();
    assert!(lifted.as_raw_fd() > 2);
    let (reader, _writer) = io::pipe().unwrap();
    if reader.as_fd().as_raw_fd() > 2 {
        assert!(lift(reader.as_fd()).unwrap().is_none());
    }
}

#[test]
fn a_child_collected_by_another_waiter_has_ended_with_no_code() {
    let dir = tempfile::tempdir().unwrap();
    let (stdin, _keep) = io::pipe().unwrap();
    let mut process = start(
        "/bin/sh",
        &["sh", "-c", "exit 5"],
        dir.path(),
        stdin.as_fd(),
    )
    .unwrap();
    // Another waiter (a sweep of every exited child, say) collects it first.
    assert_eq!(
        waitpid(process.id(), None).unwrap(),
        WaitStatus::Exited(process.id(), 5)
    );
    assert!(process.has_ended());
    assert_eq!(process.wait(), None);
}
