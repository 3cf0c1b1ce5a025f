//! A build that outgrows Lambda goes to AWS CodeBuild. The function has begun it (its number,
//! its entry, minute 1) and fetched its source; here the source goes up as a zip, the budget
//! reserves the rest of CodeBuild's timeout (so a build that cannot fit is refused, not
//! overspent), `StartBuild` starts it, and `handover/<project>/<build-id>/handover.json` keeps
//! what is needed to finish it. The entry stays `IN_PROGRESS` until CodeBuild's state-change
//! event (or the sweep) brings the result back: [`finish_handed_over`] then finishes it as
//! every build finishes, with CodeBuild's phases and CodeBuild's price.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::finish::{self, Billed};
use super::{
    Begun, BuildIdentity, BuildJob, BuildSettings, Opened, PipelineError, StoredBuild, Work,
    build_meta, run_begun, started_line,
};
use crate::artifacts::{self, Entry, EntryKind};
use crate::codebuild::{
    self, BUILD_ID_VAR, CodeBuild, ComputeType, PROJECT_VAR, QUEUED_TIMEOUT_MINUTES, StartRequest,
};
use crate::config::CodeBuildSettings;
use crate::cost::{self, BuildCost};
use crate::executor::{self, RunStatus};
use crate::index::Grant;
use crate::names::{BuildId, CommitId, ProjectName};
use crate::record::{Compute, Ending};
use crate::state::BuildState;
use crate::status::StatusTarget;
use crate::store::{Layout, Store, StoreError};

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
}

/// How a hand-over went.
pub enum HandedOver {
    /// CodeBuild runs it.
    Started(Box<Handover>),
    /// It ended here (refused by the budget, or CodeBuild would not start it): its record.
    Ended(Box<StoredBuild>),
}

/// Hands `job` (which must be ready to run and have begun unrefused; any other build runs
/// here as usual) to CodeBuild.
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
    let identity = &job.identity;
    let info = identity.info(number);
    let layout = Layout::new(&info.project, info.build_id.as_str());
    let Opened {
        work,
        log_path,
        log,
        ..
    } = Opened::new(job)?;
    started_line(&log, &info);
    for note in &ready.notes {
        log.marker(note);
    }
    log.marker(&format!("Handing the build to AWS CodeBuild: {}", to.why));
    let end_here = |ending: Ending, log, meter| {
        let cost = BuildCost::nothing(&job.settings.price);
        let reason = ending.skip_reason.clone();
        finish::record_end(
            job,
            &info,
            Billed {
                ending,
                log,
                log_path: &log_path,
                work: None,
                shell: None,
                cost,
                meter,
                reason,
            },
            store,
        )
    };

    // The budget holds CodeBuild's whole timeout; what the build does not use is given back
    // when it ends.
    let books = &job.settings.books;
    let timeout = to.settings.timeout_minutes;
    // Its entry expires once CodeBuild's queue and its timeout have surely passed (in billed
    // minutes: 60 s, shorter only in tests).
    let held = u32::try_from(QUEUED_TIMEOUT_MINUTES + timeout)
        .ok()
        .and_then(|m| job.settings.metering.minute.checked_mul(m))
        .unwrap_or(Duration::MAX);
    let expires = Utc::now()
        + chrono::Duration::from_std(held).unwrap_or(chrono::Duration::days(2))
        + chrono::Duration::from_std(books.grace).unwrap_or_default();
    if let Some(meter) = meter.as_mut() {
        meter.stop();
    }
    for minute in 1..=timeout {
        let grant = books.index.reserve(
            &info.project,
            &info.build_id,
            minute,
            expires,
            &books.budget,
        )?;
        if let Grant::Refused(reason) = grant {
            log.marker_failed(&format!(
                "The month's budget cannot hold a CodeBuild build of up to {timeout} minutes \
                 (minute {minute} was refused): {reason}"
            ));
            let ending = Ending::skipped(format!(
                "the month's budget cannot hold the build's {timeout} minutes on AWS CodeBuild: {reason}"
            ));
            return end_here(ending, log, None).map(|s| HandedOver::Ended(Box::new(s)));
        }
    }

    let source_key = layout.handover_source();
    let started = upload_source(&ready.src_dir, work.path(), &source_key, &info, store)
        .map_err(PipelineError::from)
        .and_then(|()| {
            let buildspec = std::fs::read_to_string(ready.src_dir.join(&to.buildspec_path))
                .map_err(|source| PipelineError::WorkDir {
                    path: ready.src_dir.join(&to.buildspec_path),
                    source,
                })?;
            let request = StartRequest {
                project: to.project.to_string(),
                source_location: format!("{}/{source_key}", to.bucket),
                buildspec,
                env: environment(&info, &ready.overrides),
                artifacts_bucket: to.bucket.to_string(),
                artifacts_path: format!("artifacts/{}/{}", info.project, info.build_id),
                artifacts_name: format!("{}.zip", info.project.as_str().replace('/', "-")),
                logs_location: format!("{}/{}", to.bucket, layout.codebuild_logs()),
                timeout_minutes: timeout,
                queued_timeout_minutes: QUEUED_TIMEOUT_MINUTES,
                compute_type: to.settings.compute_type,
                idempotency_token: info.build_id.to_string(),
            };
            Ok(to.codebuild.start_build(&request)?)
        });
    let codebuild_id = match started {
        Ok(id) => id,
        Err(err) => {
            // Recorded and closed (its minutes given back); a failure that may pass is also
            // pushbuild's error, for Lambda's retry.
            log.marker_failed(&format!("AWS CodeBuild did not start the build: {err}"));
            let ending = Ending::skipped(format!(
                "pushbuild could not start the build on AWS CodeBuild: {err}"
            ));
            let stored = end_here(ending, log, None)?;
            if err.retryable() {
                return Err(err);
            }
            return Ok(HandedOver::Ended(Box::new(stored)));
        }
    };
    log.marker(&format!(
        "AWS CodeBuild runs the build as {codebuild_id} ({}, up to {timeout} minutes); its \
         artifacts go to artifacts/{}/{}/ and its log to {}/",
        to.settings.compute_type.as_str(),
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
        reserved_minutes: timeout,
        why: to.why.clone(),
        replaces: to.replaces.clone(),
        status: to.status.clone(),
        log: std::fs::read_to_string(&log_path).map_err(PipelineError::Log)?,
    };
    store.put(
        &layout.handover(),
        &serde_json::to_vec_pretty(&handover)?,
        &build_meta(&info, "application/json"),
    )?;
    // Minute 1 is on record; the rest are metered when the build ends.
    drop(meter);
    Ok(HandedOver::Started(Box::new(handover)))
}

/// The variables CodeBuild gives the build: the caller's overrides and pushbuild's identity of
/// the build. CodeBuild reserves `CODEBUILD_` for its own (it sets `CODEBUILD_BUILD_ID` and the
/// rest itself), so pushbuild's values go as `PUSHBUILD_*`, and an override with that prefix is
/// left out.
fn environment(
    info: &crate::executor::env::BuildInfo,
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = overrides
        .iter()
        .filter(|(name, _)| !name.starts_with("CODEBUILD_") && !name.starts_with("PUSHBUILD_"))
        .cloned()
        .collect();
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            env.push((name.to_string(), value));
        }
    };
    set(PROJECT_VAR, Some(info.project.to_string()));
    set(BUILD_ID_VAR, Some(info.build_id.to_string()));
    set(
        "PUSHBUILD_BUILD_NUMBER",
        Some(info.build_number.to_string()),
    );
    set("PUSHBUILD_INITIATOR", Some(info.initiator.clone()));
    set("PUSHBUILD_SOURCE_VERSION", info.source_version.clone());
    set(
        "PUSHBUILD_RESOLVED_SOURCE_VERSION",
        info.resolved_source_version
            .as_ref()
            .map(ToString::to_string),
    );
    set("PUSHBUILD_SOURCE_REPO_URL", info.source_repo_url.clone());
    set("PUSHBUILD_WEBHOOK_TRIGGER", info.webhook_trigger.clone());
    if let Some(webhook) = &info.webhook {
        set("PUSHBUILD_WEBHOOK_EVENT", Some(webhook.event.clone()));
        set("PUSHBUILD_WEBHOOK_HEAD_REF", Some(webhook.head_ref.clone()));
        set("PUSHBUILD_WEBHOOK_BASE_REF", webhook.base_ref.clone());
    }
    env
}

/// Zips the fetched source (every file, links kept as links) and stores it at `key`.
fn upload_source(
    src_dir: &Path,
    work: &Path,
    key: &str,
    info: &crate::executor::env::BuildInfo,
    store: &dyn Store,
) -> Result<(), StoreError> {
    let io_error = |message: String| StoreError::Write {
        uri: store.uri(key),
        source: std::io::Error::other(message),
    };
    let mut entries = Vec::new();
    for item in walkdir::WalkDir::new(src_dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let item = item.map_err(|err| io_error(format!("reading the source: {err}")))?;
        let Ok(relative) = item.path().strip_prefix(src_dir) else {
            continue;
        };
        let zip_path = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if zip_path.is_empty() {
            continue;
        }
        let kind = if item.path_is_symlink() {
            let target = std::fs::read_link(item.path())
                .map_err(|err| io_error(format!("reading a link in the source: {err}")))?;
            EntryKind::Symlink {
                target: target.to_string_lossy().into_owned(),
            }
        } else if item.file_type().is_file() {
            use std::os::unix::fs::PermissionsExt;
            let mode = item
                .metadata()
                .map_or(0o644, |m| m.permissions().mode() & 0o7777);
            EntryKind::File { mode }
        } else {
            continue;
        };
        entries.push(Entry {
            source: item.path().to_path_buf(),
            zip_path,
            kind,
        });
    }
    let zip_path = work.join("source.zip");
    let file = File::create(&zip_path).map_err(|err| io_error(err.to_string()))?;
    artifacts::write_zip(&entries, BufWriter::new(file))
        .map_err(|err| io_error(format!("zipping the source: {err}")))?;
    store.put_file(key, &zip_path, &build_meta(info, "application/zip"))?;
    Ok(())
}

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
    let log = crate::executor::log::BuildLog::new(Box::new(BufWriter::new(file)), settings.echo);
    let status = build.outcome();
    log.marker(&format!(
        "AWS CodeBuild build {} ended: {}",
        build.id, build.status
    ));
    let phases = build.phase_outcomes();
    for phase in &phases {
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
    // CodeBuild bills from the build's submission to its end, by the minute, rounded up: the
    // build is billed CodeBuild's minutes at CodeBuild's price (its seconds in the function
    // before the hand-over are not billed again).
    let end = build.end.unwrap_or_else(Utc::now);
    let start = build.start.unwrap_or(handover.start_time);
    let duration = (end - start).to_std().unwrap_or(Duration::ZERO);
    let cost = cost::build_cost_in(duration, &price, settings.metering.minute)
        .at_most(handover.reserved_minutes);
    let mut ending = Ending::ran(status, phases);
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
    let meter = settings
        .metering
        .resume(&info, handover.reference.as_deref(), 1);
    let stored = finish::record_end(
        &job,
        &info,
        Billed {
            ending,
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
