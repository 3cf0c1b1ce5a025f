//! Benchmark of the S3 store's streaming upload: writes a 1 GiB artifact-like object (random,
//! so incompressible like a zip; made on the fly, never held whole) through
//! `S3Store::writer` in 256 KiB writes, as the zip writer does, to an s3s-fs server, then
//! reports the time and pushbuild's peak memory (VmHWM) before and after.
//!
//! The server (the tests' `s3_server` module) runs in a child process, this same binary started
//! with `--serve`, so the peak memory measured here is the uploader's alone; the server's is
//! reported beside it. Target: pushbuild's own peak stays under 128 MB.
//!
//! Run with `cargo bench --bench s3_upload_bench`. Environment: `S3_BENCH_MIB` (default 1024),
//! `S3_BENCH_PART_MIB` (default 8), `S3_BENCH_PARALLEL` (default 4).

#[path = "../tests/it/s3_server.rs"]
mod s3_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use pushbuild::store::{ObjectMeta, S3Store, Store};

type Error = Box<dyn std::error::Error>;

const MIB: u64 = 1 << 20;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of `/proc/<pid>/status` in kB (`VmHWM`, `VmRSS`).
fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("?".into(), |kb| {
        format!("{:.1} MB", kb as f64 * 1024.0 / 1e6)
    })
}

/// The server side: start s3s-fs, say where it listens, serve until standard input closes.
fn serve() -> Result<(), Error> {
    let server = s3_server::S3Server::start();
    println!("{}", server.endpoint);
    std::io::stdout().flush()?;
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest)?;
    drop(server);
    Ok(())
}

fn main() -> Result<(), Error> {
    if std::env::args().any(|arg| arg == "--serve") {
        return serve();
    }
    let total = env_or("S3_BENCH_MIB", 1024) * MIB;
    let part_size = env_or("S3_BENCH_PART_MIB", 8) * MIB;
    let parallel = env_or("S3_BENCH_PARALLEL", 4);

    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut endpoint = String::new();
    let stdout = child.stdout.take().ok_or("no stdout from the server")?;
    BufReader::new(stdout).read_line(&mut endpoint)?;
    let endpoint = endpoint.trim().to_string();
    if endpoint.is_empty() {
        return Err("the server did not start".into());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store = {
        let _inside = runtime.enter();
        S3Store::from_conf(
            &s3_server::sdk_config_for(&endpoint),
            s3_server::BUCKET,
            true,
        )?
        .with_part_size(usize::try_from(part_size)?)
        .with_parallel_parts(usize::try_from(parallel)?)
    };
    // Warm up the client (credentials, connection) with a small object.
    store.put("warmup.txt", b"warm", &ObjectMeta::default())?;
    let me = std::process::id().to_string();
    let before = status_kb(&me, "VmHWM");

    let meta = ObjectMeta {
        content_type: "application/zip".into(),
        metadata: vec![("build-id".into(), "bench".into())],
    };
    let started = Instant::now();
    let mut writer = store.writer("artifacts/bench/b1/big.zip", &meta)?;
    let mut chunk = vec![0u8; 256 * 1024];
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut written = 0u64;
    while written < total {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = usize::try_from((total - written).min(chunk.len() as u64))?;
        writer.write_all(&chunk[..n])?;
        written += n as u64;
    }
    let uri = writer.commit()?;
    let elapsed = started.elapsed();
    let after = status_kb(&me, "VmHWM");
    let server_peak = status_kb(&child.id().to_string(), "VmHWM");

    let head = runtime.block_on(
        store
            .client()
            .head_object()
            .bucket(store.bucket())
            .key("artifacts/bench/b1/big.zip")
            .send(),
    )?;
    let stored = head.content_length().unwrap_or(-1);
    drop(child.stdin.take());
    let _ = child.wait();
    if u64::try_from(stored).ok() != Some(total) {
        return Err(format!("stored {stored} bytes, wrote {total}").into());
    }

    let secs = elapsed.as_secs_f64();
    println!(
        "s3 upload: {} MiB to {uri} in {secs:.2} s ({:.0} MiB/s), part {} MiB x {parallel} in flight, ETag {}",
        total / MIB,
        (total / MIB) as f64 / secs,
        part_size / MIB,
        head.e_tag().unwrap_or("?"),
    );
    println!(
        "pushbuild peak RSS (VmHWM): {} before the upload, {} after (target < 128 MB); \
         buffers bound: {} MiB",
        mb(before),
        mb(after),
        part_size * (parallel + 1) / MIB,
    );
    println!(
        "s3s-fs server (separate process) peak RSS: {}",
        mb(server_peak)
    );
    Ok(())
}
