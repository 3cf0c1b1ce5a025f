//! The front door on AWS: a Lambda Function URL event (payload format 2.0) becomes a request to
//! the same routes `pushbuild serve` has, and the answer becomes the Function URL's response. A
//! planned build is handed off by the function invoking itself asynchronously (`Invoke`,
//! `InvocationType=Event`) with `{"plannedBuild": …}`, which it then builds.

use axum::Router;
use base64::Engine;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::lifecycle::{Dispatch, DispatchError};
use crate::trigger::BuildTarget;

/// Whether `event` is a Function URL (or API Gateway HTTP API) request.
pub fn is_function_url(event: &Value) -> bool {
    event
        .pointer("/requestContext/http/method")
        .is_some_and(Value::is_string)
}

/// Why a Function URL event could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum UrlEventError {
    #[error("the Function URL event does not parse: {0}")]
    Event(#[from] serde_json::Error),
    #[error("the Function URL event's body is marked base64 but is not: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// Answers a Function URL event through `router`. The body the routes see is the exact bytes
/// the host sent (decoded from base64 when the event says so), so signatures check out.
pub async fn answer(router: &Router, event: Value) -> Result<Value, UrlEventError> {
    // lambda_http decodes a base64 body by expecting it to be valid; check first, so a bad one
    // is an error here and not a panic there.
    if event["isBase64Encoded"].as_bool() == Some(true) {
        if let Some(body) = event["body"].as_str() {
            base64::engine::general_purpose::STANDARD.decode(body)?;
        }
    }
    let request = lambda_http::request::from_str(&event.to_string())?;
    let request = request.map(axum::body::Body::new);
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut headers = serde_json::Map::new();
    // A Function URL's response takes cookies apart from its headers.
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        if name == axum::http::header::SET_COOKIE {
            if let Ok(value) = value.to_str() {
                cookies.push(json!(value));
            }
            continue;
        }
        if let Ok(value) = value.to_str() {
            headers
                .entry(name.as_str().to_string())
                .and_modify(|v| {
                    if let Value::String(joined) = v {
                        joined.push_str(", ");
                        joined.push_str(value);
                    }
                })
                .or_insert_with(|| json!(value));
        }
    }
    let (body, encoded) = match std::str::from_utf8(&bytes) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&bytes),
            true,
        ),
    };
    let mut answer = json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "body": body,
        "isBase64Encoded": encoded,
    });
    if !cookies.is_empty() {
        answer["cookies"] = Value::Array(cookies);
    }
    Ok(answer)
}

/// Hands planned builds to the function itself, asynchronously.
#[derive(Debug, Clone)]
pub struct SelfInvoke {
    client: aws_sdk_lambda::Client,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    function: String,
}

impl SelfInvoke {
    pub fn new(client: aws_sdk_lambda::Client, function: String) -> SelfInvoke {
        SelfInvoke { client, function }
    }

    /// The client from the SDK's shared configuration (`AWS_ENDPOINT_URL_LAMBDA` points it
    /// elsewhere).
    pub fn from_conf(sdk: &aws_config::SdkConfig, function: String) -> SelfInvoke {
        SelfInvoke::new(aws_sdk_lambda::Client::new(sdk), function)
    }
}

impl Dispatch for SelfInvoke {
    async fn dispatch(&self, target: BuildTarget) -> Result<(), DispatchError> {
        let payload = json!({ "plannedBuild": target }).to_string();
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                DispatchError::Invoke(aws_sdk_lambda::error::DisplayErrorContext(&err).to_string())
            })
    }
}
