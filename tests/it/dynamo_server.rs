//! A DynamoDB-compatible server for the tests: moto's server (from PyPI), one per test process,
//! started on first use on a free port of 127.0.0.1. moto implements what the index needs:
//! conditional writes, `TransactWriteItems` with cancellation reasons, queries on global
//! secondary indexes and TTL settings (dynalite, the other choice, has no transactions). Each
//! test makes a table of its own, so tests never see each other's builds.
//!
//! The server serves one request at a time (`moto_server` itself serves each in a thread, and
//! its transactions then are not isolated from each other: two reservations can both pass a cap
//! that only one fits under). DynamoDB's transactions are serializable; one request at a time
//! gives the tests a server that is too.
//!
//! moto's server is killed when the test process exits (a parent-death signal set from a
//! thread that lives as long as the process).
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use pushbuild::index::DynamoIndex;

pub const ACCESS_KEY: &str = "AKIDPUSHBUILDTEST";
pub const SECRET_KEY: &str = "pushbuild-test-secret-key";
pub const REGION: &str = "us-east-1";

/// The running server.
pub struct DynamoServer {
    pub endpoint: String,
    tables: AtomicUsize,
}

static SERVER: OnceLock<DynamoServer> = OnceLock::new();

/// moto's server, one request at a time, on the port given as its argument.
const SERVE: &str = "
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app),
           threaded=False, request_handler=MotoRequestHandler)
";

impl DynamoServer {
    /// The process's server, started on first use.
    pub fn shared() -> &'static DynamoServer {
        SERVER.get_or_init(DynamoServer::start)
    }

    fn start() -> DynamoServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let (started, ready) = std::sync::mpsc::channel();
        // The server is spawned from a thread that never ends, so its parent-death signal
        // fires when the test process exits, not when a test thread does.
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new("python3");
            command
                .args(["-c", SERVE, &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: between fork and exec only `prctl`, which is async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
            let child = command.spawn();
            let failed = child.as_ref().err().map(ToString::to_string);
            let _ = started.send(failed);
            let _child = child;
            loop {
                std::thread::park();
            }
        });
        if let Ok(Some(error)) = ready.recv() {
            panic!(
                "moto_server does not start ({error}): .ci/run installs it (pip install 'moto[server]')"
            );
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let answered = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && reqwest::blocking::get(format!("{endpoint}/moto-api/")).is_ok();
            if answered {
                break;
            }
            assert!(
                Instant::now() < until,
                "moto_server did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        DynamoServer {
            endpoint,
            tables: AtomicUsize::new(0),
        }
    }

    /// The SDK's configuration for the server.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "tests",
            )))
            .build()
    }

    /// A new table of the index's shape, made as `pushbuild index create` makes it.
    pub fn new_table(&self) -> String {
        let n = self.tables.fetch_add(1, Ordering::SeqCst);
        let table = format!("pushbuild-test-{}-{n}", std::process::id());
        let out = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
            .args(["index", "create", "--table", &table])
            .envs(self.env())
            .output()
            .expect("pushbuild runs");
        assert!(
            out.status.success(),
            "index create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        table
    }

    /// An index over a new table, driven on `handle`'s runtime.
    pub fn new_index(&self, handle: &tokio::runtime::Handle) -> DynamoIndex {
        let table = self.new_table();
        let _inside = handle.enter();
        DynamoIndex::from_conf(&self.sdk_config(), table).expect("the index")
    }

    /// The variables a pushbuild process needs to reach the server (its table is its own).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_DYNAMODB", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
        ]
    }

    /// [`env`](Self::env) and `PUSHBUILD_INDEX_TABLE` naming a new table.
    pub fn env_with_table(&self) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        env.push(("PUSHBUILD_INDEX_TABLE", self.new_table()));
        env
    }
}
