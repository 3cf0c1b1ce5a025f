//! A build that outgrows Lambda goes to AWS CodeBuild. The function has begun it (its number,
//! its entry, minute 1) and fetched its source; here the source goes up as a zip, the budget
//! reserves the rest of CodeBuild's timeout (so a build that cannot fit is refused, not
//! overspent), `StartBuild` starts it, and `handover/<project>/<build-id>/handover.json` keeps
//! what is needed to finish it. The entry stays `IN_PROGRESS` until CodeBuild's state-change
//! event (or the sweep) brings the result back: [`finish_handed_over`] then finishes it as
//! every build finishes, with CodeBuild's phases and CodeBuild's price.

mod finish;
mod source;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use finish::{finish_handed_over, load_handover};

use super::finish::{self as finishing, Billed};
use super::{
    Begun, BuildJob, Opened, PipelineError, Ready, StoredBuild, Work, build_meta, run_begun,
    started_line,
};
use crate::codebuild::{CodeBuild, ComputeType, QUEUED_TIMEOUT_MINUTES, StartRequest};
use crate::config::CodeBuildSettings;
use crate::cost::BuildCost;
use crate::executor::env::BuildInfo;
use crate::executor::log::BuildLog;
use crate::index::Grant;
use crate::names::{BuildId, CommitId, ProjectName};
use crate::record::Ending;
use crate::status::StatusTarget;
use crate::store::{Layout, Store};
use crate::trigger::BatchChild;

/// Where and why a build is handed over.
pub struct HandOver<'a> {
    pub codebuild: &'a dyn CodeBuild,
    pub settings: &'a CodeBuildSettings,
    /// The CodeBuild project (`settings.project`, checked by the caller).
    pub project: &'a str,
    /// The bucket CodeBuild reads the source from and writes artifacts and its log to.
    pub bucket: &'a str,
    /// Why (the log and the record say it).
    pub why: String,
    /// The build this one starts again, when it does.
    pub replaces: Option<String>,
    /// Where the commit's status goes, for the build's end.
    pub status: Option<StatusTarget>,
    /// The buildspec's path in the source (its text goes to CodeBuild).
    pub buildspec_path: String,
}

/// What `handover.json` keeps of a build on CodeBuild.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handover {
    pub project: ProjectName,
    pub build_id: BuildId,
    pub number: u64,
    pub codebuild_id: String,
    pub compute_type: ComputeType,
    pub initiator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    pub start_time: DateTime<Utc>,
    pub reserved_minutes: u64,
    pub why: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusTarget>,
    /// The build's log until the hand-over (the function's lines).
    pub log: String,
    /// The batch it is a child of: its end goes into the batch's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchChild>,
}

/// How a hand-over went.
pub enum HandedOver {
    /// CodeBuild runs it.
    Started(Box<Handover>),
    /// It ended here (refused by the budget, or CodeBuild would not start it): its record.
    Ended(Box<StoredBuild>),
}

/// Hands `job` (which must be ready to run and have begun unrefused; any other build runs
/// here as usual) to CodeBuild: the budget holds CodeBuild's whole timeout, the source goes up,
/// `StartBuild` starts it, and the hand-over is stored. A build the budget refuses, or that
/// CodeBuild will not start, ends here with its record.
pub fn hand_over(
    job: &BuildJob,
    begun: Begun,
    to: &HandOver<'_>,
    store: &dyn Store,
) -> Result<HandedOver, PipelineError> {
    let Work::Run(ready) = &job.work else {
        return run_begun(job, begun, store).map(|s| HandedOver::Ended(Box::new(s)));
    };
    if begun.refusal.is_some() {
        return run_begun(job, begun, store).map(|s| HandedOver::Ended(Box::new(s)));
    }
    let Begun {
        number, mut meter, ..
    } = begun;
    let info = job.identity.info(number);
    let opened = Opened::new(job)?;
    started_line(&opened.log, &info);
    for note in &ready.notes {
        opened.log.marker(note);
    }
    opened
        .log
        .marker(&format!("Handing the build to AWS CodeBuild: {}", to.why));
    // Minute 1 is on record; the rest are metered when the build ends.
    if let Some(meter) = meter.as_mut() {
        meter.stop();
    }
    let handing = Handing {
        job,
        info: &info,
        to,
        store,
    };
    if let Some(ending) = handing.reserve_timeout(&opened.log)? {
        return handing
            .end_here(ending, opened)
            .map(|s| HandedOver::Ended(Box::new(s)));
    }
    let codebuild_id = match handing.start(ready, opened.work.path()) {
        Ok(id) => id,
        Err(err) => {
            // Recorded and closed (its minutes given back); a failure that may pass is also
            // pushbuild's error, for Lambda's retry.
            opened
                .log
                .marker_failed(&format!("AWS CodeBuild did not start the build: {err}"));
            let ending = Ending::skipped(format!(
                "pushbuild could not start the build on AWS CodeBuild: {err}"
            ));
            let stored = handing.end_here(ending, opened)?;
            if err.retryable() {
                return Err(err);
            }
            return Ok(HandedOver::Ended(Box::new(stored)));
        }
    };
    let handover = handing.store_handover(number, codebuild_id, opened)?;
    drop(meter);
    Ok(HandedOver::Started(Box::new(handover)))
}

/// One hand-over on its way: the build, who it is, where it goes and the store.
struct Handing<'a> {
    job: &'a BuildJob,
    info: &'a BuildInfo,
    to: &'a HandOver<'a>,
    store: &'a dyn Store,
}

impl Handing<'_> {
    /// Reserves CodeBuild's whole timeout (what the build does not use is given back when it
    /// ends); the SKIPPED ending when the month's budget cannot hold it.
    fn reserve_timeout(&self, log: &BuildLog) -> Result<Option<Ending>, PipelineError> {
        let books = &self.job.settings.books;
        let timeout = self.to.settings.timeout_minutes;
        // Its entry expires once CodeBuild's queue and its timeout have surely passed (in
        // billed minutes: 60 s, shorter only in tests).
        let held = u32::try_from(QUEUED_TIMEOUT_MINUTES + timeout)
            .ok()
            .and_then(|m| self.job.settings.metering.minute.checked_mul(m))
            .unwrap_or(Duration::MAX);
        let expires = Utc::now()
            + chrono::Duration::from_std(held).unwrap_or(chrono::Duration::days(2))
            + chrono::Duration::from_std(books.grace).unwrap_or_default();
        for minute in 1..=timeout {
            let grant = books.index.reserve(
                &self.info.project,
                &self.info.build_id,
                minute,
                expires,
                &books.budget,
            )?;
            if let Grant::Refused(reason) = grant {
                log.marker_failed(&format!(
                    "The month's budget cannot hold a CodeBuild build of up to {timeout} minutes \
                     (minute {minute} was refused): {reason}"
                ));
                return Ok(Some(Ending::skipped(format!(
                    "the month's budget cannot hold the build's {timeout} minutes on AWS \
                     CodeBuild: {reason}"
                ))));
            }
        }
        Ok(None)
    }

    /// Uploads the source and starts the build: CodeBuild's id for it.
    fn start(&self, ready: &Ready, work: &Path) -> Result<String, PipelineError> {
        let (info, to) = (self.info, self.to);
        let layout = Layout::new(&info.project, info.build_id.as_str());
        let source_key = layout.handover_source();
        source::upload_source(&ready.src_dir, work, &source_key, info, self.store)?;
        let buildspec_path = ready.src_dir.join(&to.buildspec_path);
        let buildspec =
            std::fs::read_to_string(&buildspec_path).map_err(|source| PipelineError::WorkDir {
                path: buildspec_path.clone(),
                source,
            })?;
        let request = StartRequest {
            project: to.project.to_string(),
            source_location: format!("{}/{source_key}", to.bucket),
            buildspec,
            env: source::environment(info, &ready.overrides),
            artifacts_bucket: to.bucket.to_string(),
            artifacts_path: format!("artifacts/{}/{}", info.project, info.build_id),
            artifacts_name: format!("{}.zip", info.project.as_str().replace('/', "-")),
            logs_location: format!("{}/{}", to.bucket, layout.codebuild_logs()),
            timeout_minutes: to.settings.timeout_minutes,
            queued_timeout_minutes: QUEUED_TIMEOUT_MINUTES,
            compute_type: to.settings.compute_type,
            image: self
                .job
                .identity
                .batch
                .as_ref()
                .and_then(|child| child.image.clone()),
            idempotency_token: info.build_id.to_string(),
        };
        Ok(to.codebuild.start_build(&request)?)
    }

    /// The build runs on CodeBuild: the log says where, and `handover.json` keeps what finishes
    /// it.
    fn store_handover(
        &self,
        number: u64,
        codebuild_id: String,
        opened: Opened,
    ) -> Result<Handover, PipelineError> {
        let (info, to, identity) = (self.info, self.to, &self.job.identity);
        let layout = Layout::new(&info.project, info.build_id.as_str());
        let Opened { log, log_path, .. } = opened;
        log.marker(&format!(
            "AWS CodeBuild runs the build as {codebuild_id} ({}, up to {} minutes); its \
             artifacts go to artifacts/{}/{}/ and its log to {}/",
            to.settings.compute_type.as_str(),
            to.settings.timeout_minutes,
            info.project,
            info.build_id,
            layout.codebuild_logs()
        ));
        if let Some(err) = log.take_error() {
            return Err(PipelineError::Log(err));
        }
        drop(log);
        let handover = Handover {
            project: info.project.clone(),
            build_id: info.build_id.clone(),
            number,
            codebuild_id,
            compute_type: to.settings.compute_type,
            initiator: info.initiator.clone(),
            reference: identity.reference.clone(),
            commit: identity.commit.clone(),
            source_version: identity.source_version.clone(),
            start_time: identity.start_time,
            reserved_minutes: to.settings.timeout_minutes,
            why: to.why.clone(),
            replaces: to.replaces.clone(),
            status: to.status.clone(),
            log: std::fs::read_to_string(&log_path).map_err(PipelineError::Log)?,
            batch: identity.batch.clone(),
        };
        self.store.put(
            &layout.handover(),
            &serde_json::to_vec_pretty(&handover)?,
            &build_meta(info, "application/json"),
        )?;
        Ok(handover)
    }

    /// A build that ends here after all: billed nothing, its record stored.
    fn end_here(&self, ending: Ending, opened: Opened) -> Result<StoredBuild, PipelineError> {
        let cost = BuildCost::nothing(&self.job.settings.price);
        let reason = ending.skip_reason.clone();
        finishing::record_end(
            self.job,
            self.info,
            Billed {
                ending,
                log: opened.log,
                log_path: &opened.log_path,
                work: None,
                shell: None,
                cost,
                meter: None,
                reason,
            },
            self.store,
        )
    }
}
