//! The runner of one build's phases: each phase's commands in the build's shell, its `finally`
//! block, its retries, the runtimes INSTALL chooses, and what the build exports at its end.

use std::time::Instant;

use chrono::Utc;

use super::*;

/// The commands of one phase attempt ended: how, and at which command.
pub(super) enum Run {
    Ok,
    Failed { command: String, code: i32 },
    TimedOut,
}

pub(super) struct Runner<'r, 'a> {
    pub(super) req: &'r BuildRequest<'a>,
    pub(super) log: &'r BuildLog,
    pub(super) env: Vec<(String, String)>,
    pub(super) session: Option<ShellSession>,
    /// A shell started ahead, for the first command that needs one.
    pub(super) early: Option<EarlyShell>,
}

impl Runner<'_, '_> {
    pub(super) fn run_phase(
        &mut self,
        name: PhaseName,
        phase: Option<&Phase>,
    ) -> Result<PhaseOutcome, ExecutorError> {
        let started = Utc::now();
        let clock = Instant::now();
        self.log.marker(&format!("Entering phase {name}"));
        let refused = match name {
            PhaseName::Install => self.choose_runtimes(phase),
            _ => None,
        };
        let (status, context, attempts) = match refused {
            Some(context) => {
                self.log.marker_failed(&context.message);
                (RunStatus::Failed, Some(context), 1)
            }
            None => self.attempts(name, phase)?,
        };
        self.log
            .phase_complete(name.log_name(), status, context.as_ref());
        Ok(PhaseOutcome {
            phase: name.log_name().to_string(),
            status,
            started,
            duration_ms: millis(clock.elapsed()),
            attempts,
            context,
        })
    }

    /// Runs a phase's commands and `finally` block, again while `on-failure: RETRY` allows:
    /// how it ended, why, and how many attempts it took.
    fn attempts(
        &mut self,
        name: PhaseName,
        phase: Option<&Phase>,
    ) -> Result<(RunStatus, Option<PhaseContext>, u32), ExecutorError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.log.clear_tail();
            let Some(phase) = phase else {
                return Ok((RunStatus::Succeeded, None, attempts));
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
            let (command, code) = match result {
                Run::Ok => return Ok((RunStatus::Succeeded, None, attempts)),
                Run::TimedOut => {
                    let context = self.timed_out(name);
                    return Ok((RunStatus::TimedOut, Some(context), attempts));
                }
                Run::Failed { command, code } => (command, code),
            };
            if let OnFailure::Retry { count, regex } = &phase.on_failure {
                if attempts <= *count && self.output_matches(regex.as_deref()) {
                    self.log.marker(&format!(
                        "Phase {name} failed; retrying it (retry {attempts} of {count})"
                    ));
                    continue;
                }
            }
            let context = PhaseContext::new(
                ContextCode::CommandExecutionError,
                format!(
                    "Error while executing command: {}. Reason: exit status {code}",
                    first_line(&command)
                ),
            );
            return Ok((RunStatus::Failed, Some(context), attempts));
        }
    }

    /// Why a phase's commands were stopped: the month's budget, or the build's deadline.
    fn timed_out(&self, name: PhaseName) -> PhaseContext {
        if let Some(reason) = self.req.deadline.stop_reason() {
            self.log.marker_failed(&format!(
                "Build stopped during phase {name}: {reason}; its processes were stopped"
            ));
            return PhaseContext::new(ContextCode::BuildStopped, reason);
        }
        match self.req.deadline.budget_reason() {
            Some(reason) => {
                self.log.marker_failed(&format!(
                    "Build stopped during phase {name} at the end of its last paid minute: \
                     {reason}; its processes were stopped"
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
                PhaseContext::new(ContextCode::BuildTimedOut, "the build's deadline passed")
            }
        }
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
    pub(super) fn mark_failing(&mut self) {
        env::set_var(&mut self.env, "CODEBUILD_BUILD_SUCCEEDING", "0");
        if let Some(session) = self.session.as_mut() {
            let _ = session.run("export CODEBUILD_BUILD_SUCCEEDING=0", &self.req.deadline);
        }
    }

    /// Reads the exported variables and the shell-expanded artifact names from the build's shell.
    pub(super) fn capture_end_values(&mut self) -> (Vec<(String, String)>, ArtifactNames) {
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
