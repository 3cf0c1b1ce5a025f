//! The EventBridge event `CodeBuild Build State Change` (source `aws.codebuild`), read into a
//! [`Build`]. Its times are CodeBuild's `Sep 1, 2017 4:12:29 PM` (UTC).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use super::{Build, Phase};

/// Whether `event` is a CodeBuild state change (whatever its detail holds).
pub fn is_state_change(event: &Value) -> bool {
    event["source"] == "aws.codebuild" && event["detail-type"] == "CodeBuild Build State Change"
}

/// The build a state-change event reports, or what is wrong with the event (naming the field).
pub fn build(event: &Value) -> Result<Build, String> {
    let detail = &event["detail"];
    let text = |value: &Value, field: &str| {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("detail.{field}: expected a string"))
    };
    let arn = text(&detail["build-id"], "build-id")?;
    // `arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>` → `<project>:<uuid>`.
    let id = arn
        .rsplit_once(":build/")
        .map_or(arn.as_str(), |(_, id)| id)
        .to_string();
    if !id.contains(':') {
        return Err(format!(
            "detail.build-id: expected a build ARN ending in `build/<project>:<id>`, found `{arn}`"
        ));
    }
    let status = text(&detail["build-status"], "build-status")?;
    let info = &detail["additional-information"];
    let start = info["build-start-time"].as_str().and_then(time);
    let phases: Vec<Phase> = info["phases"]
        .as_array()
        .map(|phases| phases.iter().map(phase).collect())
        .unwrap_or_default();
    // The end: the COMPLETED phase's start, else the event's own time.
    let end = phases
        .iter()
        .find(|p| p.phase_type == "COMPLETED")
        .and_then(|p| p.start)
        .or_else(|| {
            event["time"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        });
    let env = info["environment"]["environment-variables"]
        .as_array()
        .map(|vars| {
            vars.iter()
                .filter_map(|v| {
                    Some((
                        v["name"].as_str()?.to_string(),
                        v["value"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Build {
        id,
        status,
        start,
        end: if detail["build-status"] == "IN_PROGRESS" {
            None
        } else {
            end
        },
        phases,
        compute_type: info["environment"]["compute-type"]
            .as_str()
            .map(str::to_string),
        env,
        log_link: info["logs"]["deep-link"].as_str().map(str::to_string),
    })
}

fn phase(value: &Value) -> Phase {
    Phase {
        phase_type: value["phase-type"].as_str().unwrap_or("").to_string(),
        status: value["phase-status"].as_str().map(str::to_string),
        start: value["start-time"].as_str().and_then(time),
        duration_seconds: value["duration-in-seconds"].as_u64(),
        contexts: value["phase-context"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// CodeBuild's event time, `Sep 1, 2017 4:12:29 PM` (UTC); RFC 3339 is read too.
fn time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text.trim(), "%b %d, %Y %I:%M:%S %p")
        .ok()
        .map(|t| t.and_utc())
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}
