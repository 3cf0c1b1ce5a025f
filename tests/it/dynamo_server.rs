//! A DynamoDB-compatible server for the tests: moto's server (from PyPI), one per test process,
//! started on first use on a free port of 127.0.0.1. moto implements what the index needs:
//! conditional writes, `TransactWriteItems` with cancellation reasons, queries on global
//! secondary indexes and TTL settings (dynalite, the other choice, has no transactions). Each
//! test makes a table of its own, so tests never see each other's builds.
//!
//! Two things differ from `moto_server` as it comes, both where moto falls short of DynamoDB:
//! - it serves one request at a time: `moto_server` serves each in a thread, and its
//!   transactions are then not isolated from each other (two reservations can both pass a cap
//!   only one fits under), where DynamoDB's are serializable;
//! - a transaction keeps, for its rollback, a copy of the items it writes rather than of the
//!   whole table: moto copies the table, so a transaction there takes time in proportion to the
//!   table's size, where DynamoDB's takes time in proportion to its own items. All or nothing
//!   still: a cancelled transaction leaves every item as it was.
//!
//! moto comes from the tests' own Python environment (`tools.rs`), never the machine's.
//! moto's server is killed when the test process exits (a parent-death signal set from a
//! thread that lives as long as the process).
#![allow(dead_code)]

use std::path::Path;
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

/// moto's server, one request at a time, on the port given as its argument; transactions roll
/// back their own items.
const SERVE: &str = r#"
import copy, sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
import moto.dynamodb.models as models
from moto.dynamodb.models.table import Table

class TablesByReference:
    @staticmethod
    def deepcopy(value, *args):
        return value if isinstance(value, Table) else copy.deepcopy(value, *args)

transact_all_or_nothing = models.DynamoDBBackend.transact_write_items

def transact(self, items):
    saved = []
    for item in items:
        kind, op = next(iter(item.items()))
        if op.get("TableName") not in self.tables:
            continue
        table = self.get_table(op["TableName"])
        if kind == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        current = self.get_item(op["TableName"], key)
        saved.append((op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    models.copy = TablesByReference
    try:
        return transact_all_or_nothing(self, items)
    except BaseException:
        for name, key, attributes in reversed(saved):
            if attributes is None:
                self.delete_item(name, key)
            else:
                self.put_item(name, attributes)
        raise
    finally:
        models.copy = copy

models.DynamoDBBackend.transact_write_items = transact
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app),
           threaded=False, request_handler=MotoRequestHandler)
"#;

impl DynamoServer {
    /// The process's server, started on first use. A server that cannot start fails every test
    /// that asks for it at once, with the reason.
    pub fn shared() -> &'static DynamoServer {
        static STARTED: OnceLock<Result<DynamoServer, String>> = OnceLock::new();
        match STARTED.get_or_init(DynamoServer::start) {
            Ok(server) => server,
            Err(why) => panic!("moto's DynamoDB server cannot start: {why}"),
        }
    }

    fn start() -> Result<DynamoServer, String> {
        let python = crate::tools::python()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|err| format!("no free port: {err}"))?
            .port();
        // What the server says goes to a file, shown if it stops before it answers.
        let errors = tempfile::NamedTempFile::new().map_err(|err| err.to_string())?;
        let stderr = errors.reopen().map_err(|err| err.to_string())?;
        let (started, ready) = std::sync::mpsc::channel();
        // The server is spawned from a thread that never ends, so its parent-death signal
        // fires when the test process exits, not when a test thread does.
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new(python);
            command
                .args(["-c", SERVE, &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr);
            // SAFETY: between fork and exec only `prctl`, which is async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
            let child = command.spawn().map(|child| child.id());
            let _ = started.send(child.map_err(|err| err.to_string()));
            loop {
                std::thread::park();
            }
        });
        let pid = ready
            .recv()
            .map_err(|_| "the thread that starts it ended".to_string())??;
        let endpoint = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let answered = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && reqwest::blocking::get(format!("{endpoint}/moto-api/")).is_ok();
            if answered {
                break;
            }
            // A server that exited says why at once.
            if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
                let said = std::fs::read_to_string(errors.path()).unwrap_or_default();
                let tail: Vec<&str> = said.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!("it exited before answering: {}", tail.join(" / ")));
            }
            if Instant::now() > until {
                return Err("it did not answer within 60 s".to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(DynamoServer {
            endpoint,
            tables: AtomicUsize::new(0),
        })
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

/// Whether process `pid` has exited and waits to be collected.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(") ")?.1.to_string();
            after.chars().next()
        })
        .is_some_and(|state| state == 'Z')
}
