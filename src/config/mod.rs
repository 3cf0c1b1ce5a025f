//! The function's settings, read once from the environment by [`Config::from_env`] in `main`;
//! everything else receives `&Config`. Each setting is described on its field and in the
//! table in docs/settings.md.
//!
//! A variable set to an empty (or blank) value counts as unset. Values are trimmed.

use std::path::PathBuf;
use std::time::Duration;

use crate::cost::Price;
use crate::webhook::WebhookSettings;
pub use codebuild::CodeBuildSettings;
use values::{check_bucket, check_namespace, price, repository_minutes};

mod cache;
mod codebuild;
mod notice;
pub mod secrets;
mod supersede;
pub use cache::cache_settings;
pub use supersede::Supersede;
mod values;
mod webhook;

/// pushbuild's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `PUSHBUILD_BUCKET` (required): the S3 bucket that receives artifacts, logs and records.
    pub bucket: String,
    /// `PUSHBUILD_BUILDSPEC`: the buildspec's path in the repository when an event names none
    /// (default `buildspec.yml`); relative, without `..`.
    pub buildspec: String,
    /// `PUSHBUILD_UPLOAD_RESERVE_SECONDS`: time kept before the invocation's deadline for
    /// uploading artifacts, the log and the record (default 30; 1 to 900 seconds).
    pub upload_reserve: Duration,
    /// `PUSHBUILD_SOURCE_CONCURRENCY`: how many source files are downloaded at once
    /// (default 32; 1 to 256).
    pub source_concurrency: usize,
    /// `PUSHBUILD_S3_PATH_STYLE`: `true` addresses the bucket as `<endpoint>/<bucket>` rather
    /// than `<bucket>.<endpoint>`, as local S3-compatible servers need (default `false`).
    pub s3_path_style: bool,
    /// `PUSHBUILD_WORK_DIR`: an absolute directory holding each build's source and home
    /// (default `/tmp/pushbuild`, Lambda's writable disk).
    pub work_dir: PathBuf,
    /// `PUSHBUILD_RUNTIMES_DIR`: the directory of the image's runtimes manifests, which
    /// `runtime-versions` chooses from (default `/opt/pushbuild/runtimes`, where pushbuild's
    /// images put them; absent in the zip deployment: the function's own tools).
    pub runtimes_dir: PathBuf,
    /// The price of a build minute: `PUSHBUILD_PRICE_PER_MINUTE` (USD) when set, else Lambda's
    /// on-demand price for `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` MB (default 2048) on
    /// `PUSHBUILD_ARCH` (`arm64`, the default, or `x86_64`).
    pub price: Price,
    /// `PUSHBUILD_NAMESPACE`: the CloudWatch metrics namespace (default `PushBuild`).
    pub namespace: String,
    /// `PUSHBUILD_MONTHLY_MINUTES`: a cap on billed build minutes per month (default: none).
    pub monthly_minutes: Option<u64>,
    /// `PUSHBUILD_BILLING_MINUTE_MS`: the length of a billed minute in milliseconds (default
    /// 60000; 1 to 60000). A test-only knob: tests shorten the minute so the metering of a
    /// many-minute build takes milliseconds. The meter and the record's billed minutes both use it.
    pub billing_minute: Duration,
    /// `PUSHBUILD_REPOSITORY_MINUTES`: per-repository caps on billed minutes per month,
    /// `repo=minutes,repo2=minutes` (default: none).
    pub repository_minutes: Vec<(String, u64)>,
    /// How webhooks become builds (`PUSHBUILD_FILTER_GROUPS`, `PUSHBUILD_GITHUB_*`, …).
    pub webhooks: WebhookSettings,
    /// How hosted repositories are fetched and told of results.
    pub git: GitSettings,
    /// `PUSHBUILD_CODECOMMIT_GIT`: whether CodeCommit commits are fetched over CodeCommit's git
    /// endpoint first (default `true`; `false`: through the API only).
    pub codecommit_git: bool,
    /// `PUSHBUILD_CODECOMMIT_GIT_URL`: the git endpoint's base URL (default
    /// `https://git-codecommit.<region>.amazonaws.com`).
    pub codecommit_git_url: Option<String>,
    /// `PUSHBUILD_LIVE_LOG_SECONDS`: how often a running build's log so far goes to the store
    /// for its page (default 5; 0: never; at most 300).
    pub live_log: Option<Duration>,
    /// Builds that run on AWS CodeBuild (`PUSHBUILD_CODEBUILD_*`).
    pub codebuild: CodeBuildSettings,
    /// `PUSHBUILD_INDEX_TABLE`: the DynamoDB table of the index (required by the function;
    /// locally the index is a SQLite file in the store).
    pub index_table: Option<String>,
    /// `PUSHBUILD_SECRETS_ARN`: the Secrets Manager secret holding the webhook secrets and
    /// tokens (on AWS); when unset they come from their own variables.
    pub secrets_arn: Option<String>,
    /// `PUSHBUILD_UI_TOKEN` (or the secret's `ui_token`): the token the build pages' login asks
    /// for; without it the function does not serve the pages.
    pub ui_token: Option<crate::secret::Secret>,
    /// The caches' limits (`PUSHBUILD_CACHE_MAX_MB`, `PUSHBUILD_CACHE_DAYS`) and the default
    /// branch (`PUSHBUILD_DEFAULT_BRANCH`).
    pub cache: crate::cache::CacheSettings,
    /// `PUSHBUILD_BATCH`: `auto` (the default) runs a buildspec with `batch` as a batch of
    /// builds; `off` runs it as one build.
    pub batch: bool,
    /// `PUSHBUILD_SUPERSEDE`: which newer pushes stop a reference's older builds.
    pub supersede: Supersede,
    /// `PUSHBUILD_NOTIFY_URL`: a Slack-compatible incoming webhook told of failed and fixed
    /// builds (a secret: whoever has it can post).
    pub notify_url: Option<crate::secret::Secret>,
    /// `PUSHBUILD_BADGES`: whether `/badges/<project>/<branch>.svg` is served without a login.
    pub badges: bool,
    /// `PUSHBUILD_EVENT_BUS`: the EventBridge bus (name or ARN) each build's state changes go to
    /// on AWS; none when unset.
    pub event_bus: Option<String>,
}

/// One build's directories under the work directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDirs {
    pub root: PathBuf,
    pub src: PathBuf,
    pub home: PathBuf,
}

/// Fetching hosted repositories, and the commit statuses sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSettings {
    /// `PUSHBUILD_GIT_CLONE_DEPTH`: commits of history fetched (default 1; 0: all, as
    /// CodeBuild's `gitCloneDepth`).
    pub clone_depth: u32,
    /// `PUSHBUILD_GIT_SUBMODULES`: whether submodules are fetched (default false).
    pub submodules: bool,
    /// `PUSHBUILD_SPARE_FILES`: whether a finished build's files are emptied and kept for the
    /// next checkout to write into (`true`, `false`; default `auto`, `None`: where the work
    /// directory is on ext4 without a journal).
    pub spare_files: Option<bool>,
    /// `PUSHBUILD_STATUS_CONTEXT`: the commit status's context, a template (default
    /// `pushbuild`).
    pub status_context: String,
    /// `PUSHBUILD_STATUS_TARGET_URL`: the commit status's link, a template (default: the
    /// build's page under `PUSHBUILD_PUBLIC_URL` when that is set; else, on AWS, the S3
    /// console page of the build's log).
    pub status_target_url: Option<String>,
    /// `PUSHBUILD_PUBLIC_URL`: where the pages are reached (no trailing `/`), when known.
    pub public_url: Option<String>,
}

/// Why the settings could not be read. Messages name the variable, the problem and what was
/// expected; the values of `AWS_*` variables are never shown.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required: {purpose}")]
    Missing {
        name: &'static str,
        purpose: &'static str,
    },
    #[error("{name}: expected {expected}{}", found_part(.found))]
    Invalid {
        name: &'static str,
        expected: String,
        /// The value found; `None` when it must not be shown.
        found: Option<String>,
    },
    /// A structured setting with a problem inside it (a filter group's regular expression).
    #[error("{name}: {problem}")]
    Setting { name: &'static str, problem: String },
}

fn found_part(found: &Option<String>) -> String {
    match found {
        Some(value) => format!(", found {value:?}"),
        None => String::new(),
    }
}

/// The settings' defaults.
pub const DEFAULT_BUILDSPEC: &str = "buildspec.yml";
/// How often a running build's log goes to the store, by default (seconds).
const DEFAULT_LIVE_LOG_SECONDS: u64 = 5;
pub const DEFAULT_UPLOAD_RESERVE_SECONDS: u64 = 30;
pub const DEFAULT_SOURCE_CONCURRENCY: usize = 32;
pub const DEFAULT_WORK_DIR: &str = "/tmp/pushbuild";
pub const DEFAULT_NAMESPACE: &str = "PushBuild";
pub const DEFAULT_BILLING_MINUTE_MS: u64 = 60_000;

/// The one rule for a boolean setting: `true` or `false` in either case, spaces around ignored;
/// `default` when unset or blank. Everything that reads a boolean setting reads it here.
pub fn flag(name: &'static str, value: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(invalid(name, "true or false", Some(v))),
    }
}

/// What a DynamoDB table name is.
const TABLE_NAME: &str = "a DynamoDB table name: 3 to 255 letters, digits, `_`, `.` or `-`";

/// A name that is not a DynamoDB table's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {TABLE_NAME}, found {found:?}")]
pub struct BadTableName {
    pub found: String,
}

/// A DynamoDB table name (3 to 255 of `A-Z a-z 0-9 _ . -`), for `PUSHBUILD_INDEX_TABLE` and
/// `--table`.
pub fn table_name(text: &str) -> Result<String, BadTableName> {
    let fits = (3..=255).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if fits {
        Ok(text.to_string())
    } else {
        Err(BadTableName {
            found: text.to_string(),
        })
    }
}

/// `PUSHBUILD_INDEX_TABLE`.
fn index_table(vars: &Vars<'_>) -> Result<Option<String>, ConfigError> {
    let Some(table) = vars.get("PUSHBUILD_INDEX_TABLE") else {
        return Ok(None);
    };
    table_name(&table)
        .map(Some)
        .map_err(|_| invalid("PUSHBUILD_INDEX_TABLE", TABLE_NAME, Some(&table)))
}

impl Config {
    /// The index table, which the function requires.
    pub fn require_index_table(&self) -> Result<&str, ConfigError> {
        self.index_table.as_deref().ok_or(ConfigError::Missing {
            name: "PUSHBUILD_INDEX_TABLE",
            purpose: "the DynamoDB table of the index (build numbers, claims, build entries and the month's budget)",
        })
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| {
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Reads the settings through `var`, which gives a variable's value by name (tests pass a
    /// table, so they never set process variables).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let vars = Vars(&var);
        let bucket = vars.get("PUSHBUILD_BUCKET").ok_or(ConfigError::Missing {
            name: "PUSHBUILD_BUCKET",
            purpose: "the S3 bucket that receives build artifacts, logs and records",
        })?;
        check_bucket(&bucket)?;
        let buildspec = vars
            .get("PUSHBUILD_BUILDSPEC")
            .unwrap_or_else(|| DEFAULT_BUILDSPEC.to_string());
        if let Some(problem) = crate::trigger::buildspec_path_problem(&buildspec) {
            return Err(invalid(
                "PUSHBUILD_BUILDSPEC",
                format!("a relative path in the repository such as `buildspec.yml` ({problem})"),
                Some(&buildspec),
            ));
        }
        let reserve = vars.number("PUSHBUILD_UPLOAD_RESERVE_SECONDS", 1, 900)?;
        let concurrency = vars.number("PUSHBUILD_SOURCE_CONCURRENCY", 1, 256)?;
        let s3_path_style = vars.flag("PUSHBUILD_S3_PATH_STYLE", false)?;
        let work_dir = vars.absolute_path("PUSHBUILD_WORK_DIR", DEFAULT_WORK_DIR)?;
        let runtimes_dir =
            vars.absolute_path("PUSHBUILD_RUNTIMES_DIR", crate::runtimes::DEFAULT_DIR)?;
        let price = price(&vars)?;
        let namespace = vars
            .get("PUSHBUILD_NAMESPACE")
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        check_namespace(&namespace)?;
        let monthly_minutes = vars.number("PUSHBUILD_MONTHLY_MINUTES", 0, u64::MAX)?;
        let minute_ms = vars.number("PUSHBUILD_BILLING_MINUTE_MS", 1, DEFAULT_BILLING_MINUTE_MS)?;
        let repository_minutes = vars
            .get("PUSHBUILD_REPOSITORY_MINUTES")
            .map_or(Ok(Vec::new()), |text| repository_minutes(&text))?;
        let webhooks = webhook::settings(&vars)?;
        let git = webhook::git_settings(&vars)?;
        Ok(Config {
            bucket,
            buildspec,
            upload_reserve: Duration::from_secs(reserve.unwrap_or(DEFAULT_UPLOAD_RESERVE_SECONDS)),
            source_concurrency: concurrency.map_or(DEFAULT_SOURCE_CONCURRENCY, |n| n as usize),
            s3_path_style,
            work_dir,
            runtimes_dir,
            price,
            namespace,
            monthly_minutes,
            billing_minute: Duration::from_millis(minute_ms.unwrap_or(DEFAULT_BILLING_MINUTE_MS)),
            repository_minutes,
            webhooks,
            git,
            codecommit_git: vars.flag("PUSHBUILD_CODECOMMIT_GIT", true)?,
            codecommit_git_url: vars.get("PUSHBUILD_CODECOMMIT_GIT_URL"),
            live_log: match vars.number("PUSHBUILD_LIVE_LOG_SECONDS", 0, 300)? {
                Some(0) => None,
                Some(seconds) => Some(Duration::from_secs(seconds)),
                None => Some(Duration::from_secs(DEFAULT_LIVE_LOG_SECONDS)),
            },
            codebuild: codebuild::settings(&vars)?,
            index_table: index_table(&vars)?,
            secrets_arn: vars.get("PUSHBUILD_SECRETS_ARN"),
            ui_token: vars
                .get("PUSHBUILD_UI_TOKEN")
                .map(crate::secret::Secret::new),
            cache: cache::read(&vars)?,
            batch: match vars.get("PUSHBUILD_BATCH").as_deref().map(str::trim) {
                None | Some("auto") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(invalid("PUSHBUILD_BATCH", "auto or off", Some(other)));
                }
            },
            supersede: Supersede::parse(vars.get("PUSHBUILD_SUPERSEDE").as_deref())?,
            notify_url: notice::notify_url(vars.get("PUSHBUILD_NOTIFY_URL"))?,
            badges: vars.flag("PUSHBUILD_BADGES", false)?,
            event_bus: notice::event_bus(vars.get("PUSHBUILD_EVENT_BUS"))?,
        })
    }

    /// The month's caps on billed minutes, for [`crate::billing::Budget::check`].
    pub fn budget(&self) -> crate::billing::Budget {
        crate::billing::Budget {
            monthly_minutes: self.monthly_minutes,
            per_repository: self.repository_minutes.clone(),
        }
    }

    /// Where builds keep their own directories: `<work dir>/builds`.
    pub fn builds_dir(&self) -> PathBuf {
        self.work_dir.join("builds")
    }

    /// Where CodePipeline jobs' input artifacts are unpacked before their builds:
    /// `<work dir>/artifacts`.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.work_dir.join("artifacts")
    }

    /// One build's directories: its source, `<work dir>/builds/<build id>/src`, and its
    /// `HOME`, `…/home`. Builds that run at once never share them.
    pub fn build_dirs(&self, build_id: &str) -> BuildDirs {
        let root = self.builds_dir().join(build_id);
        BuildDirs {
            src: root.join("src"),
            home: root.join("home"),
            root,
        }
    }
}

/// The variables, through the caller's lookup; blank values count as unset.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    }

    /// A boolean setting (see [`flag`]).
    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        flag(name, self.get(name).as_deref(), default)
    }

    /// An absolute path, `default` when unset.
    fn absolute_path(&self, name: &'static str, default: &str) -> Result<PathBuf, ConfigError> {
        let path = PathBuf::from(self.get(name).unwrap_or_else(|| default.to_string()));
        if !path.is_absolute() {
            let shown = path.display().to_string();
            return Err(invalid(name, "an absolute path", Some(&shown)));
        }
        Ok(path)
    }

    /// A whole number from `min` to `max`, when set.
    fn number(&self, name: &'static str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ if max == u64::MAX => Err(invalid(name, "a whole number", Some(&text))),
            _ => Err(invalid(
                name,
                format!("a whole number from {min} to {max}"),
                Some(&text),
            )),
        }
    }
}

fn invalid(name: &'static str, expected: impl Into<String>, found: Option<&str>) -> ConfigError {
    ConfigError::Invalid {
        name,
        expected: expected.into(),
        found: found.map(str::to_string),
    }
}

#[cfg(test)]
mod tests;
