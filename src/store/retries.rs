//! What the AWS SDK tries again, in pushbuild's log. The SDK's clients retry throttling, 5xx
//! answers and lost connections by themselves (S3, DynamoDB and CodeCommit up to six tries, the
//! others three), silently: this interceptor, given to the S3, DynamoDB, CodeCommit, CodeBuild
//! and CodePipeline clients, logs each attempt that failed that way (`an AWS call failed and is
//! tried again while tries are left`, with the service, the operation, the attempt and the
//! status or error), so a slow build can be told from a slow service. Answers that are the
//! caller's business (a 404, a failed condition) are not logged.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Logs the failed attempts of one service's calls that the SDK tries again.
#[derive(Debug, Clone, Copy)]
pub struct LogRetries {
    pub service: &'static str,
}

/// Whether an answer's status (and its error type) is one the SDK tries again.
pub fn worth_a_retry(status: Option<u16>, error_type: Option<&str>) -> bool {
    match status {
        None => true,
        Some(429) => true,
        Some(status) if status >= 500 => true,
        Some(400) => error_type.is_some_and(|t| {
            t.contains("Throttl")
                || t.contains("ProvisionedThroughputExceeded")
                || t.contains("RequestLimitExceeded")
                || t.contains("TransactionConflict")
        }),
        Some(_) => false,
    }
}

impl Intercept for LogRetries {
    fn name(&self) -> &'static str {
        "LogRetries"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Err(error)) = context.output_or_error() else {
            return Ok(());
        };
        let response = context.response();
        let status = response.map(|r| r.status().as_u16());
        let error_type = response.and_then(|r| r.headers().get("x-amzn-errortype"));
        if !worth_a_retry(status, error_type) {
            return Ok(());
        }
        let attempt = cfg
            .load::<RequestAttempts>()
            .map_or(1, RequestAttempts::attempts);
        let operation = cfg.load::<Metadata>().map_or("?", Metadata::name);
        tracing::warn!(
            service = self.service,
            operation,
            attempt,
            status = status.map_or_else(|| "no answer".to_string(), |s| s.to_string()),
            error_type = error_type.unwrap_or_default(),
            error = %error,
            "an AWS call failed and is tried again while tries are left"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_5xx_and_lost_connections_are_logged_and_a_404_is_not() {
        assert!(worth_a_retry(None, None));
        assert!(worth_a_retry(Some(503), None));
        assert!(worth_a_retry(Some(429), None));
        assert!(worth_a_retry(
            Some(400),
            Some("com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException")
        ));
        assert!(!worth_a_retry(Some(404), None));
        assert!(!worth_a_retry(
            Some(400),
            Some("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException")
        ));
        assert!(!worth_a_retry(Some(412), None));
    }
}
