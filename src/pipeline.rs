//! One build from start to record: run the phases, package and store the artifacts, store the
//! log and the billing ledger's entry, then write the record last. The command line and the Lambda function both call
//! [`run_build`]; neither holds build logic of its own.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::artifacts::{self, ArtifactError};
use crate::billing::{self, LedgerEntry};
use crate::buildspec::{ArtifactSet, BuildSpec, Warning};
use crate::cost::{self, Price};
use crate::executor::env::{self, BuildInfo};
use crate::executor::log::{BuildLog, Echo};
use crate::executor::{self, BuildRequest, PhaseOutcome, Status, millis};
use crate::metering::{Meter, MetricSink, NullSink, RunningMeter, branch_name};
use crate::record::{ArtifactRecord, BuildRecord};
use crate::store::{Layout, ObjectMeta, Store, StoreError};

/// Everything one build needs, decided by the caller.
pub struct BuildJob {
    pub info: BuildInfo,
    /// The reference that was built (`refs/heads/main`), for the record.
    pub reference: Option<String>,
    pub spec: BuildSpec,
    pub spec_warnings: Vec<Warning>,
    pub src_dir: PathBuf,
    /// The environment the build starts from (pushbuild's own, or a clean one on Lambda).
    pub base_env: Vec<(String, String)>,
    /// The caller's environment overrides (a manual build's override list, `--env`).
    pub overrides: Vec<(String, String)>,
    /// Resolved `parameter-store` and `secrets-manager` variables: set, and masked in the log.
    pub secrets: Vec<(String, String)>,
    /// `HOME` for the build, when the caller's own will not do (on Lambda: under /tmp).
    pub home: Option<PathBuf>,
    /// When the commands must stop.
    pub deadline: Option<Instant>,
    /// When the build was taken on: billing counts from here.
    pub started: Instant,
    pub start_time: DateTime<Utc>,
    pub price: Price,
    pub echo: Echo,
    /// Where the build's private work directory is made (outside the source).
    pub temp_root: PathBuf,
    /// Lines for the log before the phases (what was fetched, submodules not fetched).
    pub source_notes: Vec<String>,
    /// Where the billing metrics go, and the length of a billed minute.
    pub metering: Metering,
}

/// Where a build's billing metrics (CloudWatch EMF) go.
#[derive(Clone)]
pub struct Metering {
    pub sink: Arc<dyn MetricSink>,
    pub namespace: String,
    /// A billed minute (60 s; shorter only in tests).
    pub minute: Duration,
}

impl Metering {
    /// No metrics, 60-second minutes (local runs).
    pub fn off() -> Metering {
        Metering {
            sink: Arc::new(NullSink),
            namespace: "PushBuild".to_string(),
            minute: cost::MINUTE,
        }
    }

    fn start(&self, info: &BuildInfo, reference: Option<&str>, started: Instant) -> RunningMeter {
        Meter::start(
            self.sink.clone(),
            &self.namespace,
            &info.project,
            &branch_name(reference),
            &info.build_id,
            self.minute,
            started,
        )
    }
}

/// A failure of pushbuild itself (not of the user's build).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot prepare the build's work directory under {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the build log: {0}")]
    Log(#[source] std::io::Error),
    #[error("cannot encode the build record: {0}")]
    Record(#[from] serde_json::Error),
}

/// Runs `job` and stores its artifacts, log and record in `store`.
pub fn run_build(job: &BuildJob, store: &dyn Store) -> Result<BuildRecord, PipelineError> {
    let work = executor::work_dir_in(&job.temp_root).map_err(|source| PipelineError::WorkDir {
        path: job.temp_root.clone(),
        source,
    })?;
    let log_path = work.path().join("build.log");
    let log_file = File::create(&log_path).map_err(|source| PipelineError::WorkDir {
        path: log_path.clone(),
        source,
    })?;
    let log = BuildLog::new(Box::new(BufWriter::new(log_file)), job.echo);
    let mut meter = job
        .metering
        .start(&job.info, job.reference.as_deref(), job.started);
    let layout = Layout {
        project: job.info.project.clone(),
        build_id: job.info.build_id.clone(),
    };

    log.marker(&format!(
        "Build {} (#{}) of {} started by {}",
        job.info.build_id, job.info.build_number, job.info.project, job.info.initiator
    ));
    let mut warnings: Vec<String> = job
        .spec_warnings
        .iter()
        .map(|w| format!("buildspec: {w}"))
        .collect();
    for note in &job.source_notes {
        log.marker(note);
    }
    for warning in &warnings {
        log.marker(&format!("Warning: {warning}"));
    }

    let env = env::environment(
        &job.base_env,
        &job.spec,
        &job.overrides,
        &job.secrets,
        &job.info,
        &job.src_dir,
        job.home.as_deref(),
    );
    let request = BuildRequest {
        spec: &job.spec,
        src_dir: job.src_dir.clone(),
        work_dir: work.path().to_path_buf(),
        env,
        secret_values: job.secrets.iter().map(|(_, v)| v.clone()).collect(),
        deadline: job.deadline,
    };
    let outcome = executor::run(&request, &log);
    let mut status = outcome.status;
    let mut phases = outcome.phases;
    let mut artifacts = Vec::new();

    if outcome.upload_artifacts {
        if let Some(spec_artifacts) = &job.spec.artifacts {
            let (phase, stored) = upload_artifacts(
                job,
                store,
                &layout,
                &log,
                spec_artifacts,
                &outcome.artifact_names,
                &mut warnings,
            )?;
            if phase.status == Status::Failed && status == Status::Succeeded {
                status = Status::Failed;
            }
            phases.push(phase);
            artifacts = stored;
        }
    }

    // The meter stops first, so the minutes it has emitted never exceed the billed ones.
    let finished = meter.stop();
    let cost = cost::build_cost_in(
        finished.duration_since(job.started),
        &job.price,
        job.metering.minute,
    );
    let complete = format!(
        "Build completed: {status} in {} ms, {} billed minute(s)",
        cost.duration_ms, cost.billed_minutes
    );
    if status == Status::Succeeded {
        log.marker_ok(&complete);
    } else {
        log.marker_failed(&complete);
    }
    if let Some(err) = log.take_error() {
        return Err(PipelineError::Log(err));
    }
    drop(log);
    let log_uri = store.put_file(
        &layout.log(),
        &log_path,
        &ObjectMeta {
            content_type: "text/plain; charset=utf-8".into(),
            metadata: object_metadata(job),
        },
    )?;

    let record = BuildRecord {
        build_id: job.info.build_id.clone(),
        codebuild_build_id: job.info.codebuild_build_id(),
        repository: job.info.project.clone(),
        build_number: job.info.build_number,
        reference: job.reference.clone(),
        commit: job.info.resolved_source_version.clone(),
        initiator: job.info.initiator.clone(),
        status,
        start_time: job.start_time,
        end_time: Utc::now(),
        phases,
        artifacts,
        log_uri,
        exported_variables: outcome
            .exported_variables
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        warnings,
        duration_ms: cost.duration_ms,
        billed_minutes: cost.billed_minutes,
        cost,
    };
    billing::write_entry(store, &LedgerEntry::from_record(&record))?;
    let json = serde_json::to_vec_pretty(&record)?;
    store.put(
        &layout.record(),
        &json,
        &ObjectMeta {
            content_type: "application/json".into(),
            metadata: object_metadata(job),
        },
    )?;
    meter.finish(&record);
    Ok(record)
}

fn object_metadata(job: &BuildJob) -> Vec<(String, String)> {
    metadata_for(&job.info)
}

fn metadata_for(info: &BuildInfo) -> Vec<(String, String)> {
    let mut meta = vec![
        ("build-id".to_string(), info.build_id.clone()),
        ("repository".to_string(), info.project.clone()),
    ];
    if let Some(commit) = &info.resolved_source_version {
        meta.push(("commit".to_string(), commit.clone()));
    }
    meta
}

/// A build that failed before its phases could run (its source or buildspec could not be had).
pub struct Unbuilt<'a> {
    pub info: &'a BuildInfo,
    pub reference: Option<String>,
    /// The phase that failed, as CodeBuild names it (`DOWNLOAD_SOURCE`).
    pub phase: &'static str,
    /// Why, in CodeBuild's words (`YAML_FILE_ERROR: ...`, `CLIENT_ERROR: ...`).
    pub message: String,
    /// Lines for the log before the failure (what was fetched, notes).
    pub notes: Vec<String>,
    pub started: Instant,
    pub start_time: DateTime<Utc>,
    pub price: &'a Price,
    pub metering: &'a Metering,
}

/// Stores the log and the record of a build that failed before it ran: it is FAILED, billed like
/// any other, and its record says why.
pub fn record_unbuilt(
    unbuilt: &Unbuilt<'_>,
    store: &dyn Store,
) -> Result<BuildRecord, PipelineError> {
    let info = unbuilt.info;
    let layout = Layout {
        project: info.project.clone(),
        build_id: info.build_id.clone(),
    };
    let mut log = Vec::new();
    let mut line = |text: &str| {
        log.extend_from_slice(
            format!("[Container] {} {text}\n", crate::executor::log::timestamp()).as_bytes(),
        );
    };
    line(&format!(
        "Build {} (#{}) of {} started by {}",
        info.build_id, info.build_number, info.project, info.initiator
    ));
    line(&format!("Entering phase {}", unbuilt.phase));
    for note in &unbuilt.notes {
        line(note);
    }
    line(&format!("Phase complete: {} State: FAILED", unbuilt.phase));
    line(&format!("Phase context status code: {}", unbuilt.message));
    let mut meter = unbuilt
        .metering
        .start(info, unbuilt.reference.as_deref(), unbuilt.started);
    let finished = meter.stop();
    let cost = cost::build_cost_in(
        finished.duration_since(unbuilt.started),
        unbuilt.price,
        unbuilt.metering.minute,
    );
    line(&format!(
        "Build completed: FAILED in {} ms, {} billed minute(s)",
        cost.duration_ms, cost.billed_minutes
    ));
    let meta = |content_type: &str| ObjectMeta {
        content_type: content_type.to_string(),
        metadata: metadata_for(info),
    };
    let log_uri = store.put(&layout.log(), &log, &meta("text/plain; charset=utf-8"))?;
    let record = BuildRecord {
        build_id: info.build_id.clone(),
        codebuild_build_id: info.codebuild_build_id(),
        repository: info.project.clone(),
        build_number: info.build_number,
        reference: unbuilt.reference.clone(),
        commit: info.resolved_source_version.clone(),
        initiator: info.initiator.clone(),
        status: Status::Failed,
        start_time: unbuilt.start_time,
        end_time: Utc::now(),
        phases: vec![PhaseOutcome {
            phase: unbuilt.phase.to_string(),
            status: Status::Failed,
            started: unbuilt.start_time,
            duration_ms: cost.duration_ms,
            attempts: 1,
            message: Some(unbuilt.message.clone()),
        }],
        artifacts: Vec::new(),
        log_uri,
        exported_variables: BTreeMap::new(),
        warnings: Vec::new(),
        duration_ms: cost.duration_ms,
        billed_minutes: cost.billed_minutes,
        cost,
    };
    billing::write_entry(store, &LedgerEntry::from_record(&record))?;
    store.put(
        &layout.record(),
        &serde_json::to_vec_pretty(&record)?,
        &meta("application/json"),
    )?;
    meter.finish(&record);
    Ok(record)
}

/// Stores the log, ledger entry and record of a build that was not run (the month's budget
/// refused it): SKIPPED, with the reason, billed nothing.
pub fn record_skipped(
    info: &BuildInfo,
    reference: Option<String>,
    reason: &str,
    price: &Price,
    store: &dyn Store,
) -> Result<BuildRecord, PipelineError> {
    let layout = Layout {
        project: info.project.clone(),
        build_id: info.build_id.clone(),
    };
    let meta = |content_type: &str| ObjectMeta {
        content_type: content_type.to_string(),
        metadata: metadata_for(info),
    };
    let line = format!(
        "[Container] {} Build {} of {} not run: {reason}\n",
        crate::executor::log::timestamp(),
        info.build_id,
        info.project
    );
    let log_uri = store.put(
        &layout.log(),
        line.as_bytes(),
        &meta("text/plain; charset=utf-8"),
    )?;
    let now = Utc::now();
    let record = BuildRecord {
        build_id: info.build_id.clone(),
        codebuild_build_id: info.codebuild_build_id(),
        repository: info.project.clone(),
        build_number: info.build_number,
        reference,
        commit: info.resolved_source_version.clone(),
        initiator: info.initiator.clone(),
        status: Status::Skipped,
        start_time: now,
        end_time: now,
        phases: Vec::new(),
        artifacts: Vec::new(),
        log_uri,
        exported_variables: BTreeMap::new(),
        warnings: vec![format!("not run: {reason}")],
        duration_ms: 0,
        billed_minutes: 0,
        cost: cost::BuildCost {
            duration_ms: 0,
            billed_minutes: 0,
            price: price.clone(),
            cost_usd: 0.0,
            codebuild_general1_small_usd: 0.0,
        },
    };
    crate::billing::write_entry(store, &crate::billing::LedgerEntry::from_record(&record))?;
    store.put(
        &layout.record(),
        &serde_json::to_vec_pretty(&record)?,
        &meta("application/json"),
    )?;
    Ok(record)
}

/// A new build id: the start time (sortable) and a random part (`20261122T231000Z-3f9c1a2b`).
pub fn new_build_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%SZ"), &random[..8])
}

/// One more than the number of build records the store holds for `project`.
pub fn next_build_number(store: &dyn Store, project: &str) -> Result<u64, StoreError> {
    let keys = store.list(&Layout::builds_prefix(project))?;
    let builds = keys.iter().filter(|k| k.ends_with("/build.json")).count();
    Ok(builds as u64 + 1)
}

/// The UPLOAD_ARTIFACTS phase: each artifact selected, zipped and stored on its own.
#[allow(clippy::too_many_arguments)]
fn upload_artifacts(
    job: &BuildJob,
    store: &dyn Store,
    layout: &Layout,
    log: &BuildLog,
    spec: &crate::buildspec::Artifacts,
    expanded_names: &[(Option<String>, String)],
    warnings: &mut Vec<String>,
) -> Result<(PhaseOutcome, Vec<ArtifactRecord>), PipelineError> {
    let started = Utc::now();
    let clock = Instant::now();
    log.marker("Entering phase UPLOAD_ARTIFACTS");
    let mut sets: Vec<(Option<String>, &ArtifactSet)> = vec![(None, &spec.primary)];
    sets.extend(
        spec.secondary
            .iter()
            .map(|(id, set)| (Some(id.clone()), set)),
    );
    let mut stored = Vec::new();
    let mut failure: Option<String> = None;
    for (identifier, set) in sets {
        let name = artifact_name(
            &job.info.project,
            identifier.as_deref(),
            set,
            expanded_names,
        );
        match package_one(job, store, layout, set, &name, &meta_for(job)) {
            Ok((record, artifact_warnings)) => {
                for warning in artifact_warnings {
                    log.marker(&format!("Warning: {warning}"));
                    warnings.push(format!("artifacts: {warning}"));
                }
                log.marker(&format!(
                    "Uploaded artifact {} ({} files, {} bytes) to {}",
                    record.name, record.files, record.size, record.uri
                ));
                stored.push(ArtifactRecord {
                    identifier,
                    ..record
                });
            }
            Err(Packaging::Artifact(err)) => {
                let what = identifier
                    .as_deref()
                    .map_or("primary artifact".to_string(), |id| {
                        format!("secondary artifact {id}")
                    });
                log.marker_failed(&format!("Skipping the {what}: {err}"));
                failure.get_or_insert(format!("CLIENT_ERROR: {what}: {err}"));
            }
            Err(Packaging::Store(err)) => return Err(err.into()),
        }
    }
    let status = if failure.is_some() {
        Status::Failed
    } else {
        Status::Succeeded
    };
    let complete = format!("Phase complete: UPLOAD_ARTIFACTS State: {status}");
    if status == Status::Succeeded {
        log.marker_ok(&complete);
    } else {
        log.marker_failed(&complete);
    }
    Ok((
        PhaseOutcome {
            phase: "UPLOAD_ARTIFACTS".to_string(),
            status,
            started,
            duration_ms: millis(clock.elapsed()),
            attempts: 1,
            message: failure,
        },
        stored,
    ))
}

fn meta_for(job: &BuildJob) -> ObjectMeta {
    ObjectMeta {
        content_type: "application/zip".into(),
        metadata: object_metadata(job),
    }
}

/// An artifact's file name: its `name` (shell-expanded), else the project's name for the primary
/// artifact and the identifier for a secondary one; `.zip` is added when missing.
fn artifact_name(
    project: &str,
    identifier: Option<&str>,
    set: &ArtifactSet,
    expanded: &[(Option<String>, String)],
) -> String {
    let given = expanded
        .iter()
        .find(|(id, _)| id.as_deref() == identifier)
        .map(|(_, name)| name.clone())
        .or_else(|| set.name.clone());
    let base = given.unwrap_or_else(|| identifier.unwrap_or(project).to_string());
    let base = base.trim_matches('/').to_string();
    if base.ends_with(".zip") {
        base
    } else {
        format!("{base}.zip")
    }
}

enum Packaging {
    Artifact(ArtifactError),
    Store(StoreError),
}

fn package_one(
    job: &BuildJob,
    store: &dyn Store,
    layout: &Layout,
    set: &ArtifactSet,
    name: &str,
    meta: &ObjectMeta,
) -> Result<(ArtifactRecord, Vec<String>), Packaging> {
    let selection = artifacts::select(&job.src_dir, set).map_err(Packaging::Artifact)?;
    let key = layout.artifact(set.s3_prefix.as_deref(), name);
    let mut writer = store.writer(&key, meta).map_err(Packaging::Store)?;
    let summary =
        artifacts::write_zip(&selection.entries, &mut writer).map_err(|err| match err {
            // The zip's only output is the store: a failed write is the store's failure (an S3
            // upload that gave up, a full disk), not the user's build's.
            ArtifactError::Write { source } => Packaging::Store(StoreError::Write {
                uri: store.uri(&key),
                source,
            }),
            other => Packaging::Artifact(other),
        })?;
    writer.flush().map_err(|source| {
        Packaging::Store(StoreError::Write {
            uri: store.uri(&key),
            source,
        })
    })?;
    let uri = writer.commit().map_err(Packaging::Store)?;
    Ok((
        ArtifactRecord {
            identifier: None,
            name: name.to_string(),
            uri,
            size: summary.bytes_out,
            sha256: summary.sha256,
            files: summary.entries,
        },
        selection.warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn build_ids_sort_by_time_and_differ() {
        let a = new_build_id();
        let b = new_build_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), "20261122T231000Z-3f9c1a2b".len());
    }

    #[test]
    fn a_build_that_never_ran_is_recorded_as_failed_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::LocalStore::new(dir.path());
        let info = BuildInfo {
            build_id: "b1".into(),
            project: "web".into(),
            build_number: next_build_number(&store, "web").unwrap(),
            initiator: "test".into(),
            ..BuildInfo::default()
        };
        let price = Price::per_minute(0.01);
        let unbuilt = Unbuilt {
            info: &info,
            reference: Some("refs/heads/main".into()),
            phase: "DOWNLOAD_SOURCE",
            message: "CLIENT_ERROR: `big.bin` is too large".into(),
            notes: vec!["Fetched 3 files".into()],
            started: Instant::now(),
            start_time: Utc::now(),
            price: &price,
            metering: &Metering::off(),
        };
        let record = record_unbuilt(&unbuilt, &store).unwrap();
        assert_eq!(record.status, Status::Failed);
        assert_eq!(record.billed_minutes, 1);
        assert_eq!(record.phases[0].phase, "DOWNLOAD_SOURCE");
        let log =
            String::from_utf8(store.get("builds/web/b1/build.log").unwrap().unwrap()).unwrap();
        assert!(
            log.contains("Fetched 3 files") && log.contains("big.bin"),
            "{log}"
        );
        assert!(store.get("builds/web/b1/build.json").unwrap().is_some());
        let (year, month) = (record.start_time.year(), record.start_time.month());
        let ledger = billing::read_month(&store, year, month).unwrap();
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger[0], LedgerEntry::from_record(&record));
        assert_eq!(ledger[0].status, "FAILED");
        assert_eq!(next_build_number(&store, "web").unwrap(), 2);
    }

    #[test]
    fn artifact_names_default_and_get_a_zip_suffix() {
        let set = ArtifactSet::default();
        let named = ArtifactSet {
            name: Some("app".into()),
            ..ArtifactSet::default()
        };
        assert_eq!(artifact_name("web", None, &set, &[]), "web.zip");
        assert_eq!(artifact_name("web", Some("docs"), &set, &[]), "docs.zip");
        assert_eq!(artifact_name("web", None, &named, &[]), "app.zip");
        let expanded = [(None, "app-42.zip".to_string())];
        assert_eq!(artifact_name("web", None, &named, &expanded), "app-42.zip");
    }
}
