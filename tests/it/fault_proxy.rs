//! A proxy in front of a test server that answers some requests itself: a request whose target
//! (`X-Amz-Target`), path or body contains a rule's needle gets the rule's answer instead of the
//! server's, for the next `times` such requests (or every one). Everything else is forwarded
//! unchanged, signature and all (the proxy is the endpoint the client signs for, and SigV4 signs
//! the host header, which the proxy passes through as it came).
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

use crate::loopback::Loopback;

/// What the proxy answers in the server's place.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// An error of an AWS JSON 1.1 service (Systems Manager, Secrets Manager, DynamoDB), as the
    /// service sends it: the type in `__type` and in `x-amzn-ErrorType`.
    pub fn aws_json(status: u16, error_type: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amzn-errortype".into(), error_type.into()),
            ],
            body: serde_json::json!({"__type": error_type, "Message": message}).to_string(),
        }
    }
}

struct Rule {
    needle: String,
    answer: Answer,
    /// How many more matching requests get the answer; `None` for every one.
    times: Option<usize>,
}

struct State {
    upstream: Mutex<String>,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    /// How many requests the proxy answered itself.
    answered: Mutex<usize>,
}

pub struct FaultProxy {
    server: Loopback,
    state: Arc<State>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:port`) on a free loopback port.
    pub fn start(upstream: &str) -> FaultProxy {
        let state = Arc::new(State {
            upstream: Mutex::new(upstream.trim_end_matches('/').to_string()),
            client: reqwest::Client::new(),
            rules: Mutex::new(Vec::new()),
            answered: Mutex::new(0),
        });
        let server = Loopback::serve("127.0.0.1", "fault-proxy", state.clone(), handle);
        FaultProxy { server, state }
    }

    /// Forwards to `upstream` from now on (for a server that is started after the proxy's
    /// address is handed out).
    pub fn set_upstream(&self, upstream: &str) {
        *self.state.upstream.lock().unwrap() = upstream.trim_end_matches('/').to_string();
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Requests whose target, path or body contains `needle` get `answer`, `times` times (or
    /// always).
    pub fn answer(&self, needle: &str, answer: Answer, times: Option<usize>) {
        self.state.rules.lock().unwrap().push(Rule {
            needle: needle.to_string(),
            answer,
            times,
        });
    }

    /// How many requests the proxy answered in the server's place.
    pub fn answered(&self) -> usize {
        *self.state.answered.lock().unwrap()
    }
}

fn matching(state: &State, haystack: &str) -> Option<Answer> {
    let mut rules = state.rules.lock().unwrap();
    let rule = rules
        .iter_mut()
        .find(|rule| rule.times != Some(0) && haystack.contains(&rule.needle))?;
    if let Some(times) = rule.times.as_mut() {
        *times -= 1;
    }
    *state.answered.lock().unwrap() += 1;
    Some(rule.answer.clone())
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let haystack = format!(
        "{target}\n{}\n{}",
        parts.uri,
        String::from_utf8_lossy(&body)
    );
    if let Some(answer) = matching(&state, &haystack) {
        let mut response = Response::builder().status(answer.status);
        for (name, value) in &answer.headers {
            response = response.header(name, value);
        }
        return Ok(response
            .body(Full::new(Bytes::from(answer.body)))
            .expect("a response"));
    }
    Ok(forward(&state, parts, body).await.unwrap_or_else(|err| {
        Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(format!("proxy: {err}"))))
            .expect("a response")
    }))
}

async fn forward(
    state: &State,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, reqwest::Error> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut request = state
        .client
        .request(method, format!("{}{path}", state.upstream.lock().unwrap()));
    for (name, value) in &parts.headers {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let upstream = request.body(body).send().await?;
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if name != "transfer-encoding" && name != "content-length" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = upstream.bytes().await?;
    Ok(response.body(Full::new(bytes)).expect("a response"))
}
