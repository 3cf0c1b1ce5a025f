//! `pushbuild stop PROJECT BUILD_ID`: asks a running or queued build to stop, in the local store
//! or the function's bucket and index (`--bucket`, `--table`). A running build stops within a few
//! seconds wherever it runs and ends STOPPED; one on AWS CodeBuild is stopped there too
//! (`--bucket` only: that is where the CodeBuild client is); a queued one does not run.

use std::process::ExitCode;
use std::time::Duration;

use super::books::Where;
use super::{EXIT_BAD_INPUT, EXIT_BUILD_FAILED, EXIT_INTERNAL};
use crate::billing::Budget;
use crate::lifecycle::{StopError, Stopping, ask_to_stop};
use crate::names::{BuildId, ProjectName};

#[derive(Debug, clap::Args)]
pub(super) struct StopArgs {
    /// The build's repository, as pushbuild names it (`my-repo`, `github.com/owner/repo`).
    project: String,
    /// The build's id (its page and record show it).
    build_id: String,
    /// Why, for its log and record [default: asked by $USER].
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    at: Where,
}

pub(super) fn run(args: &StopArgs) -> ExitCode {
    let (project, build_id) = match (
        ProjectName::parse(&args.project),
        BuildId::parse(&args.build_id),
    ) {
        (Ok(project), Ok(build_id)) => (project, build_id),
        (Err(err), _) => return bad(format!("PROJECT: {err}")),
        (_, Err(err)) => return bad(format!("BUILD_ID: {err}")),
    };
    let reason = args.reason.clone().unwrap_or_else(|| {
        format!(
            "asked by {}",
            std::env::var("USER").unwrap_or_else(|_| "pushbuild-cli".into())
        )
    });
    let opened = match args.at.open(Budget::default(), Duration::ZERO) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let asked = ask_to_stop(
        opened.store.as_ref(),
        opened.books.index.as_ref(),
        opened.codebuild.as_deref(),
        &project,
        &build_id,
        &reason,
    );
    match asked {
        Ok(Stopping::Asked) => {
            println!(
                "Asked build {build_id} of {project} to stop ({reason}): a running build stops within a few seconds and ends STOPPED; a queued one will not run"
            );
            ExitCode::SUCCESS
        }
        Ok(Stopping::OnCodeBuild { codebuild_id }) => {
            println!(
                "Stopped build {build_id} of {project} on AWS CodeBuild ({codebuild_id}); it ends STOPPED when CodeBuild's event comes"
            );
            ExitCode::SUCCESS
        }
        Ok(Stopping::Ended(state)) => {
            println!("Build {build_id} of {project} has ended already: {state}");
            ExitCode::from(EXIT_BUILD_FAILED)
        }
        Err(err @ StopError::NotFound { .. }) => bad(err.to_string()),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

fn bad(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}
