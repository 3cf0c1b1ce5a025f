//! The Lambda function: reads its settings once (and its secrets, when they are in Secrets
//! Manager), builds its AWS clients once, then serves events through the Lambda Runtime API:
//! Function URL requests (webhooks) through the HTTP front door, everything else (CodeCommit,
//! EventBridge, build requests, its own planned builds) through the function's handler.
//! Standard output is kept for metrics; pushbuild's own logs go to standard error.

use std::process::ExitCode;
use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use pushbuild::codebuild::CodeBuild;
use pushbuild::codebuild::sdk::SdkCodeBuild;
use pushbuild::codepipeline::SdkCodePipeline;
use pushbuild::config::{self, Config};
use pushbuild::executor::reap;
use pushbuild::function;
use pushbuild::http::lambda::{self as url, SelfInvoke};
use pushbuild::http::{FrontDoor, HostClients, Login, Pages, router};
use pushbuild::index::{Books, DynamoIndex, Index};
use pushbuild::lifecycle::{Builds, Superseding};
use pushbuild::metering::StdoutSink;
use pushbuild::runtimes::Runtimes;
use pushbuild::source::{CodeCommitSource, GitEndpoint, HostedSource, Routed, Unpacked};
use pushbuild::store::{S3Store, Store};
use pushbuild::vault::AwsVault;

/// Where the function's builds come from: CodeCommit, or a git host.
type Source = Unpacked<Routed<CodeCommitSource, HostedSource>>;

/// The variables the Lambda runtime itself needs; without them it cannot start.
const RUNTIME_VARS: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

fn main() -> ExitCode {
    tune_malloc();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(serve()),
        Err(err) => {
            eprintln!("pushbuild-lambda cannot start: no runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Sets glibc's allocator for a build, before any thread starts, where the environment does not
/// (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`):
///
/// - at most two arenas: glibc otherwise gives each of the many threads a build's fetch and
///   upload use an arena of its own, whose freed pages stay resident (the pipeline benchmark's
///   CodeCommit API side: 118 MiB peak with glibc's default, 83 MiB with two);
/// - blocks of 4 MiB and more (an S3 part's buffer) always mapped on their own and given back
///   when freed: by default glibc raises that threshold to the size of the first such block
///   freed, and later parts come from, and stay in, the arenas (the benchmark's peak: 60.6 MiB
///   with glibc's default, 57.9 MiB with a fixed 4 MiB; packaging no slower).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; called before any other thread
        // exists.
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            }
        }
    }
}

/// Gives the allocator's free pages back to the system after an invocation, so the next build
/// starts from what is live, not from the last build's high-water mark (glibc keeps freed pages
/// inside its arenas).
fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory the allocator holds; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn serve() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
    match start().await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("pushbuild-lambda cannot start: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn start() -> Result<ExitCode, String> {
    let config = Config::from_env().map_err(|err| err.to_string())?;
    if let Some(missing) = RUNTIME_VARS
        .iter()
        .find(|name| std::env::var_os(name).is_none())
    {
        return Err(format!(
            "{missing} is not set (it is set by AWS Lambda; run the function under the Lambda Runtime API)"
        ));
    }
    let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let config = with_secrets(config, &sdk).await?;
    let (builds, front) = parts(config, &sdk, function_name)?;
    let function = Arc::new(builds);
    // Processes that escape a build's keeper are adopted by the function, not by init, so the
    // sweep after each invocation finds them.
    if let Err(error) = reap::become_subreaper() {
        tracing::warn!(%error, "cannot become a child subreaper");
    }
    // The function's settings and the secrets it reads are not its builds' to read.
    if let Err(error) = reap::keep_own_files_private() {
        tracing::warn!(%error, "cannot keep the function's environment from its builds");
    }
    if let Err(error) = function.clear_work_dir() {
        tracing::warn!(%error, "the work directory could not be cleared");
    }
    let routes = router(front);
    let handler = service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (builds, routes) = (function.clone(), routes.clone());
        async move { invocation(&builds, &routes, event).await }
    });
    Ok(match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pushbuild-lambda stopped: {err}");
            ExitCode::FAILURE
        }
    })
}

/// The function's two doors: the builds (S3, DynamoDB, CodeCommit and the hosts, CodeBuild when
/// a project is set) and the HTTP front door of its Function URL.
fn parts(
    config: Config,
    sdk: &aws_config::SdkConfig,
    function_name: String,
) -> Result<(Builds<Source>, Arc<FrontDoor<SelfInvoke>>), String> {
    let store: Arc<dyn Store> = Arc::new(
        S3Store::from_conf(sdk, &config.bucket, config.s3_path_style)
            .map_err(|err| err.to_string())?
            // 5 MiB parts, 3 on their way: at most 20 MiB of an artifact in memory.
            .with_part_size(5 << 20)
            .with_parallel_parts(3),
    );
    let table = config
        .require_index_table()
        .map_err(|err| err.to_string())?
        .to_string();
    let index: Arc<dyn Index> =
        Arc::new(DynamoIndex::from_conf(sdk, table).map_err(|err| err.to_string())?);
    let runtimes = Runtimes::load(&config.runtimes_dir)
        .map_err(|err| err.to_string())?
        .map(Arc::new);
    // AWS CodeBuild, for builds that outgrow the function, when a project is set.
    let codebuild = match &config.codebuild.project {
        Some(_) => Some(Arc::new(
            SdkCodeBuild::from_conf(sdk).ok_or("no tokio runtime for the CodeBuild client")?,
        ) as Arc<dyn CodeBuild>),
        None => None,
    };
    let clients = HostClients::new(&config.webhooks);
    let apis = clients.apis.clone();
    let spares = pushbuild::lifecycle::spare_files(&config);
    let source = Unpacked {
        inner: Routed {
            plain: codecommit(sdk, &config).with_spares(spares.clone()),
            hosted: HostedSource::new(clients.git, config.git.clone_depth, config.git.submodules)
                .with_spares(spares.clone()),
        },
        root: config.artifacts_dir(),
    };
    let front = Arc::new(FrontDoor {
        webhooks: config.webhooks.clone(),
        index: index.clone(),
        dispatch: SelfInvoke::from_conf(sdk, function_name.clone()),
        apis: apis.clone(),
        status_context: config.git.status_context.clone(),
        pages: pages(&config, &store, &codebuild),
        superseding: Some(Superseding {
            mode: config.supersede,
            store: store.clone(),
            codebuild: codebuild.clone(),
        }),
        badges: config.badges,
    });
    let books = Books::new(index, config.budget(), config.upload_reserve);
    let notify = pushbuild::status::notify::incoming_webhook(config.notify_url.clone());
    let (events, pipeline) = (
        event_bus(sdk, &config),
        Arc::new(SdkCodePipeline::from_conf(sdk, config.s3_path_style)),
    );
    let builds = Builds::new(config, source, store, books)
        .with_spares(spares)
        .with_notify(notify)
        .with_events(events)
        .with_codepipeline(Some(pipeline))
        .with_runtimes(runtimes)
        .with_codebuild(codebuild)
        .with_metrics(Arc::new(StdoutSink))
        .with_apis(apis)
        .with_vault(Some(Arc::new(
            AwsVault::from_conf(sdk).ok_or("no tokio runtime for the secrets' clients")?,
        )))
        // Lambda has no privileged mode and no user namespaces: Docker never runs here.
        .with_docker(false);
    // A batch's children: each in an invocation of its own.
    builds.set_children(Arc::new(SelfInvoke::from_conf(sdk, function_name)));
    Ok((builds, front))
}

/// The build pages, behind the login, when a token is set.
fn pages(
    config: &Config,
    store: &Arc<dyn Store>,
    codebuild: &Option<Arc<dyn CodeBuild>>,
) -> Option<Pages> {
    config.ui_token.clone().map(|token| {
        Pages::new(
            store.clone(),
            config.budget(),
            Some(Login::new(token, true)),
        )
        .with_codebuild(codebuild.clone())
        .with_badges(
            config
                .badges
                .then(|| config.git.public_url.clone().unwrap_or_default()),
        )
    })
}

/// The EventBridge bus each build's state changes go to, when one is set.
fn event_bus(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Option<Arc<dyn pushbuild::status::events::BuildEvents>> {
    let bus = config.event_bus.clone()?;
    Some(Arc::new(pushbuild::status::events::EventBus::from_conf(
        sdk, bus,
    )))
}

/// One invocation: a Function URL request through the front door, any other event through the
/// handler; afterwards nothing a build started is left running, and free memory goes back.
async fn invocation(
    builds: &Builds<Source>,
    routes: &axum::Router,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Diagnostic> {
    if url::is_function_url(&event.payload) {
        return url::answer(routes, event.payload)
            .await
            .map_err(|err| Diagnostic {
                error_type: "PushBuild.Permanent.BadEvent".to_string(),
                error_message: err.to_string(),
            });
    }
    let deadline = function::deadline_from_epoch_ms(event.context.deadline);
    let handled = function::handle(builds, &event.payload, deadline).await;
    // Nothing a build started outlives the invocation: the next one in this sandbox may be
    // another repository's.
    reap::sweep_own_tree();
    give_back_free_memory();
    match handled {
        Ok(response) => Ok(serde_json::to_value(response).unwrap_or_default()),
        Err(err) => {
            tracing::error!(error_type = err.error_type(), error = %err, "invocation failed");
            Err(Diagnostic::from(err))
        }
    }
}

/// The settings completed on AWS: the secrets from Secrets Manager (when
/// `PUSHBUILD_SECRETS_ARN` names them), and a status's default link, the build's log in the S3
/// console.
async fn with_secrets(mut config: Config, sdk: &aws_config::SdkConfig) -> Result<Config, String> {
    if let Some(arn) = config.secrets_arn.clone() {
        let json = config::secrets::fetch(sdk, &arn)
            .await
            .map_err(|err| err.to_string())?;
        config::secrets::apply(&json, &mut config).map_err(|err| err.to_string())?;
    }
    if config.git.status_target_url.is_none() {
        config.git.status_target_url = Some(format!(
            "https://s3.console.aws.amazon.com/s3/object/{}?region=${{AWS_REGION}}&prefix=builds/${{PUSHBUILD_PROJECT}}/${{PUSHBUILD_BUILD_ID}}/build.log",
            config.bucket
        ));
    }
    Ok(config)
}

/// The CodeCommit source: over CodeCommit's git endpoint first (signed with the function's
/// credentials) unless `PUSHBUILD_CODECOMMIT_GIT=false`, the API otherwise.
fn codecommit(sdk: &aws_config::SdkConfig, config: &Config) -> CodeCommitSource {
    let source = CodeCommitSource::from_conf(sdk, config.source_concurrency);
    let (Some(credentials), Some(region)) = (sdk.credentials_provider(), sdk.region()) else {
        return source;
    };
    if !config.codecommit_git {
        return source;
    }
    let mut endpoint = GitEndpoint::aws(region.as_ref(), credentials);
    if let Some(url) = &config.codecommit_git_url {
        endpoint.base_url = url.clone();
    }
    source.with_git(endpoint)
}
