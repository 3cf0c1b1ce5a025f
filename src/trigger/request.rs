//! A build request, named like CodeBuild's StartBuild where it fits: what "build now" and a
//! schedule send.
//!
//! ```json
//! {"repository": "pushbuild-demo", "sourceVersion": "refs/heads/main",
//!  "buildspecOverride": "ci/nightly.yml",
//!  "environmentVariablesOverride": [{"name": "STAGE", "value": "test", "type": "PLAINTEXT"}],
//!  "initiator": "manual/alice"}
//! ```
//!
//! Only `repository` is required. Unknown keys are errors, so a misspelt `sourceversion` does
//! not quietly build `main`.

use super::check;
use super::json::Node;
use super::{BuildTarget, EventError};
use crate::names::SourceVersion;

/// What is built when a request names no `sourceVersion`.
pub const DEFAULT_SOURCE_VERSION: &str = "refs/heads/main";

const KEYS: [&str; 5] = [
    "repository",
    "sourceVersion",
    "buildspecOverride",
    "environmentVariablesOverride",
    "initiator",
];

/// Where a request came from, when something carried it (a scheduled EventBridge event).
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The initiator when the request names none.
    pub initiator: String,
    pub event_id: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
}

impl Default for Origin {
    fn default() -> Origin {
        Origin {
            initiator: "manual".to_string(),
            event_id: None,
            region: None,
            account: None,
        }
    }
}

/// The build a request asks for.
pub(crate) fn plan(request: &Node, origin: Origin) -> Result<BuildTarget, EventError> {
    for key in request.object()?.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(EventError::Invalid {
                path: request.child_path(key),
                problem: format!("unknown key; expected one of {}", KEYS.join(", ")),
            });
        }
    }
    let repository = check::repository(
        request.str("repository")?,
        &request.child_path("repository"),
    )?;
    let text = request
        .opt_str("sourceVersion")?
        .unwrap_or(DEFAULT_SOURCE_VERSION);
    let version = SourceVersion::parse(text).map_err(|err| EventError::Invalid {
        path: request.child_path("sourceVersion"),
        problem: err.to_string(),
    })?;
    let buildspec = request
        .get("buildspecOverride")?
        .map(|node| check::buildspec(&node))
        .transpose()?;
    let env_overrides = match request.get("environmentVariablesOverride")? {
        None => Vec::new(),
        Some(node) => check::override_list(&node)?,
    };
    let initiator = match request.opt_str("initiator")? {
        Some(initiator) => initiator.to_string(),
        None => origin.initiator,
    };
    Ok(BuildTarget {
        buildspec,
        env_overrides,
        dedup_key: origin.event_id.map(|id| format!("{id}:{text}")),
        region: origin.region,
        account: origin.account,
        ..BuildTarget::codecommit(repository, version, initiator)
    })
}
