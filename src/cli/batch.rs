//! `pushbuild run` of a buildspec with `batch`: its children planned (a mistake is exit status
//! 2 before anything runs), then built as builds of their own into the local store, `--jobs`
//! at once, each in its own copy of the source (children change their folders, and run at the
//! same time); then the batch's record, `batches/<project>/<batch-id>/batch.json`, and a line
//! per child. `PUSHBUILD_BATCH=off` (read with the other settings) builds such a buildspec as
//! one build.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use super::identity::identity;
use super::{EXIT_BUILD_FAILED, EXIT_INTERNAL, bad_input};
use crate::batch::{self, BatchRecord, Child, ChildEnd};
use crate::buildspec::{self, Batch};
use crate::executor::log::Echo;
use crate::names::{BuildId, RepositoryName};
use crate::pipeline::{self, BuildIdentity, BuildJob, BuildSettings, Ready, Work};
use crate::state::BuildState;
use crate::store::{LocalStore, ObjectMeta, Store, stop};
use crate::trigger::BatchChild;
use crate::vault::{self, Resolved};

/// A batch and what its children are built with.
pub(super) struct Batched<'a> {
    /// The source folder, copied for each child.
    pub dir: &'a Path,
    /// The buildspec, relative to the source (a child may name its own).
    pub buildspec: &'a Path,
    /// `--env`: over every child's variables.
    pub overrides: &'a [(String, String)],
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// When every child must have ended.
    pub deadline: Option<Instant>,
    pub project: RepositoryName,
    pub settings: &'a BuildSettings,
    pub store: &'a LocalStore,
}

impl Batched<'_> {
    pub fn run(&self, batch: &Batch) -> ExitCode {
        let children = match batch::plan(batch) {
            Ok(children) => children,
            Err(err) => return bad_input(format!("{}: {err}", self.buildspec.display())),
        };
        let work = match tempfile::Builder::new()
            .prefix("pushbuild-batch-")
            .tempdir_in(&self.settings.temp_root)
        {
            Ok(work) => work,
            Err(err) => {
                eprintln!("error: a folder for the batch's sources: {err}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        };
        let batch_id = BuildId::new();
        let jobs = self.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        });
        println!(
            "Batch {batch_id} of {}: {} build(s), {jobs} at once{}",
            self.project,
            children.len(),
            if batch.fast_fail { ", fast-fail" } else { "" }
        );
        let settings = BuildSettings {
            echo: Echo::Off,
            ..self.settings.clone()
        };
        let mut record = BatchRecord::new(
            batch_id.as_str(),
            self.project.as_str(),
            batch.fast_fail,
            &children,
        );
        let stop_key = BatchRecord::stop_key(self.project.as_str(), batch_id.as_str());
        let ask_stop = |why: &str| {
            println!("  {why}: the running builds are asked to stop");
            if let Err(err) = stop::ask(self.store, &stop_key, why) {
                eprintln!("error: asking the batch's builds to stop: {err}");
            }
        };
        let run_child = |i: usize| {
            let (build_id, status) = self.child(&children[i], &settings, work.path(), &batch_id);
            println!(
                "  {} {}{}",
                children[i].identifier,
                status.as_str(),
                build_id
                    .as_deref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default()
            );
            (build_id, status)
        };
        batch::schedule(&mut record, jobs, run_child, ask_stop);
        self.finish(&record)
    }

    /// Builds one child in its own copy of the source; its build id and how it ended.
    fn child(
        &self,
        child: &Child,
        settings: &BuildSettings,
        work: &Path,
        batch_id: &BuildId,
    ) -> (Option<String>, BuildState) {
        let src = work.join(&child.identifier);
        if let Err(err) = copy_tree(self.dir, &src) {
            eprintln!("{}: cannot copy the source: {err}", child.identifier);
            return (None, BuildState::Failed);
        }
        let spec = child.buildspec.as_deref().map_or(self.buildspec, Path::new);
        let mut parsed = match buildspec::load(&src.join(spec)) {
            Ok(parsed) => parsed,
            Err(err) => {
                eprintln!("{}: {err}", child.identifier);
                return (None, BuildState::Failed);
            }
        };
        // A child is one build: its buildspec's own `batch` is not run again.
        parsed.spec.batch = None;
        let secrets = match vault::from_environment(&parsed.spec.env, |n| std::env::var(n).ok()) {
            Resolved::Values(secrets) => secrets,
            Resolved::Refused(message) => {
                eprintln!("{}: {message}", child.identifier);
                return (None, BuildState::Failed);
            }
        };
        let mut overrides = child.env();
        overrides.extend(self.overrides.iter().cloned());
        let mut ready = Ready {
            overrides,
            secrets,
            ..Ready::new(parsed, src)
        };
        if let Some(image) = &child.image {
            ready.notes.push(format!(
                "The batch's task `{}` names the image {image}: here it runs with this machine's \
                 tools",
                child.identifier
            ));
        }
        let job = BuildJob::new(
            BuildIdentity {
                batch: Some(BatchChild {
                    batch_id: batch_id.to_string(),
                    identifier: child.identifier.clone(),
                    compute_type: child.compute_type.clone(),
                    privileged_mode: child.privileged_mode,
                    image: child.image.clone(),
                }),
                ..identity(self.project.clone(), self.dir)
            },
            settings,
            Work::Run(Box::new(ready)),
        )
        .with_deadline(self.deadline);
        let build_id = job.identity.build_id.to_string();
        match pipeline::run(&job, self.store) {
            Ok(stored) => (Some(build_id), stored.record.status),
            Err(err) => {
                eprintln!("{}: {err}", child.identifier);
                (Some(build_id), BuildState::Failed)
            }
        }
    }

    /// Stores the batch's record and prints its summary; the exit status says how it ended.
    fn finish(&self, record: &BatchRecord) -> ExitCode {
        let key = BatchRecord::key(self.project.as_str(), &record.batch_id);
        let stored = serde_json::to_vec_pretty(record)
            .map_err(|err| err.to_string())
            .and_then(|bytes| {
                let meta = ObjectMeta::new("application/json");
                self.store
                    .put(&key, &bytes, &meta)
                    .map_err(|e| e.to_string())
            });
        let uri = match stored {
            Ok(uri) => uri,
            Err(err) => {
                eprintln!("error: the batch's record: {err}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        };
        print!("{}", render(record, &uri));
        if record.status == BuildState::Succeeded {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_BUILD_FAILED)
        }
    }
}

/// The batch's summary: its status, then each child's.
fn render(record: &BatchRecord, uri: &str) -> String {
    let mut out = format!(
        "\nBatch {}  {}\n  {:<24} {:<10} BUILD\n",
        record.batch_id,
        record.status.as_str(),
        "IDENTIFIER",
        "STATUS"
    );
    for ChildEnd {
        identifier,
        build_id,
        status,
        reason,
        ..
    } in &record.children
    {
        let what = build_id.as_deref().or(reason.as_deref()).unwrap_or("");
        let _ = writeln!(out, "  {identifier:<24} {:<10} {what}", status.as_str());
    }
    let _ = writeln!(out, "Record  {uri}");
    out
}

/// Copies the folder `from` to `to`: files with their modes, links as links, folders.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        let relative = entry
            .path()
            .strip_prefix(from)
            .map_err(std::io::Error::other)?;
        let dest = to.join(relative);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
