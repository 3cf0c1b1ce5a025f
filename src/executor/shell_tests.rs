use super::*;
use crate::executor::output::split_output;

type Session = (
    ShellSession,
    BuildLog,
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
);

fn session(shell: Shell, dir: &Path) -> Session {
    session_in(shell, dir, dir)
}

/// A session in `dir` whose command file is in `ctl`.
fn session_in(shell: Shell, dir: &Path, ctl: &Path) -> Session {
    let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = BuildLog::new(
        Box::new(SharedWriter(bytes.clone())),
        super::super::log::Echo::Off,
    );
    let env = vec![(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    )];
    let session = ShellSession::start(shell, dir, &env, ctl, &log).unwrap();
    (session, log, bytes)
}

struct SharedWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn output(bytes: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> Vec<String> {
    let text = String::from_utf8_lossy(&bytes.lock().unwrap()).into_owned();
    // Markers lose `[Container]` and their timestamp; output lines are as printed.
    text.lines()
        .map(|l| match l.strip_prefix("[Container] ") {
            Some(rest) => rest.splitn(3, ' ').nth(2).unwrap_or("").to_string(),
            None => l.to_string(),
        })
        .collect()
}

#[test]
fn state_carries_between_commands_in_both_shells() {
    for shell in [Shell::Bash, Shell::Sh] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let (mut s, _log, bytes) = session(shell, dir.path());
        assert_eq!(
            s.run(
                "cd sub; export A=1; B=2; f() { echo f$1; }",
                &Deadline::default()
            )
            .unwrap(),
            CommandEnd::Exited(0)
        );
        assert_eq!(
            s.run("echo $A$B; f x; basename \"$PWD\"", &Deadline::default())
                .unwrap(),
            CommandEnd::Exited(0)
        );
        assert_eq!(
            s.run("false\ntrue", &Deadline::default()).unwrap(),
            CommandEnd::Exited(0)
        );
        assert_eq!(
            s.run("true\nfalse", &Deadline::default()).unwrap(),
            CommandEnd::Exited(1)
        );
        assert_eq!(
            s.run("printf 'no newline'; exit 3", &Deadline::default())
                .unwrap(),
            CommandEnd::ShellEnded(3)
        );
        s.finish();
        assert_eq!(
            output(&bytes),
            ["12", "fx", "sub", "no newline"],
            "{shell:?}"
        );
    }
}

#[test]
fn commands_cannot_read_the_control_stream_or_hide_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _log, bytes) = session(Shell::Bash, dir.path());
    assert_eq!(
        s.run("cat; echo read-nothing", &Deadline::default())
            .unwrap(),
        CommandEnd::Exited(0)
    );
    assert_eq!(
        s.run("exec >/dev/null; echo hidden", &Deadline::default())
            .unwrap(),
        CommandEnd::Exited(0)
    );
    assert_eq!(
        s.run("(exit 7)", &Deadline::default()).unwrap(),
        CommandEnd::Exited(7)
    );
    s.finish();
    assert_eq!(output(&bytes), ["read-nothing"]);
    assert!(!String::from_utf8_lossy(&bytes.lock().unwrap()).contains("PUSHBUILD"));
}

#[test]
fn a_deadline_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _log, _bytes) = session(Shell::Bash, dir.path());
    let pid_file = dir.path().join("pid");
    let cmd = format!("sleep 30 & echo $! > {}; sleep 30", pid_file.display());
    let started = Instant::now();
    let end = s
        .run(
            &cmd,
            &Deadline::new(Some(Instant::now() + Duration::from_millis(500))),
        )
        .unwrap();
    assert_eq!(end, CommandEnd::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The background sleep was in the group: it is gone (or a zombie being reaped by init).
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.contains(") Z "))
            .unwrap_or(false)
    };
    // SIGKILL is delivered at once, but the process takes a moment to end.
    let until = Instant::now() + Duration::from_secs(2);
    while alive() && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    let alive = alive();
    assert!(!alive, "background process {pid} survived the deadline");
    assert!(
        s.run("true", &Deadline::default())
            .unwrap()
            .status()
            .is_some()
    );
}

#[test]
fn markers_split_across_reads_are_found() {
    let marker = b"\x1eM:".to_vec();
    let (tx, rx) = mpsc::channel();
    let log = BuildLog::sink();
    let mut buf = b"out1\npartial\x1eM".to_vec();
    let (used, markers) = split_output(&buf, &marker, &log, &tx);
    assert_eq!((used, markers), (5, 0), "only the complete line is used");
    buf.drain(..used);
    buf.extend_from_slice(b":42\nnext\n");
    let (used, markers) = split_output(&buf, &marker, &log, &tx);
    assert_eq!((used, markers), (buf.len(), 1));
    assert!(matches!(rx.try_recv(), Ok(Event::Status(42))));
    assert!(rx.try_recv().is_err());
}

#[test]
fn what_is_left_for_the_next_read_is_never_longer_than_a_line_may_be() {
    let marker = b"\x1eM:".to_vec();
    let (tx, _rx) = mpsc::channel();
    let log = BuildLog::sink();
    let max = 256 * 1024;
    for tail in [max - 1, max + 1, 3 * max] {
        let mut buf = b"first\n".to_vec();
        buf.extend(std::iter::repeat_n(b'x', tail));
        let (used, _) = split_output(&buf, &marker, &log, &tx);
        assert!(used >= 6, "the complete line is used");
        assert!(buf.len() - used <= max, "{tail}: {} left", buf.len() - used);
    }
}

#[test]
fn a_session_writes_its_commands_in_turn_to_one_file() {
    let dir = tempfile::tempdir().unwrap();
    // The file's path is quoted into the shell's loop: a quote in it is the path's own.
    let ctl = tempfile::Builder::new()
        .prefix("it's $HOME ")
        .tempdir()
        .unwrap();
    let (mut s, _log, bytes) = session_in(Shell::Sh, dir.path(), ctl.path());
    // A long command, then a shorter one: nothing of the first is left to run again.
    let long = "echo one\necho two\necho three";
    for text in [long, "echo four", "echo five"] {
        assert_eq!(
            s.run(text, &Deadline::default()).unwrap(),
            CommandEnd::Exited(0)
        );
    }
    let files: Vec<_> = std::fs::read_dir(ctl.path()).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    s.finish();
    assert_eq!(output(&bytes), ["one", "two", "three", "four", "five"]);
}

#[test]
fn an_ended_session_has_run_its_exit_traps_and_its_tail_collects_the_keeper() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _log, bytes) = session(Shell::Sh, dir.path());
    assert_eq!(
        s.run("trap 'echo trapped' EXIT; sleep 30 &", &Deadline::default())
            .unwrap(),
        CommandEnd::Exited(0)
    );
    let tail = s.end();
    // The shell's last words are in the log before `end` returns; what it left is killed.
    assert_eq!(output(&bytes), ["trapped"]);
    let keeper = tail.0.child.id();
    let stat = std::fs::read_to_string(format!("/proc/{keeper}/stat")).unwrap_or_default();
    assert!(
        !stat.is_empty(),
        "the keeper is collected by the tail, not before"
    );
    tail.collect();
    assert!(
        !Path::new(&format!("/proc/{keeper}")).exists(),
        "the keeper is collected"
    );
}
