//! The S3 store: a build's results in an S3 bucket, through the AWS SDK.
//!
//! The [`Store`] port is synchronous (the pipeline zips straight into a `Write`), the SDK is
//! async: every method here drives the SDK on a tokio runtime with `Handle::block_on`, so it must
//! be called from a thread that is not running async code: a plain thread, or a
//! `tokio::task::spawn_blocking` closure (that is how the Lambda handler runs the pipeline).
//! Called from inside an async task, `block_on` panics.
//!
//! Endpoints, credentials and the region come from the SDK's own configuration
//! (`AWS_ENDPOINT_URL_S3`, the `SdkConfig`), so nothing here knows whether it talks to AWS.

mod read;
mod writer;

use std::collections::HashMap;
use std::error::Error;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::runtime::Handle;

/// How long a pre-signed download link works.
const DOWNLOAD_LINK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

use super::{ObjectMeta, ObjectWriter, Store, StoreError, check_key};

/// S3's smallest part (all but the last part of a multipart upload).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: usize = 5 << 30;
/// The part size unless told otherwise: big enough that a 1 GB artifact takes 128 parts.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// How many parts are uploaded at once unless told otherwise.
pub const DEFAULT_PARALLEL_PARTS: usize = 4;
/// Parts in flight for a lean writer (a cache's archive): with the smallest parts, at most
/// 15 MiB held (two sending, one filling), where the default holds 40.
const LEAN_PARALLEL_PARTS: usize = 2;
/// How many times the SDK tries a call (the first try included) before giving up.
pub const MAX_ATTEMPTS: u32 = 6;

/// A bucket as the results store.
///
/// A writer holds at most `part_size × (parallel_parts + 1)` bytes of an object in memory: the
/// part being filled and the parts on their way.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    handle: Handle,
    part_size: usize,
    parallel_parts: usize,
}

impl S3Store {
    /// A store over `bucket` that drives `client` on the runtime behind `handle`.
    pub fn new(client: Client, bucket: impl Into<String>, handle: Handle) -> S3Store {
        S3Store {
            client,
            bucket: bucket.into(),
            handle,
            part_size: DEFAULT_PART_SIZE,
            parallel_parts: DEFAULT_PARALLEL_PARTS,
        }
    }

    /// A store over `bucket` with a client made from `sdk_config`: path-style addressing when
    /// `path_style` (local S3 servers), and standard retries ([`MAX_ATTEMPTS`] tries, with
    /// backoff) so throttling (`SlowDown`), 5xx answers and timeouts are tried again.
    ///
    /// Must be called inside a tokio runtime (in `main`); the store keeps that runtime's handle.
    pub fn from_conf(
        sdk_config: &aws_config::SdkConfig,
        bucket: impl Into<String>,
        path_style: bool,
    ) -> Result<S3Store, StoreError> {
        let handle = Handle::try_current().map_err(|_| StoreError::NoRuntime)?;
        let config = aws_sdk_s3::config::Builder::from(sdk_config)
            .force_path_style(path_style)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .interceptor(super::retries::LogRetries { service: "S3" })
            .build();
        Ok(S3Store::new(Client::from_conf(config), bucket, handle))
    }

    /// Sets the size of a multipart upload's parts, kept within S3's limits (5 MiB to 5 GiB).
    /// Objects smaller than one part go up in a single `PutObject`.
    pub fn with_part_size(mut self, bytes: usize) -> S3Store {
        self.part_size = bytes.clamp(MIN_PART_SIZE, MAX_PART_SIZE);
        self
    }

    /// Sets how many parts of one object are uploaded at once (at least 1).
    pub fn with_parallel_parts(mut self, parts: usize) -> S3Store {
        self.parallel_parts = parts.max(1);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn part_size(&self) -> usize {
        self.part_size
    }

    pub fn parallel_parts(&self) -> usize {
        self.parallel_parts
    }
}

impl S3Store {
    fn writer_of(
        &self,
        key: &str,
        meta: &ObjectMeta,
        part_size: usize,
        parallel_parts: usize,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        check_key(key)?;
        Ok(Box::new(writer::S3Writer::new(
            writer::Target {
                client: self.client.clone(),
                handle: self.handle.clone(),
                bucket: self.bucket.clone(),
                key: key.to_string(),
                uri: self.uri(key),
                content_type: Some(meta.content_type.clone()).filter(|t| !t.is_empty()),
                metadata: meta.metadata.iter().cloned().collect::<HashMap<_, _>>(),
            },
            part_size,
            parallel_parts,
        )))
    }
}

impl Store for S3Store {
    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn writer(&self, key: &str, meta: &ObjectMeta) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.writer_of(key, meta, self.part_size, self.parallel_parts)
    }

    fn lean_writer(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.writer_of(key, meta, MIN_PART_SIZE, LEAN_PARALLEL_PARTS)
    }

    fn download_url(&self, key: &str) -> Result<Option<String>, StoreError> {
        check_key(key)?;
        let uri = self.uri(key);
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(DOWNLOAD_LINK_LIFETIME)
            .map_err(|err| StoreError::Service {
            operation: "GetObject",
            uri: uri.clone(),
            message: err.to_string(),
            retryable: false,
            source: Box::new(err),
        })?;
        self.handle.block_on(async {
            let request = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .presigned(config)
                .await
                .map_err(|err| sdk_error("GetObject", &uri, err))?;
            Ok(Some(request.uri().to_string()))
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        let uri = self.uri(key);
        self.handle.block_on(async {
            let Some(output) = self.send_get(key, &uri).await? else {
                return Ok(None);
            };
            let bytes = output.body.collect().await.map_err(|err| {
                let message = format!("the body broke off: {}", DisplayErrorContext(&err));
                StoreError::Service {
                    operation: "GetObject",
                    uri: uri.clone(),
                    message,
                    retryable: true,
                    source: Box::new(err),
                }
            })?;
            Ok(Some(bytes.to_vec()))
        })
    }

    fn put_if_absent(
        &self,
        key: &str,
        bytes: &[u8],
        meta: &ObjectMeta,
    ) -> Result<bool, StoreError> {
        check_key(key)?;
        let uri = self.uri(key);
        self.handle.block_on(async {
            let mut request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .body(bytes.to_vec().into());
            if !meta.content_type.is_empty() {
                request = request.content_type(&meta.content_type);
            }
            for (name, value) in &meta.metadata {
                request = request.metadata(name, value);
            }
            match request.send().await {
                Ok(_) => Ok(true),
                // 412: the object exists; 409: another conditional write to it is under way.
                Err(SdkError::ServiceError(context))
                    if matches!(context.raw().status().as_u16(), 409 | 412) =>
                {
                    Ok(false)
                }
                Err(err) => Err(sdk_error("PutObject", &uri, err)),
            }
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let uri = self.uri(key);
        self.handle.block_on(async {
            let request = self.client.delete_object().bucket(&self.bucket).key(key);
            request
                .send()
                .await
                .map(|_| ())
                .map_err(|err| sdk_error("DeleteObject", &uri, err))
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_objects(prefix)?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    fn list_sized(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.list_objects(prefix)
    }

    fn reader(&self, key: &str) -> Result<Option<Box<dyn std::io::Read + Send>>, StoreError> {
        self.open_reader(key)
    }
}

/// A failed SDK call as a [`StoreError`], judged retryable when the service was throttling,
/// answered 5xx or timed out, or the request never got an answer.
pub(crate) fn sdk_error<E>(
    operation: &'static str,
    uri: &str,
    err: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let (message, retryable) = match &err {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().unwrap_or("");
            let message = match (context.err().code(), context.err().message()) {
                (Some(code), Some(text)) => format!("{code} (HTTP {status}): {text}"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => format!("HTTP {status}: {}", DisplayErrorContext(&err)),
            };
            (
                message,
                status >= 500 || status == 429 || retryable_code(code),
            )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (DisplayErrorContext(&err).to_string(), true)
        }
        _ => (DisplayErrorContext(&err).to_string(), false),
    };
    StoreError::Service {
        operation,
        uri: uri.to_string(),
        message,
        retryable,
        source: Box::new(err),
    }
}

/// S3's error codes that mean "slow down" or "try again", whatever the HTTP status.
fn retryable_code(code: &str) -> bool {
    matches!(
        code,
        "SlowDown"
            | "RequestTimeout"
            | "RequestTimeTooSkewed"
            | "Throttling"
            | "ThrottlingException"
            | "InternalError"
            | "ServiceUnavailable"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(runtime: &tokio::runtime::Runtime) -> S3Store {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        S3Store::new(Client::from_conf(config), "bkt", runtime.handle().clone())
    }

    #[test]
    fn uris_name_the_bucket_and_the_key() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = store(&runtime);
        assert_eq!(
            store.uri("builds/p/b/build.json"),
            "s3://bkt/builds/p/b/build.json"
        );
        assert!(store.writer("../x", &ObjectMeta::default()).is_err());
        assert!(store.get("/x").is_err());
    }

    #[test]
    fn part_sizes_stay_within_s3_limits() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = store(&runtime);
        assert_eq!(store.part_size(), DEFAULT_PART_SIZE);
        assert_eq!(store.clone().with_part_size(1).part_size(), MIN_PART_SIZE);
        assert_eq!(
            store.clone().with_part_size(usize::MAX).part_size(),
            MAX_PART_SIZE
        );
        assert_eq!(store.with_parallel_parts(0).parallel_parts(), 1);
    }

    #[test]
    fn from_conf_needs_a_runtime() {
        let config = aws_config::SdkConfig::builder().build();
        assert!(matches!(
            S3Store::from_conf(&config, "bkt", true),
            Err(StoreError::NoRuntime)
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let store = S3Store::from_conf(&config, "bkt", true).unwrap();
        assert_eq!(store.bucket(), "bkt");
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        for (code, retryable) in [
            ("SlowDown", true),
            ("InternalError", true),
            ("AccessDenied", false),
            ("NoSuchBucket", false),
        ] {
            assert_eq!(retryable_code(code), retryable, "{code}");
        }
        let wrapped = StoreError::Write {
            uri: "s3://b/k".into(),
            source: std::io::Error::other(StoreError::Service {
                operation: "UploadPart",
                uri: "s3://b/k".into(),
                message: "SlowDown".into(),
                retryable: true,
                source: "slow down".into(),
            }),
        };
        assert!(wrapped.retryable());
        assert!(!StoreError::NoRuntime.retryable());
    }
}
