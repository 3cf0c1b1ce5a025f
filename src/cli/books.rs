//! Where a command's builds are kept: the local store and its SQLite index, or a bucket and a
//! DynamoDB table (`--bucket`, `--table`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{EXIT_INTERNAL, bad_input};
use crate::billing::Budget;
use crate::index::audit;
use crate::index::{Books, IndexError, SqliteIndex};
use crate::store::{LocalStore, Store};

/// A store, its index, and the runtime their AWS clients run on (kept alive with them).
pub(super) struct Opened {
    pub store: Box<dyn Store>,
    pub books: Books,
    /// AWS CodeBuild, with a bucket (to stop a build that runs there).
    pub codebuild: Option<Box<dyn crate::codebuild::CodeBuild>>,
    _runtime: Option<tokio::runtime::Runtime>,
}

/// The books of the local store at `store_dir`: its SQLite index, made from the store's records
/// and ledger the first time (a store from before the index keeps its numbers and its month).
pub(super) fn local_books(
    store_dir: &Path,
    budget: Budget,
    grace: Duration,
) -> Result<Books, IndexError> {
    let path = SqliteIndex::path_in(store_dir);
    let fresh = !path.exists();
    let index = if fresh {
        SqliteIndex::open(&path)?
    } else {
        SqliteIndex::open_in_background(&path)?
    };
    if fresh && (store_dir.join("builds").is_dir() || store_dir.join("billing").is_dir()) {
        let store = LocalStore::new(store_dir);
        audit::rebuild(&store, &index).map_err(|err| IndexError::Sqlite {
            path: path.display().to_string(),
            message: format!("cannot make the index from the store's records: {err}"),
        })?;
    }
    Ok(Books::new(Arc::new(index), budget, grace))
}

/// Where a command finds the builds: the local store, or the function's bucket and index table.
/// One set of options for every command that reads them (`--store`, `--bucket`, `--table`).
#[derive(Debug, Clone, clap::Args)]
pub(super) struct Where {
    /// The local store [default: as for `run`].
    #[arg(long, conflicts_with = "bucket")]
    pub store: Option<PathBuf>,
    /// The bucket of the function's results (the SDK's usual settings;
    /// `PUSHBUILD_S3_PATH_STYLE=true` for local S3 servers), with its index table (--table).
    #[arg(long)]
    pub bucket: Option<String>,
    /// The index's DynamoDB table, with --bucket.
    #[arg(long, env = "PUSHBUILD_INDEX_TABLE", value_parser = crate::config::table_name)]
    pub table: Option<String>,
}

impl Where {
    /// Opens what these options name (see [`open`]).
    pub fn open(&self, budget: Budget, grace: Duration) -> Result<Opened, ExitCode> {
        open(
            self.store.clone(),
            self.bucket.as_deref(),
            self.table.as_deref(),
            budget,
            grace,
        )
    }
}

/// Opens the local store (`store`, else the default one; it must exist) or, with `bucket`, the
/// bucket and the `table`.
pub(super) fn open(
    store: Option<PathBuf>,
    bucket: Option<&str>,
    table: Option<&str>,
    budget: Budget,
    grace: Duration,
) -> Result<Opened, ExitCode> {
    let Some(bucket) = bucket else {
        let dir = store.unwrap_or_else(super::default_store);
        if !dir.is_dir() {
            return Err(bad_input(format!(
                "the store {} does not exist (no build has been stored there); give the \
                 store's directory with --store",
                dir.display()
            )));
        }
        let books = local_books(&dir, budget, grace).map_err(internal)?;
        return Ok(Opened {
            store: Box::new(LocalStore::new(dir)),
            books,
            codebuild: None,
            _runtime: None,
        });
    };
    let Some(table) = table else {
        return Err(bad_input(
            "--bucket needs the index's table too: --table NAME (or PUSHBUILD_INDEX_TABLE)",
        ));
    };
    remote(bucket, table, budget, grace)
}

fn internal(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(EXIT_INTERNAL)
}

/// A runtime for the AWS clients, and the SDK's configuration (the usual variables).
#[cfg(feature = "aws")]
pub(super) fn aws() -> Result<(tokio::runtime::Runtime, aws_config::SdkConfig), ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| internal(format!("cannot start the async runtime: {err}")))?;
    let sdk = runtime.block_on(aws_config::load_defaults(
        aws_config::BehaviorVersion::latest(),
    ));
    Ok((runtime, sdk))
}

#[cfg(feature = "aws")]
fn remote(bucket: &str, table: &str, budget: Budget, grace: Duration) -> Result<Opened, ExitCode> {
    let (runtime, sdk) = aws()?;
    let setting = std::env::var("PUSHBUILD_S3_PATH_STYLE").ok();
    let path_style = crate::config::flag("PUSHBUILD_S3_PATH_STYLE", setting.as_deref(), false)
        .map_err(super::bad_input)?;
    let (store, index, codebuild) = {
        let _inside = runtime.enter();
        let store = crate::store::S3Store::from_conf(&sdk, bucket, path_style).map_err(internal)?;
        let index = crate::index::DynamoIndex::from_conf(&sdk, table).map_err(internal)?;
        let codebuild = crate::codebuild::sdk::SdkCodeBuild::from_conf(&sdk)
            .map(|c| Box::new(c) as Box<dyn crate::codebuild::CodeBuild>);
        (store, index, codebuild)
    };
    let index: Arc<dyn crate::index::Index> = Arc::new(index);
    Ok(Opened {
        store: Box::new(store),
        books: Books::new(index, budget, grace),
        codebuild,
        _runtime: Some(runtime),
    })
}

/// Without the `aws` feature there is no S3 or DynamoDB client: say how to get one.
#[cfg(not(feature = "aws"))]
fn remote(
    _bucket: &str,
    _table: &str,
    _budget: Budget,
    _grace: Duration,
) -> Result<Opened, ExitCode> {
    eprintln!("error: {}", super::NEEDS_AWS);
    Err(ExitCode::from(EXIT_INTERNAL))
}
