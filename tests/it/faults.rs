//! Faults injected between the real function binary and its servers (the fault proxy in front
//! of the S3 server and of moto's DynamoDB), and what pushbuild promises through them: a build
//! that began ends with its record, log and ledger entry (or is closed by the sweep), the index
//! and the ledger agree (`pushbuild billing --verify`), no multipart upload is left open, retries
//! are bounded, and an event built once is not built again. Rates are drawn from a seed
//! (`PUSHBUILD_FAULT_SEED`, printed by each test) so a failure can be replayed.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dynamo_server::DynamoServer;
use crate::fault_proxy::{Answer, Fault, FaultProxy, Schedule};
use crate::function::{Harness, MINUTE, builds, sample};

/// A build with a 12 MB artifact (three 5 MiB parts: a multipart upload) and a small one.
const SPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out\n      - head -c 12000000 /dev/urandom > out/big.bin\n      - echo small > out/small.txt\nartifacts:\n  base-directory: out\n  files: ['**/*']\n";

/// The seed of the tests' fault rates: `PUSHBUILD_FAULT_SEED`, or a fixed one.
pub(crate) fn seed() -> u64 {
    let seed = std::env::var("PUSHBUILD_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_207);
    eprintln!("fault seed: {seed} (PUSHBUILD_FAULT_SEED replays it)");
    seed
}

/// One row of the faults' table: printed (`-- --nocapture` shows it) and added to
/// `fault-table.md` in Cargo's test directory (`.ci/run` prints the table after the seeded run).
pub(crate) struct Row<'a> {
    pub fault: &'a str,
    pub at: &'a str,
    pub injected: usize,
    pub begun: usize,
    pub records: usize,
    pub built_twice: usize,
    pub billed_twice: usize,
    /// Minutes billed over the budget's cap, when there was one.
    pub overspent: Option<u64>,
    pub open_uploads: usize,
}

/// The table's header: the columns of [`Row`].
const TABLE_HEADER: &str = "| fault | injected at | times | builds begun | records | built twice | billed twice | over the budget | --verify differences | open multipart uploads |";

impl Row<'_> {
    /// Asserts the row's promises (nothing built or billed twice, no minute over the cap, no
    /// upload left open, a record for each build begun), prints it and adds it to the table.
    pub fn report(&self) {
        assert_eq!(
            self.built_twice, 0,
            "{}: a delivery built twice",
            self.fault
        );
        assert_eq!(
            self.billed_twice, 0,
            "{}: a ledger entry beyond its record",
            self.fault
        );
        assert_eq!(
            self.overspent.unwrap_or(0),
            0,
            "{}: over the budget",
            self.fault
        );
        assert_eq!(
            self.open_uploads, 0,
            "{}: multipart uploads left open",
            self.fault
        );
        assert!(
            self.records >= self.begun,
            "{}: {} begun, {} records",
            self.fault,
            self.begun,
            self.records
        );
        let overspent = self
            .overspent
            .map_or("no cap".to_string(), |m| m.to_string());
        let line = format!(
            "| {} | {} | {} | {} | {} | {} | {} | {overspent} | 0 | {} |",
            self.fault,
            self.at,
            self.injected,
            self.begun,
            self.records,
            self.built_twice,
            self.billed_twice,
            self.open_uploads
        );
        eprintln!("fault table {line}");
        // The tests of this binary share one process: one row at a time, the header first.
        static TABLE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = TABLE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-table.md");
        let text = match path.exists() {
            true => format!("{line}\n"),
            false => format!("{TABLE_HEADER}\n|{}\n{line}\n", " --- |".repeat(10)),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("the fault table opens");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("a row");
    }
}

/// A row of the table for `serve`'s store at `store` (its SQLite index inside): `pushbuild
/// billing --verify` must be clean, and the index's count of builds begun is its `--csv` total.
fn local_row(store: &std::path::Path, fault: &str, at: &str, injected: usize, deliveries: usize) {
    let billing = |args: &[&str]| {
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .arg("billing")
            .args(args)
            .args(["--month", &month, "--store"])
            .arg(store)
            .output()
            .expect("pushbuild runs");
        assert!(out.status.success(), "billing {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(billing(&["--verify"]).contains("the index agrees with the ledger"));
    let begun = total_builds(&billing(&["--csv"]));
    let (mut records, mut ledger) = (0usize, 0usize);
    for entry in walkdir(store) {
        let name = entry.to_string_lossy();
        if name.contains("/builds/") && name.ends_with("/build.json") {
            records += 1;
        } else if name.contains("/billing/") && name.ends_with(".json") {
            ledger += 1;
        }
    }
    Row {
        fault,
        at,
        injected,
        begun,
        records,
        built_twice: records.saturating_sub(deliveries),
        billed_twice: ledger.saturating_sub(records),
        overspent: None,
        open_uploads: 0,
    }
    .report();
}

/// The builds on `pushbuild billing --csv`'s `TOTAL` line.
fn total_builds(csv: &str) -> usize {
    csv.lines()
        .find_map(|line| line.strip_prefix("TOTAL,"))
        .and_then(|rest| rest.split(',').next())
        .and_then(|builds| builds.parse().ok())
        .unwrap_or_else(|| panic!("no TOTAL in billing --csv: {csv}"))
}

/// Every file under `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The function with its S3 behind one proxy and its DynamoDB behind another, on a table of its
/// own.
pub(crate) struct Faulty {
    pub h: Harness,
    pub s3: FaultProxy,
    pub dynamo: FaultProxy,
    table: String,
}

pub(crate) fn start(settings: &[(&str, &str)]) -> Faulty {
    let seed = seed();
    let s3 = FaultProxy::seeded("http://127.0.0.1:9", seed);
    let moto = DynamoServer::shared();
    let dynamo = FaultProxy::seeded(&moto.endpoint, seed.wrapping_add(1));
    let table = moto.new_table();
    let (s3_at, dynamo_at) = (s3.endpoint(), dynamo.endpoint());
    let mut all = vec![
        ("AWS_ENDPOINT_URL_S3", s3_at.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamo_at.as_str()),
        ("PUSHBUILD_INDEX_TABLE", table.as_str()),
    ];
    all.extend_from_slice(settings);
    let h = Harness::start(&[("ci/buildspec.yml", SPEC.as_bytes())], "faults", &all);
    s3.set_upstream(&h.s3().endpoint);
    Faulty {
        h,
        s3,
        dynamo,
        table,
    }
}

impl Faulty {
    /// `pushbuild billing <flag>` for this month over the bucket and the table, straight to the
    /// servers: its output and error, and whether it succeeded.
    fn billing(&self, flag: &str) -> (String, bool) {
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .args(["billing", flag, "--month", &month, "--bucket"])
            .arg(self.h.bucket())
            .args(["--table", &self.table])
            .envs(self.h.s3_env())
            .envs(DynamoServer::shared().env())
            .env("PUSHBUILD_S3_PATH_STYLE", "true")
            .output()
            .expect("pushbuild runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (said, out.status.success())
    }

    /// `pushbuild billing --verify`: it must find the index and the ledger agreeing.
    pub fn verify(&self) -> String {
        let (said, ok) = self.billing("--verify");
        assert!(ok, "billing --verify: {said}");
        assert!(said.contains("the index agrees with the ledger"), "{said}");
        said
    }

    /// The builds the index counts this month (each began: skipped ones too).
    fn begun(&self) -> usize {
        total_builds(&self.billing("--csv").0)
    }

    /// One row of the faults' table, after `deliveries` distinct events were sent (each to be
    /// built once at most) under a cap of `cap` minutes (if any): what was injected where and
    /// how often, and what the index and the store hold after (builds begun, records, records
    /// beyond one per delivery, ledger entries beyond one per record, minutes over the cap,
    /// `--verify`'s differences, which [`Faulty::verify`] asserted none of, open multipart
    /// uploads). Each count that must be zero is asserted.
    pub fn table_row(
        &self,
        fault: &str,
        at: &str,
        injected: usize,
        deliveries: usize,
        cap: Option<u64>,
    ) {
        let keys = self.h.keys();
        let records: Vec<Value> = keys
            .iter()
            .filter(|k| k.starts_with("builds/") && k.ends_with("/build.json"))
            .map(|k| serde_json::from_slice(&self.h.object(k)).unwrap())
            .collect();
        let ledger: Vec<Value> = keys
            .iter()
            .filter(|k| k.starts_with("billing/") && k.ends_with(".json"))
            .map(|k| serde_json::from_slice(&self.h.object(k)).unwrap())
            .collect();
        let swept = records
            .iter()
            .filter(|r| r["warnings"].to_string().contains("closed by a later one"))
            .count();
        let billed: u64 = ledger
            .iter()
            .filter_map(|e| e["billed_minutes"].as_u64())
            .sum();
        let row = Row {
            fault,
            at,
            injected,
            begun: self.begun(),
            records: records.len(),
            built_twice: (records.len() - swept).saturating_sub(deliveries),
            billed_twice: ledger.len().saturating_sub(records.len()),
            overspent: cap.map(|cap| billed.saturating_sub(cap)),
            open_uploads: self.h.s3().pending_upload_files().len(),
        };
        row.report();
    }

    /// A build's results: its record, log and ledger entry are all stored.
    pub fn assert_complete(&self, build_id: &str) -> Value {
        let record = self.h.record(build_id);
        assert!(
            self.h.log(build_id).contains("Phase complete: BUILD"),
            "{build_id}"
        );
        let ledger = self
            .h
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("billing/") && k.ends_with(&format!("/{build_id}.json")))
            .count();
        assert_eq!(ledger, 1, "{build_id}'s ledger entries");
        record
    }
}

#[test]
fn s3_answering_slow_down_resetting_and_stalling_mid_build_loses_nothing() {
    let f = start(&[]);
    // Puts answered 503 SlowDown, parts reset before an answer, a part's answer cut in half, a
    // stall on the record, and one in ten of everything else answered 500.
    f.s3.inject(
        "PUT /",
        Fault::Answer(Answer::slow_down()),
        Schedule::Next(3),
    );
    f.s3.inject("partNumber=", Fault::ResetRequest, Schedule::Next(2));
    f.s3.inject("partNumber=2", Fault::ResetResponse, Schedule::Next(1));
    f.s3.inject(
        "build.json",
        Fault::Stall(Duration::from_secs(2)),
        Schedule::Next(1),
    );
    f.s3.inject(
        " /",
        Fault::Answer(Answer::internal_error()),
        Schedule::Rate(100),
    );
    let answer = builds(&f.h.invoke(sample("codecommit-push.json", &f.h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "SUCCEEDED", "{answer:?}");
    let build_id = answer[0]["buildId"].as_str().unwrap();
    let record = f.assert_complete(build_id);
    let artifact = &record["artifacts"][0];
    let stored = f.h.object(
        artifact["uri"]
            .as_str()
            .and_then(|u| u.split_once(&format!("{}/", f.h.bucket())))
            .map(|(_, key)| key)
            .unwrap(),
    );
    assert_eq!(stored.len() as u64, artifact["size"].as_u64().unwrap());
    let kinds: Vec<&str> = f.s3.injected().iter().map(|(_, kind)| *kind).collect();
    for kind in ["answer", "reset-request", "reset-response", "stall"] {
        assert!(kinds.contains(&kind), "{kind} was injected: {kinds:?}");
    }
    assert!(
        f.h.s3().pending_upload_files().is_empty(),
        "open multipart uploads: {:?}",
        f.h.s3().pending_upload_files()
    );
    f.verify();
    let said = std::fs::read_to_string(f.h.work_dir().join("function.stderr")).unwrap_or_default();
    assert!(
        said.contains("tried again") && said.contains("PutObject") && said.contains("503"),
        "{said}"
    );
    f.table_row(
        "503 SlowDown, 500 at 10%, reset before and mid-answer, a 2 s stall",
        "S3 (function)",
        f.s3.injected().len(),
        1,
        None,
    );
}

#[test]
fn dynamodb_throttling_the_index_and_the_budget_loses_nothing() {
    let f = start(&[]);
    for operation in [
        "TransactWriteItems",
        "UpdateItem",
        "PutItem",
        "GetItem",
        "Query",
    ] {
        f.dynamo.inject(
            &format!("DynamoDB_20120810.{operation}"),
            Fault::Answer(Answer::throughput_exceeded()),
            Schedule::Next(2),
        );
    }
    let answer = builds(&f.h.invoke(sample("codecommit-push.json", &f.h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "SUCCEEDED", "{answer:?}");
    f.assert_complete(answer[0]["buildId"].as_str().unwrap());
    assert!(f.dynamo.injected().len() >= 4, "{:?}", f.dynamo.injected());
    f.verify();
    // pushbuild's log says what was tried again.
    let said = std::fs::read_to_string(f.h.work_dir().join("function.stderr")).unwrap_or_default();
    assert!(
        said.contains("tried again")
            && said.contains("DynamoDB")
            && said.contains("TransactWriteItems"),
        "{said}"
    );
    f.table_row(
        "ProvisionedThroughputExceeded",
        "DynamoDB (function)",
        f.dynamo.injected().len(),
        1,
        None,
    );
}

#[test]
fn a_store_that_stays_down_ends_the_invocation_in_time_and_the_retry_builds_once() {
    let f = start(&[
        ("PUSHBUILD_BILLING_MINUTE_MS", "1000"),
        ("PUSHBUILD_UPLOAD_RESERVE_SECONDS", "1"),
    ]);
    // Every write of a record fails: the invocation must end, with a retryable error, well
    // before its deadline.
    f.s3.inject(
        "build.json",
        Fault::Answer(Answer::slow_down()),
        Schedule::Always,
    );
    let event = sample("codecommit-push.json", &f.h.head());
    let began = Instant::now();
    let first = f.h.invoke(event.clone(), Duration::from_secs(120));
    let took = began.elapsed();
    match &first {
        crate::runtime_api::Outcome::Error { error_type, .. } => {
            assert!(error_type.starts_with("PushBuild.Retryable."), "{first:?}");
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(60),
        "the failing invocation took {took:?}"
    );
    // Lambda delivers the event again once the store is back: one build, complete.
    f.s3.clear();
    let again = builds(&f.h.invoke(event.clone(), MINUTE));
    assert_eq!(again[0]["status"], "SUCCEEDED", "{again:?}");
    f.assert_complete(again[0]["buildId"].as_str().unwrap());
    // And once more: the event was built; not again.
    let third = builds(&f.h.invoke(event, MINUTE));
    assert_eq!(third[0]["status"], "SKIPPED", "{third:?}");
    assert!(
        third[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("duplicate delivery")),
        "{third:?}"
    );
    // The build that began and could not be recorded is closed by the sweep once its reserved
    // minute has run out (a second here, and the upload reserve): `pushbuild billing` sweeps
    // before it verifies.
    std::thread::sleep(Duration::from_millis(2500));
    f.verify();
    let records: Vec<Value> =
        f.h.keys()
            .into_iter()
            .filter(|k| k.ends_with("/build.json"))
            .map(|k| serde_json::from_slice(&f.h.object(&k)).unwrap())
            .collect();
    let statuses: Vec<&str> = records
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{statuses:?} {:?}", f.h.keys());
    assert!(
        statuses.contains(&"TIMED_OUT") && statuses.contains(&"SUCCEEDED"),
        "{statuses:?}"
    );
    f.table_row(
        "503 SlowDown on every record write (then none)",
        "S3 (function)",
        f.s3.injected().len(),
        1,
        None,
    );
}

/// Sends a signed push of `commit` to `main` as delivery `delivery`: the answer's status, its
/// `Retry-After` and its body.
fn send(url: &str, commit: &str, delivery: &str) -> (u16, Option<String>, Value) {
    let body = crate::hooks::push("refs/heads/main", commit, "a push");
    let (headers, bytes) = crate::hooks::delivery("push", &body, delivery, crate::hooks::SECRET);
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{url}/webhooks/github"))
        .body(bytes);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = request.send().unwrap();
    let status = answer.status().as_u16();
    let retry = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        status,
        retry,
        serde_json::from_str(&answer.text().unwrap()).unwrap(),
    )
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_the_delivery_sent_again_builds_once() {
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 2\n";
    let pushed = crate::pushed::Pushed::new(spec);
    let commit = pushed.commits[0].1.clone();
    let project = pushed.git.project(crate::hooks::REPOSITORY);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(
        store.path(),
        work.path(),
        &["--jobs", "1", "--queue", "1"],
        &pushed.env(),
    );
    // One runs, one waits; the third finds the queue full.
    let mut answers = Vec::new();
    for delivery in ["full-1", "full-2", "full-3", "full-4"] {
        answers.push((delivery, send(&served.url, &commit, delivery)));
    }
    let refused: Vec<_> = answers
        .iter()
        .filter(|(_, (status, ..))| *status == 503)
        .collect();
    assert!(!refused.is_empty(), "{answers:?}");
    for (_, (_, retry, body)) in &refused {
        assert_eq!(retry.as_deref(), Some("10"), "{body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("queue is full")),
            "{body}"
        );
    }
    // The host delivers a refused one again once there is room: it is built, once.
    let (again, ..) = refused[0];
    let until = Instant::now() + Duration::from_secs(60);
    let build_id = loop {
        let (status, _, body) = send(&served.url, &commit, again);
        if status == 202 {
            break body["builds"][0]["buildId"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < until, "never queued: {body}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let record = crate::pushed::record_in(store.path(), &project, &build_id);
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    let (status, _, body) = send(&served.url, &commit, again);
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["builds"][0]["status"], "SKIPPED", "{body}");
    assert!(body["builds"][0]["buildId"].is_null(), "{body}");
    let delivered: std::collections::BTreeSet<&str> = answers
        .iter()
        .filter(|(_, (status, ..))| *status == 202)
        .map(|(delivery, _)| *delivery)
        .chain([*again])
        .collect();
    drop(served);
    local_row(
        store.path(),
        "a full queue (`--jobs 1 --queue 1`): 503 with Retry-After, sent again",
        "serve's webhook route",
        refused.len(),
        delivered.len(),
    );
}

/// The git host cutting its pack halfway and answering 502, and the host's status API answering
/// 502 twice, under `serve`: the fetch is tried again (the build's log says so), the statuses are
/// sent again, and the build succeeds at its commit.
#[test]
fn a_git_host_and_a_status_api_that_fail_for_a_while_are_tried_again() {
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - git rev-parse HEAD\n";
    let pushed = crate::pushed::Pushed::new(spec);
    let git = FaultProxy::seeded(&pushed.git.url(), seed());
    let api = FaultProxy::seeded(&pushed.api.url(), seed());
    let bad_gateway = Answer {
        status: 502,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "bad gateway".into(),
    };
    git.inject("POST /", Fault::ResetResponse, Schedule::Next(1));
    git.inject(
        "POST /",
        Fault::Answer(bad_gateway.clone()),
        Schedule::Next(1),
    );
    api.inject("/statuses/", Fault::Answer(bad_gateway), Schedule::Next(2));
    let mut env = pushed.env();
    env.retain(|(name, _)| !matches!(*name, "PUSHBUILD_GITHUB_URL" | "PUSHBUILD_GITHUB_API_URL"));
    env.push(("PUSHBUILD_GITHUB_URL", git.endpoint()));
    env.push(("PUSHBUILD_GITHUB_API_URL", api.endpoint()));
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &env);
    // It said what file system its work directory is on, before it listened.
    let said = served
        .startup
        .iter()
        .find(|line| line.contains("the work directory's file system"));
    assert!(
        said.is_some_and(|line| line.contains("file_system=")
            && line.contains(&work.path().display().to_string())),
        "{:?}",
        served.startup
    );
    let build_id = pushed.deliver(&served.url, "flaky-host-1");
    let project = format!("{}/{}", git.addr, crate::hooks::REPOSITORY);
    let record = crate::pushed::record_in(store.path(), &project, &build_id);
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    let log = crate::pushed::log_in(store.path(), &project, &build_id);
    assert!(
        log.contains("git fetch tried again after attempt 1"),
        "{log}"
    );
    assert!(log.contains(&pushed.commit), "{log}");
    // The fetch's stages, timed, in the log.
    assert!(
        log.lines().any(|l| l.contains("Fetched commit")
            && l.contains("(fetch ")
            && l.contains(" ms, checkout ")),
        "{log}"
    );
    let kinds: Vec<&str> = git.injected().iter().map(|(_, kind)| *kind).collect();
    assert_eq!(kinds, ["reset-response", "answer"], "{kinds:?}");
    // The final status arrives once the API answers again.
    let until = Instant::now() + Duration::from_secs(30);
    while !pushed
        .api
        .statuses(&pushed.commit)
        .iter()
        .any(|s| s.body["state"] == "success")
    {
        assert!(Instant::now() < until, "no success status");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(api.injected().len(), 2);
    drop(served);
    local_row(
        store.path(),
        "pack cut halfway, 502 from git and twice from the status API",
        "git host and status API (serve)",
        git.injected().len() + api.injected().len(),
        1,
    );
}

/// The budget under faults: a cap of 2 minutes, DynamoDB throttling one call in seven (its
/// transactions, which take the budget's minutes, among them) and S3 answering 503 one call in
/// ten, three pushes, each delivered again while its invocation fails with a retryable error (as
/// Lambda does, twice at most): never more than 2 minutes billed, the pushes past the cap
/// SKIPPED naming it, and the ledger and the index agree.
#[test]
fn the_budget_holds_while_dynamodb_and_s3_fail_for_a_while() {
    let f = start(&[("PUSHBUILD_MONTHLY_MINUTES", "2")]);
    f.dynamo.inject(
        "DynamoDB_20120810.",
        Fault::Answer(Answer::throughput_exceeded()),
        Schedule::Rate(150),
    );
    f.s3.inject(
        " /",
        Fault::Answer(Answer::slow_down()),
        Schedule::Rate(100),
    );
    let mut ended = Vec::new();
    for n in 0..3 {
        let mut event = sample("codecommit-push.json", &f.h.head());
        event["Records"][0]["eventId"] = serde_json::json!(format!("budget-push-{n}"));
        for _delivery in 0..3 {
            match f.h.invoke(event.clone(), MINUTE) {
                crate::runtime_api::Outcome::Response(answer) => {
                    ended.push(answer["builds"][0].clone());
                    break;
                }
                crate::runtime_api::Outcome::Error { error_type, .. } => {
                    assert!(
                        error_type.starts_with("PushBuild.Retryable."),
                        "{error_type}"
                    );
                }
            }
        }
    }
    let statuses: Vec<&str> = ended
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"SUCCEEDED"), "{statuses:?}");
    for skipped in ended.iter().filter(|b| b["status"] == "SKIPPED") {
        let reason = skipped["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("cap of 2"), "{skipped}");
    }
    assert!(
        statuses.last() == Some(&"SKIPPED"),
        "the third push is past the cap: {statuses:?}"
    );
    f.verify();
    let billed: u64 =
        f.h.keys()
            .into_iter()
            .filter(|k| k.starts_with("billing/"))
            .map(|k| {
                let entry: Value = serde_json::from_slice(&f.h.object(&k)).unwrap();
                entry["billed_minutes"].as_u64().unwrap()
            })
            .sum();
    assert!(billed <= 2, "{billed} minutes billed against a cap of 2");
    f.table_row(
        "DynamoDB throttling 1 in 7, S3 503 1 in 10, a cap of 2 minutes, 3 pushes",
        "DynamoDB and S3 (function)",
        f.dynamo.injected().len() + f.s3.injected().len(),
        3,
        Some(2),
    );
}
