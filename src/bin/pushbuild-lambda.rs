//! The Lambda function: reads its settings once, builds its AWS clients once, then serves
//! events through the Lambda Runtime API. Standard output is kept for metrics; pushbuild's own
//! logs go to standard error.

use std::process::ExitCode;
use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use pushbuild::config::Config;
use pushbuild::executor::log::Echo;
use pushbuild::function::{self, Function};
use pushbuild::metering::StdoutSink;
use pushbuild::source::CodeCommitSource;
use pushbuild::store::S3Store;

/// The variables the Lambda runtime itself needs; without them it cannot start.
const RUNTIME_VARS: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("pushbuild-lambda cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(missing) = RUNTIME_VARS
        .iter()
        .find(|name| std::env::var_os(name).is_none())
    {
        eprintln!(
            "pushbuild-lambda cannot start: {missing} is not set (it is set by AWS Lambda; run the function under the Lambda Runtime API)"
        );
        return ExitCode::FAILURE;
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = match S3Store::from_conf(&sdk, &config.bucket, config.s3_path_style) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("pushbuild-lambda cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let function = Arc::new(Function {
        source: CodeCommitSource::from_conf(&sdk, config.source_concurrency),
        store: Arc::new(store),
        base_env: function::build_base_env(std::env::vars()),
        metrics: Arc::new(StdoutSink),
        echo: Echo::Off,
        apis: Vec::new(),
        config,
    });
    if let Err(error) = function.clear_work_dir() {
        tracing::warn!(%error, "the work directory could not be cleared");
    }
    let handler = service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let function = function.clone();
        async move {
            let deadline = function::deadline_from_epoch_ms(event.context.deadline);
            function.handle(&event.payload, deadline).await.map_err(|err| {
                tracing::error!(error_type = err.error_type(), error = %err, "invocation failed");
                Diagnostic::from(err)
            })
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pushbuild-lambda stopped: {err}");
            ExitCode::FAILURE
        }
    }
}
