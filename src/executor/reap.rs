//! Nothing a build starts outlives it.
//!
//! A process that leaves its group or session (`setsid`, a double fork, `nohup … &`) escapes a
//! kill of the group, and without more it would be adopted by init and live on: on Lambda, into
//! the next build in the same sandbox, which may be another repository's. Linux's child
//! subreaper (`PR_SET_CHILD_SUBREAPER`) closes that gap: an orphan is adopted by its nearest
//! subreaper ancestor instead of init, so it stays in that ancestor's tree whatever session it
//! joins. The build's shell runs under a keeper process that is one (see `shell.rs`); when the
//! build ends, [`kill_tree`] kills every process in the keeper's tree, found through `/proc`.
//!
//! A process that kills its own keeper escapes to the next subreaper up: the Lambda function and
//! `pushbuild run` and `invoke` are one themselves ([`become_subreaper`]) and sweep their own
//! tree when their builds are done ([`sweep_own_tree`]).

use std::collections::HashMap;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How many times the tree is searched and killed before giving up (a process that forks
/// between a search and the kill is found by the next search).
const ROUNDS: usize = 200;
/// The pause between rounds, for killed processes to exit.
const ROUND_PAUSE: Duration = Duration::from_millis(2);

/// Makes the calling process a child subreaper: orphans among its descendants are adopted by it,
/// not by init. Linux only; elsewhere this does nothing.
pub fn become_subreaper() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_child_subreaper(true)?;
    Ok(())
}

/// Keeps this process's own `/proc` files private: not dumpable, its `environ`, `mem`, `maps`
/// and `fd` are readable by root only. A build runs as the same user as the pushbuild that runs
/// it, and could otherwise read from `/proc/<pid>/environ` of its keeper's parent the settings
/// pushbuild keeps from its builds (`PUSHBUILD_*`: webhook secrets and host tokens where they
/// are set as variables), and from `mem` the secrets it has read. What pushbuild execs (the
/// keeper, the build's shell) is dumpable again. Linux only; elsewhere this does nothing.
pub fn keep_own_files_private() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_dumpable(false)?;
    Ok(())
}

/// The live (not yet exited) processes below `root`, found through `/proc`: `root`'s children,
/// their children, and so on.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, ppid)) = parse_stat(&stat) {
            // A zombie has exited; it only waits for its parent to collect it.
            if state != 'Z' && state != 'X' {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut found = Vec::new();
    let mut next = vec![root.as_raw()];
    while let Some(parent) = next.pop() {
        if let Some(kids) = children.get(&parent) {
            for &kid in kids {
                found.push(Pid::from_raw(kid));
                next.push(kid);
            }
        }
    }
    found
}

/// Whether `root` has no child at all, live or exited, as its threads' `children` files say
/// (`false` when they cannot be read). Without a child, nothing is below it: an orphan joins
/// the tree of its nearest subreaper ancestor, so every process below `root` descends from one
/// of its children. Reading these few files is much cheaper than reading every process's
/// `stat`. (The kernel documents the list as unreliable while children come and go, which is
/// about reading a long list in parts; an empty list is one read, and with no child there is
/// nobody below `root` to create one.)
fn childless(root: Pid) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{root}/task")) else {
        return false;
    };
    let mut read_any = false;
    for task in tasks {
        let Ok(task) = task else {
            return false;
        };
        match std::fs::read(task.path().join("children")) {
            Ok(children) if children.iter().all(u8::is_ascii_whitespace) => read_any = true,
            _ => return false,
        }
    }
    read_any
}

/// The state and parent pid from `/proc/<pid>/stat`: `pid (comm) S ppid …`, where `comm` may
/// itself hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Kills every process below `root` (not `root` itself), searching again after each kill until
/// the tree is empty; returns whether it is. A process that exits on its own meanwhile is no
/// matter.
pub fn kill_tree(root: Pid) -> bool {
    for _ in 0..ROUNDS {
        if childless(root) {
            return true;
        }
        let found = descendants(root);
        if found.is_empty() {
            return true;
        }
        for pid in found {
            // SIGKILL cannot be caught or ignored, and reaches a stopped process too.
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(ROUND_PAUSE);
    }
    descendants(root).is_empty()
}

/// For a process that is a subreaper ([`become_subreaper`]) and has no child of its own left
/// running: kills whatever its builds left in its tree and collects the exited ones. Call only
/// when no build is running in this process (it may collect any child).
pub fn sweep_own_tree() -> usize {
    // Everything below this process descends from one of its children (an orphan is adopted by
    // it): with no child at all, live or exited, there is nothing to find, and `/proc` is not
    // searched (about a millisecond at the end of every build).
    if !collect_exited() {
        return 0;
    }
    let me = nix::unistd::getpid();
    let left = descendants(me).len();
    if left > 0 {
        tracing::warn!(processes = left, "processes left by a build were killed");
        kill_tree(me);
    }
    collect_exited();
    left
}

/// Collects this process's exited children; whether it has any child left (a live one, or one
/// it cannot tell about).
fn collect_exited() -> bool {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return false,
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_with_a_child_is_not_childless_and_one_without_is() {
        let mut parent = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :"])
            .spawn()
            .unwrap();
        let mut alone = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = |child: &std::process::Child| Pid::from_raw(child.id() as i32);
        // The shell starts its `sleep` a moment after it starts.
        let started = std::time::Instant::now();
        while childless(pid(&parent)) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!childless(pid(&parent)));
        assert!(childless(pid(&alone)));
        assert!(kill_tree(pid(&parent)));
        for child in [&mut parent, &mut alone] {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            !childless(Pid::from_raw(i32::MAX)),
            "no such process: not known childless"
        );
    }

    #[test]
    fn stat_lines_give_state_and_parent() {
        assert_eq!(parse_stat("42 (bash) S 7 42 42 0"), Some(('S', 7)));
        assert_eq!(
            parse_stat("43 (a) b (c)) Z 1 43 43 0"),
            Some(('Z', 1)),
            "a name with spaces and parentheses"
        );
        assert_eq!(parse_stat("44 (x"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn a_tree_is_killed_whatever_session_its_processes_joined() {
        // Given a shell that is a subreaper and leaves a session leader, a double-forked
        // process and a nohup'd one behind it,
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new("sh");
        command.arg("-c").arg(
            "setsid sleep 3001 & (sleep 3002 &) ; nohup sleep 3003 >/dev/null 2>&1 & \
             echo started; exec sleep 3004",
        );
        command.stdout(std::process::Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(become_subreaper);
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let root = Pid::from_raw(child.id() as i32);
        // (the double fork's parent may take a moment to exit and hand its child over)
        let mut found = descendants(root);
        for _ in 0..500 {
            if found.len() >= 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
            found = descendants(root);
        }
        assert!(found.len() >= 3, "{found:?}");
        // when the tree is killed, then nothing is left below the root.
        assert!(kill_tree(root));
        assert!(descendants(root).is_empty());
        let _ = child.kill();
        let _ = child.wait();
    }
}
