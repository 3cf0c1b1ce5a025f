//! Faults in front of the services no installable server implements, through their stand-ins:
//! CodeCommit's read API throttling, resetting and stalling while the function reads a commit;
//! CodeBuild's `StartBuild` cut off mid-answer (the SDK sends it again, and its idempotency
//! token makes that the same build); CodePipeline refusing the job's result after the build
//! (Lambda delivers the job again, and it is answered from the build, not built again). Each adds
//! a row to the faults' table (see `faults.rs`).

use std::time::Duration;

use serde_json::json;

use crate::codebuild_standin::CodeBuildStandIn;
use crate::codepipeline::{PIPELINE_BUCKET, job, pipeline_object, put_artifact, spec_input};
use crate::codepipeline_standin::CodePipelineStandIn;
use crate::fault_proxy::{Answer, Fault, FaultProxy, Schedule};
use crate::faults::{seed, start};
use crate::function::{MINUTE, REPO, builds, sample};
use crate::runtime_api::Outcome;
use crate::s3_server::PIPELINE_SECRET_KEY;

/// What the function said on its standard error.
fn said(h: &crate::function::Harness) -> String {
    std::fs::read_to_string(h.work_dir().join("function.stderr")).unwrap_or_default()
}

#[test]
fn codecommit_throttling_resetting_and_stalling_is_tried_again_and_built_once() {
    let proxy = FaultProxy::seeded("http://127.0.0.1:9", seed());
    let at = proxy.endpoint();
    let f = start(&[("AWS_ENDPOINT_URL_CODECOMMIT", at.as_str())]);
    proxy.set_upstream(&f.h.codecommit_endpoint());
    let op = |name: &str| format!("CodeCommit_20150413.{name}");
    proxy.inject(
        &op("GetCommit"),
        Fault::Answer(Answer::aws_json(
            400,
            "ThrottlingException",
            "Rate exceeded",
        )),
        Schedule::Next(2),
    );
    proxy.inject(&op("GetFolder"), Fault::ResetRequest, Schedule::Next(1));
    proxy.inject(&op("GetBlob"), Fault::ResetResponse, Schedule::Next(1));
    proxy.inject(
        &op("GetBlob"),
        Fault::Stall(Duration::from_secs(1)),
        Schedule::Next(1),
    );
    let event = sample("codecommit-push.json", &f.h.head());
    let answer = builds(&f.h.invoke(event.clone(), MINUTE));
    assert_eq!(answer[0]["status"], "SUCCEEDED", "{answer:?}");
    let record = f.assert_complete(answer[0]["buildId"].as_str().unwrap());
    assert_eq!(record["commit"], f.h.head());
    let kinds: Vec<&str> = proxy.injected().iter().map(|(_, kind)| *kind).collect();
    for kind in ["answer", "reset-request", "reset-response", "stall"] {
        assert!(kinds.contains(&kind), "{kind} was injected: {kinds:?}");
    }
    let said = said(&f.h);
    assert!(
        said.contains("tried again") && said.contains("CodeCommit") && said.contains("GetCommit"),
        "{said}"
    );
    // The event delivered again is not built again.
    let again = builds(&f.h.invoke(event, MINUTE));
    assert_eq!(again[0]["status"], "SKIPPED", "{again:?}");
    f.verify();
    f.table_row(
        "ThrottlingException twice, reset before and mid-answer, a 1 s stall",
        "CodeCommit stand-in (function)",
        proxy.injected().len(),
        1,
        None,
    );
}

#[test]
fn a_start_build_cut_off_mid_answer_starts_one_codebuild_build() {
    let codebuild = CodeBuildStandIn::start("pushbuild-overflow");
    let proxy = FaultProxy::seeded(&codebuild.endpoint(), seed());
    let at = proxy.endpoint();
    let f = start(&[
        ("PUSHBUILD_CODEBUILD_PROJECT", "pushbuild-overflow"),
        ("AWS_ENDPOINT_URL_CODEBUILD", at.as_str()),
        ("PUSHBUILD_CODEBUILD_REPOSITORIES", REPO),
    ]);
    // CodeBuild starts the build and its answer is lost; the SDK sends the request again and is
    // throttled; the third try is answered.
    let start_build = "CodeBuild_20161006.StartBuild";
    proxy.inject(start_build, Fault::ResetResponse, Schedule::Next(1));
    proxy.inject(
        start_build,
        Fault::Answer(Answer::aws_json(
            400,
            "ThrottlingException",
            "Rate exceeded",
        )),
        Schedule::Next(1),
    );
    let answer = builds(&f.h.invoke(sample("codecommit-push.json", &f.h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "IN_PROGRESS", "{answer:?}");
    let build_id = answer[0]["buildId"].as_str().unwrap().to_string();
    let started = codebuild.started();
    assert_eq!(started.len(), 1, "one build on CodeBuild: {started:?}");
    let (codebuild_id, request) = &started[0];
    assert_eq!(request["idempotencyToken"], build_id.as_str());
    let kinds: Vec<&str> = proxy.injected().iter().map(|(_, kind)| *kind).collect();
    assert_eq!(kinds, ["reset-response", "answer"]);
    assert!(said(&f.h).contains("StartBuild"), "{}", said(&f.h));
    // Its end comes back: the build is finished, once.
    codebuild.set_status(codebuild_id, "SUCCEEDED");
    builds(&f.h.invoke(
        codebuild.state_change(codebuild_id, "SUCCEEDED", 30),
        MINUTE,
    ));
    assert_eq!(f.h.record(&build_id)["status"], "SUCCEEDED");
    f.verify();
    f.table_row(
        "StartBuild's answer cut halfway, then ThrottlingException",
        "CodeBuild stand-in (function)",
        proxy.injected().len(),
        1,
        None,
    );
}

#[test]
fn a_codepipeline_job_whose_result_was_refused_is_answered_from_its_build_when_delivered_again() {
    let pipeline = CodePipelineStandIn::start();
    let proxy = FaultProxy::seeded(&pipeline.endpoint(), seed());
    let at = proxy.endpoint();
    let f = start(&[("AWS_ENDPOINT_URL_CODEPIPELINE", at.as_str())]);
    std::fs::create_dir_all(f.h.s3().root().join(PIPELINE_BUCKET)).unwrap();
    put_artifact(&f.h, "release/SourceArti/faulty", &spec_input());
    let id = "55555555-aaaa-4bbb-8ccc-000000000001";
    pipeline.open(id);
    let event = job(
        id,
        "release/SourceArti/faulty",
        Some("release/BuildArtif/faulty"),
        r#"{"variables": {"STAGE": "prod"}}"#,
        PIPELINE_SECRET_KEY,
    );
    // CodePipeline is unavailable when the build has ended: the invocation fails retryably.
    proxy.inject(
        "PutJobSuccessResult",
        Fault::Answer(Answer::aws_json(
            503,
            "ServiceUnavailableException",
            "Service is unavailable",
        )),
        Schedule::Always,
    );
    match f.h.invoke(event.clone(), MINUTE) {
        Outcome::Error { error_type, .. } => {
            assert_eq!(error_type, "PushBuild.Retryable.CodePipelineUnavailable");
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
    assert!(pipeline.results(id).is_empty());
    let records: Vec<String> =
        f.h.keys()
            .into_iter()
            .filter(|k| k.ends_with("/build.json"))
            .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let build_id = records[0].rsplit('/').nth(1).unwrap().to_string();
    // Lambda delivers the job again once CodePipeline answers: the result, from that build.
    proxy.clear();
    let again = builds(&f.h.invoke(event, MINUTE));
    assert_eq!(again[0]["status"], "SKIPPED", "{again:?}");
    let results = pipeline.results(id);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].operation, "PutJobSuccessResult");
    let request = &results[0].request;
    assert_eq!(request["outputVariables"], json!({"VERSION": "1.2.3-prod"}));
    assert_eq!(request["executionDetails"]["externalExecutionId"], build_id);
    assert!(pipeline_object(&f.h, "release/BuildArtif/faulty").is_some());
    let built: Vec<String> =
        f.h.keys()
            .into_iter()
            .filter(|k| k.ends_with("/build.json"))
            .collect();
    assert_eq!(built, records, "built once");
    let said = said(&f.h);
    assert!(
        said.contains("tried again") && said.contains("CodePipeline"),
        "{said}"
    );
    f.verify();
    f.table_row(
        "PutJobSuccessResult answered 503 (every try), then answered",
        "CodePipeline stand-in (function)",
        proxy.injected().len(),
        1,
        None,
    );
}
