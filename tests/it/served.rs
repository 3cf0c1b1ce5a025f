//! `pushbuild serve` started for a test or a benchmark: the real binary on a free loopback port,
//! over a given store, and where it listens (its first line on standard error says).

#![allow(dead_code)] // The benchmarks include this file too.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `pushbuild serve`; stopped when dropped.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// What it logged before it listened.
    pub startup: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Its process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Starts `pushbuild serve --listen 127.0.0.1:0 --store STORE ARGS` with only `env` (and
/// `PATH`, `HOME` and `PUSHBUILD_WORK_DIR` = `work`) in its environment.
pub fn serve(store: &Path, work: &Path, args: &[&str], env: &[(&str, String)]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(store)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", work)
        .env("PUSHBUILD_WORK_DIR", work)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pushbuild serve starts");
    let pipe = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Lines are kept until it listens; after, only read (the pipe must not fill).
        let mut startup = Some(Vec::new());
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let Some(lines) = startup.as_mut() else {
                continue;
            };
            match line.split("listening on ").nth(1) {
                Some(url) => {
                    let url = url
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send((url, startup.take().unwrap_or_default()));
                }
                None => lines.push(line),
            }
        }
    });
    let (url, startup) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("pushbuild serve says where it listens");
    Served {
        child,
        url,
        startup,
    }
}
