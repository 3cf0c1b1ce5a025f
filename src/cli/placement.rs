//! `pushbuild placement`: where a repository's builds run. A build that timed out in the function
//! sends its repository's later builds to AWS CodeBuild; `reset` brings them back.

use std::process::ExitCode;
use std::time::Duration;

use super::EXIT_INTERNAL;
use super::books::Where;
use crate::billing::Budget;
use crate::names::ProjectName;

#[derive(Debug, clap::Args)]
pub(super) struct PlacementArgs {
    #[command(subcommand)]
    command: PlacementCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PlacementCommand {
    /// Say where REPOSITORY's builds run.
    Show {
        /// The repository, as pushbuild names it (`my-repo`, `github.com/owner/repo`).
        repository: String,
        #[command(flatten)]
        at: Where,
    },
    /// Run REPOSITORY's builds in the function again (after one timed out there and sent them
    /// to AWS CodeBuild).
    Reset {
        /// The repository, as pushbuild names it (`my-repo`, `github.com/owner/repo`).
        repository: String,
        #[command(flatten)]
        at: Where,
    },
}

pub(super) fn run(args: &PlacementArgs) -> ExitCode {
    let (repository, at, reset) = match &args.command {
        PlacementCommand::Show { repository, at } => (repository, at, false),
        PlacementCommand::Reset { repository, at } => (repository, at, true),
    };
    let project = match ProjectName::parse(repository) {
        Ok(project) => project,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(super::EXIT_BAD_INPUT);
        }
    };
    let opened = match at.open(Budget::default(), Duration::ZERO) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let index = &opened.books.index;
    let done = if reset {
        index
            .set_placement(&project, None)
            .map(|()| format!("{project}: builds run in the function"))
    } else {
        index.placement(&project).map(|placement| match placement {
            Some(p) => format!(
                "{project}: builds run on {} since {} ({})",
                p.compute,
                p.since.format("%Y-%m-%d %H:%M:%S UTC"),
                p.reason
            ),
            None => format!("{project}: builds run in the function"),
        })
    };
    match done {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}
