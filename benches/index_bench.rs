//! What a build's bookkeeping costs as the month grows: its number, its delivery claim, its
//! entry, two reserved minutes and its close, timed build by build with 10 and with 100,000
//! builds already in the month's index (the two indexes alternating), on SQLite and on a
//! DynamoDB-compatible server (moto's, on 127.0.0.1). The sweep's query for abandoned builds
//! (once a minute per process) is timed as a step of its own. Then the month's report for
//! 100,000 builds on SQLite, in process and as `pushbuild billing`.
//! Run: `cargo bench --bench index_bench` (INDEX_BENCH_BUILDS sets the big month, INDEX_BENCH_ROUNDS
//! the builds timed per case).

#[path = "../tests/it/dynamo_server.rs"]
mod dynamo_server;
#[path = "common/entries.rs"]
mod entries;
#[path = "../tests/it/tools.rs"]
mod tools;

use pushbuild::names::{BuildId, ProjectName};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use chrono::Utc;
use entries::closed;
use pushbuild::billing::{Budget, Report};
use pushbuild::index::{Closing, DynamoIndex, Entry, Grant, Index, SqliteIndex, month_of};
use pushbuild::state::BuildState;

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The steps of one build's bookkeeping, for the breakdown.
const STEPS: [&str; 6] = ["number", "claim", "open", "sweep", "2 minutes", "close"];

/// One build's bookkeeping, as the pipeline does it: each step's time.
fn bookkeeping(index: &dyn Index, round: usize, caps: &Budget) -> [Duration; 6] {
    let mut times = [Duration::ZERO; 6];
    let mut clock = Instant::now();
    let mut lap = |step: usize| {
        times[step] = clock.elapsed();
        clock = Instant::now();
    };
    let project = "repo-bench";
    let number = index.next_number(&pn(project)).expect("a number");
    lap(0);
    let now = Utc::now();
    let taken = index
        .claim(
            &pn(project),
            &format!(
                "delivery-{round}-{}",
                now.timestamp_nanos_opt().unwrap_or(0)
            ),
            now,
            now + chrono::Duration::hours(72),
        )
        .expect("a claim");
    assert!(taken);
    lap(1);
    let entry = Entry {
        project: pn(project),
        build_id: BuildId::parse(&format!(
            "{}-bench-{round:05}",
            now.format("%Y%m%dT%H%M%SZ")
        ))
        .expect("an id"),
        number,
        state: BuildState::InProgress,
        expires_at: now + chrono::Duration::minutes(2),
        reserved_minutes: 0,
        billed_minutes: 0,
        cost_usd: 0.0,
        duration_ms: 0,
        ..closed(round)
    };
    index.open(&entry).expect("opened");
    lap(2);
    let expired = index.expired(now).expect("the sweep's look");
    assert!(expired.is_empty());
    lap(3);
    for minute in 1..=2 {
        let grant = index
            .reserve(
                &pn(project),
                &entry.build_id,
                minute,
                now + chrono::Duration::minutes(3),
                caps,
            )
            .expect("a minute");
        assert_eq!(grant, Grant::Granted);
    }
    lap(4);
    index
        .close(&Closing {
            project: pn(project),
            build_id: entry.build_id.clone(),
            state: BuildState::Succeeded,
            billed_minutes: 2,
            cost_usd: 0.0032,
            duration_ms: 90_000,
            reason: None,
            tests: None,
        })
        .expect("closed");
    lap(5);
    times
}

fn summary(times: &mut [Duration]) -> String {
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "min {:.2} ms, median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        ms(times[times.len() - 1])
    )
}

/// Times `rounds` builds' bookkeeping on each index, alternating build for build (so drift in
/// the machine's speed falls on both alike), and prints each one's figures and the ratio of
/// their medians.
fn compare(label: &str, indexes: &[(usize, &dyn Index)], rounds: usize) {
    let caps = Budget {
        monthly_minutes: Some(u64::MAX / 2),
        per_repository: vec![("repo-bench".to_string(), u64::MAX / 2)],
    };
    let mut steps: Vec<Vec<[Duration; 6]>> = vec![Vec::new(); indexes.len()];
    for round in 0..rounds {
        for (i, (_, index)) in indexes.iter().enumerate() {
            steps[i].push(bookkeeping(*index, round, &caps));
        }
    }
    let mut medians = Vec::new();
    for ((n, _), steps) in indexes.iter().zip(&steps) {
        // The sweep's query runs once a minute per process, not per build: timed on its own.
        let mut per_build: Vec<Duration> = steps
            .iter()
            .map(|s| s.iter().sum::<Duration>() - s[3])
            .collect();
        let text = summary(&mut per_build);
        medians.push(per_build[per_build.len() / 2]);
        let mut line = format!(
            "{label}, {n} builds in the month: bookkeeping per build {text}\n    median by step:"
        );
        for (i, name) in STEPS.iter().enumerate() {
            let mut times: Vec<Duration> = steps.iter().map(|s| s[i]).collect();
            times.sort_unstable();
            line.push_str(&format!(
                " {name} {:.2} ms;",
                times[times.len() / 2].as_secs_f64() * 1000.0
            ));
        }
        println!("{line}");
    }
    if let [small, big] = medians[..] {
        println!(
            "{label}: median with {} builds / with {}: {:.2}",
            indexes[1].0,
            indexes[0].0,
            big.as_secs_f64() / small.as_secs_f64()
        );
    }
}

fn main() {
    let big = var("INDEX_BENCH_BUILDS", 100_000);
    let rounds = var("INDEX_BENCH_ROUNDS", 200);
    let month = month_of(Utc::now());

    let dirs = [
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    ];
    let sqlite: Vec<(usize, SqliteIndex)> = [10, big]
        .into_iter()
        .zip(&dirs)
        .map(|(n, dir)| {
            let index = SqliteIndex::open(&SqliteIndex::path_in(dir.path())).expect("the index");
            let seeding = Instant::now();
            for i in 0..n {
                index.add_closed(&closed(i)).expect("seeded");
            }
            println!(
                "sqlite: {n} builds seeded in {:.1} s",
                seeding.elapsed().as_secs_f64()
            );
            (n, index)
        })
        .collect();
    let refs: Vec<(usize, &dyn Index)> =
        sqlite.iter().map(|(n, i)| (*n, i as &dyn Index)).collect();
    compare("sqlite", &refs, rounds);
    let (n, index) = &sqlite[1];
    let started = Instant::now();
    let report = Report::from_sums(&month, &index.month_sums(&month).expect("sums"));
    let in_process = started.elapsed();
    assert!(report.total.builds >= *n as u64);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["billing", "--store"])
        .arg(dirs[1].path())
        .output()
        .expect("pushbuild runs");
    let command = started.elapsed();
    assert!(out.status.success(), "{out:?}");
    println!(
        "sqlite, the month's report for {} builds: {:.2} ms in process, {:.1} ms as `pushbuild billing` (process start included)",
        report.total.builds,
        in_process.as_secs_f64() * 1000.0,
        command.as_secs_f64() * 1000.0
    );

    let server = dynamo_server::DynamoServer::shared();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let client = aws_sdk_dynamodb::Client::new(&server.sdk_config());
    let dynamo: Vec<(usize, DynamoIndex)> = [10, big]
        .into_iter()
        .map(|n| {
            let index = server.new_index(runtime.handle());
            let seeding = Instant::now();
            load(&runtime, &client, &index, n);
            println!(
                "dynamodb (moto): {n} builds loaded in {:.1} s",
                seeding.elapsed().as_secs_f64()
            );
            (n, index)
        })
        .collect();
    let refs: Vec<(usize, &dyn Index)> =
        dynamo.iter().map(|(n, i)| (*n, i as &dyn Index)).collect();
    compare("dynamodb (moto)", &refs, rounds.min(100));
}

/// Loads `n` closed builds into the table, 25 to a request (BatchWriteItem), as the index
/// stores them.
fn load(
    runtime: &tokio::runtime::Runtime,
    client: &aws_sdk_dynamodb::Client,
    index: &DynamoIndex,
    n: usize,
) {
    let entries: Vec<Entry> = (0..n).map(closed).collect();
    for chunk in entries.chunks(25) {
        let writes: Vec<WriteRequest> = chunk
            .iter()
            .map(|e| {
                let put = PutRequest::builder()
                    .set_item(Some(DynamoIndex::item(e)))
                    .build()
                    .expect("a put");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let mut pending: HashMap<String, Vec<WriteRequest>> =
            HashMap::from([(index.table().to_string(), writes)]);
        while !pending.values().all(Vec::is_empty) {
            let answer = runtime
                .block_on(
                    client
                        .batch_write_item()
                        .set_request_items(Some(pending))
                        .send(),
                )
                .expect("loaded");
            pending = answer.unprocessed_items().cloned().unwrap_or_default();
        }
    }
}

/// A project name the test knows is valid.
fn pn(name: &str) -> ProjectName {
    ProjectName::parse(name).expect("a project name")
}
