//! The Lambda function's handler: an event in, the builds it asks for out. It only translates:
//! the event becomes the builds it plans (`crate::trigger`), each is built by the one owner of a
//! build's life ([`Builds::build`]), and their summaries become the invocation's answer. A
//! `CodeBuild Build State Change` event finishes a build that was handed to CodeBuild; a
//! `CodePipeline.job` event builds the job's input artifact and puts the job's result. The
//! binary (`pushbuild-lambda`) and `pushbuild invoke` both call [`handle`].
//!
//! A failed user build is a normal answer; only pushbuild's own failures (a bad event, a source
//! or store that stays unreachable) are errors, and [`BuildError::error_type`] says whether a
//! retry can help.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::codebuild;
use crate::lifecycle::{BuildError, BuildSummary, Builds};
use crate::source::Source;
use crate::trigger::{self, Planned};

/// The invocation's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationResponse {
    pub builds: Vec<BuildSummary>,
}

/// Builds what `event` asks for; `deadline` is the invocation's.
pub async fn handle<S: Source>(
    builds: &Builds<S>,
    event: &serde_json::Value,
    deadline: Option<Instant>,
) -> Result<InvocationResponse, BuildError> {
    builds.settle_handed_over().await;
    // CodePipeline's Lambda invoke action (the event holds credentials: never logged).
    #[cfg(feature = "aws")]
    if trigger::codepipeline::is_job(event) {
        let job = trigger::codepipeline::job(event)?;
        let built = builds.codepipeline_job(job, deadline).await?;
        return Ok(InvocationResponse {
            builds: built.into_iter().collect(),
        });
    }
    if codebuild::event::is_state_change(event) {
        let ended = builds.codebuild_changed(event).await?;
        return Ok(InvocationResponse {
            builds: ended.into_iter().collect(),
        });
    }
    let mut answered = Vec::new();
    for planned in trigger::plan(event)? {
        match planned {
            Planned::Skip(skipped) => answered.push(BuildSummary::skipped(
                skipped.repository,
                skipped.reference,
                skipped.commit,
                skipped.reason,
            )),
            // Boxed: one build's future is deep (claim, budget, source, pipeline), and the
            // binary's event loop nests it further.
            Planned::Build(target) => {
                answered.push(Box::pin(builds.build(*target, deadline)).await?);
            }
        }
    }
    Ok(InvocationResponse { builds: answered })
}

/// The invocation's deadline (Lambda gives milliseconds since the Unix epoch) as an `Instant`.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<Instant> {
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis(),
    )
    .ok()?;
    // A deadline too far off to be an `Instant` is no deadline at all.
    (deadline_ms > 0)
        .then(|| {
            Instant::now().checked_add(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_in_epoch_milliseconds_become_instants() {
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let deadline = deadline_from_epoch_ms(now_ms + 10_000).unwrap();
        let left = deadline.duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        assert_eq!(deadline_from_epoch_ms(0), None);
    }
}
