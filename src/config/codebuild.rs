//! The settings of builds that outgrow Lambda and run on AWS CodeBuild.

use super::{ConfigError, Vars, invalid};
use crate::codebuild::{ComputeType, MAX_TIMEOUT_MINUTES, MIN_TIMEOUT_MINUTES};
use crate::names::ProjectName;

/// Where builds run when Lambda cannot hold them.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeBuildSettings {
    /// `PUSHBUILD_CODEBUILD_PROJECT`: the CodeBuild project builds are handed to (the template
    /// creates it); unset: every build runs in the function.
    pub project: Option<String>,
    /// `PUSHBUILD_CODEBUILD_REPOSITORIES`: repositories (pushbuild's project names, comma
    /// separated) whose builds always run on CodeBuild.
    pub repositories: Vec<ProjectName>,
    /// `PUSHBUILD_CODEBUILD_COMPUTE_TYPE`: the compute type (default `BUILD_GENERAL1_SMALL`).
    pub compute_type: ComputeType,
    /// `PUSHBUILD_CODEBUILD_TIMEOUT_MINUTES`: a CodeBuild build's timeout (default 60; 5 to
    /// 2160, CodeBuild's range). The budget reserves this many minutes when a build is handed
    /// over and gives back what it did not use.
    pub timeout_minutes: u64,
}

impl Default for CodeBuildSettings {
    fn default() -> Self {
        CodeBuildSettings {
            project: None,
            repositories: Vec::new(),
            compute_type: ComputeType::default(),
            timeout_minutes: DEFAULT_TIMEOUT_MINUTES,
        }
    }
}

const DEFAULT_TIMEOUT_MINUTES: u64 = 60;

pub(super) fn settings(vars: &Vars) -> Result<CodeBuildSettings, ConfigError> {
    let project = vars.get("PUSHBUILD_CODEBUILD_PROJECT");
    if let Some(name) = &project {
        let good = (2..=255).contains(&name.len())
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !good {
            return Err(invalid(
                "PUSHBUILD_CODEBUILD_PROJECT",
                "a CodeBuild project name (2 to 255 letters, digits, `-` and `_`, starting with a letter or digit)",
                Some(name),
            ));
        }
    }
    let mut repositories = Vec::new();
    if let Some(text) = vars.get("PUSHBUILD_CODEBUILD_REPOSITORIES") {
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let name = ProjectName::parse(item).map_err(|_| {
                invalid(
                    "PUSHBUILD_CODEBUILD_REPOSITORIES",
                    "repository names as pushbuild names them (`my-repo`, `github.com/owner/repo`), separated by commas",
                    Some(item),
                )
            })?;
            repositories.push(name);
        }
        if project.is_none() && !repositories.is_empty() {
            return Err(invalid(
                "PUSHBUILD_CODEBUILD_REPOSITORIES",
                "to be set with PUSHBUILD_CODEBUILD_PROJECT, the project their builds run in",
                Some(&text),
            ));
        }
    }
    let compute_type = match vars.get("PUSHBUILD_CODEBUILD_COMPUTE_TYPE") {
        Some(text) => ComputeType::parse(&text).ok_or_else(|| {
            invalid(
                "PUSHBUILD_CODEBUILD_COMPUTE_TYPE",
                format!("one of {}", ComputeType::names().join(", ")),
                Some(&text),
            )
        })?,
        None => ComputeType::default(),
    };
    let timeout_minutes = vars
        .number(
            "PUSHBUILD_CODEBUILD_TIMEOUT_MINUTES",
            MIN_TIMEOUT_MINUTES,
            MAX_TIMEOUT_MINUTES,
        )?
        .unwrap_or(DEFAULT_TIMEOUT_MINUTES);
    Ok(CodeBuildSettings {
        project,
        repositories,
        compute_type,
        timeout_minutes,
    })
}
