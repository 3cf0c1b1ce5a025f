//! A build CodeBuild ran comes back: its record with CodeBuild's phases, its ledger entry at
//! CodeBuild's price, its close in the index and its metrics, as every build finishes.

use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::super::finish::{self, Billed};
use super::super::{BuildIdentity, BuildJob, BuildSettings, PipelineError, StoredBuild, Work};
use super::Handover;
use crate::codebuild;
use crate::cost;
use crate::executor::log::BuildLog;
use crate::executor::{self, RunStatus};
use crate::names::ProjectName;
use crate::record::{Compute, Ending};
use crate::state::BuildState;
use crate::store::{Layout, Store};

/// Finishes a build CodeBuild ran, from what CodeBuild says of it (`build` has ended): its
/// record (with CodeBuild's phases and where it ran), its ledger entry at CodeBuild's price for
/// its compute type, its close in the index (the unused reserved minutes given back) and its
/// metrics. The hand-over object goes; the record stays.
pub fn finish_handed_over(
    handover: &Handover,
    build: &codebuild::Build,
    settings: &BuildSettings,
    store: &dyn Store,
) -> Result<StoredBuild, PipelineError> {
    let price = handover.compute_type.price();
    let settings = BuildSettings {
        price: price.clone(),
        ..settings.clone()
    };
    let identity = BuildIdentity {
        build_id: handover.build_id.clone(),
        initiator: handover.initiator.clone(),
        source_version: handover.source_version.clone(),
        commit: handover.commit.clone(),
        reference: handover.reference.clone(),
        started: Instant::now(),
        start_time: handover.start_time,
        batch: handover.batch.clone(),
        ..BuildIdentity::new(handover.project.clone(), handover.initiator.clone())
    };
    let job = BuildJob::new(
        identity,
        &settings,
        Work::Refused {
            reason: String::new(),
        },
    );
    let info = job.identity.info(handover.number);
    let (_work, log_path, log) = codebuild_log(handover, build, &settings)?;
    // CodeBuild bills from the build's submission to its end, by the minute, rounded up: the
    // build is billed CodeBuild's minutes at CodeBuild's price (its seconds in the function
    // before the hand-over are not billed again).
    let end = build.end.unwrap_or_else(Utc::now);
    let start = build.start.unwrap_or(handover.start_time);
    let duration = (end - start).to_std().unwrap_or(Duration::ZERO);
    let cost = cost::build_cost_in(duration, &price, settings.metering.minute)
        .at_most(handover.reserved_minutes);
    let meter = settings
        .metering
        .resume(&info, handover.reference.as_deref(), 1);
    let stored = finish::record_end(
        &job,
        &info,
        Billed {
            ending: ending(handover, build),
            log,
            log_path: &log_path,
            work: None,
            shell: None,
            cost,
            meter: Some(meter),
            reason: None,
        },
        store,
    )?;
    let layout = Layout::new(&handover.project, handover.build_id.as_str());
    store.delete(&layout.handover())?;
    store.delete(&layout.handover_source())?;
    Ok(stored)
}

/// The build's log: the function's lines until the hand-over, then what CodeBuild says of it
/// (its status, each phase, the link to its own log); open, in a work directory of its own.
fn codebuild_log(
    handover: &Handover,
    build: &codebuild::Build,
    settings: &BuildSettings,
) -> Result<(tempfile::TempDir, PathBuf, BuildLog), PipelineError> {
    let work =
        executor::work_dir_in(&settings.temp_root).map_err(|source| PipelineError::WorkDir {
            path: settings.temp_root.clone(),
            source,
        })?;
    let log_path = work.path().join("build.log");
    std::fs::write(&log_path, &handover.log).map_err(PipelineError::Log)?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .map_err(PipelineError::Log)?;
    let log = BuildLog::new(Box::new(BufWriter::new(file)), settings.echo);
    log.marker(&format!(
        "AWS CodeBuild build {} ended: {}",
        build.id, build.status
    ));
    for phase in &build.phase_outcomes() {
        let line = format!(
            "Phase {} {} in {} s{}",
            phase.phase,
            phase.status,
            phase.duration_ms / 1000,
            phase
                .context
                .as_ref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default()
        );
        if phase.status == RunStatus::Succeeded {
            log.marker(&line);
        } else {
            log.marker_failed(&line);
        }
    }
    if let Some(link) = &build.log_link {
        log.marker(&format!("CodeBuild's log: {link}"));
    }
    Ok((work, log_path, log))
}

/// How the build ended, as CodeBuild says, and where it ran.
fn ending(handover: &Handover, build: &codebuild::Build) -> Ending {
    let status = build.outcome();
    let mut ending = Ending::ran(status, build.phase_outcomes());
    if status == BuildState::Skipped || status == BuildState::InProgress {
        ending.status = BuildState::Failed;
    }
    ending.compute = Some(Compute {
        service: "codebuild".to_string(),
        compute_type: handover.compute_type.as_str().to_string(),
        codebuild_id: build.id.clone(),
        why: handover.why.clone(),
        replaces: handover.replaces.clone(),
    });
    ending
}

/// The hand-over object of a build, if it is on CodeBuild.
pub fn load_handover(
    project: &ProjectName,
    build_id: &str,
    store: &dyn Store,
) -> Result<Option<Handover>, PipelineError> {
    let Some(bytes) = store.get(&Layout::new(project, build_id).handover())? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes)?))
}
