use serde_json::{Value, json};

use super::*;

fn sample() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/events/codepipeline-job.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_sample_job_reads_into_its_artifacts_credentials_and_parameters() {
    let event = sample();
    assert!(is_job(&event));
    let job = job(&event).unwrap();
    assert_eq!(job.id, "c0d3p1p3-0000-4a5b-9c8d-7e6f5a4b3c2d");
    assert_eq!(job.input.bucket, "codepipeline-us-east-1-123456789012");
    assert_eq!(job.input.key, "release-pipeline/SourceArti/Xyz12Ab");
    assert_eq!(
        job.revision.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(
        job.output.as_ref().map(|o| o.key.as_str()),
        Some("release-pipeline/BuildArtif/Pq34Rs5")
    );
    assert_eq!(job.credentials.access_key_id, "ASIAEXAMPLEPIPELINE1");
    assert_eq!(
        job.credentials.secret_access_key.expose(),
        "example-secret-access-key-never-logged"
    );
    assert!(job.kms_key.is_some());
    assert_eq!(job.continuation, None);
    let parameters = job.parameters.clone().unwrap();
    assert_eq!(parameters.buildspec.as_deref(), Some("buildspec.yml"));
    assert_eq!(
        parameters.variables,
        vec![("STAGE".to_string(), "release".to_string())]
    );
    // Nothing that prints the job shows its secrets.
    let shown = format!("{job:?}");
    assert!(!shown.contains("never-logged"), "{shown}");
}

#[test]
fn a_missing_or_wrong_field_is_named_and_no_secret_is_echoed() {
    let mut event = sample();
    event["CodePipeline.job"]["data"]["inputArtifacts"] = json!([]);
    let err = job(&event).unwrap_err().to_string();
    assert!(
        err.contains("CodePipeline.job.data.inputArtifacts[0]"),
        "{err}"
    );

    let mut event = sample();
    event["CodePipeline.job"]["data"]["artifactCredentials"]["sessionToken"] = json!(7);
    let err = job(&event).unwrap_err().to_string();
    assert!(
        err.contains("CodePipeline.job.data.artifactCredentials.sessionToken")
            && err.contains("a string"),
        "{err}"
    );

    let mut event = sample();
    event["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["type"] = json!("GitHub");
    let err = job(&event).unwrap_err().to_string();
    assert!(err.contains("expected an S3 location"), "{err}");
}

#[test]
fn user_parameters_name_what_is_wrong() {
    assert_eq!(parameters("").unwrap(), Parameters::default());
    let err = parameters("buildspec.yml").unwrap_err();
    assert!(err.starts_with("UserParameters: expected JSON"), "{err}");
    let err = parameters(r#"{"spec": "a.yml"}"#).unwrap_err();
    assert!(err.contains("UserParameters.spec: unknown key"), "{err}");
    let err = parameters(r#"{"buildspec": "../a.yml"}"#).unwrap_err();
    assert!(
        err.contains("UserParameters.buildspec") && err.contains(".."),
        "{err}"
    );
    let err = parameters(r#"{"variables": {"1X": "a"}}"#).unwrap_err();
    assert!(err.contains("UserParameters.variables.1X"), "{err}");
    let ok = parameters(r#"{"project": "web", "variables": {"N": 3, "B": "x"}}"#).unwrap();
    assert_eq!(ok.project.map(|p| p.to_string()).as_deref(), Some("web"));
    assert_eq!(
        ok.variables,
        vec![("B".into(), "x".into()), ("N".into(), "3".into())]
    );
}
