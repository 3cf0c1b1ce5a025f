//! Benchmark of artifact packaging against Info-ZIP: makes 2,000 files totalling 200 MiB (text-like
//! and random, some executable, a few large), then times `select` + `write_zip` to a file and
//! `zip -r -q -1` of the same directory, best of 3 each.
//!
//! Run with `cargo bench --bench zip_bench` or `bench/artifacts.sh`. Environment:
//! `ZIP_BENCH_FILES` (default 2000), `ZIP_BENCH_MIB` (default 200), `ZIP_BENCH_RUNS` (default 3), `ZIP_BENCH_LEVEL` (deflate level, default 1).

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pushbuild::artifacts::{ZipOptions, select, write_zip_with};
use pushbuild::buildspec::ArtifactSet;

type Error = Box<dyn std::error::Error>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "build",
    "phase",
    "artifact",
    "install",
    "cache",
    "error",
    "warning",
    "compile",
    "link",
    "test",
    "passed",
    "failed",
    "duration",
    "bytes",
    "upload",
    "s3",
    "lambda",
    "docker",
    "npm",
    "cargo",
    "target",
    "release",
    "debug",
    "info",
    "src/main.rs",
    "12",
    "345",
    "6789",
    "0x1f",
    "{",
    "}",
    "(",
    ")",
    ";",
    "=",
    "return",
    "function",
    "const",
    "let",
    "import",
];

/// Writes `len` bytes of text-like (compressible about 3-5x) or random data.
fn make_file(path: &Path, len: u64, text: bool, rng: &mut Rng) -> Result<(), Error> {
    let mut out = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut written = 0u64;
    let mut line = Vec::with_capacity(256);
    while written < len {
        line.clear();
        if text {
            for _ in 0..(4 + rng.below(10)) {
                line.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
                line.push(b' ');
            }
            line.push(b'\n');
        } else {
            for _ in 0..32 {
                line.extend_from_slice(&rng.next().to_le_bytes());
            }
        }
        let take = line.len().min((len - written) as usize);
        out.write_all(&line[..take])?;
        written += take as u64;
    }
    out.flush()?;
    Ok(())
}

/// Makes `files` files totalling `total` bytes: ten large ones hold 40%, the rest vary in size.
fn make_tree(root: &Path, files: u64, total: u64) -> Result<(), Error> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let big_count = 10.min(files);
    let big_size = total * 4 / 10 / big_count.max(1);
    let small_count = files - big_count;
    let small_total = total - big_size * big_count;
    // Sizes vary around the mean, from 1% to 199% of it, summing exactly to small_total.
    let mean = small_total / small_count.max(1);
    let mut sizes: Vec<u64> = (0..small_count)
        .map(|_| mean / 100 + rng.below(mean * 198 / 100))
        .collect();
    let sum: u64 = sizes.iter().sum();
    if let Some(last) = sizes.last_mut() {
        *last = (*last + small_total).saturating_sub(sum).max(1);
    }
    sizes.extend(std::iter::repeat_n(big_size, big_count as usize));
    for (i, size) in sizes.into_iter().enumerate() {
        let dir = root.join(format!("module{:02}/sub{}", i % 40, i % 3));
        fs::create_dir_all(&dir)?;
        let text = i % 5 < 3; // 60% text-like, 40% random
        let name = if text {
            format!("file{i}.txt")
        } else {
            format!("blob{i}.bin")
        };
        let path = dir.join(name);
        make_file(&path, size, text, &mut rng)?;
        if i % 10 == 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

fn best_of(runs: u64, mut f: impl FnMut() -> Result<(), Error>) -> Result<Duration, Error> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        best = best.min(start.elapsed());
    }
    Ok(best)
}

/// Peak resident memory of this process since the last reset, from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

fn main() -> Result<(), Error> {
    let files = env_or("ZIP_BENCH_FILES", 2000);
    let total = env_or("ZIP_BENCH_MIB", 200) << 20;
    let runs = env_or("ZIP_BENCH_RUNS", 3);
    let work = tempfile::tempdir()?;
    let src = work.path().join("src");
    fs::create_dir(&src)?;
    let made = Instant::now();
    make_tree(&src, files, total)?;
    println!(
        "made {files} files, {} MiB, in {:.1?}",
        total >> 20,
        made.elapsed()
    );

    let ours_zip = work.path().join("ours.zip");
    let spec = ArtifactSet {
        files: vec!["**/*".into()],
        ..ArtifactSet::default()
    };
    let options = ZipOptions {
        level: env_or("ZIP_BENCH_LEVEL", 1) as u32,
        ..ZipOptions::default()
    };
    let mut summary = None;
    reset_peak_rss();
    let ours = best_of(runs, || {
        let selection = select(&src, &spec)?;
        let out = fs::File::create(&ours_zip)?;
        summary = Some(write_zip_with(&selection.entries, out, &options)?);
        Ok(())
    })?;
    let rss = peak_rss_kib();
    let summary = summary.ok_or("no run")?;

    let theirs_zip = work.path().join("theirs.zip");
    let theirs = best_of(runs, || {
        let _ = fs::remove_file(&theirs_zip);
        let status = Command::new("zip")
            .args(["-r", "-q", "-1"])
            .arg(&theirs_zip)
            .arg(".")
            .current_dir(&src)
            .status()?;
        if !status.success() {
            return Err(format!("zip failed: {status}").into());
        }
        Ok(())
    })?;
    let theirs_size = fs::metadata(&theirs_zip)?.len();

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("cores: {cores}, best of {runs}");
    println!(
        "pushbuild write_zip: {:>8.3} s  {:>10} bytes  ({} entries, {} bytes in){}",
        ours.as_secs_f64(),
        summary.bytes_out,
        summary.entries,
        summary.bytes_in,
        rss.map_or(String::new(), |kib| format!(
            ", peak RSS {} MiB",
            kib / 1024
        )),
    );
    println!(
        "zip -r -q -1:        {:>8.3} s  {:>10} bytes",
        theirs.as_secs_f64(),
        theirs_size
    );
    println!(
        "ratio (ours / zip):  {:.2}x time, {:.3}x size",
        ours.as_secs_f64() / theirs.as_secs_f64(),
        summary.bytes_out as f64 / theirs_size as f64
    );
    Ok(())
}
