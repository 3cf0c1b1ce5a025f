//! Runs a buildspec's phases with CodeBuild's rules: one shell for the whole build, phase flow
//! install ─▶ pre_build ─▶ build ─▶ post_build, `finally` blocks, `on-failure`, a deadline.
//!
//! This module owns the phase rules; [`shell`] only runs commands. A failed user build is not an
//! error here: it is a [`BuildOutcome`] like any other.

mod deadline;
pub mod env;
mod ignored;
pub mod log;
mod outcome;
mod output;
pub mod reap;
mod runner;
pub mod shell;
mod spawn;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use crate::buildspec::{BuildSpec, Command, OnFailure, Phase, PhaseName, Version};
use crate::names::is_variable_name;
use crate::runtimes::{self, Runtimes};
pub use deadline::Deadline;
use log::BuildLog;
pub use outcome::{
    ArtifactNames, BuildOutcome, ContextCode, PhaseContext, PhaseOutcome, RunStatus, UnknownContext,
};
use runner::Runner;
pub use shell::ShellTail;
use shell::{CommandEnd, ShellSession};
pub use spawn::find_program;

/// A failure of pushbuild's own while running the phases (not of the user's commands, whose
/// failures are outcomes).
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("cannot start the build's shell `{program}`: {source}")]
    ShellStart {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot hand a command to the build's shell: {source}")]
    Command {
        #[source]
        source: std::io::Error,
    },
}

/// Everything the executor needs to run one build.
pub struct BuildRequest<'a> {
    pub spec: &'a BuildSpec,
    pub src_dir: PathBuf,
    /// A private directory outside the source for pushbuild's own files (the shells' command
    /// files).
    pub work_dir: PathBuf,
    /// The whole environment of the commands (see [`env::environment`]).
    pub env: Vec<(String, String)>,
    /// Values to mask in the log (of `parameter-store` and `secrets-manager` variables).
    pub secret_values: Vec<String>,
    /// When the build must stop (TIMED_OUT, or FAILED when the budget stopped it).
    pub deadline: Deadline,
    /// The image's runtimes, which `runtime-versions` chooses from; `None`: the machine's own
    /// tools (a zip deployment, `pushbuild run`), and `runtime-versions` is noted and ignored.
    pub runtimes: Option<&'a Runtimes>,
}

/// A build's shell, started ahead of its build: while the build takes its number and its first
/// minute in the index, which is about as long as a shell takes to start. It runs nothing until
/// the build's first command, before which it is given what of the build's environment it was
/// started without (the number).
pub struct EarlyShell {
    /// `None` once handed over.
    session: Option<ShellSession>,
    env: Vec<(String, String)>,
}

impl Drop for EarlyShell {
    /// A shell never used ends as a build's shell does, by its loop's end: killed while it
    /// starts, its keeper would say so in the log.
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            session.finish();
        }
    }
}

impl EarlyShell {
    /// Starts `spec`'s shell in `src_dir` with `env`, its command file in `work_dir` and its
    /// output to `log`. `None` where an early shell cannot serve (a version 0.1 buildspec has a
    /// shell per command) or does not start (the build then starts its own, and says why not).
    pub fn start(
        spec: &BuildSpec,
        src_dir: &Path,
        env: Vec<(String, String)>,
        work_dir: &Path,
        log: &BuildLog,
    ) -> Option<EarlyShell> {
        if spec.version == Version::V0_1 || env.iter().any(|(_, v)| v.contains('\0')) {
            return None;
        }
        let session = ShellSession::start(spec.env.shell, src_dir, &env, work_dir, log).ok()?;
        Some(EarlyShell {
            session: Some(session),
            env,
        })
    }

    /// The shell, once it has the environment `env`: what it lacks (or has with another value)
    /// is exported, what it should not have is unset, in the one line it reads before its
    /// loop. `None`, and the shell stopped, when that cannot be done: a name that is not a shell
    /// variable's, a value with a line break, or a secret's (which the build's environment
    /// gives the shell when it starts, never through its control pipe).
    fn catch_up(mut self, env: &[(String, String)], secrets: &[String]) -> Option<ShellSession> {
        let had: std::collections::HashMap<&str, &str> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut script = String::new();
        for (name, value) in env {
            if had.get(name.as_str()) == Some(&value.as_str()) {
                continue;
            }
            let secret = secrets
                .iter()
                .any(|s| !s.is_empty() && value.contains(s.as_str()));
            if !is_variable_name(name) || secret {
                return None;
            }
            script.push_str(&format!(
                "export {name}='{}'; ",
                value.replace('\'', "'\\''")
            ));
        }
        let wanted: std::collections::HashSet<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        for (name, _) in &self.env {
            if !wanted.contains(name.as_str()) {
                if !is_variable_name(name) {
                    return None;
                }
                script.push_str(&format!("unset {name}; "));
            }
        }
        // One line, before the shell's loop: a value with a line break cannot go that way.
        let mut session = self.session.take()?;
        match session.amend_env(script.trim_end()) {
            Ok(()) => Some(session),
            Err(_) => {
                session.finish();
                None
            }
        }
    }
}

/// Runs the phases of `req.spec`, writing the log to `log`. A failed command is an outcome; only
/// pushbuild's own failure (the shell cannot start) is an error.
pub fn run(req: &BuildRequest<'_>, log: &BuildLog) -> Result<BuildOutcome, ExecutorError> {
    run_with(req, log, None)
}

/// [`run`], with the shell `early` started for it (see [`EarlyShell`]).
pub fn run_with(
    req: &BuildRequest<'_>,
    log: &BuildLog,
    early: Option<EarlyShell>,
) -> Result<BuildOutcome, ExecutorError> {
    let (outcome, tail) = run_to_tail(req, log, early)?;
    if let Some(tail) = tail {
        tail.collect();
    }
    Ok(outcome)
}

/// [`run_with`], up to the last shell's [`ShellTail`]: the shell has ended and what it left
/// is killed, and the caller collects the rest when it likes (before the log's last line).
pub fn run_to_tail(
    req: &BuildRequest<'_>,
    log: &BuildLog,
    early: Option<EarlyShell>,
) -> Result<(BuildOutcome, Option<ShellTail>), ExecutorError> {
    log.add_secrets(req.secret_values.iter().cloned());
    let retries_on_output = PhaseName::ALL
        .iter()
        .filter_map(|&n| req.spec.phases.get(n))
        .any(|p| matches!(&p.on_failure, OnFailure::Retry { regex: Some(_), .. }));
    if retries_on_output {
        log.keep_tail();
    }
    ignored::note_ignored_keys(req.spec, req.runtimes.is_some(), log);
    if let Some((name, _)) = req.env.iter().find(|(_, value)| value.contains('\0')) {
        return Ok((cannot_set(name, log), None));
    }
    let mut runner = Runner {
        req,
        log,
        env: req.env.clone(),
        session: None,
        early,
    };
    let mut status = RunStatus::Succeeded;
    let mut phases = Vec::new();
    let mut upload_artifacts = true;
    for name in PhaseName::ALL {
        let phase = req.spec.phases.get(name);
        let outcome = runner.run_phase(name, phase)?;
        let phase_status = outcome.status;
        phases.push(outcome);
        match phase_status {
            RunStatus::Succeeded => continue,
            RunStatus::TimedOut | RunStatus::Stopped => {
                status = phase_status;
                break;
            }
            RunStatus::Failed => {
                status = RunStatus::Failed;
                runner.mark_failing();
                let on_failure = phase.map(|p| &p.on_failure);
                if on_failure == Some(&OnFailure::Continue) {
                    log.marker(&format!(
                        "Phase {name} failed; on-failure is CONTINUE, so the build goes on"
                    ));
                    continue;
                }
                match name {
                    PhaseName::Install | PhaseName::PreBuild => {
                        upload_artifacts = false;
                        break;
                    }
                    PhaseName::Build | PhaseName::PostBuild => continue,
                }
            }
        }
    }
    let (exported_variables, artifact_names) =
        if matches!(status, RunStatus::TimedOut | RunStatus::Stopped) {
            (Vec::new(), default_artifact_names(req.spec))
        } else {
            runner.capture_end_values()
        };
    let tail = runner.session.take().map(ShellSession::end);
    let outcome = BuildOutcome {
        status,
        phases,
        exported_variables,
        artifact_names,
        upload_artifacts,
    };
    Ok((outcome, tail))
}

/// The build whose environment holds a NUL byte in `name`'s value (from an event's override or
/// a secret; the buildspec's own are refused when parsed): no shell can start with it, so the
/// first phase fails naming the variable (never its value).
fn cannot_set(name: &str, log: &BuildLog) -> BuildOutcome {
    let phase = PhaseName::Install.log_name();
    log.marker(&format!("Entering phase {phase}"));
    let context = PhaseContext::new(
        ContextCode::ClientError,
        format!("the variable {name} holds a NUL byte, which no process's environment can carry"),
    );
    log.phase_complete(phase, RunStatus::Failed, Some(&context));
    BuildOutcome {
        status: RunStatus::Failed,
        phases: vec![PhaseOutcome {
            phase: phase.to_string(),
            status: RunStatus::Failed,
            started: Utc::now(),
            duration_ms: 0,
            attempts: 1,
            context: Some(context),
        }],
        exported_variables: Vec::new(),
        artifact_names: Vec::new(),
        upload_artifacts: false,
    }
}

fn default_artifact_names(spec: &BuildSpec) -> ArtifactNames {
    let Some(artifacts) = &spec.artifacts else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Some(name) = &artifacts.primary.name {
        names.push((None, name.clone()));
    }
    for (id, set) in &artifacts.secondary {
        if let Some(name) = &set.name {
            names.push((Some(id.clone()), name.clone()));
        }
    }
    names
}

/// Whole milliseconds of `d`, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A private directory for one build's control files, removed when dropped.
pub fn work_dir_in(parent: &Path) -> std::io::Result<tempfile::TempDir> {
    std::fs::create_dir_all(parent)?;
    tempfile::Builder::new()
        .prefix("pushbuild-")
        .tempdir_in(parent)
}

#[cfg(test)]
#[path = "early_tests.rs"]
mod early_tests;
