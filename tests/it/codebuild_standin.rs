//! A stand-in for AWS CodeBuild on 127.0.0.1, speaking its wire protocol (JSON 1.1: `POST /`
//! with `X-Amz-Target: CodeBuild_20161006.<Operation>`, SigV4-signed for `codebuild`, errors as
//! `{"__type", "message"}`), written from CodeBuild's API reference: `StartBuild` (one project;
//! a `CODEBUILD_` variable refused, as CodeBuild refuses it; a request sent again with its
//! `idempotencyToken` answered with the build it started), `BatchGetBuilds` (builds as the
//! test sets them) and `StopBuild` (the build's status becomes `STOPPED`). It also makes the EventBridge `CodeBuild Build State Change` event of a
//! build it started.

use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::aws_json::{self, Call, error, reply};
use crate::loopback::Loopback;

const TARGET_PREFIX: &str = "CodeBuild_20161006.";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

pub struct CodeBuildStandIn {
    server: Loopback,
    state: Arc<State>,
}

struct State {
    project: String,
    /// Each started build: its id, the StartBuild request, and its status.
    builds: Mutex<Vec<(String, Value, String)>>,
    /// Requests whose signature was not for `codebuild`.
    unsigned: Mutex<usize>,
    /// The builds `StopBuild` stopped.
    stopped: Mutex<Vec<String>>,
}

impl CodeBuildStandIn {
    /// Serves the project `project` on a free loopback port.
    pub fn start(project: &str) -> CodeBuildStandIn {
        let state = Arc::new(State {
            project: project.to_string(),
            builds: Mutex::new(Vec::new()),
            unsigned: Mutex::new(0),
            stopped: Mutex::new(Vec::new()),
        });
        let server = Loopback::serve("127.0.0.1", "codebuild", state.clone(), handle);
        CodeBuildStandIn { server, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The builds `StopBuild` stopped, in order.
    pub fn stopped(&self) -> Vec<String> {
        self.state.stopped.lock().unwrap().clone()
    }

    /// The StartBuild requests so far, with the ids given.
    pub fn started(&self) -> Vec<(String, Value)> {
        self.state
            .builds
            .lock()
            .unwrap()
            .iter()
            .map(|(id, request, _)| (id.clone(), request.clone()))
            .collect()
    }

    /// How many requests were not signed for CodeBuild.
    pub fn unsigned(&self) -> usize {
        *self.state.unsigned.lock().unwrap()
    }

    /// Sets what `BatchGetBuilds` says of build `id`.
    pub fn set_status(&self, id: &str, status: &str) {
        for build in self.state.builds.lock().unwrap().iter_mut() {
            if build.0 == id {
                build.2 = status.to_string();
            }
        }
    }

    /// The `CodeBuild Build State Change` event of build `id` ending with `status` after
    /// `seconds`, as EventBridge delivers it (times in CodeBuild's `Sep 1, 2017 4:12:29 PM`).
    pub fn state_change(&self, id: &str, status: &str, seconds: i64) -> Value {
        let request = self
            .started()
            .into_iter()
            .find(|(started, _)| started == id)
            .map(|(_, request)| request)
            .expect("a build the stand-in started");
        state_change_event(&self.state.project, id, status, seconds, &request)
    }
}

/// A state-change event for build `id` of `project`, whose StartBuild request was `request`.
pub fn state_change_event(
    project: &str,
    id: &str,
    status: &str,
    seconds: i64,
    request: &Value,
) -> Value {
    let start = chrono::Utc::now() - chrono::Duration::seconds(seconds);
    let end = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%b %-d, %Y %-I:%M:%S %p").to_string();
    let build_status = match status {
        "SUCCEEDED" | "STOPPED" => status,
        _ => "FAILED",
    };
    let vars: Vec<Value> = request["environmentVariablesOverride"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|v| json!({"name": v["name"], "type": "PLAINTEXT", "value": v["value"]}))
        .collect();
    let phase = |kind: &str, phase_status: &str, context: &str| {
        json!({"phase-context": [context], "start-time": fmt(start), "end-time": fmt(end),
               "duration-in-seconds": seconds / 4, "phase-type": kind, "phase-status": phase_status})
    };
    json!({
        "version": "0",
        "id": "c030038d-8c4d-6141-9545-00ff7b7153ee",
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": ACCOUNT,
        "time": end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": REGION,
        "resources": [arn(id)],
        "detail": {
            "build-status": status,
            "project-name": project,
            "build-id": arn(id),
            "additional-information": {
                "artifact": {"location": format!("arn:aws:s3:::{}", request["artifactsOverride"]["location"].as_str().unwrap_or(""))},
                "environment": {"image": "aws/codebuild/amazonlinux-x86_64-standard:5.0", "privileged-mode": true,
                                "compute-type": request["computeTypeOverride"], "type": "LINUX_CONTAINER",
                                "environment-variables": vars},
                "timeout-in-minutes": request["timeoutInMinutesOverride"],
                "build-complete": true,
                "initiator": "pushbuild",
                "build-start-time": fmt(start),
                "source": {"location": request["sourceLocationOverride"], "type": "S3"},
                "logs": {"group-name": format!("/aws/codebuild/{project}"), "stream-name": id.split(':').nth(1).unwrap_or(""),
                         "deep-link": format!("https://console.aws.amazon.com/cloudwatch/home?region={REGION}#logEvent:group=/aws/codebuild/{project}")},
                "phases": [
                    phase("SUBMITTED", "SUCCEEDED", ": "),
                    phase("DOWNLOAD_SOURCE", "SUCCEEDED", ": "),
                    phase("INSTALL", "SUCCEEDED", ": "),
                    phase("BUILD", build_status, if build_status == "FAILED" {
                        "COMMAND_EXECUTION_ERROR: Error while executing command: make. Reason: exit status 2"
                    } else { ": " }),
                    phase("UPLOAD_ARTIFACTS", "SUCCEEDED", ": "),
                    {"start-time": fmt(end), "phase-type": "COMPLETED"}
                ]
            },
            "current-phase": "COMPLETED",
            "current-phase-context": "[: ]",
            "version": "1"
        }
    })
}

fn arn(id: &str) -> String {
    format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{id}")
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (operation, input) = match aws_json::read(req, TARGET_PREFIX, "codebuild").await {
        Call::Unsigned => {
            *state.unsigned.lock().unwrap() += 1;
            return Ok(aws_json::unsigned());
        }
        Call::Refused(answer) => return Ok(answer),
        Call::Operation(operation, input) => (operation, input),
    };
    Ok(match operation.as_str() {
        "StartBuild" => start_build(&state, input),
        "BatchGetBuilds" => batch_get_builds(&state, &input),
        "StopBuild" => stop_build(&state, &input),
        _ => error("UnknownOperationException", &operation),
    })
}

fn start_build(state: &State, input: Value) -> Response<Full<Bytes>> {
    let project = input["projectName"].as_str().unwrap_or("").to_string();
    if project != state.project {
        return error(
            "ResourceNotFoundException",
            &format!(
                "Project cannot be found: arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{project}"
            ),
        );
    }
    let reserved = input["environmentVariablesOverride"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("CODEBUILD_"))
        });
    if reserved {
        return error(
            "InvalidInputException",
            "No user environment variables can start with CODEBUILD_",
        );
    }
    let mut builds = state.builds.lock().unwrap();
    // A request repeated with its idempotency token is the build it started (a changed
    // parameter is a mismatch); CodeBuild keeps a token for five minutes, longer than a test.
    let token = input["idempotencyToken"].as_str().filter(|t| !t.is_empty());
    let earlier = token.and_then(|token| {
        builds
            .iter()
            .find(|(_, request, _)| request["idempotencyToken"] == token)
    });
    let id = match earlier {
        Some((_, request, _)) if *request != input => {
            return error(
                "InvalidInputException",
                "Idempotency token parameter mismatch: the request differs from the one first sent with this token",
            );
        }
        Some((id, _, _)) => id.clone(),
        None => {
            let id = format!("{project}:0000-{:04}", builds.len() + 1);
            builds.push((id.clone(), input, "IN_PROGRESS".to_string()));
            id
        }
    };
    reply(
        200,
        json!({"build": {"id": id, "arn": arn(&id), "projectName": project, "buildStatus": "IN_PROGRESS",
                         "currentPhase": "QUEUED", "startTime": chrono::Utc::now().timestamp() as f64}}),
    )
}

/// `StopBuild`: the build is `STOPPED` (its state-change event is the test's to send).
fn stop_build(state: &State, input: &Value) -> Response<Full<Bytes>> {
    let id = input["id"].as_str().unwrap_or_default();
    let mut builds = state.builds.lock().unwrap();
    let Some(build) = builds.iter_mut().find(|(b, _, _)| b == id) else {
        return error(
            "ResourceNotFoundException",
            &format!("Build {id} not found"),
        );
    };
    build.2 = "STOPPED".to_string();
    state.stopped.lock().unwrap().push(id.to_string());
    reply(
        200,
        json!({"build": {"id": id, "arn": arn(id), "buildStatus": "STOPPED"}}),
    )
}

fn batch_get_builds(state: &State, input: &Value) -> Response<Full<Bytes>> {
    let builds = state.builds.lock().unwrap();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in input["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        match builds.iter().find(|b| b.0 == id) {
            Some((id, request, status)) => {
                let now = chrono::Utc::now().timestamp() as f64;
                let vars: Vec<Value> = request["environmentVariablesOverride"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut build = json!({
                    "id": id, "arn": arn(id), "buildStatus": status, "startTime": now - 90.0,
                    "phases": [{"phaseType": "BUILD", "phaseStatus": if status == "SUCCEEDED" { "SUCCEEDED" } else { "FAILED" },
                                "startTime": now - 80.0, "endTime": now - 10.0, "durationInSeconds": 70}],
                    "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
                                    "computeType": request["computeTypeOverride"], "environmentVariables": vars},
                    "logs": {"deepLink": "https://console.aws.amazon.com/cloudwatch/home"}
                });
                if status != "IN_PROGRESS" {
                    build["endTime"] = json!(now);
                }
                found.push(build);
            }
            None => missing.push(id.to_string()),
        }
    }
    reply(200, json!({"builds": found, "buildsNotFound": missing}))
}
