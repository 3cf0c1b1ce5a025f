//! Runs a buildspec's phases with CodeBuild's rules: one shell for the whole build, phase flow
//! install ─▶ pre_build ─▶ build ─▶ post_build, `finally` blocks, `on-failure`, a deadline.
//!
//! This module owns the phase rules; [`shell`] only runs commands. A failed user build is not an
//! error here: it is a [`BuildOutcome`] like any other.

pub mod env;
pub mod log;
pub mod shell;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::buildspec::{BuildSpec, Command, OnFailure, Phase, PhaseName, Version};
use log::BuildLog;
use shell::{CommandEnd, ShellSession};

/// How a build, or one of its phases, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    /// Not run (a build record only: the budget refused it).
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Skipped => "SKIPPED",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one phase ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseOutcome {
    pub phase: String,
    pub status: Status,
    pub started: DateTime<Utc>,
    pub duration_ms: u64,
    /// How many times the phase ran (more than 1 after `on-failure: RETRY`).
    pub attempts: u32,
    /// Why it failed, in CodeBuild's words (`COMMAND_EXECUTION_ERROR: ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What running the phases gave.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutcome {
    pub status: Status,
    pub phases: Vec<PhaseOutcome>,
    /// `exported-variables` with their values at the end of the build (masked), in spec order.
    pub exported_variables: Vec<(String, String)>,
    /// Artifact names after shell expansion (`name: app-$(date +%s)`), by artifact identifier
    /// (`None` for the primary artifact).
    pub artifact_names: ArtifactNames,
    /// Whether CodeBuild's rules upload artifacts after these phases (not after a failed
    /// install or pre_build).
    pub upload_artifacts: bool,
}

/// Artifact names by artifact identifier (`None` for the primary artifact).
pub type ArtifactNames = Vec<(Option<String>, String)>;

/// Everything the executor needs to run one build.
pub struct BuildRequest<'a> {
    pub spec: &'a BuildSpec,
    pub src_dir: PathBuf,
    /// A private directory outside the source for pushbuild's own files (command files).
    pub work_dir: PathBuf,
    /// The whole environment of the commands (see [`env::environment`]).
    pub env: Vec<(String, String)>,
    /// Values to mask in the log (of `parameter-store` and `secrets-manager` variables).
    pub secret_values: Vec<String>,
    /// When the build must stop (TIMED_OUT).
    pub deadline: Option<Instant>,
}

/// Runs the phases of `req.spec`, writing the log to `log`.
pub fn run(req: &BuildRequest<'_>, log: &BuildLog) -> BuildOutcome {
    log.add_secrets(req.secret_values.iter().cloned());
    let retries_on_output = PhaseName::ALL
        .iter()
        .filter_map(|&n| req.spec.phases.get(n))
        .any(|p| matches!(&p.on_failure, OnFailure::Retry { regex: Some(_), .. }));
    if retries_on_output {
        log.keep_tail();
    }
    note_ignored_keys(req.spec, log);
    let mut runner = Runner {
        req,
        log,
        env: req.env.clone(),
        session: None,
    };
    let mut status = Status::Succeeded;
    let mut phases = Vec::new();
    let mut upload_artifacts = true;
    for name in PhaseName::ALL {
        let phase = req.spec.phases.get(name);
        let outcome = runner.run_phase(name, phase);
        let phase_status = outcome.status;
        phases.push(outcome);
        match phase_status {
            Status::Succeeded | Status::Skipped => continue,
            Status::TimedOut => {
                status = Status::TimedOut;
                break;
            }
            Status::Failed => {
                status = Status::Failed;
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
    let (exported_variables, artifact_names) = if status == Status::TimedOut {
        (Vec::new(), default_artifact_names(req.spec))
    } else {
        runner.capture_end_values()
    };
    if let Some(session) = runner.session.take() {
        session.finish();
    }
    BuildOutcome {
        status,
        phases,
        exported_variables,
        artifact_names,
        upload_artifacts,
    }
}

/// Logs each buildspec key that is accepted but not acted on, and why.
fn note_ignored_keys(spec: &BuildSpec, log: &BuildLog) {
    let mut notes: Vec<String> = Vec::new();
    if spec.run_as.is_some() {
        notes.push("run-as: commands run as the function's own user".into());
    }
    if spec.proxy.is_some() {
        notes.push("proxy: builds run with the function's own network access".into());
    }
    if spec.batch.is_some() {
        notes.push("batch: each push runs one build".into());
    }
    if !spec.reports.is_empty() {
        notes.push("reports: test reports are not collected yet".into());
    }
    if spec.cache.is_some() {
        notes.push("cache: builds do not keep a cache yet".into());
    }
    if spec.env.git_credential_helper {
        notes.push("env.git-credential-helper: no credential helper is configured".into());
    }
    for name in PhaseName::ALL {
        if let Some(phase) = spec.phases.get(name) {
            if phase.run_as.is_some() {
                notes.push(format!(
                    "phases.{}.run-as: commands run as the function's own user",
                    name.key()
                ));
            }
            if !phase.runtime_versions.is_empty() {
                let wanted: Vec<String> = phase
                    .runtime_versions
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                notes.push(format!(
                    "phases.{}.runtime-versions ({}): the runtime is the function's own",
                    name.key(),
                    wanted.join(", ")
                ));
            }
        }
    }
    for note in notes {
        log.marker(&format!("Ignoring {note}"));
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
}

impl Runner<'_, '_> {
    fn run_phase(&mut self, name: PhaseName, phase: Option<&Phase>) -> PhaseOutcome {
        let started = Utc::now();
        let clock = Instant::now();
        self.log.marker(&format!("Entering phase {name}"));
        let mut attempts = 0;
        let (status, message) = loop {
            attempts += 1;
            self.log.clear_tail();
            let Some(phase) = phase else {
                break (Status::Succeeded, None);
            };
            let mut result = self.run_commands(&phase.commands);
            if !matches!(result, Run::TimedOut) {
                let finally = self.run_commands(&phase.finally);
                if matches!(result, Run::Ok) {
                    result = finally;
                } else if matches!(finally, Run::TimedOut) {
                    result = Run::TimedOut;
                }
            }
            match result {
                Run::Ok => break (Status::Succeeded, None),
                Run::TimedOut => {
                    self.log.marker_failed(&format!(
                        "Build timed out during phase {name}; its processes were stopped"
                    ));
                    break (
                        Status::TimedOut,
                        Some("BUILD_TIMED_OUT: the build's deadline passed".to_string()),
                    );
                }
                Run::Failed { command, code } => {
                    let message = format!(
                        "COMMAND_EXECUTION_ERROR: Error while executing command: {}. Reason: exit status {code}",
                        first_line(&command)
                    );
                    if let OnFailure::Retry { count, regex } = &phase.on_failure {
                        if attempts <= *count && self.output_matches(regex.as_deref()) {
                            self.log.marker(&format!(
                                "Phase {name} failed; retrying it (retry {attempts} of {count})"
                            ));
                            continue;
                        }
                    }
                    break (Status::Failed, Some(message));
                }
            }
        };
        let duration = clock.elapsed();
        let complete = format!("Phase complete: {name} State: {status}");
        if status == Status::Succeeded {
            self.log.marker_ok(&complete);
        } else {
            self.log.marker_failed(&complete);
        }
        self.log.marker(&format!(
            "Phase context status code: {} Message: {}",
            message
                .as_deref()
                .and_then(|m| m.split(':').next())
                .unwrap_or(""),
            message
                .as_deref()
                .and_then(|m| m.split_once(": ").map(|(_, rest)| rest))
                .unwrap_or("")
        ));
        PhaseOutcome {
            phase: name.log_name().to_string(),
            status,
            started,
            duration_ms: millis(duration),
            attempts,
            message,
        }
    }

    fn output_matches(&self, regex: Option<&str>) -> bool {
        let Some(pattern) = regex else { return true };
        // The parser validated the pattern; one that still fails to compile matches nothing.
        regex::Regex::new(pattern).is_ok_and(|re| re.is_match(&self.log.tail()))
    }

    fn run_commands(&mut self, commands: &[Command]) -> Run {
        for command in commands {
            self.log
                .marker(&format!("Running command {}", command.text));
            match self.run_one(&command.text) {
                CommandEnd::Exited(0) | CommandEnd::ShellEnded(0) => continue,
                CommandEnd::TimedOut => return Run::TimedOut,
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
                    return Run::Failed {
                        command: command.text.clone(),
                        code,
                    };
                }
            }
        }
        Run::Ok
    }

    /// Runs one command in the build's shell (a new shell per command for version 0.1).
    fn run_one(&mut self, text: &str) -> CommandEnd {
        if self.req.spec.version == Version::V0_1 {
            if let Some(old) = self.session.take() {
                old.finish();
            }
        }
        let session = match self.session.as_mut() {
            Some(session) => session,
            None => match ShellSession::start(
                self.req.spec.env.shell,
                &self.req.src_dir,
                &self.env,
                &self.req.work_dir,
                self.log,
            ) {
                Ok(session) => self.session.insert(session),
                Err(err) => {
                    self.log
                        .marker_failed(&format!("Cannot start the shell: {err}"));
                    return CommandEnd::ShellEnded(127);
                }
            },
        };
        let end = match session.run(text, self.req.deadline) {
            Ok(end) => end,
            Err(err) => {
                self.log
                    .marker_failed(&format!("Cannot hand the command to the shell: {err}"));
                CommandEnd::ShellEnded(127)
            }
        };
        if matches!(end, CommandEnd::ShellEnded(_) | CommandEnd::TimedOut) {
            self.session = None;
        }
        end
    }

    /// From a failure on, `CODEBUILD_BUILD_SUCCEEDING` is 0, in this shell and any later one.
    fn mark_failing(&mut self) {
        env::set_var(&mut self.env, "CODEBUILD_BUILD_SUCCEEDING", "0");
        if let Some(session) = self.session.as_mut() {
            let _ = session.run("export CODEBUILD_BUILD_SUCCEEDING=0", self.req.deadline);
        }
    }

    /// Reads the exported variables and the shell-expanded artifact names from the build's shell.
    fn capture_end_values(&mut self) -> (Vec<(String, String)>, ArtifactNames) {
        let exported = &self.req.spec.env.exported_variables;
        let names = default_artifact_names(self.req.spec);
        let dir = self.req.work_dir.join("end-values");
        if std::fs::create_dir_all(&dir).is_err() {
            return (Vec::new(), names);
        }
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
