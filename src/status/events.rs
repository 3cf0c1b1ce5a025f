//! Each build's state changes (it began; it ended) as events on an EventBridge bus
//! (`PUSHBUILD_EVENT_BUS`, `default` in the template), shaped like CodeBuild's own
//! `CodeBuild Build State Change` events: the same `detail-type` and the same fields in
//! `detail`, with `source: pushbuild` instead of `aws.codebuild`. A rule or target written for
//! CodeBuild's events works on pushbuild's with that one change. Like commit statuses, an event
//! never fails a build: one that cannot be put within a few seconds is logged and dropped.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::state::BuildState;

/// The events' `source`.
pub const SOURCE: &str = "pushbuild";
/// The events' `detail-type`: CodeBuild's own.
pub const DETAIL_TYPE: &str = "CodeBuild Build State Change";

/// Where events go.
pub trait BuildEvents: Send + Sync {
    /// Puts one event; why not, when it could not.
    fn put<'a>(
        &'a self,
        change: &'a BuildChange,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// A build's change of state.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildChange {
    pub project: String,
    pub build_id: String,
    /// `IN_PROGRESS` as it begins; how it ended after.
    pub status: BuildState,
    pub initiator: Option<String>,
    pub source_version: Option<String>,
    pub reference: Option<String>,
    pub commit: Option<String>,
    pub start_time: DateTime<Utc>,
    /// Why it ended as it did (its failed phase's message), when it says.
    pub reason: Option<String>,
    /// Its page, or its log.
    pub link: Option<String>,
    /// Its first artifact, its log and its record, once it ended (`s3://…` or `file://…`).
    pub artifact: Option<String>,
    pub log: Option<String>,
    pub record: Option<String>,
    pub billed_minutes: Option<u64>,
}

impl BuildChange {
    /// Whether the build has ended.
    pub fn complete(&self) -> bool {
        self.status != BuildState::InProgress
    }

    /// The event's `detail`: CodeBuild's fields (`build-status`, `project-name`, `build-id`,
    /// `current-phase`, `current-phase-context`, `additional-information`, `version`), and
    /// pushbuild's own under `pushbuild`.
    pub fn detail(&self) -> Value {
        let complete = self.complete();
        let mut more = json!({
            "build-complete": complete,
            // CodeBuild's own form: `Dec 7, 2026 6:09:08 AM`.
            "build-start-time": self.start_time.format("%b %-d, %Y %-I:%M:%S %p").to_string(),
        });
        if let Some(initiator) = &self.initiator {
            more["initiator"] = json!(initiator);
        }
        if let Some(version) = &self.source_version {
            more["source-version"] = json!(version);
        }
        if let Some(link) = &self.link {
            more["logs"] = json!({ "deep-link": link });
        }
        if let Some(artifact) = &self.artifact {
            more["artifact"] = json!({ "location": s3_arn(artifact) });
        }
        let context = match &self.reason {
            Some(reason) => json!([reason]).to_string(),
            None => "[]".to_string(),
        };
        json!({
            "build-status": self.status.as_str(),
            "project-name": self.project,
            "build-id": self.build_id,
            "current-phase": if complete { "COMPLETED" } else { "SUBMITTED" },
            "current-phase-context": context,
            "additional-information": more,
            "version": "1",
            "pushbuild": {
                "reference": self.reference,
                "commit": self.commit,
                "log": self.log.as_deref().map(s3_arn),
                "record": self.record.as_deref().map(s3_arn),
                "billed-minutes": self.billed_minutes,
            },
        })
    }
}

/// `s3://bucket/key` as CodeBuild names a location (`arn:aws:s3:::bucket/key`); anything else
/// as it is.
fn s3_arn(uri: &str) -> String {
    match uri.strip_prefix("s3://") {
        Some(path) => format!("arn:aws:s3:::{path}"),
        None => uri.to_string(),
    }
}

/// An EventBridge bus, by name or ARN: `PutEvents`, one entry per change.
#[cfg(feature = "aws")]
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

#[cfg(feature = "aws")]
impl EventBus {
    pub fn from_conf(sdk: &aws_config::SdkConfig, bus: String) -> EventBus {
        EventBus {
            client: aws_sdk_eventbridge::Client::new(sdk),
            bus,
        }
    }
}

#[cfg(feature = "aws")]
impl BuildEvents for EventBus {
    fn put<'a>(
        &'a self,
        change: &'a BuildChange,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        use aws_sdk_eventbridge::error::ProvideErrorMetadata;
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        Box::pin(async move {
            let entry = PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source(SOURCE)
                .detail_type(DETAIL_TYPE)
                .detail(change.detail().to_string())
                .build();
            let answer = self
                .client
                .put_events()
                .entries(entry)
                .send()
                .await
                .map_err(|err| {
                    let code = err.code().unwrap_or("no answer").to_string();
                    match err.message() {
                        Some(message) => format!("{code}: {message}"),
                        None => code,
                    }
                })?;
            match answer.entries().first() {
                Some(entry) if entry.error_code().is_some() => Err(format!(
                    "{}: {}",
                    entry.error_code().unwrap_or_default(),
                    entry.error_message().unwrap_or_default()
                )),
                _ if answer.failed_entry_count() > 0 => Err("the entry was refused".to_string()),
                _ => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: BuildState) -> BuildChange {
        BuildChange {
            project: "github.com/octo/app".to_string(),
            build_id: "20261207T060908-abcd".to_string(),
            status,
            initiator: Some("github:octocat".to_string()),
            source_version: Some("refs/heads/main".to_string()),
            reference: Some("refs/heads/main".to_string()),
            commit: Some("a".repeat(40)),
            start_time: DateTime::parse_from_rfc3339("2026-12-07T18:09:08Z")
                .unwrap()
                .with_timezone(&Utc),
            reason: None,
            link: Some("https://ci.example.com/builds/b".to_string()),
            artifact: None,
            log: None,
            record: None,
            billed_minutes: None,
        }
    }

    #[test]
    fn a_beginning_reads_as_codebuilds_submitted_in_progress() {
        let detail = change(BuildState::InProgress).detail();
        assert_eq!(detail["build-status"], "IN_PROGRESS");
        assert_eq!(detail["current-phase"], "SUBMITTED");
        assert_eq!(detail["current-phase-context"], "[]");
        assert_eq!(detail["project-name"], "github.com/octo/app");
        let more = &detail["additional-information"];
        assert_eq!(more["build-complete"], false);
        assert_eq!(more["build-start-time"], "Dec 7, 2026 6:09:08 PM");
        assert_eq!(more["logs"]["deep-link"], "https://ci.example.com/builds/b");
        assert!(more.get("artifact").is_none(), "{detail}");
    }

    #[test]
    fn an_end_names_its_reason_and_where_its_artifact_log_and_record_are() {
        let mut ended = change(BuildState::Failed);
        ended.reason = Some("COMMAND_EXECUTION_ERROR: make".to_string());
        ended.artifact = Some("s3://bucket/artifacts/app/b/out.zip".to_string());
        ended.log = Some("s3://bucket/logs/b.log".to_string());
        ended.record = Some("file:///store/builds/b/record.json".to_string());
        ended.billed_minutes = Some(2);
        let detail = ended.detail();
        assert_eq!(detail["build-status"], "FAILED");
        assert_eq!(detail["current-phase"], "COMPLETED");
        assert_eq!(
            detail["current-phase-context"],
            r#"["COMMAND_EXECUTION_ERROR: make"]"#
        );
        assert_eq!(
            detail["additional-information"]["artifact"]["location"],
            "arn:aws:s3:::bucket/artifacts/app/b/out.zip"
        );
        assert_eq!(detail["pushbuild"]["log"], "arn:aws:s3:::bucket/logs/b.log");
        assert_eq!(
            detail["pushbuild"]["record"],
            "file:///store/builds/b/record.json"
        );
        assert_eq!(detail["pushbuild"]["billed-minutes"], 2);
    }
}
