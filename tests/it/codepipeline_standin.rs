//! A stand-in for AWS CodePipeline's job worker API on 127.0.0.1, speaking its wire protocol
//! (JSON 1.1: `POST /` with `X-Amz-Target: CodePipeline_20150709.<Operation>`, SigV4-signed for
//! `codepipeline`, errors as `{"__type", "message"}`), written from CodePipeline's API
//! reference: `PutJobSuccessResult` and `PutJobFailureResult` for the jobs a test opens. A job
//! ends with its first result without a continuation token; a result for a job it does not know
//! is `JobNotFoundException`, for a job that has ended `InvalidJobStateException`, and a request
//! outside the reference's limits (output variables with a continuation token, a message over
//! 5,000 characters, an unknown failure type) `ValidationException`.

use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::aws_json::{self, Call};
use crate::loopback::Loopback;

const TARGET_PREFIX: &str = "CodePipeline_20150709.";

pub struct CodePipelineStandIn {
    server: Loopback,
    state: Arc<State>,
}

/// A result the stand-in took: the operation and its request.
#[derive(Debug, Clone)]
pub struct Taken {
    pub operation: String,
    pub request: Value,
}

#[derive(Default)]
struct State {
    /// Open jobs, and whether each has ended.
    jobs: Mutex<Vec<(String, bool)>>,
    taken: Mutex<Vec<Taken>>,
    /// Requests refused, with the error's type.
    refused: Mutex<Vec<String>>,
}

impl CodePipelineStandIn {
    pub fn start() -> CodePipelineStandIn {
        let state = Arc::new(State::default());
        let server = Loopback::serve("127.0.0.1", "codepipeline", state.clone(), handle);
        CodePipelineStandIn { server, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Opens job `id`: its worker may put results for it.
    pub fn open(&self, id: &str) {
        self.state
            .jobs
            .lock()
            .unwrap()
            .push((id.to_string(), false));
    }

    /// The results taken for job `id`, in order.
    pub fn results(&self, id: &str) -> Vec<Taken> {
        self.state
            .taken
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.request["jobId"] == id)
            .cloned()
            .collect()
    }

    /// The error types of the requests refused.
    pub fn refused(&self) -> Vec<String> {
        self.state.refused.lock().unwrap().clone()
    }
}

fn error(state: &State, kind: &str, message: &str) -> Response<Full<Bytes>> {
    state.refused.lock().unwrap().push(kind.to_string());
    aws_json::error(kind, message)
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (operation, input) = match aws_json::read(req, TARGET_PREFIX, "codepipeline").await {
        Call::Unsigned => {
            state.refused.lock().unwrap().push("unsigned".to_string());
            return Ok(aws_json::unsigned());
        }
        Call::Refused(answer) => return Ok(answer),
        Call::Operation(operation, input) => (operation, input),
    };
    let operation = operation.as_str();
    let problem = match operation {
        "PutJobSuccessResult" => success_problem(&input),
        "PutJobFailureResult" => failure_problem(&input),
        _ => return Ok(error(&state, "UnknownOperationException", operation)),
    };
    if let Some(problem) = problem {
        return Ok(error(&state, "ValidationException", &problem));
    }
    let job = input["jobId"].as_str().unwrap_or_default().to_string();
    let ends = operation == "PutJobFailureResult" || input.get("continuationToken").is_none();
    {
        let mut jobs = state.jobs.lock().unwrap();
        let Some(open) = jobs.iter_mut().find(|(id, _)| *id == job) else {
            drop(jobs);
            return Ok(error(
                &state,
                "JobNotFoundException",
                &format!("The job was specified in an invalid format or cannot be found: {job}"),
            ));
        };
        if open.1 {
            drop(jobs);
            return Ok(error(
                &state,
                "InvalidJobStateException",
                "The job state was specified in an invalid format.",
            ));
        }
        open.1 = ends;
    }
    state.taken.lock().unwrap().push(Taken {
        operation: operation.to_string(),
        request: input,
    });
    Ok(aws_json::reply(200, json!({})))
}

fn text_within(value: &Value, field: &str, max: usize) -> Option<String> {
    match value.get(field) {
        None => None,
        Some(Value::String(text)) if text.chars().count() <= max && !text.is_empty() => None,
        Some(_) => Some(format!(
            "{field}: expected a string of 1 to {max} characters"
        )),
    }
}

fn success_problem(input: &Value) -> Option<String> {
    if !input["jobId"].is_string() {
        return Some("jobId: required".to_string());
    }
    if input.get("continuationToken").is_some() && input.get("outputVariables").is_some() {
        return Some(
            "outputVariables can be included only when there is no continuation token".to_string(),
        );
    }
    if let Some(variables) = input.get("outputVariables") {
        let names_ok = variables.as_object().is_some_and(|vars| {
            vars.iter().all(|(name, value)| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "@-_".contains(c))
                    && value.is_string()
            })
        });
        if !names_ok {
            return Some("outputVariables: names are [A-Za-z0-9@\\-_]+, values strings".into());
        }
    }
    let details = &input["executionDetails"];
    text_within(input, "continuationToken", 2048)
        .or_else(|| text_within(details, "summary", 2048))
        .or_else(|| text_within(details, "externalExecutionId", 1500))
}

fn failure_problem(input: &Value) -> Option<String> {
    if !input["jobId"].is_string() {
        return Some("jobId: required".to_string());
    }
    let details = &input["failureDetails"];
    let types = [
        "JobFailed",
        "ConfigurationError",
        "PermissionError",
        "RevisionOutOfSync",
        "RevisionUnavailable",
        "SystemUnavailable",
    ];
    if !details["type"].as_str().is_some_and(|t| types.contains(&t)) {
        return Some(format!("failureDetails.type: one of {}", types.join(", ")));
    }
    if !details["message"].is_string() {
        return Some("failureDetails.message: required".to_string());
    }
    text_within(details, "message", 5000)
        .or_else(|| text_within(details, "externalExecutionId", 1500))
}
