//! `pushbuild serve` under load: signed GitHub pushes at a steady rate (200 a second for 60 s by
//! default) from 32 sending threads, each a new delivery, against the real binary with
//! `--jobs 4` and its default queue, its builds fetching from git's own `git http-backend`.
//! Prints, per second, the deliveries accepted (202) and refused (503, each checked for its
//! `Retry-After`); the p50, p99 and worst answer; `serve`'s peak memory (its resident set,
//! sampled every 100 ms, and the kernel's high-water mark); then waits for every accepted
//! delivery's build to be recorded (nothing accepted is lost) and says how long that took.
//! Run: `cargo bench --bench load_bench` (LOAD_BENCH_RATE, LOAD_BENCH_SECONDS, LOAD_BENCH_JOBS
//! set the rate, the length and `--jobs`).

#[path = "../tests/it/codecommit_standin.rs"]
mod codecommit_standin;
#[path = "../tests/it/codecommit_standin_ops.rs"]
#[allow(dead_code)]
mod codecommit_standin_ops;
#[path = "../tests/it/git_server.rs"]
mod git_server;
#[path = "../tests/it/github_api.rs"]
mod github_api;
#[path = "../tests/it/hooks.rs"]
mod hooks;
#[path = "../tests/it/loopback.rs"]
mod loopback;
#[path = "../tests/it/served.rs"]
mod served;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One answer: when it was sent (from the start), its status, how long it took.
struct Sent {
    at: Duration,
    status: u16,
    took: Duration,
}

/// `serve`'s resident set, and its high-water mark, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let rate = setting("LOAD_BENCH_RATE", 200);
    let seconds = setting("LOAD_BENCH_SECONDS", 60);
    let jobs = setting("LOAD_BENCH_JOBS", 4).to_string();
    let repos = tempfile::tempdir().expect("temp dir");
    let commits = hooks::hosted_repository(repos.path());
    let git = git_server::GitServer::start(repos.path(), hooks::TOKEN);
    let api = github_api::GitHubApi::start(hooks::TOKEN);
    let store = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let served = served::serve(
        store.path(),
        work.path(),
        &["--jobs", &jobs],
        &[
            ("PUSHBUILD_GITHUB_WEBHOOK_SECRET", hooks::SECRET.to_string()),
            ("PUSHBUILD_GITHUB_TOKEN", hooks::TOKEN.to_string()),
            ("PUSHBUILD_GITHUB_URL", git.url()),
            ("PUSHBUILD_GITHUB_API_URL", api.url()),
        ],
    );
    let pid = served.pid();
    let url = served.url.clone();
    let body = hooks::push("refs/heads/main", &commits.good, "A good build");
    let total = usize::try_from(rate * seconds).unwrap_or(usize::MAX);
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let accepted_ids = Arc::new(Mutex::new(Vec::new()));
    let missing_retry_after = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // Memory, every 100 ms while the load runs.
    let peak_rss = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, peak_rss) = (done.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let (rss, _) = memory(pid);
                peak_rss.fetch_max(usize::try_from(rss).unwrap_or(0), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let senders: Vec<_> = (0..32)
        .map(|_| {
            let (next, sent, accepted_ids, missing) = (
                next.clone(),
                sent.clone(),
                accepted_ids.clone(),
                missing_retry_after.clone(),
            );
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    // Each delivery at its time on the schedule, whatever the answers before.
                    let due = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let (headers, bytes) =
                        hooks::delivery("push", &body, &format!("load-{i}"), hooks::SECRET);
                    let mut request = client.post(format!("{url}/webhooks/github")).body(bytes);
                    for (name, value) in &headers {
                        request = request.header(name, value);
                    }
                    let at = start.elapsed();
                    let answer = request.send().expect("an answer");
                    let status = answer.status().as_u16();
                    if status == 503 && answer.headers().get("retry-after").is_none() {
                        missing.fetch_add(1, Ordering::Relaxed);
                    }
                    let text = answer.text().unwrap_or_default();
                    let took = start.elapsed() - at;
                    if status == 202 {
                        let value: serde_json::Value =
                            serde_json::from_str(&text).unwrap_or_default();
                        if let Some(id) = value["builds"][0]["buildId"].as_str() {
                            accepted_ids.lock().unwrap().push(id.to_string());
                        }
                    }
                    sent.lock().unwrap().push(Sent { at, status, took });
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("a sender");
    }
    let load_took = start.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("the sampler");
    let (_, high_water) = memory(pid);
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    report(&sent, load_took, rate, &jobs);
    println!(
        "serve's memory: peak resident {:.1} MiB (sampled), high-water mark {:.1} MiB; \
         503s without Retry-After: {}",
        peak_rss.load(Ordering::Relaxed) as f64 / 1024.0,
        high_water as f64 / 1024.0,
        missing_retry_after.load(Ordering::Relaxed)
    );
    // Nothing accepted is lost: every accepted delivery's build ends with its record.
    let accepted = accepted_ids.lock().unwrap().clone();
    let builds = store.path().join("builds").join(git.project("octo/app"));
    let drained = Instant::now();
    let until = drained + Duration::from_secs(1800);
    let missing = loop {
        let missing: Vec<&String> = accepted
            .iter()
            .filter(|id| !builds.join(id).join("build.json").exists())
            .collect();
        if missing.is_empty() || Instant::now() > until {
            break missing.len();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "accepted {}: {} recorded, {missing} missing, {:.1} s after the load ended",
        accepted.len(),
        accepted.len() - missing,
        drained.elapsed().as_secs_f64()
    );
    drop(served);
}

fn report(sent: &[Sent], took: Duration, rate: u64, jobs: &str) {
    let seconds = took.as_secs() + 1;
    println!(
        "pushbuild serve --jobs {jobs}, {} deliveries at {rate}/s over {:.1} s:",
        sent.len(),
        took.as_secs_f64()
    );
    println!("second  accepted  refused  other");
    for s in 0..seconds {
        let within: Vec<&Sent> = sent.iter().filter(|x| x.at.as_secs() == s).collect();
        let count = |status: u16| within.iter().filter(|x| x.status == status).count();
        let other = within.len() - count(202) - count(503);
        if s < 5 || s % 10 == 0 || s + 1 == seconds {
            println!("{s:>6}  {:>8}  {:>7}  {other:>5}", count(202), count(503));
        }
    }
    let all = |status: u16| sent.iter().filter(|x| x.status == status).count();
    println!(
        "in all: {} accepted ({:.1}/s), {} refused ({:.1}/s), {} other",
        all(202),
        all(202) as f64 / took.as_secs_f64(),
        all(503),
        all(503) as f64 / took.as_secs_f64(),
        sent.len() - all(202) - all(503)
    );
    let mut times: Vec<Duration> = sent.iter().map(|x| x.took).collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "answers: p50 {:.2} ms, p99 {:.2} ms, worst {:.2} ms",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(times[times.len() - 1])
    );
}
