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
pub mod shell;
mod spawn;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::buildspec::{BuildSpec, Command, OnFailure, Phase, PhaseName, Version};
use crate::names::is_variable_name;
use crate::runtimes::{self, Runtimes};
pub use deadline::Deadline;
use log::BuildLog;
pub use outcome::{
    ArtifactNames, BuildOutcome, ContextCode, PhaseContext, PhaseOutcome, RunStatus, UnknownContext,
};
pub use shell::ShellTail;
use shell::{CommandEnd, ShellSession};

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
            RunStatus::TimedOut => {
                status = RunStatus::TimedOut;
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
    let (exported_variables, artifact_names) = if status == RunStatus::TimedOut {
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

/// The commands of one phase attempt ended: how, and at which command.
enum Run {
    Ok,
    Failed { command: String, code: i32 },
    TimedOut,
}

struct Runner<'r, 'a> {
    req: &'r BuildRequest<'a>,
    log: &'r BuildLog,
    env: Vec<(String, String)>,
    session: Option<ShellSession>,
    /// A shell started ahead, for the first command that needs one.
    early: Option<EarlyShell>,
}

impl Runner<'_, '_> {
    fn run_phase(
        &mut self,
        name: PhaseName,
        phase: Option<&Phase>,
    ) -> Result<PhaseOutcome, ExecutorError> {
        let started = Utc::now();
        let clock = Instant::now();
        self.log.marker(&format!("Entering phase {name}"));
        let mut attempts = 0;
        let refused = match name {
            PhaseName::Install => self.choose_runtimes(phase),
            _ => None,
        };
        let (status, context) = if let Some(context) = refused {
            attempts = 1;
            self.log.marker_failed(&context.message);
            (RunStatus::Failed, Some(context))
        } else {
            loop {
                attempts += 1;
                self.log.clear_tail();
                let Some(phase) = phase else {
                    break (RunStatus::Succeeded, None);
                };
                let mut result = self.run_commands(&phase.commands)?;
                if !matches!(result, Run::TimedOut) {
                    let finally = self.run_commands(&phase.finally)?;
                    if matches!(result, Run::Ok) {
                        result = finally;
                    } else if matches!(finally, Run::TimedOut) {
                        result = Run::TimedOut;
                    }
                }
                match result {
                    Run::Ok => break (RunStatus::Succeeded, None),
                    Run::TimedOut => {
                        let context = match self.req.deadline.budget_reason() {
                            Some(reason) => {
                                self.log.marker_failed(&format!(
                                    "Build stopped during phase {name} at the end of its last paid \
                                 minute: {reason}; its processes were stopped"
                                ));
                                PhaseContext::new(
                                    ContextCode::BudgetReached,
                                    format!("monthly budget reached: {reason}"),
                                )
                            }
                            None => {
                                self.log.marker_failed(&format!(
                                "Build timed out during phase {name}; its processes were stopped"
                            ));
                                PhaseContext::new(
                                    ContextCode::BuildTimedOut,
                                    "the build's deadline passed",
                                )
                            }
                        };
                        break (RunStatus::TimedOut, Some(context));
                    }
                    Run::Failed { command, code } => {
                        let context = PhaseContext::new(
                            ContextCode::CommandExecutionError,
                            format!(
                                "Error while executing command: {}. Reason: exit status {code}",
                                first_line(&command)
                            ),
                        );
                        if let OnFailure::Retry { count, regex } = &phase.on_failure {
                            if attempts <= *count && self.output_matches(regex.as_deref()) {
                                self.log.marker(&format!(
                                    "Phase {name} failed; retrying it (retry {attempts} of {count})"
                                ));
                                continue;
                            }
                        }
                        break (RunStatus::Failed, Some(context));
                    }
                }
            }
        };
        let duration = clock.elapsed();
        self.log
            .phase_complete(name.log_name(), status, context.as_ref());
        Ok(PhaseOutcome {
            phase: name.log_name().to_string(),
            status,
            started,
            duration_ms: millis(duration),
            attempts,
            context,
        })
    }

    /// Chooses the image's runtime versions (the buildspec's `runtime-versions`, the image's
    /// defaults for the rest) and puts them in the build's environment; a version the image
    /// lacks fails INSTALL, naming what the image has.
    fn choose_runtimes(&mut self, install: Option<&Phase>) -> Option<PhaseContext> {
        let runtimes = self.req.runtimes?;
        let wanted = install.map_or(&[][..], |p| p.runtime_versions.as_slice());
        match runtimes.select(wanted) {
            Ok(chosen) => {
                for c in &chosen {
                    self.log.marker(&if c.manual {
                        format!(
                            "Selecting '{}' runtime version '{}' based on manual selections...",
                            c.runtime, c.version
                        )
                    } else {
                        format!(
                            "Using '{}' runtime version '{}', the image's default",
                            c.runtime, c.version
                        )
                    });
                }
                let path = env::get_var(&self.env, "PATH").unwrap_or_default();
                for (name, value) in runtimes::variables(&chosen, &path) {
                    env::set_var(&mut self.env, &name, &value);
                }
                None
            }
            Err(message) => Some(PhaseContext::new(ContextCode::YamlFileError, message)),
        }
    }

    fn output_matches(&self, regex: Option<&str>) -> bool {
        let Some(pattern) = regex else { return true };
        // The parser validated the pattern; one that still fails to compile matches nothing.
        regex::Regex::new(pattern).is_ok_and(|re| re.is_match(&self.log.tail()))
    }

    fn run_commands(&mut self, commands: &[Command]) -> Result<Run, ExecutorError> {
        for command in commands {
            self.log
                .marker(&format!("Running command {}", command.text));
            match self.run_one(&command.text)? {
                CommandEnd::Exited(0) | CommandEnd::ShellEnded(0) => continue,
                CommandEnd::TimedOut => return Ok(Run::TimedOut),
                end @ (CommandEnd::Exited(code) | CommandEnd::ShellEnded(code)) => {
                    if matches!(end, CommandEnd::ShellEnded(_))
                        && self.req.spec.version == Version::V0_2
                    {
                        self.log
                            .marker("The shell exited; the next command runs in a new shell");
                    }
                    self.log.marker_failed(&format!(
                        "Command did not exit successfully {} exit status {code}",
                        command.text
                    ));
                    return Ok(Run::Failed {
                        command: command.text.clone(),
                        code,
                    });
                }
            }
        }
        Ok(Run::Ok)
    }

    /// Runs one command in the build's shell (a new shell per command for version 0.1).
    fn run_one(&mut self, text: &str) -> Result<CommandEnd, ExecutorError> {
        if self.req.spec.version == Version::V0_1 {
            if let Some(old) = self.session.take() {
                old.finish();
            }
        }
        let session = match self.session.as_mut() {
            Some(session) => session,
            None => {
                let early = self
                    .early
                    .take()
                    .and_then(|early| early.catch_up(&self.env, &self.req.secret_values));
                let session = match early {
                    Some(session) => session,
                    None => {
                        let shell = self.req.spec.env.shell;
                        ShellSession::start(
                            shell,
                            &self.req.src_dir,
                            &self.env,
                            &self.req.work_dir,
                            self.log,
                        )
                        .map_err(|source| ExecutorError::ShellStart {
                            program: shell::program(shell),
                            source,
                        })?
                    }
                };
                self.session.insert(session)
            }
        };
        let end = session
            .run(text, &self.req.deadline)
            .map_err(|source| ExecutorError::Command { source })?;
        if matches!(end, CommandEnd::ShellEnded(_) | CommandEnd::TimedOut) {
            self.session = None;
        }
        Ok(end)
    }

    /// From a failure on, `CODEBUILD_BUILD_SUCCEEDING` is 0, in this shell and any later one.
    fn mark_failing(&mut self) {
        env::set_var(&mut self.env, "CODEBUILD_BUILD_SUCCEEDING", "0");
        if let Some(session) = self.session.as_mut() {
            let _ = session.run("export CODEBUILD_BUILD_SUCCEEDING=0", &self.req.deadline);
        }
    }

    /// Reads the exported variables and the shell-expanded artifact names from the build's shell.
    fn capture_end_values(&mut self) -> (Vec<(String, String)>, ArtifactNames) {
        let exported = &self.req.spec.env.exported_variables;
        let names = default_artifact_names(self.req.spec);
        let dir = self.req.work_dir.join("end-values");
        let mut script = String::new();
        for (i, name) in exported.iter().enumerate() {
            // Names are shell identifiers (the parser checks).
            script.push_str(&format!(
                "if [ \"${{{name}+set}}\" = set ]; then printf '%s' \"${name}\" > '{}/var-{i}'; fi\n",
                dir.display()
            ));
        }
        for (i, (_, name)) in names.iter().enumerate() {
            if name.contains('$') || name.contains('`') {
                let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
                script.push_str(&format!(
                    "printf '%s' \"{quoted}\" > '{}/name-{i}' 2>/dev/null\n",
                    dir.display()
                ));
            }
        }
        if !script.is_empty() {
            if std::fs::create_dir_all(&dir).is_err() {
                return (Vec::new(), names);
            }
            if self.req.spec.version == Version::V0_1 || self.session.is_none() {
                // A fresh shell sees the build's environment, not a previous shell's variables.
                self.session = None;
            }
            let _ = self.run_one(&script);
        }
        let exported_variables = exported
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let value = std::fs::read_to_string(dir.join(format!("var-{i}")))
                    .ok()
                    .or_else(|| {
                        self.env
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.clone())
                    })
                    .unwrap_or_default();
                (name.clone(), self.log.mask(&value))
            })
            .collect();
        let artifact_names = names
            .into_iter()
            .enumerate()
            .map(|(i, (id, name))| {
                let expanded = std::fs::read_to_string(dir.join(format!("name-{i}")))
                    .ok()
                    .filter(|s| !s.trim().is_empty());
                (id, expanded.unwrap_or(name))
            })
            .collect();
        (exported_variables, artifact_names)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
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
