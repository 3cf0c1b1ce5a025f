use super::*;
use crate::state::BuildState;

#[test]
fn compute_types_have_names_and_prices() {
    for name in ComputeType::names() {
        let compute = ComputeType::parse(name).unwrap();
        assert_eq!(compute.as_str(), name);
        assert!(compute.usd_per_minute() > 0.0);
    }
    assert_eq!(ComputeType::parse("BUILD_GENERAL1_TINY"), None);
    assert_eq!(ComputeType::default(), ComputeType::Small);
}

#[test]
fn the_sample_state_change_event_reads_as_a_build() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/codebuild-build-state-change.json"
    ))
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(event::is_state_change(&value));
    let build = event::build(&value).unwrap();
    assert_eq!(
        build.id,
        "pushbuild-overflow:8745a7a9-c340-456a-9166-edf953571bee"
    );
    assert!(build.ended());
    assert_eq!(build.outcome(), BuildState::Succeeded);
    assert_eq!(build.var(PROJECT_VAR), Some("pushbuild-demo"));
    assert_eq!(build.var(BUILD_ID_VAR), Some("20260901T161229Z-3f9c1a2b"));
    assert_eq!(
        build.start.unwrap().to_rfc3339(),
        "2026-09-01T16:12:29+00:00",
        "CodeBuild's `Sep 1, 2026 4:12:29 PM`"
    );
    assert_eq!(build.end.unwrap().to_rfc3339(), "2026-09-01T16:14:26+00:00");
    let phases: Vec<(String, u64)> = build
        .phase_outcomes()
        .into_iter()
        .map(|p| (p.phase, p.duration_ms))
        .collect();
    assert_eq!(
        phases,
        [
            ("DOWNLOAD_SOURCE".to_string(), 4000),
            ("BUILD".to_string(), 70_000),
            ("UPLOAD_ARTIFACTS".to_string(), 0)
        ]
    );
    assert!(build.phase_outcomes().iter().all(|p| p.context.is_none()));
}

#[test]
fn a_state_change_without_a_build_id_names_the_field() {
    let event = serde_json::json!({"source": "aws.codebuild", "detail-type": "CodeBuild Build State Change", "detail": {"build-status": "FAILED"}});
    assert!(event::is_state_change(&event));
    assert_eq!(
        event::build(&event).unwrap_err(),
        "detail.build-id: expected a string"
    );
    let event = serde_json::json!({"detail": {"build-id": "nonsense", "build-status": "FAILED"}});
    assert!(
        event::build(&event)
            .unwrap_err()
            .contains("detail.build-id")
    );
}

#[test]
fn how_codebuild_builds_end_in_pushbuilds_words() {
    let build = |status: &str| Build {
        id: "p:1".into(),
        status: status.into(),
        start: None,
        end: None,
        phases: Vec::new(),
        compute_type: None,
        env: Vec::new(),
        log_link: None,
    };
    assert_eq!(build("SUCCEEDED").outcome(), BuildState::Succeeded);
    assert_eq!(build("TIMED_OUT").outcome(), BuildState::TimedOut);
    assert_eq!(build("STOPPED").outcome(), BuildState::Stopped);
    for status in ["FAILED", "FAULT"] {
        assert_eq!(build(status).outcome(), BuildState::Failed);
    }
    assert!(!build("IN_PROGRESS").ended());
}
