//! A real S3 server for tests: s3s-fs over a temp dir, on a free port of 127.0.0.1, checking
//! SigV4 signatures with a fixed test key. A thin wrapper in front of it counts and logs the
//! requests and can answer the next N of them with S3's `503 SlowDown`.
//!
//! The wrapper also serves conditional writes (`If-None-Match`) one at a time. S3 guarantees that
//! of two racing conditional writes exactly one succeeds; s3s-fs 0.14.1 checks the object's
//! existence and then writes it, so two racing writes could both succeed there.
//!
//! Clients are configured explicitly (endpoint, credentials, region, path style) and never
//! through process-wide environment variables, since tests run in parallel; a test that runs a
//! binary against the server passes [`S3Server::env`] to that child only.
//!
//! Also `#[path]`-included by `benches/s3_upload_bench.rs`, so not every item is used by both.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use pushbuild::store::S3Store;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, HttpError};

pub const ACCESS_KEY: &str = "AKIDPUSHBUILDTEST";
/// The keys a CodePipeline job's `artifactCredentials` carry in the tests.
pub const PIPELINE_ACCESS_KEY: &str = "ASIAPIPELINEJOBTEST";
pub const PIPELINE_SECRET_KEY: &str = "pipeline-job-secret-key-7f3a";
pub const SECRET_KEY: &str = "pushbuild-test-secret-key";
pub const REGION: &str = "us-east-1";
pub const BUCKET: &str = "pushbuild-test";

/// What the fault wrapper saw and what it is told to do.
#[derive(Default)]
struct Faults {
    fail_next: AtomicUsize,
    /// Only requests whose `METHOD /path?query` holds this are failed (empty: any).
    failing_only: Mutex<String>,
    requests: Mutex<Vec<String>>,
}

/// A running server; dropping it stops the server and removes its files.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: &'static str,
    pub secret_key: &'static str,
    pub region: &'static str,
    runtime: Option<tokio::runtime::Runtime>,
    faults: Arc<Faults>,
    root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server with the bucket [`BUCKET`], on its own runtime (two worker threads).
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().expect("a temp dir for the S3 server");
        // s3s-fs keeps a bucket as a directory under its root.
        std::fs::create_dir(root.path().join(BUCKET)).expect("the bucket's directory");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-test")
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let service = {
            let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs over the temp dir");
            let mut builder = S3ServiceBuilder::new(fs);
            let mut auth = s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY);
            // A CodePipeline job's own credentials for its artifacts.
            auth.register(
                PIPELINE_ACCESS_KEY.to_string(),
                PIPELINE_SECRET_KEY.to_string().into(),
            );
            builder.set_auth(auth);
            builder.build()
        };
        let faults = Arc::new(Faults::default());
        let front = Front {
            inner: service,
            faults: faults.clone(),
            conditional: Arc::default(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("the bound address");
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let front = front.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), front)
                        .await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            bucket: BUCKET.to_string(),
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
            region: REGION,
            runtime: Some(runtime),
            faults,
            root,
        }
    }

    /// The runtime the server runs on; the tests' S3 clients may run on it too.
    pub fn handle(&self) -> tokio::runtime::Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => unreachable!("the runtime lives as long as the server"),
        }
    }

    /// The directory the server keeps its buckets and pending uploads in.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// An SDK configuration for this server: its endpoint, the test credentials, us-east-1.
    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint)
    }

    /// A path-style client for this server.
    /// The object at `key`, read with the SDK (panics when there is none).
    pub fn object(&self, key: &str) -> Vec<u8> {
        let client = self.client();
        let (bucket, key) = (self.bucket.clone(), key.to_string());
        self.handle().block_on(async move {
            let out = client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("get the object");
            out.body
                .collect()
                .await
                .expect("the body")
                .into_bytes()
                .to_vec()
        })
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// The store under test, made the way `main` makes it (`S3Store::from_conf`).
    pub fn store(&self) -> S3Store {
        let _inside = self.handle().enter();
        S3Store::from_conf(&self.sdk_config(), &self.bucket, true).expect("inside the runtime")
    }

    /// The environment a child process needs to reach this server through the SDK's own
    /// conventions (pass it to that child only).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_S3", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
        ]
    }

    /// Answers the next `n` requests with `503 SlowDown`.
    pub fn fail_next(&self, n: usize) {
        self.fail_next_where(n, "");
    }

    /// Answers the next `n` requests whose `METHOD /path?query` holds `needle` with `503
    /// SlowDown`; other requests are served.
    pub fn fail_next_where(&self, n: usize, needle: &str) {
        if let Ok(mut only) = self.faults.failing_only.lock() {
            *only = needle.to_string();
        }
        self.faults.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.faults
            .requests
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }

    /// How many requests so far carried `needle` (e.g. `partNumber=`).
    pub fn count(&self, needle: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.contains(needle))
            .count()
    }

    /// Multipart uploads begun and neither completed nor aborted (s3s-fs keeps a file per
    /// upload and per part in its root).
    pub fn pending_upload_files(&self) -> Vec<String> {
        std::fs::read_dir(self.root())
            .expect("the server's root")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("upload"))
            .collect()
    }
}

/// An SDK configuration for a test server at `endpoint` (maybe in another process).
pub fn sdk_config_for(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "pushbuild-tests",
        )))
        .build()
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The fault-injecting front of the S3 service.
#[derive(Clone)]
struct Front {
    inner: S3Service,
    faults: Arc<Faults>,
    /// Held across each conditional write, as S3 makes them atomic.
    conditional: Arc<tokio::sync::Mutex<()>>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, HttpError>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        let line = format!("{} {}", req.method(), req.uri());
        if let Ok(mut log) = self.faults.requests.lock() {
            log.push(line.clone());
        }
        let eligible = self
            .faults
            .failing_only
            .lock()
            .map(|only| line.contains(only.as_str()))
            .unwrap_or(true);
        let failing = eligible
            && self
                .faults
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if !failing {
            if !req.headers().contains_key("if-none-match") {
                return hyper::service::Service::call(&self.inner, req);
            }
            let (inner, conditional) = (self.inner.clone(), self.conditional.clone());
            return Box::pin(async move {
                let _one_at_a_time = conditional.lock().await;
                hyper::service::Service::call(&inner, req).await
            });
        }
        let resource = req.uri().path().to_string();
        Box::pin(async move {
            // Read the request to its end first, as S3 does, so the connection stays usable.
            let mut body = Body::from(req.into_body());
            let _ = body.store_all_limited(usize::MAX).await;
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                 <Message>Please reduce your request rate.</Message>\
                 <Resource>{resource}</Resource><RequestId>pushbuild-fault</RequestId></Error>"
            );
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header("content-type", "application/xml")
                .body(Body::from(xml))
                .map_err(|err| HttpError::new(Box::new(err)))
        })
    }
}
