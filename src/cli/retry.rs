//! `pushbuild retry PROJECT BUILD_ID`: runs a build of the local store (one `serve` built) again,
//! here: the same commit with the same overrides and trigger, a new build whose record names the
//! one it retries; a batch's push runs again those of its children that did not succeed, here,
//! one after the other. It builds with `serve`'s settings (the hosts' URLs and tokens from this
//! process's environment) into the same store, and prints how it ended; the exit status is
//! `run`'s (0 succeeded, 1 did not, 2 bad input, 3 pushbuild's own failure).

use std::path::PathBuf;
use std::process::ExitCode;

use super::bad_input;
use crate::names::{BuildId, ProjectName};

#[derive(Debug, clap::Args)]
pub(super) struct RetryArgs {
    /// The build's repository, as pushbuild names it (`github.com/owner/repo`).
    project: String,
    /// The build's id (its page and record show it).
    build_id: String,
    /// The local store [default: as for `run`].
    #[arg(long)]
    store: Option<PathBuf>,
}

/// The build asked for, or the exit status that says it is no build.
fn named(args: &RetryArgs) -> Result<(ProjectName, BuildId), ExitCode> {
    let project =
        ProjectName::parse(&args.project).map_err(|err| bad_input(format!("PROJECT: {err}")))?;
    let build_id =
        BuildId::parse(&args.build_id).map_err(|err| bad_input(format!("BUILD_ID: {err}")))?;
    Ok((project, build_id))
}

#[cfg(not(feature = "server"))]
pub(super) fn run(args: &RetryArgs) -> ExitCode {
    if let Err(code) = named(args) {
        return code;
    }
    bad_input(
        "this pushbuild was built without the webhook server, which builds hosted \
         repositories; build it with `--features server`",
    )
}

#[cfg(feature = "server")]
pub(super) fn run(args: &RetryArgs) -> ExitCode {
    use std::sync::Arc;

    use super::{EXIT_BUILD_FAILED, EXIT_INTERNAL, default_store, local_config};
    use crate::lifecycle::{RetryError, retry_target};
    use crate::state::BuildState;
    use crate::store::{LocalStore, Store};

    let (project, build_id) = match named(args) {
        Ok(named) => named,
        Err(code) => return code,
    };
    let store_dir = args.store.clone().unwrap_or_else(default_store);
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(&store_dir));
    let target = match retry_target(&*store, &project, &build_id) {
        Ok(target) => target,
        Err(err @ RetryError::NotKept { .. }) => return bad_input(err.to_string()),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let work = std::env::temp_dir().join("pushbuild-retry");
    let config = match local_config(&work) {
        Ok(config) => config,
        Err(err) => return bad_input(err),
    };
    let books = match super::books::local_books(&store_dir, config.budget(), config.upload_reserve)
    {
        Ok(books) => books,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let ended = runtime.block_on(build_here(config, store.clone(), books, target));
    let ended = ended.map(|summary| batch_ended(&*store, &project, summary));
    match ended {
        Ok(summary) => {
            println!(
                "Build {} runs build {build_id} of {project} again: {}{}",
                summary.build_id.as_deref().unwrap_or("-"),
                summary.status,
                summary
                    .batch
                    .as_ref()
                    .and(summary.reason.as_deref())
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_default()
            );
            if summary.status == BuildState::Succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BUILD_FAILED)
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

/// Builds `target` here with `serve`'s settings; a batch's children are built here too, one
/// after the other, as the batch hands them off (a retry of its push runs those that did not
/// succeed).
#[cfg(feature = "server")]
async fn build_here(
    config: crate::config::Config,
    store: std::sync::Arc<dyn crate::store::Store>,
    books: crate::index::Books,
    target: crate::trigger::BuildTarget,
) -> Result<crate::lifecycle::BuildSummary, crate::lifecycle::BuildError> {
    use std::sync::Arc;

    use crate::executor::log::Echo;
    use crate::http::HostClients;
    use crate::lifecycle::Builds;
    use crate::source::HostedSource;

    let clients = HostClients::new(&config.webhooks);
    let source = HostedSource::new(clients.git, config.git.clone_depth, config.git.submodules);
    let builds = Builds::new(config, source, store, books)
        .with_apis(clients.apis)
        .with_echo(Echo::Stderr {
            color: super::stderr_color(),
        });
    let (next, mut children) = tokio::sync::mpsc::unbounded_channel();
    builds.set_children(Arc::new(Here(next)));
    let summary = builds.build(target, None).await?;
    while let Ok(child) = children.try_recv() {
        builds.build(child, None).await?;
    }
    Ok(summary)
}

/// Builds handed off by a batch, taken here.
#[cfg(feature = "server")]
struct Here(tokio::sync::mpsc::UnboundedSender<crate::trigger::BuildTarget>);

#[cfg(feature = "server")]
impl crate::lifecycle::Dispatch for Here {
    async fn dispatch(
        &self,
        target: crate::trigger::BuildTarget,
    ) -> Result<(), crate::lifecycle::DispatchError> {
        self.0
            .send(target)
            .map_err(|_| crate::lifecycle::DispatchError::Closed("the retry has ended".into()))
    }
}

/// A batch's push ends with its batch: its status, once the batch closed here.
#[cfg(feature = "server")]
fn batch_ended(
    store: &dyn crate::store::Store,
    project: &ProjectName,
    mut summary: crate::lifecycle::BuildSummary,
) -> crate::lifecycle::BuildSummary {
    let Some(batch_id) = &summary.batch else {
        return summary;
    };
    let key = crate::batch::BatchRecord::key(project.as_str(), batch_id);
    let closed = store
        .get(&key)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<crate::batch::BatchRecord>(&bytes).ok());
    if let Some(batch) = closed {
        let kept = batch
            .children
            .iter()
            .filter(|c| {
                c.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("not run again"))
            })
            .count();
        summary.status = batch.status;
        summary.reason = Some(format!(
            "batch {batch_id}: {} build(s), {kept} kept from the batch it retries",
            batch.children.len()
        ));
    }
    summary
}
