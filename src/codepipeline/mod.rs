//! CodePipeline's side of a job (the Lambda invoke action): the job's artifacts in the
//! pipeline's bucket, read and written with the job's own temporary credentials, and the job's
//! result (`PutJobSuccessResult`, with a continuation token while a build goes on elsewhere, or
//! `PutJobFailureResult`). The port is [`CodePipeline`]; the adapter is `sdk.rs`.

#[cfg(feature = "aws")]
mod sdk;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

#[cfg(feature = "aws")]
pub use sdk::SdkCodePipeline;

use crate::trigger::codepipeline::{ArtifactCredentials, Location};

/// A boxed future, as the port's methods return.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The pipeline's artifacts and the job's result.
pub trait CodePipeline: Send + Sync {
    /// Downloads the artifact at `from` into the file `to`.
    fn get_artifact<'a>(
        &'a self,
        credentials: &'a ArtifactCredentials,
        from: &'a Location,
        to: &'a Path,
    ) -> Pending<'a, Result<(), ArtifactError>>;

    /// Uploads the file `from` as the artifact at `to`, encrypted with `kms_key` when given.
    fn put_artifact<'a>(
        &'a self,
        credentials: &'a ArtifactCredentials,
        to: &'a Location,
        from: &'a Path,
        kms_key: Option<&'a str>,
    ) -> Pending<'a, Result<(), ArtifactError>>;

    /// `PutJobSuccessResult`.
    fn succeeded<'a>(
        &'a self,
        job_id: &'a str,
        success: &'a Success,
    ) -> Pending<'a, Result<(), JobError>>;

    /// `PutJobFailureResult`.
    fn failed<'a>(
        &'a self,
        job_id: &'a str,
        failure: &'a Failure,
    ) -> Pending<'a, Result<(), JobError>>;
}

/// A job that succeeded, or goes on (`continuation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    /// Set while the build goes on: CodePipeline calls again with it.
    pub continuation: Option<String>,
    /// The build's id (the action's link text in the console).
    pub external_id: String,
    pub summary: String,
    /// The build's exported variables, as the action's output variables.
    pub output_variables: BTreeMap<String, String>,
}

/// A job that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub external_id: Option<String>,
}

/// CodePipeline's failure types pushbuild uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The build ran and failed (or could not run from what the artifact holds).
    JobFailed,
    /// The action's `UserParameters` are wrong.
    ConfigurationError,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::JobFailed => "JobFailed",
            FailureKind::ConfigurationError => "ConfigurationError",
        }
    }
}

/// An artifact that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{operation} s3://{bucket}/{key}: {message}")]
pub struct ArtifactError {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub message: String,
    /// Whether trying again may help (throttling, 5xx, no answer); a refusal will not.
    pub retryable: bool,
}

/// A job's result that could not be put.
#[derive(Debug, thiserror::Error)]
#[error("CodePipeline {operation}: {message}")]
pub struct JobError {
    pub operation: &'static str,
    pub message: String,
    pub retryable: bool,
}

/// CodePipeline's limits on what a result carries: the text cut to fit, whole characters.
pub fn fit(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_to_codepipelines_limits() {
        assert_eq!(fit("short", 10), "short");
        let cut = fit(&"é".repeat(3000), 2048);
        assert_eq!(cut.chars().count(), 2048);
        assert!(cut.ends_with('…'));
    }
}
