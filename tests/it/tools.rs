//! What the tests need from outside Rust, found or installed before it is used:
//! - the Python tools (moto's server, cfn-lint, hadolint), pinned in `tests/tools/requirements.txt`
//!   and installed on first use by `tests/tools/ensure` into a virtual environment under
//!   `target/test-tools/`: a machine's own Python packages are never what a test runs;
//! - the programs only root can install (Debian's `chromium` and `chromium-driver`, `git`,
//!   `unzip`, `zip`): when one is missing, the test binary says so in one line, with the command
//!   that installs it, before any test runs (the tests that need it then fail; none is skipped).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The programs the tests run that only root can install, each with its Debian package.
const SYSTEM_PROGRAMS: [(&str, &str); 5] = [
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    ("git", "git"),
    ("unzip", "unzip"),
    ("zip", "zip"),
];

/// Runs before any test (from the binary's initialisers): names the system programs that are
/// missing, in one line.
extern "C" fn before_any_test() {
    let missing: Vec<&str> = SYSTEM_PROGRAMS
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "pushbuild's tests need Debian packages that are not installed (the tests that use \
             them will fail); as root: apt-get install -y {}",
            missing.join(" ")
        );
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_ANY_TEST: extern "C" fn() = before_any_test;

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| std::fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file()))
    })
}

/// The `bin` folder of the tests' Python environment, made on first use (about a minute, once
/// per machine); the reason when it cannot be made, the same for every test that asks.
pub fn python_bin() -> Result<&'static Path, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(ensure).as_deref().map_err(Clone::clone)
}

/// The environment's Python.
pub fn python() -> Result<PathBuf, String> {
    python_bin().map(|bin| bin.join("python"))
}

fn ensure() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("tests/tools/ensure"))
        .arg(target_dir().join("test-tools"))
        .output()
        .map_err(|err| format!("python3 does not run ({err}): the tests need Python 3"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Cargo's target directory: the test binary is `<target>/<profile>/deps/<name>`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}
