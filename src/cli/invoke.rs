//! `pushbuild invoke`: the Lambda function's handler on a local event, with local git
//! repositories standing in for CodeCommit and the local store for S3.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::books::local_books;
use super::{
    EXIT_BAD_INPUT, EXIT_BUILD_FAILED, EXIT_INTERNAL, bad_input, default_store, local_config,
    runtime, stderr_color,
};
use crate::executor::log::Echo;
use crate::function;
use crate::lifecycle::{BuildError, Builds};
use crate::source::GitDirSource;
use crate::state::BuildState;
use crate::store::LocalStore;

/// The function's handler over local stand-ins: git repositories for CodeCommit, the local
/// store for S3, and the function's own settings with this run's bucket and work directory.
fn local_function(
    args: &InvokeArgs,
    work_dir: &std::path::Path,
) -> Result<Builds<GitDirSource>, String> {
    let config = local_config(work_dir).map_err(|err| err.to_string())?;
    let store_dir = args.store.clone().unwrap_or_else(default_store);
    let books = local_books(&store_dir, config.budget(), config.upload_reserve)
        .map_err(|err| err.to_string())?;
    let source = GitDirSource::new(&args.repos);
    let store = Arc::new(LocalStore::new(store_dir));
    Ok(
        Builds::new(config, source, store, books).with_echo(Echo::Stderr {
            color: stderr_color(),
        }),
    )
}

#[derive(Debug, clap::Args)]
pub(super) struct InvokeArgs {
    /// The event, as Lambda would deliver it (see events/).
    event: PathBuf,
    /// A directory holding one git repository per CodeCommit repository name (DIR/<name>).
    #[arg(long, value_name = "DIR")]
    repos: PathBuf,
    /// The local store [default: as for `run`].
    #[arg(long)]
    store: Option<PathBuf>,
    /// Where builds keep their source and home [default: a new temporary directory].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// The invocation's deadline in seconds, from 1 to 900 (Lambda's longest).
    #[arg(long, default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_INVOKE_TIMEOUT_SECS))]
    timeout: u64,
}

pub(super) fn invoke(args: &InvokeArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.event) {
        Ok(text) => text,
        Err(err) => return bad_input(format!("{}: {err}", args.event.display())),
    };
    let event: serde_json::Value = match serde_json::from_str(&text) {
        Ok(event) => event,
        Err(err) => return bad_input(format!("{}: not JSON: {err}", args.event.display())),
    };
    if !args.repos.is_dir() {
        return bad_input(format!("--repos {}: not a directory", args.repos.display()));
    }
    let temp = match tempfile::Builder::new()
        .prefix("pushbuild-invoke-")
        .tempdir()
    {
        Ok(temp) => temp,
        Err(err) => return bad_input(format!("cannot make a work directory: {err}")),
    };
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let work_dir = std::path::absolute(&work_dir).unwrap_or(work_dir);
    let function = match local_function(args, &work_dir) {
        Ok(function) => function,
        Err(err) => return bad_input(err),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let deadline = Instant::now().checked_add(Duration::from_secs(args.timeout));
    // Whatever escapes a build's own keeper is adopted here and killed when the builds end.
    let _ = crate::executor::reap::become_subreaper();
    let handled = runtime.block_on(function::handle(&function, &event, deadline));
    crate::executor::reap::sweep_own_tree();
    match handled {
        Ok(response) => {
            match serde_json::to_string_pretty(&response) {
                Ok(json) => println!("{json}"),
                Err(err) => eprintln!("error: {err}"),
            }
            let all_good = response
                .builds
                .iter()
                .all(|b| matches!(b.status, BuildState::Succeeded | BuildState::Skipped));
            if all_good {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BUILD_FAILED)
            }
        }
        Err(err) => {
            eprintln!("error ({}): {err}", err.error_type());
            if matches!(err, BuildError::BadEvent(_)) {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::from(EXIT_INTERNAL)
            }
        }
    }
}
