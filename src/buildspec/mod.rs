//! The buildspec model: every key of CodeBuild's buildspec reference (version 0.2, with 0.1
//! accepted), as typed values the executor and the artifact packager read.
//!
//! `parse` turns YAML text into a [`BuildSpec`] plus warnings, or into a [`BuildspecError`] that
//! names the file, the key path and the line.

mod batch;
mod docker;
mod parse;
mod yaml;

use std::fmt;
use std::path::Path;

pub use batch::{Batch, BatchEnv, BatchFanout, BatchMatrix, BatchTask};
pub use docker::{DockerUse, docker_use};
pub use parse::parse;

/// A parsed buildspec and the warnings its parse produced.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub spec: BuildSpec,
    pub warnings: Vec<Warning>,
}

/// Reads and parses a buildspec file; the file's path is used in messages.
pub fn load(path: &Path) -> Result<Parsed, BuildspecError> {
    load_named(path, &path.display().to_string())
}

/// Reads and parses the buildspec file at `path`, naming it `name` in messages (its path in
/// the repository, say).
pub fn load_named(path: &Path, name: &str) -> Result<Parsed, BuildspecError> {
    let text = std::fs::read_to_string(path).map_err(|source| BuildspecError::Io {
        file: name.to_string(),
        source,
    })?;
    parse(name, &text)
}

/// The buildspec's `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 0.1: each command runs in its own shell instance.
    V0_1,
    /// 0.2: all commands of a build run in one shell instance.
    V0_2,
}

/// A whole buildspec.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSpec {
    pub version: Version,
    /// Top-level `run-as`: the Linux user commands run as.
    pub run_as: Option<String>,
    pub env: Env,
    pub proxy: Option<Proxy>,
    pub batch: Option<Batch>,
    pub phases: Phases,
    /// `reports`, by report group name or ARN, in file order.
    pub reports: Vec<(String, Report)>,
    pub artifacts: Option<Artifacts>,
    pub cache: Option<Cache>,
}

/// The shell named by `env.shell`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shell {
    /// `bash`: the default, as on CodeBuild's Linux images.
    #[default]
    Bash,
    /// `/bin/sh`.
    Sh,
}

/// The `env` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Env {
    pub shell: Shell,
    /// `variables`, in file order; numbers and booleans are kept as their source text.
    pub variables: Vec<(String, String)>,
    /// `exported-variables`: names whose values are reported when the build ends.
    pub exported_variables: Vec<String>,
    /// `parameter-store`: variable name ─▶ Systems Manager parameter name.
    pub parameter_store: Vec<(String, String)>,
    /// `secrets-manager`: variable name ─▶ `secret-id:json-key:version-stage:version-id`.
    pub secrets_manager: Vec<(String, String)>,
    /// `git-credential-helper`.
    pub git_credential_helper: bool,
}

/// The `proxy` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Proxy {
    pub upload_artifacts: bool,
    pub logs: bool,
}

/// The four phases, each optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Phases {
    pub install: Option<Phase>,
    pub pre_build: Option<Phase>,
    pub build: Option<Phase>,
    pub post_build: Option<Phase>,
}

/// The phases by name, in the order a build runs them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PhaseName {
    Install,
    PreBuild,
    Build,
    PostBuild,
}

impl PhaseName {
    pub const ALL: [PhaseName; 4] = [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ];

    /// The key under `phases:` (`pre_build`).
    pub fn key(self) -> &'static str {
        match self {
            PhaseName::Install => "install",
            PhaseName::PreBuild => "pre_build",
            PhaseName::Build => "build",
            PhaseName::PostBuild => "post_build",
        }
    }

    /// The name CodeBuild's log uses (`PRE_BUILD`).
    pub fn log_name(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
        }
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.log_name())
    }
}

impl Phases {
    pub fn get(&self, name: PhaseName) -> Option<&Phase> {
        match name {
            PhaseName::Install => self.install.as_ref(),
            PhaseName::PreBuild => self.pre_build.as_ref(),
            PhaseName::Build => self.build.as_ref(),
            PhaseName::PostBuild => self.post_build.as_ref(),
        }
    }
}

/// One phase.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Phase {
    pub run_as: Option<String>,
    pub on_failure: OnFailure,
    /// `runtime-versions` (install only), in file order; accepted, the runtime is the function's own.
    pub runtime_versions: Vec<(String, String)>,
    pub commands: Vec<Command>,
    pub finally: Vec<Command>,
}

/// One command, with the line of the buildspec it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub text: String,
    pub line: usize,
}

/// A phase's `on-failure`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// `ABORT`, the default: the build stops as CodeBuild's phase rules say.
    #[default]
    Abort,
    /// `CONTINUE`: the failure is recorded and the build goes on.
    Continue,
    /// `RETRY`, `RETRY-count`, `RETRY-regex`, `RETRY-count-regex`: the phase is run again, up to
    /// `count` more times (3 when not given), only while its output matches `regex` (any output
    /// when not given).
    Retry { count: u32, regex: Option<String> },
}

/// The `artifacts` section: the primary artifact and the secondary ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Artifacts {
    pub primary: ArtifactSet,
    /// `secondary-artifacts`, by artifact identifier, in file order.
    pub secondary: Vec<(String, ArtifactSet)>,
}

/// The keys of one artifact (primary or secondary).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArtifactSet {
    pub files: Vec<String>,
    pub name: Option<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub exclude_paths: Vec<String>,
    pub enable_symlinks: bool,
    pub s3_prefix: Option<String>,
}

/// The `cache` section: modelled, not acted on yet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cache {
    pub paths: Vec<String>,
    pub key: Option<String>,
    pub fallback_keys: Vec<String>,
    pub action: Option<String>,
}

/// One report group under `reports`: modelled, not acted on yet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub file_format: Option<String>,
}

/// Something in a buildspec that loads but deserves the user's attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The key path, as `phases.build.Commands`.
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.path, self.message)
    }
}

/// Why a buildspec cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BuildspecError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}: {path}: expected {expected}, found {found}")]
    Invalid {
        file: String,
        line: usize,
        path: String,
        expected: String,
        found: String,
    },
}
