//! What the tests' stand-ins for AWS's JSON 1.1 services share (CodeBuild, CodePipeline): a
//! request read as its operation (`X-Amz-Target: <prefix><Operation>`), whether it was SigV4
//! signed for the service, and its JSON body; answers and errors (`{"__type", "message"}`) as
//! those services send them.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

/// A request, read.
pub enum Call {
    /// Not signed for the service.
    Unsigned,
    /// Signed, but not an operation of the service or not JSON: the error to answer.
    Refused(Response<Full<Bytes>>),
    /// The operation's name and its input.
    Operation(String, Value),
}

/// Reads `req` as a call of the service `service` whose targets start with `prefix`.
pub async fn read(req: Request<Incoming>, prefix: &str, service: &str) -> Call {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let target = header("x-amz-target");
    let authorization = header("authorization");
    if !(authorization.starts_with("AWS4-HMAC-SHA256")
        && authorization.contains(&format!("/{service}/aws4_request")))
    {
        return Call::Unsigned;
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return Call::Refused(error("SerializationException", "the body is not JSON"));
    };
    match target.strip_prefix(prefix) {
        Some(operation) => Call::Operation(operation.to_string(), input),
        None => Call::Refused(error("UnknownOperationException", "unknown target")),
    }
}

/// An answer with `body`.
pub fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a response")
}

/// An error answer of type `kind`.
pub fn error(kind: &str, message: &str) -> Response<Full<Bytes>> {
    reply(400, json!({"__type": kind, "message": message}))
}

/// What an unsigned request is answered.
pub fn unsigned() -> Response<Full<Bytes>> {
    error(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
}
