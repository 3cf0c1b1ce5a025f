//! [`CodePipeline`] over the AWS SDK: the job's artifacts through an S3 client made with the
//! job's credentials (they live as long as the call), its result through CodePipeline's API.

use std::path::Path;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};
use aws_sdk_s3::primitives::ByteStream;

use super::{ArtifactError, CodePipeline, Failure, FailureKind, JobError, Pending, Success};
use crate::trigger::codepipeline::{ArtifactCredentials, Location};

/// CodePipeline's API, and S3 for the job's artifacts.
pub struct SdkCodePipeline {
    client: Client,
    sdk: aws_config::SdkConfig,
    /// Path-style S3 addresses (local S3 servers), as the store uses.
    path_style: bool,
}

impl SdkCodePipeline {
    pub fn from_conf(sdk: &aws_config::SdkConfig, path_style: bool) -> SdkCodePipeline {
        SdkCodePipeline {
            client: Client::from_conf(
                aws_sdk_codepipeline::config::Builder::from(sdk)
                    .interceptor(crate::store::retries::LogRetries {
                        service: "CodePipeline",
                    })
                    .build(),
            ),
            sdk: sdk.clone(),
            path_style,
        }
    }

    /// An S3 client signing with the job's credentials.
    fn s3(&self, credentials: &ArtifactCredentials) -> aws_sdk_s3::Client {
        let keys = aws_sdk_s3::config::Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.expose().to_string(),
            credentials
                .session_token
                .as_ref()
                .map(|t| t.expose().to_string()),
            None,
            "codepipeline-job",
        );
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .credentials_provider(keys)
            .force_path_style(self.path_style)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

fn artifact_error<E: ProvideErrorMetadata, R>(
    operation: &'static str,
    at: &Location,
    err: &SdkError<E, R>,
) -> ArtifactError {
    let retryable = match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            matches!(code, "SlowDown" | "InternalError" | "ServiceUnavailable")
        }
        _ => true,
    };
    let message = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => "no answer".to_string(),
    };
    ArtifactError {
        operation,
        bucket: at.bucket.clone(),
        key: at.key.clone(),
        message,
        retryable,
    }
}

fn job_error<E: ProvideErrorMetadata, R>(
    operation: &'static str,
    err: &SdkError<E, R>,
) -> JobError {
    let code = err.code().unwrap_or("no answer").to_string();
    let retryable = !matches!(
        code.as_str(),
        "JobNotFoundException"
            | "InvalidJobStateException"
            | "ValidationException"
            | "InvalidClientTokenException"
            | "AccessDeniedException"
    );
    JobError {
        operation,
        message: match err.message() {
            Some(message) => format!("{code}: {message}"),
            None => code,
        },
        retryable,
    }
}

impl CodePipeline for SdkCodePipeline {
    fn get_artifact<'a>(
        &'a self,
        credentials: &'a ArtifactCredentials,
        from: &'a Location,
        to: &'a Path,
    ) -> Pending<'a, Result<(), ArtifactError>> {
        Box::pin(async move {
            let answer = self
                .s3(credentials)
                .get_object()
                .bucket(&from.bucket)
                .key(&from.key)
                .send()
                .await
                .map_err(|err| artifact_error("GetObject", from, &err))?;
            let local = |err: std::io::Error| ArtifactError {
                operation: "GetObject",
                bucket: from.bucket.clone(),
                key: from.key.clone(),
                message: format!("cannot write {}: {err}", to.display()),
                retryable: true,
            };
            let mut file = tokio::fs::File::create(to).await.map_err(local)?;
            let mut body = answer.body.into_async_read();
            tokio::io::copy(&mut body, &mut file).await.map_err(local)?;
            Ok(())
        })
    }

    fn put_artifact<'a>(
        &'a self,
        credentials: &'a ArtifactCredentials,
        to: &'a Location,
        from: &'a Path,
        kms_key: Option<&'a str>,
    ) -> Pending<'a, Result<(), ArtifactError>> {
        Box::pin(async move {
            let body = ByteStream::from_path(from)
                .await
                .map_err(|err| ArtifactError {
                    operation: "PutObject",
                    bucket: to.bucket.clone(),
                    key: to.key.clone(),
                    message: format!("cannot read {}: {err}", from.display()),
                    retryable: false,
                })?;
            let mut put = self
                .s3(credentials)
                .put_object()
                .bucket(&to.bucket)
                .key(&to.key)
                .content_type("application/zip")
                .body(body);
            // The pipeline's bucket asks for its key (its policy refuses unencrypted objects).
            if let Some(key) = kms_key {
                put = put
                    .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                    .ssekms_key_id(key);
            }
            put.send()
                .await
                .map_err(|err| artifact_error("PutObject", to, &err))?;
            Ok(())
        })
    }

    fn succeeded<'a>(
        &'a self,
        job_id: &'a str,
        success: &'a Success,
    ) -> Pending<'a, Result<(), JobError>> {
        Box::pin(async move {
            let details = ExecutionDetails::builder()
                .summary(&success.summary)
                .external_execution_id(&success.external_id)
                .build();
            let mut put = self
                .client
                .put_job_success_result()
                .job_id(job_id)
                .execution_details(details);
            if let Some(token) = &success.continuation {
                put = put.continuation_token(token);
            } else if !success.output_variables.is_empty() {
                put = put.set_output_variables(Some(
                    success.output_variables.clone().into_iter().collect(),
                ));
            }
            put.send()
                .await
                .map_err(|err| job_error("PutJobSuccessResult", &err))?;
            Ok(())
        })
    }

    fn failed<'a>(
        &'a self,
        job_id: &'a str,
        failure: &'a Failure,
    ) -> Pending<'a, Result<(), JobError>> {
        Box::pin(async move {
            let kind = match failure.kind {
                FailureKind::JobFailed => FailureType::JobFailed,
                FailureKind::ConfigurationError => FailureType::ConfigurationError,
            };
            let details = FailureDetails::builder()
                .r#type(kind)
                .message(&failure.message)
                .set_external_execution_id(failure.external_id.clone())
                .build()
                .map_err(|err| JobError {
                    operation: "PutJobFailureResult",
                    message: err.to_string(),
                    retryable: false,
                })?;
            self.client
                .put_job_failure_result()
                .job_id(job_id)
                .failure_details(details)
                .send()
                .await
                .map_err(|err| job_error("PutJobFailureResult", &err))?;
            Ok(())
        })
    }
}
