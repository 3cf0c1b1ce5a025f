//! The `pushbuild` command line: `run` builds a directory with its buildspec into the local
//! store, `invoke` and `serve` run the function's handler here, `validate` checks a buildspec,
//! `billing` reports a month's bill from the index, `index` creates or rebuilds an index,
//! `placement` shows or resets where a repository's builds run, `stop` stops a build, `retry`
//! runs one again.

mod batch;
mod billing;
mod books;
mod identity;
mod index;
mod invoke;
mod placement;
mod retry;
mod run;
mod serve;
mod stop;
mod summary;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::buildspec;
use crate::names::{self, NameError};

/// Exit status when the build ran and did not succeed.
const EXIT_BUILD_FAILED: u8 = 1;
/// Exit status for bad input: arguments, buildspec, settings.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when pushbuild itself failed (the store could not be written, ...).
const EXIT_INTERNAL: u8 = 3;
/// The longest build deadline `run` and `serve` take, in seconds: CodeBuild's longest build
/// timeout (36 hours).
const MAX_BUILD_TIMEOUT_SECS: u64 = 36 * 60 * 60;
/// The longest deadline `invoke` takes, in seconds: Lambda's longest timeout (15 minutes).
const MAX_INVOKE_TIMEOUT_SECS: u64 = 900;
/// What a command that needs AWS says when this binary was built without it.
#[cfg(not(feature = "aws"))]
const NEEDS_AWS: &str = "this pushbuild was built without AWS support; build it with `--features aws` (cargo install --path . --features aws)";

#[derive(Debug, Parser)]
#[command(
    name = "pushbuild",
    version,
    about = "Run CodeBuild buildspecs on every push: on AWS Lambda, or here"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Build DIR with its buildspec; keep artifacts, log and record in the local store.
    Run(run::RunArgs),
    /// Run the Lambda function's handler here on EVENT, with local git repositories standing in
    /// for CodeCommit and the local store for S3.
    Invoke(invoke::InvokeArgs),
    /// Serve webhooks (GitHub, GitLab, Bitbucket) here: builds run on this machine into the
    /// local store.
    Serve(serve::ServeArgs),
    /// Report a month's billed builds per repository, from the index; --verify reconciles it
    /// with the ledger.
    Billing(billing::BillingArgs),
    /// Create the index's DynamoDB table, or rebuild an index from a store.
    Index(index::IndexArgs),
    /// Where a repository's builds run: `show`, or `reset` them into the function after a
    /// timeout sent them to AWS CodeBuild.
    Placement(placement::PlacementArgs),
    /// Run a build of the local store again, here: the same commit, overrides and trigger.
    Retry(retry::RetryArgs),
    /// Ask a running or queued build to stop (it ends STOPPED within a few seconds).
    Stop(stop::StopArgs),
    /// Check a buildspec: print its errors and warnings.
    Validate {
        /// The buildspec file.
        #[arg(default_value = "buildspec.yml")]
        file: PathBuf,
    },
}

/// A `--env` value: `NAME=VALUE` (the rule is [`names::variable_assignment`]).
fn parse_env_pair(text: &str) -> Result<(String, String), NameError> {
    names::variable_assignment(text)
}

/// Whether to colour what goes to a stream: a terminal, unless `NO_COLOR` is set.
fn color_for(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none()
}

/// The function's own settings read from this process's environment, with the local store
/// standing in for the bucket and `work_dir` for the function's work directory (`invoke`,
/// `serve`).
fn local_config(work_dir: &Path) -> Result<crate::config::Config, crate::config::ConfigError> {
    crate::config::Config::from_vars(|name| match name {
        "PUSHBUILD_BUCKET" => Some("local-store".to_string()),
        "PUSHBUILD_WORK_DIR" => Some(work_dir.display().to_string()),
        other => std::env::var(other).ok(),
    })
}

/// A multi-threaded async runtime, or the exit status that says it could not start.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::from(EXIT_INTERNAL)
        })
}

/// Whether standard error is a terminal that takes colour.
fn stderr_color() -> bool {
    color_for(std::io::stderr().is_terminal())
}

/// Runs the command line; returns the process's exit status.
pub fn main() -> ExitCode {
    // Every command may run builds (run, invoke, serve): none may read this process's
    // environment.
    if let Err(err) = crate::executor::reap::keep_own_files_private() {
        eprintln!("warning: cannot keep pushbuild's own environment from its builds: {err}");
    }
    let cli = Cli::parse();
    match cli.command {
        Commands::Run(args) => run::run(&args),
        Commands::Invoke(args) => invoke::invoke(&args),
        Commands::Validate { file } => validate(&file),
        Commands::Billing(args) => billing::run(&args),
        Commands::Index(args) => index::run(&args),
        Commands::Placement(args) => placement::run(&args),
        Commands::Serve(args) => serve::serve(&args),
        Commands::Stop(args) => stop::run(&args),
        Commands::Retry(args) => retry::run(&args),
    }
}

fn validate(file: &Path) -> ExitCode {
    match buildspec::load(file) {
        Ok(parsed) => {
            for warning in &parsed.warnings {
                println!(
                    "{}:{}: warning: {}: {}",
                    file.display(),
                    warning.line,
                    warning.path,
                    warning.message
                );
            }
            println!(
                "{}: valid ({} warning(s))",
                file.display(),
                parsed.warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(EXIT_BUILD_FAILED)
        }
    }
}

/// The default local store: `$PUSHBUILD_STORE`, `$XDG_DATA_HOME/pushbuild` or
/// `~/.local/share/pushbuild`.
pub fn default_store() -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("PUSHBUILD_STORE")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("pushbuild")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/pushbuild")))
        .unwrap_or_else(|| PathBuf::from(".pushbuild"))
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_need_a_name_and_an_equals_sign() {
        assert_eq!(
            parse_env_pair("A=1=2").unwrap(),
            ("A".to_string(), "1=2".to_string())
        );
        assert_eq!(
            parse_env_pair("_X=").unwrap(),
            ("_X".to_string(), String::new())
        );
        assert!(
            parse_env_pair("A")
                .unwrap_err()
                .to_string()
                .contains("NAME=VALUE")
        );
        assert!(
            parse_env_pair("1A=b")
                .unwrap_err()
                .to_string()
                .contains("expected a variable name")
        );
    }
}
