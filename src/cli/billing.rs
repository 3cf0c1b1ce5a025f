//! `pushbuild billing`: a month's bill per repository from the index (one query), for the local
//! store or a bucket and its table, as a table, JSON or CSV; `--verify` reconciles the index
//! with the ledger objects instead.

use std::process::ExitCode;

use chrono::{Datelike, Utc};

use super::{EXIT_BUILD_FAILED, EXIT_INTERNAL, bad_input, books, local_config};
use crate::billing::Report;
use crate::index::books::BooksError;
use crate::index::{Index, audit};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub(super) struct BillingArgs {
    /// The month to report, YYYY-MM [default: the current month, UTC].
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    month: Option<(i32, u32)>,
    #[command(flatten)]
    at: books::Where,
    /// Reconcile the index with the month's ledger objects: print every difference (exit 1
    /// when there is one).
    #[arg(long, conflicts_with_all = ["json", "csv"])]
    verify: bool,
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
    let config = match local_config(&std::env::temp_dir()) {
        Ok(config) => config,
        Err(err) => return bad_input(err),
    };
    let opened = match args.at.open(config.budget(), config.upload_reserve) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    // Builds nobody finished are closed first, so the month's figures are final ones.
    opened.books.sweep_quietly(opened.store.as_ref());
    let index = opened.books.index.as_ref();
    if args.verify {
        return verify(opened.store.as_ref(), index, year, month);
    }
    let month_text = format!("{year:04}-{month:02}");
    let mut report = match index.month_sums(&month_text) {
        Ok(sums) => Report::from_sums(&month_text, &sums),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    // The caches' storage is its own line (not in CSV, whose rows are repositories).
    match crate::billing::CacheStorage::measure(opened.store.as_ref()) {
        Ok(storage) => report.cache_storage = Some(storage),
        Err(err) => eprintln!("warning: the caches' storage is not counted: {err}"),
    }
    if args.json {
        println!("{}", report.to_json());
    } else if args.csv {
        print!("{}", report.to_csv());
    } else {
        print!("{}", report.to_table());
        if let Some(storage) = &report.cache_storage {
            println!("{}", storage.line());
        }
    }
    ExitCode::SUCCESS
}

/// Prints every difference between the index and the ledger; exit 1 when there is one.
fn verify(store: &dyn Store, index: &dyn Index, year: i32, month: u32) -> ExitCode {
    match audit::verify(store, index, year, month) {
        Ok(differences) if differences.is_empty() => {
            println!("{year:04}-{month:02}: the index agrees with the ledger");
            ExitCode::SUCCESS
        }
        Ok(differences) => {
            for difference in &differences {
                println!("{difference}");
            }
            println!(
                "{year:04}-{month:02}: {} difference(s) between the index and the ledger",
                differences.len()
            );
            ExitCode::from(EXIT_BUILD_FAILED)
        }
        Err(BooksError::Billing(err)) if err.is_bad_entry() => bad_input(err),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
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
