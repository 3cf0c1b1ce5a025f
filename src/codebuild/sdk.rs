//! [`CodeBuild`] over the AWS SDK. The SDK is async: every method drives it on a tokio runtime
//! with `Handle::block_on`, so it must be called off the runtime's own threads (from
//! `spawn_blocking`, as the pipeline runs).

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codebuild::types::{
    ArtifactNamespace, ArtifactPackaging, ArtifactsType, EnvironmentVariable,
    EnvironmentVariableType, LogsConfig, LogsConfigStatusType, ProjectArtifacts, S3LogsConfig,
    SourceType,
};
use chrono::{DateTime, Utc};
use tokio::runtime::Handle;

use super::{Build, CodeBuild, CodeBuildError, Phase, StartRequest};

/// CodeBuild through the SDK's client.
pub struct SdkCodeBuild {
    client: Client,
    handle: Handle,
}

impl SdkCodeBuild {
    /// A client from the SDK's configuration (`AWS_ENDPOINT_URL_CODEBUILD` points it elsewhere),
    /// driven on the current tokio runtime.
    pub fn from_conf(sdk: &aws_config::SdkConfig) -> Option<SdkCodeBuild> {
        Some(SdkCodeBuild {
            client: Client::from_conf(
                aws_sdk_codebuild::config::Builder::from(sdk)
                    .interceptor(crate::store::retries::LogRetries {
                        service: "CodeBuild",
                    })
                    .build(),
            ),
            handle: Handle::try_current().ok()?,
        })
    }
}

fn error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    operation: &'static str,
    err: SdkError<E, R>,
) -> CodeBuildError {
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service) => {
            matches!(
                service.err().code(),
                Some("ThrottlingException" | "ServiceUnavailable" | "InternalFailure")
            )
        }
        SdkError::ResponseError(_) => true,
        _ => false,
    };
    let message = match err.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("")
        ),
        None => format!("{err:?}"),
    };
    CodeBuildError {
        operation,
        message,
        retryable,
    }
}

fn time(t: Option<&aws_sdk_codebuild::primitives::DateTime>) -> Option<DateTime<Utc>> {
    let t = t?;
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

impl CodeBuild for SdkCodeBuild {
    fn start_build(&self, request: &StartRequest) -> Result<String, CodeBuildError> {
        let env: Vec<EnvironmentVariable> = request
            .env
            .iter()
            .filter_map(|(name, value)| {
                EnvironmentVariable::builder()
                    .name(name)
                    .value(value)
                    .r#type(EnvironmentVariableType::Plaintext)
                    .build()
                    .ok()
            })
            .collect();
        let artifacts = ProjectArtifacts::builder()
            .r#type(ArtifactsType::S3)
            .location(&request.artifacts_bucket)
            .path(&request.artifacts_path)
            .name(&request.artifacts_name)
            .namespace_type(ArtifactNamespace::None)
            .packaging(ArtifactPackaging::Zip)
            .build()
            .map_err(|err| CodeBuildError {
                operation: "StartBuild",
                message: err.to_string(),
                retryable: false,
            })?;
        let logs = LogsConfig::builder()
            .s3_logs(
                S3LogsConfig::builder()
                    .status(LogsConfigStatusType::Enabled)
                    .location(&request.logs_location)
                    .build()
                    .map_err(|err| CodeBuildError {
                        operation: "StartBuild",
                        message: err.to_string(),
                        retryable: false,
                    })?,
            )
            .build();
        let call = self
            .client
            .start_build()
            .project_name(&request.project)
            .source_type_override(SourceType::S3)
            .source_location_override(&request.source_location)
            .buildspec_override(&request.buildspec)
            .set_environment_variables_override(Some(env))
            .artifacts_override(artifacts)
            .logs_config_override(logs)
            .timeout_in_minutes_override(request.timeout_minutes.try_into().unwrap_or(i32::MAX))
            .queued_timeout_in_minutes_override(
                request
                    .queued_timeout_minutes
                    .try_into()
                    .unwrap_or(i32::MAX),
            )
            .compute_type_override(request.compute_type.as_str().into())
            .set_image_override(request.image.clone())
            .privileged_mode_override(true)
            .idempotency_token(&request.idempotency_token);
        let out = self
            .handle
            .block_on(call.send())
            .map_err(|err| error("StartBuild", err))?;
        out.build_value()
            .and_then(|b| b.id())
            .map(str::to_string)
            .ok_or_else(|| CodeBuildError {
                operation: "StartBuild",
                message: "the answer names no build".to_string(),
                retryable: false,
            })
    }

    fn stop_build(&self, id: &str) -> Result<(), CodeBuildError> {
        self.handle
            .block_on(self.client.stop_build().id(id).send())
            .map(drop)
            .map_err(|err| error("StopBuild", err))
    }

    fn builds(&self, ids: &[String]) -> Result<Vec<Build>, CodeBuildError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .handle
            .block_on(
                self.client
                    .batch_get_builds()
                    .set_ids(Some(ids.to_vec()))
                    .send(),
            )
            .map_err(|err| error("BatchGetBuilds", err))?;
        Ok(out
            .builds()
            .iter()
            .map(|b| Build {
                id: b.id().unwrap_or_default().to_string(),
                status: b
                    .build_status()
                    .map_or("IN_PROGRESS", |s| s.as_str())
                    .to_string(),
                start: time(b.start_time()),
                end: time(b.end_time()),
                phases: b
                    .phases()
                    .iter()
                    .map(|p| Phase {
                        phase_type: p
                            .phase_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        status: p.phase_status().map(|s| s.as_str().to_string()),
                        start: time(p.start_time()),
                        duration_seconds: p
                            .duration_in_seconds()
                            .and_then(|d| u64::try_from(d).ok()),
                        contexts: p
                            .contexts()
                            .iter()
                            .map(|c| {
                                format!(
                                    "{}: {}",
                                    c.status_code().unwrap_or(""),
                                    c.message().unwrap_or("")
                                )
                            })
                            .collect(),
                    })
                    .collect(),
                compute_type: b
                    .environment()
                    .map(|e| e.compute_type().as_str().to_string()),
                env: b
                    .environment()
                    .map(|e| {
                        e.environment_variables()
                            .iter()
                            .map(|v| (v.name().to_string(), v.value().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                log_link: b
                    .logs()
                    .and_then(|l| l.s3_deep_link().or(l.deep_link()))
                    .map(str::to_string),
            })
            .collect())
    }
}
