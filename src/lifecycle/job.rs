//! A CodePipeline job (the Lambda invoke action) as a build. Its input artifact, read with the
//! job's credentials and unpacked, is the source; its `UserParameters` name the buildspec and
//! variables. The build's first artifact becomes the job's output artifact, its exported
//! variables the action's output variables, and its end the job's result. A build that does not
//! end in this call (handed to CodeBuild, or moved there after timing out here) answers with a
//! continuation token, `<project>/<build id>`; CodePipeline calls again with it, and the call
//! reads the build's record, or answers with the token again while the build goes on.

use std::sync::Arc;
use std::time::Instant;

use super::{BuildError, BuildSummary, Builds, in_index, run_blocking};
use crate::codepipeline::{CodePipeline, Failure, FailureKind, Success, fit};
use crate::names::{BuildId, CommitId, ProjectName, Repo, RepositoryName, SourceVersion};
use crate::record::BuildRecord;
use crate::source::Source;
use crate::state::BuildState;
use crate::store::{Layout, Store, StoreError};
use crate::trigger::codepipeline::{DEFAULT_PROJECT, JOB_KEY, Job};
use crate::trigger::{BuildTarget, EventError};

/// How many of a project's newest builds a job delivered again is looked for among.
const REDELIVERED_AMONG: usize = 200;

impl<S: Source> Builds<S> {
    /// Builds what the job asks for and puts its result (or a continuation token); the build's
    /// summary when one ran.
    pub async fn codepipeline_job(
        &self,
        job: Job,
        deadline: Option<Instant>,
    ) -> Result<Option<BuildSummary>, BuildError> {
        let Some(pipeline) = self.codepipeline.clone() else {
            return Err(EventError::Invalid {
                path: JOB_KEY.to_string(),
                problem: "CodePipeline jobs are taken by the function only".to_string(),
            }
            .into());
        };
        if let Some(token) = &job.continuation {
            self.follow_up(&*pipeline, &job, token).await?;
            return Ok(None);
        }
        let parameters = match &job.parameters {
            Ok(parameters) => parameters.clone(),
            Err(message) => {
                let failure = failure(FailureKind::ConfigurationError, message, None);
                pipeline.failed(&job.id, &failure).await?;
                return Ok(None);
            }
        };
        let name = job.name()?;
        let commit = match self.unpack_input(&*pipeline, &job, &name).await? {
            Ok(commit) => commit,
            Err(message) => {
                let failure = failure(FailureKind::JobFailed, &message, None);
                pipeline.failed(&job.id, &failure).await?;
                return Ok(None);
            }
        };
        let project = match parameters.project {
            Some(project) => project,
            None => ProjectName::parse(DEFAULT_PROJECT).map_err(|err| EventError::Invalid {
                path: "UserParameters.project".to_string(),
                problem: err.to_string(),
            })?,
        };
        let target = BuildTarget {
            buildspec: parameters.buildspec,
            env_overrides: parameters.variables,
            commit: Some(commit.clone()),
            // A job delivered again is built once.
            dedup_key: Some(format!("codepipeline:{}", job.id)),
            ..BuildTarget::new(
                project,
                Repo::Artifact(name.clone()),
                SourceVersion::Commit(commit),
                format!("codepipeline/{}", job.id),
            )
        };
        let summary = Box::pin(self.build(target, deadline)).await?;
        if summary.build_id.is_none() {
            // A job delivered again: its first delivery built it, and may not have answered.
            // The artifact unpacked for it is not built.
            let root = self.config.artifacts_dir();
            run_blocking(move || crate::source::discard_unpacked(&root, &name)).await?;
            self.answer_again(&*pipeline, &job, &summary.repository)
                .await?;
            return Ok(Some(summary));
        }
        self.answer_job(&*pipeline, &job, &summary).await?;
        Ok(Some(summary))
    }

    /// The input artifact, unpacked where the build's fetch finds it: the commit it stands for
    /// (its revision when that is a commit id, else the zip's SHA-256), or why it cannot be read
    /// (the job fails saying so).
    async fn unpack_input(
        &self,
        pipeline: &dyn CodePipeline,
        job: &Job,
        name: &RepositoryName,
    ) -> Result<Result<CommitId, String>, BuildError> {
        let root = self.config.artifacts_dir();
        let dir_error = |source| BuildError::WorkDir {
            path: root.clone(),
            source,
        };
        std::fs::create_dir_all(&root).map_err(dir_error)?;
        let zip = tempfile::NamedTempFile::new_in(&root).map_err(dir_error)?;
        match pipeline
            .get_artifact(&job.credentials, &job.input, zip.path())
            .await
        {
            Ok(()) => {}
            Err(err) if err.retryable => return Err(err.into()),
            Err(err) => return Ok(Err(format!("the input artifact could not be read: {err}"))),
        }
        let revision = job
            .revision
            .as_deref()
            .and_then(|r| CommitId::parse(r).ok());
        let (root, name) = (root.clone(), name.clone());
        run_blocking(move || {
            let mut file = zip.reopen()?;
            let commit = match revision {
                Some(commit) => commit,
                None => sha256_commit(&mut file)?,
            };
            std::io::Seek::rewind(&mut file)?;
            Ok::<_, std::io::Error>(
                crate::source::unpack(file, &root, &name, &commit)
                    .map(|_| commit)
                    .map_err(|err| format!("the input artifact could not be unpacked: {err}")),
            )
        })
        .await?
        .map_err(dir_error)
    }

    /// The job's result for a build that has run (or goes on elsewhere).
    async fn answer_job(
        &self,
        pipeline: &dyn CodePipeline,
        job: &Job,
        summary: &BuildSummary,
    ) -> Result<(), BuildError> {
        let Some(build_id) = &summary.build_id else {
            return Ok(());
        };
        if summary.status == BuildState::InProgress {
            let success = Success {
                continuation: Some(format!("{}/{build_id}", summary.repository)),
                external_id: build_id.clone(),
                summary: fit(summary.reason.as_deref().unwrap_or("running"), 2048),
                output_variables: Default::default(),
            };
            pipeline.succeeded(&job.id, &success).await?;
            return Ok(());
        }
        let record = self.job_record(&summary.repository, build_id).await?;
        match record {
            Some(record) => self.finish_job(pipeline, job, &record).await,
            None => Err(BuildError::Store(StoreError::Read {
                uri: summary.record_uri.clone().unwrap_or_default(),
                source: std::io::Error::other("the build ended without a record"),
            })),
        }
    }

    /// A job delivered again after its build began: Lambda tries an invocation again when the
    /// first could not put the job's result (CodePipeline or the store failed after the build),
    /// or when the function died during the build. The build is found among the project's
    /// newest by the job it was built for, and answers as a continuation would: its result once
    /// it has a record, else the token (CodePipeline calls again).
    async fn answer_again(
        &self,
        pipeline: &dyn CodePipeline,
        job: &Job,
        project: &ProjectName,
    ) -> Result<(), BuildError> {
        tracing::info!(
            job_id = job.id,
            "a CodePipeline job already taken: answered from its build, not built again"
        );
        let initiator = format!("codepipeline/{}", job.id);
        let listed = project.clone();
        let page = in_index(&self.books.index, move |index| {
            index.project_builds(&listed, None, REDELIVERED_AMONG)
        })
        .await?;
        let Some(entry) = page.entries.iter().find(|e| e.initiator == initiator) else {
            let message = format!(
                "this job was taken by an earlier delivery whose build is not among the newest \
                 {REDELIVERED_AMONG} of `{project}`"
            );
            let failure = failure(FailureKind::JobFailed, &message, None);
            pipeline.failed(&job.id, &failure).await?;
            return Ok(());
        };
        let token = format!("{project}/{}", entry.build_id);
        self.follow_up(pipeline, job, &token).await
    }

    /// A call with a continuation token: the build's result once it has a record, else the
    /// token again (the build still runs on CodeBuild, or here until the sweep closes it).
    async fn follow_up(
        &self,
        pipeline: &dyn CodePipeline,
        job: &Job,
        token: &str,
    ) -> Result<(), BuildError> {
        let followed = token
            .rsplit_once('/')
            .and_then(|(project, id)| Some((ProjectName::parse(project).ok()?, id.to_string())));
        let Some((project, build_id)) = followed else {
            let message = format!("the continuation token `{token}` names no build of pushbuild's");
            let failure = failure(FailureKind::JobFailed, &message, None);
            pipeline.failed(&job.id, &failure).await?;
            return Ok(());
        };
        if let Some(record) = self.job_record(&project, &build_id).await? {
            return self.finish_job(pipeline, job, &record).await;
        }
        let (store, layout) = (self.store.clone(), Layout::new(&project, &build_id));
        let handed = run_blocking(move || store.get(&layout.handover())).await??;
        let open = match BuildId::parse(&build_id) {
            Ok(id) => {
                let listed = project.clone();
                in_index(&self.books.index, move |index| index.entry(&listed, &id))
                    .await?
                    .is_some_and(|entry| entry.state.is_open())
            }
            Err(_) => false,
        };
        if handed.is_none() && !open {
            let message = format!("the build {build_id} this job followed is not known");
            let failure = failure(FailureKind::JobFailed, &message, Some(build_id));
            pipeline.failed(&job.id, &failure).await?;
            return Ok(());
        }
        let success = Success {
            continuation: Some(token.to_string()),
            external_id: build_id,
            summary: match handed {
                Some(_) => "running on AWS CodeBuild",
                None => "running",
            }
            .to_string(),
            output_variables: Default::default(),
        };
        pipeline.succeeded(&job.id, &success).await?;
        Ok(())
    }

    /// The job's result from the build's record: its first artifact to the job's output
    /// artifact and its exported variables out when it succeeded, its reason when not.
    async fn finish_job(
        &self,
        pipeline: &dyn CodePipeline,
        job: &Job,
        record: &BuildRecord,
    ) -> Result<(), BuildError> {
        let build_id = record.build_id.to_string();
        let took = format!(
            "{} in {} s, {} billed minute(s) (build {build_id})",
            record.status.as_str(),
            record.duration_ms / 1000,
            record.billed_minutes
        );
        if record.status != BuildState::Succeeded {
            let why = record
                .phases
                .iter()
                .find_map(|p| p.context.as_ref().map(ToString::to_string))
                .or_else(|| record.skip_reason.clone())
                .unwrap_or_default();
            let message = format!("{took}: {why}");
            let failure = failure(FailureKind::JobFailed, &message, Some(build_id));
            pipeline.failed(&job.id, &failure).await?;
            return Ok(());
        }
        if let Some(output) = &job.output {
            let Some(first) = record.artifacts.first() else {
                let message = format!(
                    "{took}, but the action declares an output artifact and the build made none \
                     (the buildspec's `artifacts`)"
                );
                let failure = failure(FailureKind::JobFailed, &message, Some(build_id));
                pipeline.failed(&job.id, &failure).await?;
                return Ok(());
            };
            let file = self.artifact_file(&first.uri).await?;
            pipeline
                .put_artifact(
                    &job.credentials,
                    output,
                    file.path(),
                    job.kms_key.as_deref(),
                )
                .await?;
        }
        let success = Success {
            continuation: None,
            external_id: build_id,
            summary: fit(&took, 2048),
            output_variables: record.exported_variables.clone(),
        };
        pipeline.succeeded(&job.id, &success).await?;
        Ok(())
    }

    /// The build's record, when it has one.
    async fn job_record(
        &self,
        project: &ProjectName,
        build_id: &str,
    ) -> Result<Option<BuildRecord>, BuildError> {
        let (store, key) = (self.store.clone(), Layout::new(project, build_id).record());
        let bytes = run_blocking(move || store.get(&key)).await??;
        Ok(bytes.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// The artifact at `uri` in the store, in a file of its own.
    async fn artifact_file(&self, uri: &str) -> Result<tempfile::NamedTempFile, BuildError> {
        let store: Arc<dyn Store> = self.store.clone();
        let (uri, root) = (uri.to_string(), self.config.artifacts_dir());
        run_blocking(move || {
            let read = |why: String| StoreError::Read {
                uri: uri.clone(),
                source: std::io::Error::other(why),
            };
            let key = uri.strip_prefix(&store.uri("")).unwrap_or(&uri);
            let mut reader = store
                .reader(key)?
                .ok_or_else(|| read("the build's artifact is gone".to_string()))?;
            let mut file = tempfile::NamedTempFile::new_in(&root)
                .map_err(|err| read(format!("no room for a copy: {err}")))?;
            std::io::copy(&mut reader, &mut file)
                .map_err(|err| read(format!("could not be copied: {err}")))?;
            Ok::<_, StoreError>(file)
        })
        .await?
        .map_err(BuildError::from)
    }
}

fn failure(kind: FailureKind, message: &str, external_id: Option<String>) -> Failure {
    Failure {
        kind,
        message: fit(message, 5000),
        external_id,
    }
}

/// A commit id for an artifact with no revision: the SHA-256 of its bytes.
fn sha256_commit(file: &mut std::fs::File) -> std::io::Result<CommitId> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(file, &mut hasher)?;
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    CommitId::parse(&hex).map_err(|err| std::io::Error::other(err.to_string()))
}
