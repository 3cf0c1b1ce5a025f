//! A Lambda Runtime API for tests: the HTTP interface Lambda offers a function's runtime
//! (`/2018-06-01/runtime/invocation/next`, `…/{id}/response`, `…/{id}/error`, `…/init/error`),
//! served on 127.0.0.1 so the real function binary can be driven through it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function's response body.
    Response(Value),
    /// The function reported an error: `errorType`, `errorMessage`.
    Error { error_type: String, message: String },
}

struct Pending {
    id: String,
    event: Value,
    deadline_ms: u64,
}

#[derive(Default)]
struct State {
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<Value>,
    polls: usize,
    /// Lambda's `Invoke` with `InvocationType=Event`: (function name, payload), in order.
    async_invocations: Vec<(String, Value)>,
    /// What Secrets Manager's `GetSecretValue` answers, by secret id.
    secrets: HashMap<String, String>,
}

/// A running Runtime API.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<Pending>,
    state: Arc<Mutex<State>>,
    #[allow(dead_code)]
    polled: Arc<Notify>,
    next_id: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    /// Starts serving on a free port of 127.0.0.1.
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the runtime API");
        let addr = listener.local_addr().expect("local addr");
        let (queue, rx) = mpsc::unbounded_channel::<Pending>();
        let rx = Arc::new(Mutex::new(rx));
        let state = Arc::new(Mutex::new(State::default()));
        let polled = Arc::new(Notify::new());
        let (serve_state, serve_polled) = (state.clone(), polled.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rx, state, polled) = (rx.clone(), serve_state.clone(), serve_polled.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        route(req, rx.clone(), state.clone(), polled.clone())
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            addr,
            queue,
            state,
            polled,
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Hands `event` to the function with `timeout` as its deadline and waits for the outcome
    /// (up to the deadline plus `grace`).
    pub async fn invoke(&self, event: Value, timeout: Duration, grace: Duration) -> Outcome {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        self.state.lock().await.waiting.insert(id.clone(), tx);
        self.enqueue(id, event, timeout);
        match tokio::time::timeout(timeout + grace, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => panic!("the invocation was dropped"),
            Err(_) => panic!("the function did not answer within {:?}", timeout + grace),
        }
    }

    /// Hands `event` to the function with `timeout` as its deadline, without waiting for its
    /// outcome (for a test that kills the function while it builds).
    pub async fn hand(&self, event: Value, timeout: Duration) {
        let id = self.next_id();
        self.enqueue(id, event, timeout);
    }

    fn next_id(&self) -> String {
        format!(
            "req-{}",
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        )
    }

    /// Queues `event` as invocation `id` for the function's next poll, due in `timeout`.
    fn enqueue(&self, id: String, event: Value, timeout: Duration) {
        let deadline_ms = now_ms() + u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.queue
            .send(Pending {
                id,
                event,
                deadline_ms,
            })
            .expect("the runtime API is running");
    }

    /// The asynchronous invocations the function made of itself (Lambda's Invoke API,
    /// `InvocationType=Event`), once `n` arrived or `timeout` passed.
    #[allow(dead_code)]
    pub async fn async_invocations(&self, n: usize, timeout: Duration) -> Vec<(String, Value)> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.state.lock().await.async_invocations.clone();
            if got.len() >= n || tokio::time::Instant::now() >= until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Makes Secrets Manager's `GetSecretValue` answer `value` for `id`.
    #[allow(dead_code)]
    pub async fn set_secret(&self, id: &str, value: &str) {
        self.state
            .lock()
            .await
            .secrets
            .insert(id.to_string(), value.to_string());
    }

    /// The body of `/runtime/init/error`, if the function reported one.
    #[allow(dead_code)]
    pub async fn init_error(&self) -> Option<Value> {
        self.state.lock().await.init_error.clone()
    }

    /// Waits until the function has asked for an event `n` times in all (the start benchmark).
    #[allow(dead_code)]
    pub async fn wait_for_polls(&self, n: usize, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.polled.notified();
            if self.state.lock().await.polls >= n {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return false;
            }
        }
    }
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

async fn route(
    req: Request<Incoming>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    state: Arc<Mutex<State>>,
    polled: Arc<Notify>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            {
                state.lock().await.polls += 1;
                polled.notify_waiters();
            }
            let next = rx.lock().await.recv().await;
            let Some(pending) = next else {
                return Ok(reply(StatusCode::GONE, "shut down"));
            };
            let body = serde_json::to_vec(&pending.event).unwrap_or_default();
            let mut response = Response::new(Full::new(Bytes::from(body)));
            let headers = response.headers_mut();
            let mut put = |name: &'static str, value: String| {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            };
            put("lambda-runtime-aws-request-id", pending.id);
            put(
                "lambda-runtime-deadline-ms",
                pending.deadline_ms.to_string(),
            );
            put(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:pushbuild".to_string(),
            );
            put(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000".to_string(),
            );
            put("content-type", "application/json".to_string());
            Ok(response)
        }
        (
            Method::POST,
            [
                "2018-06-01",
                "runtime",
                "invocation",
                id,
                kind @ ("response" | "error"),
            ],
        ) => {
            let id = id.to_string();
            let is_error = *kind == "error";
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let outcome = if is_error {
                Outcome::Error {
                    error_type: value["errorType"].as_str().unwrap_or_default().to_string(),
                    message: value["errorMessage"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                }
            } else {
                Outcome::Response(value)
            };
            match state.lock().await.waiting.remove(&id) {
                Some(tx) => {
                    let _ = tx.send(outcome);
                    Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"))
                }
                None => Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "{\"errorType\":\"InvalidRequestID\"}",
                )),
            }
        }
        // Lambda's Invoke API (2015-03-31), as the function calls it on itself: an asynchronous
        // invocation is recorded and accepted (202), as Lambda queues it.
        (Method::POST, ["2015-03-31", "functions", name, "invocations"]) => {
            let name = name.to_string();
            let event_type = req
                .headers()
                .get("x-amz-invocation-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("RequestResponse")
                .to_string();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if event_type != "Event" {
                return Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "{\"Type\":\"User\",\"message\":\"only Event invocations are served here\"}",
                ));
            }
            let payload = serde_json::from_slice(&body).unwrap_or(Value::Null);
            state.lock().await.async_invocations.push((name, payload));
            Ok(reply(StatusCode::ACCEPTED, ""))
        }
        // Secrets Manager's GetSecretValue (awsJson1_1).
        (Method::POST, [""]) => {
            let target = req
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let id = input["SecretId"].as_str().unwrap_or_default().to_string();
            if target != "secretsmanager.GetSecretValue" {
                return Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "{\"__type\":\"UnknownOperationException\"}",
                ));
            }
            match state.lock().await.secrets.get(&id) {
                Some(value) => {
                    let answer = serde_json::json!({
                        "ARN": id, "Name": "pushbuild", "SecretString": value,
                        "VersionId": "v1", "CreatedDate": 1.7e9,
                    });
                    Ok(reply(StatusCode::OK, &answer.to_string()))
                }
                None => Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Secrets Manager can't find the specified secret.\"}",
                )),
            }
        }
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            state.lock().await.init_error =
                Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
            Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "{\"errorType\":\"NotFound\"}")),
    }
}
