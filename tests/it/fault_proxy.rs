//! A proxy in front of a test server (S3, DynamoDB, the git server, a stand-in, the Lambda
//! Invoke endpoint) that injects faults. A rule names a needle, looked for in the request's
//! `METHOD /path?query`, its target (`X-Amz-Target`) and its body; a matching request gets the
//! rule's fault for the next `k` matches ([`Schedule::Next`]), every match, or a share of them
//! drawn from a seeded generator ([`Schedule::Rate`], replayable with the same seed). Faults:
//! an answer in the server's place (500, 503 `SlowDown`, a throttling error), the connection
//! reset before an answer (mid-request) or after half the answer's body (mid-response), or a
//! stall of some seconds before the request is forwarded. Everything else is forwarded
//! unchanged, signature and all (the proxy is the endpoint the client signs for, and SigV4 signs
//! the host header, which the proxy passes through as it came).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};

/// What the proxy answers in the server's place.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// An error of an AWS JSON 1.x service (DynamoDB, Systems Manager, Secrets Manager,
    /// Lambda), as the service sends it: the type in `__type` and in `x-amzn-ErrorType`.
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

    /// S3's `503 SlowDown`, as S3 sends it (XML).
    pub fn slow_down() -> Answer {
        Answer {
            status: 503,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>\
                   <Message>Please reduce your request rate.</Message></Error>"
                .into(),
        }
    }

    /// A `500` with S3's `InternalError`.
    pub fn internal_error() -> Answer {
        Answer {
            status: 500,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code>\
                   <Message>We encountered an internal error. Please try again.</Message></Error>"
                .into(),
        }
    }

    /// DynamoDB's throttling error.
    pub fn throughput_exceeded() -> Answer {
        Answer::aws_json(
            400,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        )
    }
}

/// A fault.
#[derive(Clone, Debug)]
pub enum Fault {
    /// An answer in the server's place.
    Answer(Answer),
    /// The connection closed before any answer (the request may or may not have been read).
    ResetRequest,
    /// The server's answer forwarded, its connection closed after half its body.
    ResetResponse,
    /// The request held this long, then forwarded.
    Stall(Duration),
}

/// Which matching requests get the fault.
#[derive(Clone, Copy, Debug)]
pub enum Schedule {
    /// The next `k`.
    Next(usize),
    /// Every one.
    Always,
    /// About `per_mille` in a thousand, drawn from the proxy's seeded generator.
    Rate(u32),
}

struct Rule {
    needle: String,
    fault: Fault,
    schedule: Schedule,
}

struct State {
    upstream: Mutex<String>,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    /// The generator's state (splitmix64).
    seed: Mutex<u64>,
    /// What the proxy injected: (needle, fault's kind), in order.
    injected: Mutex<Vec<(String, &'static str)>>,
}

pub struct FaultProxy {
    pub addr: std::net::SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    state: Arc<State>,
}

type Body = BoxBody<Bytes, std::io::Error>;

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:port`) on a free loopback port.
    pub fn start(upstream: &str) -> FaultProxy {
        FaultProxy::seeded(upstream, 0x5eed)
    }

    /// A proxy whose [`Schedule::Rate`] draws come from `seed`.
    pub fn seeded(upstream: &str, seed: u64) -> FaultProxy {
        let state = Arc::new(State {
            upstream: Mutex::new(upstream.trim_end_matches('/').to_string()),
            client: reqwest::Client::new(),
            rules: Mutex::new(Vec::new()),
            seed: Mutex::new(seed),
            injected: Mutex::new(Vec::new()),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("its address");
        let served = state.clone();
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            addr,
            runtime: Some(runtime),
            state,
        }
    }

    /// Forwards to `upstream` from now on (for a server that is started after the proxy's
    /// address is handed out).
    pub fn set_upstream(&self, upstream: &str) {
        *self.state.upstream.lock().unwrap() = upstream.trim_end_matches('/').to_string();
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests matching `needle` get `answer`, `times` times (or always).
    pub fn answer(&self, needle: &str, answer: Answer, times: Option<usize>) {
        let schedule = times.map_or(Schedule::Always, Schedule::Next);
        self.inject(needle, Fault::Answer(answer), schedule);
    }

    /// Requests matching `needle` get `fault` as `schedule` says.
    pub fn inject(&self, needle: &str, fault: Fault, schedule: Schedule) {
        self.state.rules.lock().unwrap().push(Rule {
            needle: needle.to_string(),
            fault,
            schedule,
        });
    }

    /// No more faults from now on.
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// How many requests the proxy answered in the server's place.
    pub fn answered(&self) -> usize {
        self.injected()
            .iter()
            .filter(|(_, kind)| *kind == "answer")
            .count()
    }

    /// Every fault injected: (the rule's needle, the fault's kind).
    pub fn injected(&self) -> Vec<(String, &'static str)> {
        self.state.injected.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The next draw in 0..1000 (splitmix64).
fn draw(seed: &Mutex<u64>) -> u32 {
    let mut state = seed.lock().unwrap();
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    u32::try_from((z ^ (z >> 31)) % 1000).unwrap_or(0)
}

fn matching(state: &State, haystack: &str) -> Option<Fault> {
    let mut rules = state.rules.lock().unwrap();
    let rule = rules.iter_mut().find(|rule| {
        haystack.contains(&rule.needle)
            && match rule.schedule {
                Schedule::Next(k) => k > 0,
                Schedule::Always => true,
                Schedule::Rate(per_mille) => draw(&state.seed) < per_mille,
            }
    })?;
    if let Schedule::Next(k) = &mut rule.schedule {
        *k -= 1;
    }
    let kind = match rule.fault {
        Fault::Answer(_) => "answer",
        Fault::ResetRequest => "reset-request",
        Fault::ResetResponse => "reset-response",
        Fault::Stall(_) => "stall",
    };
    state
        .injected
        .lock()
        .unwrap()
        .push((rule.needle.clone(), kind));
    Some(rule.fault.clone())
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
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
        "{} {}\n{target}\n{}",
        parts.method,
        parts.uri,
        String::from_utf8_lossy(&body)
    );
    match matching(&state, &haystack) {
        Some(Fault::Answer(answer)) => {
            let mut response = Response::builder().status(answer.status);
            for (name, value) in &answer.headers {
                response = response.header(name, value);
            }
            return Ok(response.body(full(answer.body)).expect("a response"));
        }
        // An error from the service closes the connection without an answer.
        Some(Fault::ResetRequest) => {
            return Err(std::io::Error::other(
                "the fault proxy reset the connection",
            ));
        }
        Some(Fault::Stall(pause)) => tokio::time::sleep(pause).await,
        Some(Fault::ResetResponse) => {
            let (response, bytes) = forward(&state, parts, body).await?;
            let half = bytes.slice(..bytes.len() / 2);
            let frames = futures::stream::iter(vec![
                Ok(Frame::data(half)),
                Err(std::io::Error::other("the fault proxy cut the answer")),
            ]);
            return Ok(response
                .body(BodyExt::boxed(StreamBody::new(frames)))
                .expect("a response"));
        }
        None => {}
    }
    match forward(&state, parts, body).await {
        Ok((response, bytes)) => Ok(response.body(full(bytes)).expect("a response")),
        Err(err) => Ok(Response::builder()
            .status(502)
            .body(full(format!("proxy: {err}")))
            .expect("a response")),
    }
}

/// The server's answer: its head (with the body's length) and its body.
async fn forward(
    state: &State,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<(hyper::http::response::Builder, Bytes), std::io::Error> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let upstream = state.upstream.lock().unwrap().clone();
    let mut request = state.client.request(method, format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let answer = request
        .body(body)
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "content-length" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = answer.bytes().await.map_err(std::io::Error::other)?;
    // The whole length, also when the body is then cut: the client sees it end early.
    let response = response.header("content-length", bytes.len().to_string());
    Ok((response, bytes))
}
