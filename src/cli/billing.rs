//! `pushbuild billing`: a month's bill from the ledger, per repository, from the local store or
//! an S3 bucket, as a table, JSON or CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{Datelike, Utc};

use super::{EXIT_INTERNAL, bad_input, default_store};
use crate::billing::{self, Report};
use crate::store::{LocalStore, Store};

#[derive(Debug, clap::Args)]
pub(super) struct BillingArgs {
    /// The month to report, YYYY-MM [default: the current month, UTC].
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    month: Option<(i32, u32)>,
    /// The local store [default: as for `run`].
    #[arg(long, conflicts_with = "bucket")]
    store: Option<PathBuf>,
    /// Read the ledger from this S3 bucket (the SDK's usual settings; `PUSHBUILD_S3_PATH_STYLE`
    /// = `true` for local S3 servers).
    #[arg(long)]
    bucket: Option<String>,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the report as CSV.
    #[arg(long)]
    csv: bool,
}

/// A `--month` that is not `YYYY-MM`.
#[derive(Debug, thiserror::Error)]
#[error("expected YYYY-MM, such as 2026-11, found `{found}`")]
struct BadMonth {
    found: String,
}

/// `YYYY-MM` ─▶ (year, month).
fn parse_month(text: &str) -> Result<(i32, u32), BadMonth> {
    let expected = || BadMonth {
        found: text.to_string(),
    };
    let (year, month) = text.split_once('-').ok_or_else(expected)?;
    let digits =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(year, 4) || !digits(month, 2) {
        return Err(expected());
    }
    let year = year.parse::<i32>().map_err(|_| expected())?;
    match month.parse::<u32>() {
        Ok(month) if (1..=12).contains(&month) => Ok((year, month)),
        _ => Err(expected()),
    }
}

pub(super) fn run(args: &BillingArgs) -> ExitCode {
    let (year, month) = args.month.unwrap_or_else(|| {
        let now = Utc::now();
        (now.year(), now.month())
    });
    // The runtime drives the S3 client's calls; it must outlive them.
    let mut _runtime = None;
    let store: Box<dyn Store> = match &args.bucket {
        None => {
            let dir = args.store.clone().unwrap_or_else(default_store);
            if !dir.is_dir() {
                return bad_input(format!(
                    "the store {} does not exist (no build has been stored there); give the \
                     store's directory with --store",
                    dir.display()
                ));
            }
            Box::new(LocalStore::new(dir))
        }
        Some(bucket) => match s3_store(bucket) {
            Ok((runtime, store)) => {
                _runtime = Some(runtime);
                Box::new(store)
            }
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        },
    };
    let report = match billing::read_month(store.as_ref(), year, month)
        .and_then(|entries| Report::for_month(&entries, year, month))
    {
        Ok(report) => report,
        Err(err) if err.is_bad_entry() => return bad_input(err),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    if args.json {
        println!("{}", report.to_json());
    } else if args.csv {
        print!("{}", report.to_csv());
    } else {
        print!("{}", report.to_table());
    }
    ExitCode::SUCCESS
}

/// Why the bucket cannot be read.
#[derive(Debug, thiserror::Error)]
enum BucketError {
    #[cfg(feature = "aws")]
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[cfg(feature = "aws")]
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// This binary was built without the AWS side.
    #[cfg(not(feature = "aws"))]
    #[error("{}", super::NEEDS_AWS)]
    NoAws,
}

/// An S3 store over `bucket`, made inside a new runtime that the caller keeps alive; the store's
/// sync calls are then made from this thread, outside the runtime.
#[cfg(feature = "aws")]
fn s3_store(bucket: &str) -> Result<(tokio::runtime::Runtime, crate::store::S3Store), BucketError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BucketError::Runtime)?;
    let sdk = runtime.block_on(aws_config::load_defaults(
        aws_config::BehaviorVersion::latest(),
    ));
    let path_style = std::env::var("PUSHBUILD_S3_PATH_STYLE").is_ok_and(|v| v.trim() == "true");
    let store = {
        let _inside = runtime.enter();
        crate::store::S3Store::from_conf(&sdk, bucket, path_style)?
    };
    Ok((runtime, store))
}

/// Without the `aws` feature there is no S3 client: say how to get one.
#[cfg(not(feature = "aws"))]
fn s3_store(_bucket: &str) -> Result<((), LocalStore), BucketError> {
    Err(BucketError::NoAws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn case(text: &str, expected: Option<(i32, u32)>) {
        match (parse_month(text), expected) {
            (Ok(got), Some(want)) => assert_eq!(got, want, "{text}"),
            (Err(err), None) => {
                let message = err.to_string();
                assert!(
                    message.contains("YYYY-MM") && message.contains(text),
                    "{message}"
                );
            }
            (got, want) => panic!("{text}: expected {want:?}, got {got:?}"),
        }
    }

    #[test]
    fn months_are_yyyy_mm() {
        case("2026-11", Some((2026, 11)));
        case("2027-01", Some((2027, 1)));
        case("0999-12", Some((999, 12)));
        case("2026-13", None);
        case("2026-00", None);
        case("2026-1", None);
        case("26-11", None);
        case("2026/11", None);
        case("2026-11-01", None);
        case("+202-11", None);
        case("", None);
    }
}
