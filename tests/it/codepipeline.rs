//! CodePipeline's Lambda invoke action through the real function binary: the job's input
//! artifact (a zip in the S3 server's pipeline bucket, readable with the job's own credentials)
//! is built with the action's `UserParameters`; the build's artifact goes to the job's output
//! artifact and its exported variables out with `PutJobSuccessResult`, taken by a stand-in that
//! speaks CodePipeline's JSON protocol; a failed build, wrong parameters and an unreadable
//! artifact are `PutJobFailureResult`s saying why; a build handed to CodeBuild answers with a
//! continuation token until its end comes back. The credentials are found in no log or object.

use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::codebuild_standin::CodeBuildStandIn;
use crate::codepipeline_standin::CodePipelineStandIn;
use crate::function::{Harness, MINUTE, builds};
use crate::s3_server::{PIPELINE_ACCESS_KEY, PIPELINE_SECRET_KEY};

pub(crate) const PIPELINE_BUCKET: &str = "pipeline-artifacts";
const SESSION_TOKEN: &str = "pipeline-session-token-5be1";

pub(crate) const SPEC: &str = "version: 0.2\nenv:\n  exported-variables: [VERSION]\nphases:\n  build:\n    commands:\n      - ./tools/run.sh\n      - test -L link && test \"$(cat link)\" = hello\n      - export VERSION=\"1.2.3-$STAGE\"\n      - mkdir -p out && echo \"built for $STAGE\" > out/result.txt\nartifacts:\n  base-directory: out\n  files: ['**/*']\n";
const FAILING: &str =
    "version: 0.2\nphases:\n  build:\n    commands:\n      - echo broken\n      - exit 3\n";
const ON_CODEBUILD: &str = "version: 0.2\nenv:\n  variables:\n    PUSHBUILD_COMPUTE: codebuild\nphases:\n  build:\n    commands:\n      - echo on codebuild\n";

/// A zip of `files` (path, content, mode) and of `link` → `hello` as a symbolic link.
pub(crate) fn zip_of(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, content, mode) in files {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        zip.start_file(*path, options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.start_file("hello", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"hello").unwrap();
    zip.add_symlink("link", "hello", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.finish().unwrap().into_inner()
}

/// The input artifact of a job building [`SPEC`]: the buildspec and the executable tool it runs.
pub(crate) fn spec_input() -> Vec<u8> {
    zip_of(&[
        ("buildspec.yml", SPEC, 0o644),
        ("tools/run.sh", "#!/bin/sh\necho tool ran\n", 0o755),
    ])
}

/// The function with the CodePipeline stand-in (and `settings`), and the pipeline's bucket.
fn start(settings: &[(&str, &str)]) -> (CodePipelineStandIn, Harness) {
    let pipeline = CodePipelineStandIn::start();
    let endpoint = pipeline.endpoint();
    let mut all = vec![("AWS_ENDPOINT_URL_CODEPIPELINE", endpoint.as_str())];
    all.extend_from_slice(settings);
    let h = Harness::start(
        &[("README", b"unused: the source is the job's artifact\n")],
        "pipeline",
        &all,
    );
    std::fs::create_dir_all(h.s3().root().join(PIPELINE_BUCKET)).unwrap();
    (pipeline, h)
}

/// Puts `bytes` as the pipeline bucket's object `key` (s3s-fs keeps it as a file).
pub(crate) fn put_artifact(h: &Harness, key: &str, bytes: &[u8]) {
    let path = h.s3().root().join(PIPELINE_BUCKET).join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub(crate) fn pipeline_object(h: &Harness, key: &str) -> Option<Vec<u8>> {
    std::fs::read(h.s3().root().join(PIPELINE_BUCKET).join(key)).ok()
}

/// The job event CodePipeline sends (see events/codepipeline-job.json).
pub(crate) fn job(
    id: &str,
    input: &str,
    output: Option<&str>,
    parameters: &str,
    secret: &str,
) -> Value {
    let location = |key: &str| json!({"type": "S3", "s3Location": {"bucketName": PIPELINE_BUCKET, "objectKey": key}});
    json!({"CodePipeline.job": {
        "id": id,
        "accountId": "123456789012",
        "data": {
            "actionConfiguration": {"configuration": {
                "FunctionName": "pushbuild", "UserParameters": parameters}},
            "inputArtifacts": [{"name": "SourceArtifact", "revision": null, "location": location(input)}],
            "outputArtifacts": output.map(|key| vec![json!({"name": "BuildArtifact", "location": location(key)})]).unwrap_or_default(),
            "artifactCredentials": {
                "accessKeyId": PIPELINE_ACCESS_KEY,
                "secretAccessKey": secret,
                "sessionToken": SESSION_TOKEN,
            },
        },
    }})
}

pub(crate) fn names_in(zip_bytes: &[u8]) -> Vec<(String, String)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("a zip");
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            (entry.name().to_string(), text)
        })
        .collect()
}

/// Nothing the function printed or stored holds the job's secret key or session token.
fn assert_no_credentials(h: &Harness) {
    let printed = ["function.stderr", "function.stdout"]
        .map(|f| std::fs::read_to_string(h.work_dir().join(f)).unwrap_or_default())
        .join("\n");
    for secret in [PIPELINE_SECRET_KEY, SESSION_TOKEN] {
        assert!(
            !printed.contains(secret),
            "the function printed a credential"
        );
        for key in h.keys() {
            let text = String::from_utf8_lossy(&h.object(&key)).into_owned();
            assert!(!text.contains(secret), "{key} holds a credential");
        }
    }
}

#[test]
fn a_job_builds_its_input_artifact_and_puts_its_output_artifact_and_variables() {
    let (pipeline, h) = start(&[]);
    put_artifact(&h, "release/SourceArti/in1", &spec_input());
    let id = "11111111-aaaa-4bbb-8ccc-000000000001";
    pipeline.open(id);
    let event = job(
        id,
        "release/SourceArti/in1",
        Some("release/BuildArtif/out1"),
        r#"{"variables": {"STAGE": "prod"}}"#,
        PIPELINE_SECRET_KEY,
    );
    // The pipeline's bucket encrypts with its KMS key, which the output artifact is put with.
    let mut event = event;
    event["CodePipeline.job"]["data"]["encryptionKey"] =
        json!({"id": "arn:aws:kms:us-east-1:123456789012:alias/aws/s3", "type": "KMS"});
    let answer = builds(&h.invoke(event, MINUTE));
    assert_eq!(answer[0]["status"], "SUCCEEDED", "{answer:?}");
    let build_id = answer[0]["buildId"].as_str().unwrap().to_string();
    let results = pipeline.results(id);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].operation, "PutJobSuccessResult");
    let request = &results[0].request;
    assert_eq!(request["outputVariables"], json!({"VERSION": "1.2.3-prod"}));
    assert_eq!(request["executionDetails"]["externalExecutionId"], build_id);
    assert!(request.get("continuationToken").is_none(), "{request}");
    let output = pipeline_object(&h, "release/BuildArtif/out1").expect("the output artifact");
    assert_eq!(
        names_in(&output),
        vec![("result.txt".to_string(), "built for prod\n".to_string())]
    );
    let record = h.record_of("codepipeline", &build_id);
    assert_eq!(record["initiator"], format!("codepipeline/{id}"));
    let log = h.log_of("codepipeline", &build_id);
    assert!(log.contains("tool ran"), "{log}");
    assert_no_credentials(&h);
    assert!(pipeline.refused().is_empty(), "{:?}", pipeline.refused());
}

#[test]
fn a_failed_build_wrong_parameters_or_an_unreadable_artifact_fail_the_job_saying_why() {
    let (pipeline, h) = start(&[]);
    put_artifact(
        &h,
        "p/in-failing",
        &zip_of(&[("buildspec.yml", FAILING, 0o644)]),
    );
    let cases = [
        (
            "22222222-aaaa-4bbb-8ccc-000000000001",
            "p/in-failing",
            "",
            PIPELINE_SECRET_KEY,
            "JobFailed",
            "exit status 3",
        ),
        (
            "22222222-aaaa-4bbb-8ccc-000000000002",
            "p/in-failing",
            r#"{"spec": "x.yml"}"#,
            PIPELINE_SECRET_KEY,
            "ConfigurationError",
            "UserParameters.spec: unknown key",
        ),
        (
            "22222222-aaaa-4bbb-8ccc-000000000003",
            "p/in-failing",
            "",
            "not-the-secret-key",
            "JobFailed",
            "the input artifact could not be read",
        ),
    ];
    for (id, input, parameters, secret, kind, words) in cases {
        pipeline.open(id);
        let answer = h.invoke(job(id, input, None, parameters, secret), MINUTE);
        let results = pipeline.results(id);
        assert_eq!(results.len(), 1, "{id}: {results:?} {answer:?}");
        assert_eq!(results[0].operation, "PutJobFailureResult", "{id}");
        let details = &results[0].request["failureDetails"];
        assert_eq!(details["type"], kind, "{id}: {details}");
        let message = details["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{id}: {message}");
    }
    assert_no_credentials(&h);
}

#[test]
fn a_job_handed_to_codebuild_answers_with_a_continuation_until_its_build_ends() {
    let codebuild = CodeBuildStandIn::start("pushbuild-overflow");
    let endpoint = codebuild.endpoint();
    let (pipeline, h) = start(&[
        ("PUSHBUILD_CODEBUILD_PROJECT", "pushbuild-overflow"),
        ("AWS_ENDPOINT_URL_CODEBUILD", endpoint.as_str()),
    ]);
    put_artifact(
        &h,
        "p/in-cb",
        &zip_of(&[("buildspec.yml", ON_CODEBUILD, 0o644)]),
    );
    let id = "33333333-aaaa-4bbb-8ccc-000000000001";
    pipeline.open(id);
    let first = job(id, "p/in-cb", None, "", PIPELINE_SECRET_KEY);
    let answer = builds(&h.invoke(first.clone(), MINUTE));
    assert_eq!(answer[0]["status"], "IN_PROGRESS", "{answer:?}");
    let build_id = answer[0]["buildId"].as_str().unwrap().to_string();
    let token = format!("codepipeline/{build_id}");
    let results = pipeline.results(id);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].operation, "PutJobSuccessResult");
    assert_eq!(results[0].request["continuationToken"], token);

    // CodePipeline calls again with the token while the build runs: the same token back.
    let mut again = first.clone();
    again["CodePipeline.job"]["data"]["continuationToken"] = json!(token);
    h.invoke(again.clone(), MINUTE);
    let results = pipeline.results(id);
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[1].request["continuationToken"], token);

    // The build ends on CodeBuild; the next call puts the job's result.
    let (codebuild_id, _) = codebuild.started().pop().expect("a StartBuild");
    codebuild.set_status(&codebuild_id, "SUCCEEDED");
    builds(&h.invoke(
        codebuild.state_change(&codebuild_id, "SUCCEEDED", 30),
        MINUTE,
    ));
    h.invoke(again, MINUTE);
    let results = pipeline.results(id);
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[2].operation, "PutJobSuccessResult");
    assert!(
        results[2].request.get("continuationToken").is_none(),
        "{:?}",
        results[2]
    );
    assert_eq!(
        results[2].request["executionDetails"]["externalExecutionId"],
        build_id
    );
    assert!(pipeline.refused().is_empty(), "{:?}", pipeline.refused());
}

/// What a job that cannot be answered with a build says: an output artifact declared and none
/// built, a continuation token that names no build of pushbuild's, and one naming a build this
/// store does not know: each a `PutJobFailureResult` saying so.
#[test]
fn a_missing_output_or_a_token_naming_no_build_fails_the_job_saying_why() {
    let (pipeline, h) = start(&[]);
    let no_artifacts = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built\n";
    put_artifact(
        &h,
        "p/in-none",
        &zip_of(&[("buildspec.yml", no_artifacts, 0o644)]),
    );
    let token = |event: &mut Value, token: &str| {
        event["CodePipeline.job"]["data"]["continuationToken"] = json!(token);
    };
    let cases: [(&str, Option<&str>, Option<&str>, &str); 3] = [
        (
            "44444444-aaaa-4bbb-8ccc-000000000001",
            Some("p/out-none"),
            None,
            "the action declares an output artifact and the build made none",
        ),
        (
            "44444444-aaaa-4bbb-8ccc-000000000002",
            None,
            Some("not-a-token"),
            "names no build of pushbuild's",
        ),
        (
            "44444444-aaaa-4bbb-8ccc-000000000003",
            None,
            Some("codepipeline/20260101T000000Z-00000000"),
            "is not known",
        ),
    ];
    for (id, output, continuation, words) in cases {
        pipeline.open(id);
        let mut event = job(id, "p/in-none", output, "", PIPELINE_SECRET_KEY);
        if let Some(continuation) = continuation {
            token(&mut event, continuation);
        }
        h.invoke(event, MINUTE);
        let results = pipeline.results(id);
        assert_eq!(results.len(), 1, "{id}: {results:?}");
        assert_eq!(results[0].operation, "PutJobFailureResult", "{id}");
        let message = results[0].request["failureDetails"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains(words), "{id}: {message}");
    }
    assert!(pipeline_object(&h, "p/out-none").is_none());
}
