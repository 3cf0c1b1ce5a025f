//! `pushbuild run`: build a directory with its buildspec into the local store, printing the log
//! as it is written and then the summary (or the record as JSON).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::books::local_books;
use super::{
    EXIT_BUILD_FAILED, EXIT_INTERNAL, bad_input, color_for, default_store, local_config, summary,
};
use crate::buildspec;
use crate::cost::{self, Arch, Price};
use crate::executor::log::Echo;
use crate::executor::reap;
use crate::index::Books;
use crate::names::{NameError, RepositoryName};
use crate::pipeline::{self, BuildJob, BuildSettings, Metering, Ready, StoredBuild, Work};
use crate::state::BuildState;
use crate::store::LocalStore;
use crate::vault::{self, Resolved};

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    /// The source directory to build.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The buildspec, relative to DIR (or absolute).
    #[arg(long, default_value = "buildspec.yml")]
    buildspec: PathBuf,
    /// The local store [default: $PUSHBUILD_STORE, else $XDG_DATA_HOME/pushbuild, else
    /// ~/.local/share/pushbuild].
    #[arg(long)]
    store: Option<PathBuf>,
    /// The build's deadline, in seconds, from 1 to 129600 (CodeBuild's default is 60 minutes,
    /// its longest 36 hours).
    #[arg(long, default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_BUILD_TIMEOUT_SECS))]
    timeout: u64,
    /// NAME=VALUE, overriding the buildspec's variable NAME (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = super::parse_env_pair)]
    env: Vec<(String, String)>,
    /// Print the build record as JSON instead of the summary (the log goes to standard error).
    #[arg(long)]
    json: bool,
    /// The project (repository) name in the store [default: DIR's name].
    #[arg(long)]
    project: Option<String>,
    /// A batch's builds at once [default: the machine's processors].
    #[arg(long)]
    jobs: Option<usize>,
    /// The price of a build minute in USD, from 0 to 1000 [default: AWS Lambda arm64 at
    /// 2048 MB].
    #[arg(long, value_name = "USD", value_parser = Price::parse_per_minute)]
    price_per_minute: Option<Price>,
}

pub(super) fn run(args: &RunArgs) -> ExitCode {
    let started = Instant::now();
    // Whatever escapes the build's own keeper is adopted here and killed when the build ends.
    let _ = reap::become_subreaper();
    let dir = match std::fs::canonicalize(&args.dir) {
        Ok(dir) if dir.is_dir() => dir,
        Ok(dir) => return bad_input(format!("{} is not a directory", dir.display())),
        Err(err) => return bad_input(format!("{}: {err}", args.dir.display())),
    };
    let parsed = match buildspec::load(&dir.join(&args.buildspec)) {
        Ok(parsed) => parsed,
        Err(err) => return bad_input(err),
    };
    // Locally, secret variables take their values from pushbuild's own environment.
    let secrets = match vault::from_environment(&parsed.spec.env, |name| std::env::var(name).ok()) {
        Resolved::Values(secrets) => secrets,
        Resolved::Refused(message) => return bad_input(message),
    };
    let project = match project_name(args.project.as_deref(), &dir) {
        Ok(project) => project,
        Err(err) => return bad_input(err),
    };
    let color = color_for(if args.json {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    });
    let store_dir = args.store.clone().unwrap_or_else(default_store);
    let (settings, batches) = match settings_for(args, &store_dir, color) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let store = LocalStore::new(store_dir);
    // A buildspec with `batch` runs as a batch, unless PUSHBUILD_BATCH=off.
    if let Some(batch) = parsed.spec.batch.clone().filter(|_| batches) {
        let batched = super::batch::Batched {
            dir: &dir,
            buildspec: &args.buildspec,
            overrides: &args.env,
            jobs: args.jobs,
            deadline: started.checked_add(Duration::from_secs(args.timeout)),
            project,
            settings: &settings,
            store: &store,
        };
        return batched.run(&batch);
    }
    let ready = Ready {
        overrides: args.env.clone(),
        secrets,
        ..Ready::new(parsed, dir.clone())
    };
    let job = BuildJob::new(
        super::identity::identity(project, &dir),
        &settings,
        Work::Run(Box::new(ready)),
    )
    .with_deadline(started.checked_add(Duration::from_secs(args.timeout)));
    let stored = pipeline::run(&job, &store);
    reap::sweep_own_tree();
    let stored = match stored {
        Ok(stored) => stored,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    report(&stored, args.json, color)
}

/// The settings a local build runs with: the price, the function's budget and minute settings
/// (PUSHBUILD_MONTHLY_MINUTES, …), the store's books, the echo, and whether a buildspec's `batch`
/// runs as a batch (PUSHBUILD_BATCH); or the exit status saying why not.
fn settings_for(
    args: &RunArgs,
    store_dir: &Path,
    color: bool,
) -> Result<(BuildSettings, bool), ExitCode> {
    let price = args
        .price_per_minute
        .clone()
        .unwrap_or_else(|| Price::lambda(cost::DEFAULT_MEMORY_MB, Arch::Arm64));
    let config = local_config(&std::env::temp_dir()).map_err(bad_input)?;
    let books = local_books(store_dir, config.budget(), config.upload_reserve).map_err(|err| {
        eprintln!("error: {err}");
        ExitCode::from(EXIT_INTERNAL)
    })?;
    let echo = if args.json {
        Echo::Stderr { color }
    } else {
        Echo::Stdout { color }
    };
    let settings = BuildSettings {
        cache: config.cache.clone(),
        ..local_settings(price, config.billing_minute, echo, books)
    };
    Ok((settings, config.batch))
}

/// How a local build runs: no metrics, no live log, pushbuild's whole environment (a local
/// build's secrets come from there), the machine's own tools, work files in the system's
/// temporary directory.
fn local_settings(price: Price, minute: Duration, echo: Echo, books: Books) -> BuildSettings {
    BuildSettings {
        price,
        metering: Metering {
            minute,
            ..Metering::off()
        },
        echo,
        temp_root: std::env::temp_dir(),
        base_env: std::env::vars().collect(),
        runtimes: None,
        live_log: None,
        books,
        cache: Default::default(),
    }
}

/// Prints the record (`--json`) or the summary; the exit status says how the build ended.
fn report(stored: &StoredBuild, json: bool, color: bool) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(&stored.record) {
            Ok(json) => println!("{json}"),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        }
    } else {
        print!(
            "{}",
            summary::render(&stored.record, &stored.record_uri, color)
        );
    }
    if stored.record.status == BuildState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BUILD_FAILED)
    }
}

/// A project name that is not a repository name.
#[derive(Debug, thiserror::Error)]
#[error("`{name}` cannot name a project ({source}): use --project with a plain name")]
struct BadProject {
    name: String,
    source: NameError,
}

/// `--project`, else the directory's name; either must be a repository name.
fn project_name(given: Option<&str>, dir: &Path) -> Result<RepositoryName, BadProject> {
    let name = match given {
        Some(name) => name.to_string(),
        None => dir
            .file_name()
            .map_or_else(|| "build".to_string(), |n| n.to_string_lossy().into_owned()),
    };
    RepositoryName::parse(&name).map_err(|source| BadProject { name, source })
}
