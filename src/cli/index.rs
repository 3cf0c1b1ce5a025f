//! `pushbuild index`: `create` makes the DynamoDB table of the index (for tests and for users
//! outside CloudFormation); `rebuild` makes an index from a store's records and ledger.

use std::process::ExitCode;
use std::time::Duration;

use super::EXIT_INTERNAL;
use super::books::Where;
use crate::billing::Budget;
use crate::index::audit::rebuild;

#[derive(Debug, clap::Args)]
pub(super) struct IndexArgs {
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IndexCommand {
    /// Create the index's DynamoDB table (on-demand, with its two indexes and TTL) and wait
    /// until it is active. The endpoint, region and credentials are the SDK's usual settings
    /// (`AWS_ENDPOINT_URL_DYNAMODB` for a local server).
    Create {
        /// The table's name.
        #[arg(long, value_parser = crate::config::table_name)]
        table: String,
    },
    /// Add every build of a store (its records, and ledger entries without a record) to its
    /// index; builds the index has already are left alone, so it can run again.
    Rebuild {
        #[command(flatten)]
        at: Where,
    },
}

pub(super) fn run(args: &IndexArgs) -> ExitCode {
    match &args.command {
        IndexCommand::Create { table } => create(table),
        IndexCommand::Rebuild { at } => {
            let opened = match at.open(Budget::default(), Duration::ZERO) {
                Ok(opened) => opened,
                Err(code) => return code,
            };
            match rebuild(opened.store.as_ref(), opened.books.index.as_ref()) {
                Ok(done) => {
                    println!(
                        "index rebuilt: {} build(s) added from records, {} from the ledger alone, {} already there",
                        done.from_records, done.from_ledger, done.already
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::from(EXIT_INTERNAL)
                }
            }
        }
    }
}

#[cfg(feature = "aws")]
fn create(table: &str) -> ExitCode {
    let (runtime, sdk) = match super::books::aws() {
        Ok(aws) => aws,
        Err(code) => return code,
    };
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    match runtime.block_on(crate::index::DynamoIndex::create_table(&client, table)) {
        Ok(()) => {
            println!("created the index table {table}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

#[cfg(not(feature = "aws"))]
fn create(_table: &str) -> ExitCode {
    eprintln!("error: {}", super::NEEDS_AWS);
    ExitCode::from(EXIT_INTERNAL)
}
