//! Why an invocation failed, and whether Lambda's retry can help. A failed user build is not
//! here: it is a response.

use std::path::PathBuf;

use crate::index::IndexError;
use crate::pipeline::PipelineError;
use crate::source::SourceError;
use crate::store::StoreError;
use crate::trigger::EventError;

/// Why an invocation failed (not a user build: those are responses).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    BadEvent(#[from] EventError),
    #[error("repository {repository}: {source}")]
    Source {
        repository: String,
        #[source]
        source: SourceError,
    },
    /// The store failed outside a build.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The index failed outside a build (a claim).
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("cannot prepare {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the build task stopped unexpectedly: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The build's secrets could not be read (the service did not answer as it should).
    #[error("the build's secret variables could not be read: {0}")]
    Secrets(#[from] crate::vault::VaultError),
    /// A CodePipeline job's artifact could not be read or written, or its result put.
    #[error("the CodePipeline job: {0}")]
    Artifact(#[from] crate::codepipeline::ArtifactError),
    #[error("the CodePipeline job: {0}")]
    Job(#[from] crate::codepipeline::JobError),
}

impl BuildError {
    /// Whether delivering the same event again can succeed: the store, the source or this
    /// machine may recover; a bad event, or a store that refuses the request, will not.
    pub fn retryable(&self) -> bool {
        match self {
            BuildError::BadEvent(_) => false,
            BuildError::Store(err) => err.retryable(),
            BuildError::Index(err) => err.retryable(),
            BuildError::Pipeline(err) => err.retryable(),
            BuildError::Source { .. } | BuildError::WorkDir { .. } => true,
            BuildError::Task(_) | BuildError::Secrets(_) => true,
            BuildError::Artifact(err) => err.retryable,
            BuildError::Job(err) => err.retryable,
        }
    }

    /// The Lambda `errorType`: `PushBuild.Retryable.*` when trying the event again can help,
    /// `PushBuild.Permanent.*` when it cannot. docs/aws.md lists them.
    pub fn error_type(&self) -> &'static str {
        let store = |retryable| {
            if retryable {
                "PushBuild.Retryable.StoreUnavailable"
            } else {
                "PushBuild.Permanent.StoreRefused"
            }
        };
        match self {
            BuildError::BadEvent(_) => "PushBuild.Permanent.BadEvent",
            BuildError::Source { .. } => "PushBuild.Retryable.SourceUnavailable",
            BuildError::Store(err) | BuildError::Pipeline(PipelineError::Store(err)) => {
                store(err.retryable())
            }
            BuildError::Index(err) | BuildError::Pipeline(PipelineError::Index(err)) => {
                if err.retryable() {
                    "PushBuild.Retryable.IndexUnavailable"
                } else {
                    "PushBuild.Permanent.IndexRefused"
                }
            }
            BuildError::WorkDir { .. } => "PushBuild.Retryable.WorkDir",
            BuildError::Pipeline(_) | BuildError::Task(_) => "PushBuild.Retryable.Internal",
            BuildError::Secrets(_) => "PushBuild.Retryable.SecretsUnavailable",
            BuildError::Artifact(_) | BuildError::Job(_) if self.retryable() => {
                "PushBuild.Retryable.CodePipelineUnavailable"
            }
            BuildError::Artifact(_) | BuildError::Job(_) => {
                "PushBuild.Permanent.CodePipelineRefused"
            }
        }
    }
}

#[cfg(feature = "aws")]
impl From<BuildError> for lambda_runtime::Diagnostic {
    fn from(err: BuildError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: err.error_type().to_string(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_error(retryable: bool) -> StoreError {
        StoreError::Service {
            operation: "PutObject",
            uri: "s3://b/k".into(),
            message: if retryable {
                "SlowDown"
            } else {
                "AccessDenied"
            }
            .into(),
            retryable,
            source: "test".into(),
        }
    }

    #[test]
    fn the_error_type_says_whether_a_retry_can_help() {
        #[track_caller]
        fn case(err: BuildError, want: &str) {
            assert_eq!(err.error_type(), want, "{err}");
            assert_eq!(
                err.retryable(),
                want.starts_with("PushBuild.Retryable."),
                "{err}"
            );
        }
        case(
            BuildError::Source {
                repository: "r".into(),
                source: SourceError::Api {
                    operation: "GetBlob",
                    message: "503".into(),
                },
            },
            "PushBuild.Retryable.SourceUnavailable",
        );
        case(
            BuildError::Store(store_error(true)),
            "PushBuild.Retryable.StoreUnavailable",
        );
        // A store error that no retry can mend is permanent, wherever it surfaces.
        case(
            BuildError::Store(store_error(false)),
            "PushBuild.Permanent.StoreRefused",
        );
        case(
            BuildError::Pipeline(PipelineError::Store(store_error(false))),
            "PushBuild.Permanent.StoreRefused",
        );
        case(
            BuildError::Pipeline(PipelineError::Log(std::io::Error::other("disk full"))),
            "PushBuild.Retryable.Internal",
        );
        // A shell that cannot start is pushbuild's failure, not the user's exit status.
        case(
            BuildError::Pipeline(PipelineError::Executor(
                crate::executor::ExecutorError::ShellStart {
                    program: "bash",
                    source: std::io::ErrorKind::NotFound.into(),
                },
            )),
            "PushBuild.Retryable.Internal",
        );
    }

    #[cfg(feature = "aws")]
    #[test]
    fn the_diagnostic_carries_the_error_type_and_message() {
        let diagnostic = lambda_runtime::Diagnostic::from(BuildError::Store(store_error(false)));
        assert_eq!(diagnostic.error_type, "PushBuild.Permanent.StoreRefused");
        assert!(
            diagnostic.error_message.contains("AccessDenied"),
            "{}",
            diagnostic.error_message
        );
    }
}
