//! The S3 store against a real S3 server (s3s-fs on loopback) through the real SDK client.
//! The store's methods are called from the test's own thread, outside the async runtime, as
//! the Lambda handler calls them from `spawn_blocking`.

use std::io::Write;
use std::path::Path;

use pushbuild::pipeline::{self, BuildIdentity, BuildJob};
use pushbuild::store::{ObjectMeta, S3Store, Store, StoreError};

use crate::s3_server::S3Server;
use crate::support;

const MIB: usize = 1 << 20;

fn meta() -> ObjectMeta {
    ObjectMeta {
        content_type: "application/zip".into(),
        metadata: vec![
            ("build-id".into(), "b1".into()),
            ("repository".into(), "web".into()),
        ],
    }
}

/// Bytes that differ from part to part, so a misplaced part shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}

/// A build of the buildspec in `src`, with its work files under `work`.
fn job(src: &Path, work: &Path) -> BuildJob {
    let identity = BuildIdentity {
        source_version: None,
        reference: None,
        ..support::identity("proj", "b-s3")
    };
    support::job(src, &support::settings(work, 0.002), identity)
}

#[test]
fn s3_objects_round_trip_with_their_metadata() {
    let server = S3Server::start();
    let store = server.store();

    let uri = store.put("a/b/c.zip", b"zip bytes", &meta()).unwrap();
    store.put("a/d.txt", b"", &ObjectMeta::default()).unwrap();
    store.put("z/e.txt", b"e", &ObjectMeta::default()).unwrap();

    assert_eq!(uri, format!("s3://{}/a/b/c.zip", server.bucket));
    assert_eq!(
        store.get("a/b/c.zip").unwrap().as_deref(),
        Some(&b"zip bytes"[..])
    );
    assert_eq!(store.get("a/d.txt").unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(store.list("a/").unwrap(), ["a/b/c.zip", "a/d.txt"]);
    assert_eq!(store.list("a/b").unwrap(), ["a/b/c.zip"]);
    assert!(store.list("nothing/").unwrap().is_empty());
    let head = server
        .handle()
        .block_on(
            server
                .client()
                .head_object()
                .bucket(&server.bucket)
                .key("a/b/c.zip")
                .send(),
        )
        .unwrap();
    assert_eq!(head.content_type(), Some("application/zip"));
    let stored = head.metadata().cloned().unwrap_or_default();
    assert_eq!(stored.get("build-id").map(String::as_str), Some("b1"));
    assert_eq!(stored.get("repository").map(String::as_str), Some("web"));
    assert_eq!(server.count("uploadId"), 0, "small objects are single puts");
}

#[test]
fn s3_missing_objects_are_none() {
    let server = S3Server::start();
    let store = server.store();
    assert_eq!(store.get("builds/p/none/build.json").unwrap(), None);
    assert!(matches!(
        store.get("../escape"),
        Err(StoreError::BadKey { .. })
    ));
}

#[test]
fn s3_big_objects_stream_as_parallel_parts() {
    let server = S3Server::start();
    let store = server
        .store()
        .with_part_size(5 * MIB)
        .with_parallel_parts(2);
    let data = pattern(20 * MIB + 123);

    // Given a writer fed in small writes, as the zip writer feeds it,
    let mut writer = store.writer("artifacts/p/b/big.zip", &meta()).unwrap();
    for chunk in data.chunks(64 * 1024 + 7) {
        writer.write_all(chunk).unwrap();
    }
    // nothing is visible before commit,
    assert_eq!(store.list("artifacts/").unwrap(), Vec::<String>::new());
    let uri = writer.commit().unwrap();

    // then the object reads back whole, made of five parts (four full ones and the rest).
    assert!(uri.ends_with("/artifacts/p/b/big.zip"));
    let back = store.get("artifacts/p/b/big.zip").unwrap().unwrap();
    assert!(back == data, "the object read back differs");
    assert_eq!(server.count("partNumber="), 5);
    assert_eq!(
        server.count("POST /pushbuild-test/artifacts/p/b/big.zip?uploads"),
        1
    );
    let head = server
        .handle()
        .block_on(
            server
                .client()
                .head_object()
                .bucket(&server.bucket)
                .key("artifacts/p/b/big.zip")
                .send(),
        )
        .unwrap();
    let etag = head
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string();
    assert!(etag.ends_with("-5"), "multipart ETag: {etag}");
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("build-id"))
            .map(String::as_str),
        Some("b1")
    );
    assert!(server.pending_upload_files().is_empty());
}

#[test]
fn s3_an_object_of_exactly_one_part_is_a_single_put() {
    let server = S3Server::start();
    let store = server.store().with_part_size(5 * MIB);
    store.put("one.bin", &pattern(5 * MIB), &meta()).unwrap();
    assert_eq!(server.count("partNumber="), 0);
    assert_eq!(
        store.get("one.bin").unwrap().map(|b| b.len()),
        Some(5 * MIB)
    );
}

#[test]
fn s3_a_writer_dropped_without_commit_leaves_nothing() {
    let server = S3Server::start();
    // One part in flight at a time: shipping the second part waits for the first to land.
    let store = server
        .store()
        .with_part_size(5 * MIB)
        .with_parallel_parts(1);

    // A small object never reaches the server;
    let mut small = store.writer("drop/small.txt", &meta()).unwrap();
    small.write_all(b"half").unwrap();
    drop(small);
    // a big one has a part uploaded, then the upload aborted.
    let mut big = store.writer("drop/big.bin", &meta()).unwrap();
    big.write_all(&pattern(12 * MIB)).unwrap();
    assert!(
        server.count("partNumber=1&") >= 1,
        "{:?}",
        server.requests()
    );
    assert!(!server.pending_upload_files().is_empty());
    drop(big);

    assert_eq!(server.count("small.txt"), 0);
    assert_eq!(
        server.count("DELETE /pushbuild-test/drop/big.bin?x-id=AbortMultipartUpload&uploadId="),
        1,
        "{:?}",
        server.requests()
    );
    assert!(store.list("drop/").unwrap().is_empty());
    assert_eq!(store.get("drop/big.bin").unwrap(), None);
    assert_eq!(
        server.pending_upload_files(),
        Vec::<String>::new(),
        "no pending multipart upload"
    );
}

#[test]
fn s3_slow_down_answers_are_retried() {
    let server = S3Server::start();
    let store = server.store();
    server.fail_next(2);
    store.put("retried.txt", b"landed", &meta()).unwrap();
    assert_eq!(server.count("PUT /pushbuild-test/retried.txt"), 3);
    assert_eq!(
        store.get("retried.txt").unwrap().as_deref(),
        Some(&b"landed"[..])
    );
}

#[test]
fn s3_persistent_throttling_is_a_retryable_error() {
    let server = S3Server::start();
    let store = impatient_store(&server);
    server.fail_next(100);
    let err = store.put("never.txt", b"x", &meta()).unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(err.to_string().contains("SlowDown"), "{err}");
    assert!(err.to_string().contains("PutObject"), "{err}");

    // A wrong secret is refused (403), and trying again cannot help.
    server.fail_next(0);
    let forged = aws_sdk_s3::config::Builder::from(&server.sdk_config())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            crate::s3_server::ACCESS_KEY,
            "not-the-secret",
            None,
            None,
            "forged",
        ))
        .build();
    let denied = S3Store::new(
        aws_sdk_s3::Client::from_conf(forged),
        &server.bucket,
        server.handle(),
    )
    .put("x.txt", b"x", &meta())
    .unwrap_err();
    assert!(!denied.retryable(), "{denied}");
    assert!(denied.to_string().contains("HTTP 403"), "{denied}");
}

#[test]
fn s3_holds_a_whole_build() {
    let server = S3Server::start();
    let store = server.store();
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("app.txt"), "hello\n").unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo building\n\
         artifacts:\n  files:\n    - app.txt\n  name: app\n",
    )
    .unwrap();
    let job = job(src.path(), work.path());

    let stored = pipeline::run(&job, &store).unwrap();
    let record = stored.record;

    assert_eq!(record.status.as_str(), "SUCCEEDED");
    let ledger = format!(
        "billing/{}/proj/b-s3.json",
        record.start_time.format("%Y/%m")
    );
    assert_eq!(
        store.list("").unwrap(),
        [
            "artifacts/proj/b-s3/app.zip",
            ledger.as_str(),
            "builds/proj/b-s3/build.json",
            "builds/proj/b-s3/build.log",
        ]
    );
    assert_eq!(
        stored.record_uri,
        "s3://pushbuild-test/builds/proj/b-s3/build.json"
    );
    assert_eq!(
        record.log_uri,
        "s3://pushbuild-test/builds/proj/b-s3/build.log"
    );
    assert_eq!(
        record.artifacts[0].uri,
        "s3://pushbuild-test/artifacts/proj/b-s3/app.zip"
    );
    let zip = store.get("artifacts/proj/b-s3/app.zip").unwrap().unwrap();
    assert!(zip.starts_with(b"PK\x03\x04"));
    assert_eq!(zip.len() as u64, record.artifacts[0].size);
    let log = String::from_utf8(store.get("builds/proj/b-s3/build.log").unwrap().unwrap()).unwrap();
    assert!(log.contains("building"), "{log}");
    let json = store.get("builds/proj/b-s3/build.json").unwrap().unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(stored["build_id"], "b-s3");
}

#[test]
fn s3_an_upload_that_gives_up_mid_artifact_fails_pushbuild_not_the_build() {
    let server = S3Server::start();
    // Given a client that tries twice, and a server that refuses both tries of the first
    // request (the multipart upload that the artifact's zip starts once it passes one part),
    let store = impatient_store(&server).with_part_size(5 * MIB);
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let noise: Vec<u8> = (0..6 * MIB / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    std::fs::write(src.path().join("noise.bin"), noise).unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - true\n\
         artifacts:\n  files:\n    - noise.bin\n",
    )
    .unwrap();
    let job = job(src.path(), work.path());
    server.fail_next_where(2, "/artifacts/");

    // when the build runs, pushbuild itself fails, retryably, rather than recording a failed
    // build.
    let err = pipeline::run(&job, &store).unwrap_err();
    match err {
        pipeline::PipelineError::Store(err) => assert!(err.retryable(), "{err}"),
        other => panic!("not a store error: {other}"),
    }
    let requests = server.requests();
    let first_artifact_request = requests.iter().find(|r| r.contains("/artifacts/"));
    assert!(
        first_artifact_request.is_some_and(|r| r.contains("?uploads")),
        "{requests:?}"
    );
}

/// A store whose client gives up fast: two tries, a millisecond apart.
fn impatient_store(server: &S3Server) -> S3Store {
    let config = aws_sdk_s3::config::Builder::from(&server.sdk_config())
        .force_path_style(true)
        .retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(std::time::Duration::from_millis(1)),
        )
        .build();
    S3Store::new(
        aws_sdk_s3::Client::from_conf(config),
        &server.bucket,
        server.handle(),
    )
}
