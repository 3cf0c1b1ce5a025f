//! `pushbuild serve`: the webhook front door on this machine. Hosts' webhooks (through a tunnel)
//! build here, `--jobs` at once, into the local store; the results go back to the commits.
//! The settings are the function's (`PUSHBUILD_GITHUB_WEBHOOK_SECRET`, `PUSHBUILD_GITHUB_TOKEN`,
//! `PUSHBUILD_FILTER_GROUPS`, …), read from this process's environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "server")]
use super::EXIT_INTERNAL;
use super::bad_input;
#[cfg(feature = "server")]
use super::default_store;

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The local store [default: as for `run`].
    #[arg(long)]
    store: Option<PathBuf>,
    /// How many builds run at once, from 1 to 256 [default: the number of cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: Option<u32>,
    /// How many builds may wait for a worker, from 1 to 100000; a webhook beyond that is
    /// answered 503.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    queue: u32,
    /// Each build's deadline, in seconds, from 1 to 129600 (CodeBuild's default is 60 minutes,
    /// its longest 36 hours).
    #[arg(long, default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_BUILD_TIMEOUT_SECS))]
    timeout: u64,
    /// A token the build pages ask for (a login form, then a session cookie). Without it the
    /// pages are open on a loopback address and not served on any other.
    #[arg(long, env = "PUSHBUILD_UI_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[cfg(not(feature = "server"))]
pub(super) fn serve(_args: &ServeArgs) -> ExitCode {
    bad_input(
        "this pushbuild was built without the webhook server; build it with `--features server` \
         (cargo install --path . --features server)",
    )
}

#[cfg(feature = "server")]
pub(super) fn serve(args: &ServeArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    match super::runtime() {
        Ok(runtime) => runtime.block_on(server::run(args)),
        Err(code) => code,
    }
}

#[cfg(feature = "server")]
mod server {
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::time::Duration;

    use super::{EXIT_INTERNAL, ServeArgs, bad_input, default_store};
    use crate::billing::Budget;
    use crate::http::{FrontDoor, HostClients, LocalQueue, Login, Pages, router};
    use crate::lifecycle::Builds;
    use crate::secret::Secret;
    use crate::source::HostedSource;
    use crate::store::{LocalStore, Store};

    /// The pages: behind a login with `--token`, open on a loopback address without it, and
    /// not served otherwise.
    fn pages(args: &ServeArgs, store: Arc<dyn Store>, budget: Budget) -> Option<Pages> {
        let login = args
            .token
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|token| Login::new(Secret::new(token), false));
        if login.is_none() && !args.listen.ip().is_loopback() {
            eprintln!(
                "pushbuild serve: the build pages are not served on {} without --token",
                args.listen
            );
            return None;
        }
        Some(Pages::new(store, budget, login))
    }

    /// Where `serve`'s builds read their secret variables: Systems Manager and Secrets Manager,
    /// as the function does, with the SDK's usual settings (built without the `aws` feature,
    /// `serve`'s own environment, as `run`'s).
    async fn vault() -> Option<Arc<dyn crate::vault::Vault>> {
        #[cfg(feature = "aws")]
        {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            crate::vault::AwsVault::from_conf(&sdk)
                .map(|vault| Arc::new(vault) as Arc<dyn crate::vault::Vault>)
        }
        #[cfg(not(feature = "aws"))]
        None
    }

    /// Where badges are served from (`PUSHBUILD_BADGES`; the pages' address, empty: unknown),
    /// and what superseded builds need.
    fn around(
        config: &crate::config::Config,
        store: &Arc<dyn Store>,
    ) -> (Option<String>, crate::lifecycle::Superseding) {
        let badges = config
            .badges
            .then(|| config.git.public_url.clone().unwrap_or_default());
        let superseding = crate::lifecycle::Superseding {
            mode: config.supersede,
            store: store.clone(),
            codebuild: None,
        };
        (badges, superseding)
    }

    /// `PUSHBUILD_WORK_DIR`, else `pushbuild-serve` in the temporary folder.
    fn work_dir() -> std::path::PathBuf {
        std::env::var("PUSHBUILD_WORK_DIR")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map_or_else(
                || std::env::temp_dir().join("pushbuild-serve"),
                std::path::PathBuf::from,
            )
    }

    pub(super) async fn run(args: &ServeArgs) -> ExitCode {
        let config = match super::super::local_config(&work_dir()) {
            Ok(config) => config,
            Err(err) => return bad_input(err),
        };
        let store_dir = args.store.clone().unwrap_or_else(default_store);
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(&store_dir));
        let books = match super::super::books::local_books(
            &store_dir,
            config.budget(),
            config.upload_reserve,
        ) {
            Ok(books) => books,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        };
        let clients = HostClients::new(&config.webhooks);
        let apis = clients.apis.clone();
        let spares = crate::lifecycle::spare_files(&config);
        let source = HostedSource::new(clients.git, config.git.clone_depth, config.git.submodules)
            .with_spares(spares.clone());
        let front_settings = config.webhooks.clone();
        let (badges, superseding) = around(&config, &store);
        let status_context = config.git.status_context.clone();
        let notify = crate::status::notify::incoming_webhook(config.notify_url.clone());
        let builds = Arc::new(
            Builds::new(config, source, store.clone(), books.clone())
                .with_apis(apis.clone())
                .with_notify(notify)
                .with_vault(vault().await)
                .with_spares(spares),
        );
        if let Err(error) = builds.clear_work_dir() {
            tracing::warn!(%error, "the work directory could not be cleared");
        }
        let jobs = args.jobs.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |n| n as usize,
        );
        let queue = LocalQueue::start(
            builds.clone(),
            jobs,
            args.queue as usize,
            Duration::from_secs(args.timeout),
        );
        // A batch's children go to the same workers, `--jobs` at once, ahead of new builds.
        builds.set_children(Arc::new(queue.children()));
        // Builds an earlier `serve` left open are closed now, not at the first webhook (and
        // their batches go on).
        builds.sweep().await;
        let front = Arc::new(FrontDoor {
            webhooks: front_settings,
            index: books.index,
            dispatch: queue,
            apis,
            status_context,
            pages: pages(args, store.clone(), books.budget.clone())
                .map(|pages| pages.with_badges(badges.clone())),
            superseding: Some(superseding),
            badges: badges.is_some(),
        });
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(err) => return bad_input(format!("--listen {}: {err}", args.listen)),
        };
        let address = listener.local_addr().unwrap_or(args.listen);
        eprintln!(
            "pushbuild serve: listening on http://{address} ({jobs} builds at once, store {})",
            store_dir.display()
        );
        match axum::serve(listener, router(front)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: the server stopped: {err}");
                ExitCode::from(EXIT_INTERNAL)
            }
        }
    }
}
