//! The `pushbuild` command line: `run` builds a directory with its buildspec into the local
//! store, `validate` checks a buildspec, `billing` reports a month's bill from the ledger.

mod billing;
mod summary;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::buildspec::{self, BuildSpec};
use crate::cost::{self, Arch, Price};
use crate::executor::Status;
use crate::executor::env::BuildInfo;
use crate::executor::log::Echo;
use crate::pipeline::{self, BuildJob};
use crate::source::local;
use crate::store::{Layout, LocalStore, Store};

/// Exit status when the build ran and did not succeed.
const EXIT_BUILD_FAILED: u8 = 1;
/// Exit status for bad input: arguments, buildspec, settings.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when pushbuild itself failed (the store could not be written, ...).
const EXIT_INTERNAL: u8 = 3;
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
    Run(RunArgs),
    /// Run the Lambda function's handler here on EVENT, with local git repositories standing in
    /// for CodeCommit and the local store for S3.
    Invoke(InvokeArgs),
    /// Report a month's billed builds per repository, from the billing ledger.
    Billing(billing::BillingArgs),
    /// Check a buildspec: print its errors and warnings.
    Validate {
        /// The buildspec file.
        #[arg(default_value = "buildspec.yml")]
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
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
    /// The build's deadline, in seconds (CodeBuild's default is 60 minutes).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// NAME=VALUE, overriding the buildspec's variable NAME (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env_pair)]
    env: Vec<(String, String)>,
    /// Print the build record as JSON instead of the summary (the log goes to standard error).
    #[arg(long)]
    json: bool,
    /// The project (repository) name in the store [default: DIR's name].
    #[arg(long)]
    project: Option<String>,
    /// The price of a build minute in USD [default: AWS Lambda arm64 at 2048 MB].
    #[arg(long)]
    price_per_minute: Option<f64>,
}

#[derive(Debug, clap::Args)]
struct InvokeArgs {
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
    /// The invocation's deadline in seconds (Lambda's longest is 900).
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, found `{text}`"))?;
    if !is_identifier(name) {
        return Err(format!(
            "`{name}` is not a variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Runs the command line; returns the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Commands::Run(args) => run(&args),
        Commands::Invoke(args) => invoke(&args),
        Commands::Validate { file } => validate(&file),
        Commands::Billing(args) => billing::run(&args),
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

fn run(args: &RunArgs) -> ExitCode {
    let started = Instant::now();
    let start_time = Utc::now();
    let dir = match std::fs::canonicalize(&args.dir) {
        Ok(dir) if dir.is_dir() => dir,
        Ok(dir) => return bad_input(format!("{} is not a directory", dir.display())),
        Err(err) => return bad_input(format!("{}: {err}", args.dir.display())),
    };
    let spec_path = dir.join(&args.buildspec);
    let parsed = match buildspec::load(&spec_path) {
        Ok(parsed) => parsed,
        Err(err) => return bad_input(err),
    };
    let secrets = match local_secrets(&parsed.spec) {
        Ok(secrets) => secrets,
        Err(message) => return bad_input(message),
    };
    let project = args.project.clone().unwrap_or_else(|| {
        dir.file_name()
            .map_or_else(|| "build".to_string(), |n| n.to_string_lossy().into_owned())
    });
    if crate::store::check_key(&project).is_err() || project.contains('/') {
        return bad_input(format!(
            "`{project}` cannot name a project: use --project with a plain name"
        ));
    }
    let price = match args.price_per_minute {
        Some(usd) if usd.is_finite() && usd >= 0.0 => Price::per_minute(usd),
        Some(usd) => {
            return bad_input(format!(
                "--price-per-minute: expected a price of 0 or more, found {usd}"
            ));
        }
        None => Price::lambda(cost::DEFAULT_MEMORY_MB, Arch::Arm64),
    };
    let store = LocalStore::new(args.store.clone().unwrap_or_else(default_store));
    let git = local::git_info(&dir);
    let build_id = pipeline::new_build_id();
    let build_number = match pipeline::next_build_number(&store, &project) {
        Ok(n) => n,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "local".to_string());
    let info = BuildInfo {
        build_id,
        project,
        build_number,
        initiator: format!("pushbuild-cli/{user}"),
        source_version: git.branch.clone().or_else(|| git.commit.clone()),
        resolved_source_version: git.commit.clone(),
        source_repo_url: git
            .remote_url
            .clone()
            .or_else(|| Some(format!("file://{}", dir.display()))),
        webhook_trigger: None,
        start_time_ms: start_time.timestamp_millis(),
    };
    let to_terminal = if args.json {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let color = to_terminal && std::env::var_os("NO_COLOR").is_none();
    let job = BuildJob {
        reference: git.branch.as_ref().map(|b| format!("refs/heads/{b}")),
        info,
        spec: parsed.spec,
        spec_warnings: parsed.warnings,
        src_dir: dir,
        base_env: std::env::vars().collect(),
        overrides: args.env.clone(),
        secrets,
        home: None,
        deadline: Some(started + Duration::from_secs(args.timeout)),
        started,
        start_time,
        price,
        echo: if args.json {
            Echo::Stderr { color }
        } else {
            Echo::Stdout { color }
        },
        temp_root: std::env::temp_dir(),
        source_notes: Vec::new(),
        metering: pipeline::Metering::off(),
    };
    let record = match pipeline::run_build(&job, &store) {
        Ok(record) => record,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&record) {
            Ok(json) => println!("{json}"),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        }
    } else {
        let layout = Layout {
            project: record.repository.clone(),
            build_id: record.build_id.clone(),
        };
        print!(
            "{}",
            summary::render(&record, &store.uri(&layout.record()), color)
        );
    }
    if record.status == Status::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BUILD_FAILED)
    }
}

fn invoke(args: &InvokeArgs) -> ExitCode {
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
    // The function's own settings, with the bucket and work directory of this local run.
    let config = crate::config::Config::from_vars(|name| match name {
        "PUSHBUILD_BUCKET" => Some("local-store".to_string()),
        "PUSHBUILD_WORK_DIR" => Some(work_dir.display().to_string()),
        other => std::env::var(other).ok(),
    });
    let config = match config {
        Ok(config) => config,
        Err(err) => return bad_input(err),
    };
    let store = LocalStore::new(args.store.clone().unwrap_or_else(default_store));
    let function = crate::function::Function {
        config,
        source: crate::source::GitDirSource::new(&args.repos),
        store: std::sync::Arc::new(store),
        base_env: crate::function::build_base_env(std::env::vars()),
        metrics: std::sync::Arc::new(crate::metering::NullSink),
        echo: Echo::Stderr {
            color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    match runtime.block_on(function.handle(&event, Some(deadline))) {
        Ok(response) => {
            match serde_json::to_string_pretty(&response) {
                Ok(json) => println!("{json}"),
                Err(err) => eprintln!("error: {err}"),
            }
            let all_good = response
                .builds
                .iter()
                .all(|b| b.status == "SUCCEEDED" || b.status == "SKIPPED");
            if all_good {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BUILD_FAILED)
            }
        }
        Err(err) => {
            eprintln!("error ({}): {err}", err.error_type());
            if err.error_type().contains("Permanent") {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::from(EXIT_INTERNAL)
            }
        }
    }
}

/// Locally, `parameter-store` and `secrets-manager` variables take their values from pushbuild's
/// own environment under the same name (there is no AWS account to ask).
fn local_secrets(spec: &BuildSpec) -> Result<Vec<(String, String)>, String> {
    let mut secrets = Vec::new();
    let declared = [
        ("parameter-store", &spec.env.parameter_store),
        ("secrets-manager", &spec.env.secrets_manager),
    ];
    for (section, vars) in declared {
        for (name, _) in vars.iter() {
            match std::env::var(name) {
                Ok(value) => secrets.push((name.clone(), value)),
                Err(_) => {
                    return Err(format!(
                        "env.{section}.{name}: a local build reads secret variables from its own environment; set {name} before `pushbuild run`"
                    ));
                }
            }
        }
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_need_a_name_and_an_equals_sign() {
        assert_eq!(parse_env_pair("A=1=2"), Ok(("A".into(), "1=2".into())));
        assert_eq!(parse_env_pair("_X="), Ok(("_X".into(), String::new())));
        assert!(parse_env_pair("A").unwrap_err().contains("NAME=VALUE"));
        assert!(
            parse_env_pair("1A=b")
                .unwrap_err()
                .contains("not a variable name")
        );
    }
}
