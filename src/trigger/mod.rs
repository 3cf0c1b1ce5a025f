//! What to build: maps the event a Lambda invocation receives to the builds it asks for.
//!
//! Accepted shapes (the samples in `events/` show each one):
//! - a CodeCommit trigger event (`Records[]` with `eventSource` `aws:codecommit`): every branch
//!   or tag reference of every record is built; a deleted one is skipped (`codecommit.rs`);
//! - an EventBridge `CodeCommit Repository State Change` event: a created or updated branch or
//!   tag is built, a deleted one is skipped (`eventbridge.rs`);
//! - a build request named like CodeBuild's StartBuild, `{"repository": ..., "sourceVersion":
//!   ...}`, sent by hand ("build now") or by a schedule as constant input; also accepted as the
//!   `detail` of an EventBridge `Scheduled Event` (`request.rs`).
//!
//! This step only reads the event: it resolves no reference and imports no AWS SDK.

mod check;
mod codecommit;
pub mod codepipeline;
mod eventbridge;
pub(crate) mod json;
mod request;
mod webhook;

#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::{BuildId, CommitId, ProjectName, Repo, RepositoryName, SourceVersion};

pub use crate::names::Host;
pub use check::{buildspec_path_problem, skip_ci};
pub use webhook::{EventKind, WebhookInfo};

/// One build asked for by an event. As JSON (camelCase) it is also the "planned build" a webhook's
/// front door hands the function: `{"plannedBuild": {…}}`. Made with [`BuildTarget::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildTarget {
    /// The project's name (`pushbuild-demo`, `github.com/owner/repo`).
    #[serde(rename = "repository")]
    pub project: ProjectName,
    /// Where the source is: a CodeCommit repository, or a repository on a git host.
    pub source: Repo,
    /// What was asked for (`CODEBUILD_SOURCE_VERSION`): a branch, a tag, a commit or a pull
    /// request.
    pub version: SourceVersion,
    /// The commit the event pins, when it names one: what is built, so a later push cannot
    /// change what this build sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitId>,
    /// The full reference (`refs/heads/main`, `refs/tags/v1`), when the event names one.
    pub reference: Option<String>,
    /// The buildspec's path in the repository, when the event overrides the configured one.
    pub buildspec: Option<String>,
    /// Variables that override the buildspec's, in order (a later name wins).
    pub env_overrides: Vec<(String, String)>,
    /// Who or what asked: `codecommit/<trigger>`, `eventbridge/codecommit`, `manual`.
    pub initiator: String,
    /// `branch/<name>` or `tag/<name>` for builds started by a push.
    pub webhook_trigger: Option<String>,
    /// `<event id>:<reference>`: the same for every delivery of one event, so a build can be run
    /// once per event even when the event is delivered twice.
    pub dedup_key: Option<String>,
    /// The repository's region, when the event says.
    pub region: Option<String>,
    /// The repository's account, when the event says.
    pub account: Option<String>,
    /// The webhook it came from, for hosted repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookInfo>,
    /// The build's id, when it was given before the build was handed off (a webhook's answer
    /// names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<BuildId>,
    /// The batch this build is a child of, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchChild>,
    /// The build this one runs again (`pushbuild retry`, a page's Retry button).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<BuildId>,
}

/// A batch's child: which batch, and which of its children.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchChild {
    pub batch_id: String,
    pub identifier: String,
    /// The task's `env.compute-type`, when it names one (`BUILD_GENERAL1_*` places the child on
    /// CodeBuild with that type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<String>,
    /// The task's `env.privileged-mode` (places the child on CodeBuild).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged_mode: bool,
    /// The task's `env.image` (places the child on CodeBuild, on that image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl BuildTarget {
    /// A build of `version` of `source`, under `project`, asked for by `initiator`: its
    /// reference is the one `version` names (none for a commit or a pull request), and nothing
    /// else is set.
    pub fn new(
        project: ProjectName,
        source: Repo,
        version: SourceVersion,
        initiator: impl Into<String>,
    ) -> BuildTarget {
        BuildTarget {
            project,
            source,
            reference: version.reference(),
            version,
            commit: None,
            buildspec: None,
            env_overrides: Vec::new(),
            initiator: initiator.into(),
            webhook_trigger: None,
            dedup_key: None,
            region: None,
            account: None,
            webhook: None,
            build_id: None,
            batch: None,
            retries: None,
        }
    }

    /// A CodeCommit repository's build (the project is the repository's name).
    pub fn codecommit(
        repository: RepositoryName,
        version: SourceVersion,
        initiator: impl Into<String>,
    ) -> BuildTarget {
        BuildTarget::new(
            repository.clone().into(),
            Repo::CodeCommit(repository),
            version,
            initiator,
        )
    }

    /// What the source resolves: the pinned commit, else what was asked for.
    pub fn to_resolve(&self) -> SourceVersion {
        match &self.commit {
            Some(commit) => SourceVersion::Commit(commit.clone()),
            None => self.version.clone(),
        }
    }
}

/// A reference the event names that is not built, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub repository: ProjectName,
    pub reference: Option<String>,
    /// The commit as the event gave it: a skipped reference is never checked out.
    pub commit: Option<String>,
    /// Why nothing is built (`branch feature/x was deleted`).
    pub reason: String,
}

/// What to do for one reference an event names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Planned {
    Build(Box<BuildTarget>),
    Skip(Skipped),
}

/// Why an event could not be mapped to builds. Each message names the field's path in the event
/// (`Records[0].codecommit.references[1].ref`) and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("{path}: required, expected {expected}")]
    Missing {
        path: String,
        expected: &'static str,
    },
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("the EventBridge envelope does not parse: {message}")]
    Envelope { message: String },
    #[error(
        "unrecognised event ({found}); pushbuild accepts a CodeCommit trigger event \
         (`Records[]` with eventSource `aws:codecommit`), an EventBridge `CodeCommit Repository \
         State Change` event, a build request `{{\"repository\": ..., \"sourceVersion\": ...}}` \
         (sent as is, or as the detail of an EventBridge `Scheduled Event`), a webhook's \
         planned build `{{\"plannedBuild\": ...}}`, or (in the function) a `CodePipeline.job`"
    )]
    UnknownShape { found: String },
}

/// The builds (and the skipped references) an event asks for, in the event's order.
///
/// The shape is recognised by its top-level keys: `Records` (CodeCommit trigger), `detail-type`
/// (EventBridge), `repository` (a build request).
pub fn plan(event: &Value) -> Result<Vec<Planned>, EventError> {
    let Some(object) = event.as_object() else {
        return Err(EventError::UnknownShape {
            found: format!("{} instead of an object", json::kind(event)),
        });
    };
    if object.contains_key("Records") {
        codecommit::plan(event)
    } else if object.contains_key("detail-type") {
        eventbridge::plan(event)
    } else if let Some(planned) = object.get("plannedBuild") {
        let target =
            serde_json::from_value::<BuildTarget>(with_source(planned)).map_err(|err| {
                EventError::Invalid {
                    path: "plannedBuild".into(),
                    problem: format!("not a planned build: {err}"),
                }
            })?;
        Ok(vec![Planned::Build(Box::new(target))])
    } else if object.contains_key("repository") {
        Ok(vec![Planned::Build(Box::new(request::plan(
            &json::Node::root(event),
            request::Origin::default(),
        )?))])
    } else {
        Err(EventError::UnknownShape {
            found: describe_keys(object),
        })
    }
}

/// A planned build as the front door hands it over; one planned before builds named their
/// `source` (still in flight while the function is updated) gets it from its webhook (the
/// host's kind and the repository's path) or, for a plain repository name, CodeCommit. A
/// hosted project with neither is left without, and refused naming the field.
fn with_source(planned: &Value) -> Value {
    let mut planned = planned.clone();
    if planned.get("source").is_some() {
        return planned;
    }
    let source = match (planned.get("webhook"), planned.get("repository")) {
        (Some(webhook), _) if webhook.is_object() => serde_json::json!({"hosted": {
            "host": webhook.get("host"),
            "path": webhook.get("repository"),
        }}),
        (_, Some(Value::String(name))) if !name.contains('/') => {
            serde_json::json!({"codeCommit": name})
        }
        _ => return planned,
    };
    if let Some(object) = planned.as_object_mut() {
        object.insert("source".to_string(), source);
    }
    planned
}

/// `an object with keys a, b, c`: names a few of the keys, never their values.
fn describe_keys(object: &serde_json::Map<String, Value>) -> String {
    const SHOWN: usize = 5;
    if object.is_empty() {
        return "an empty object".to_string();
    }
    let mut keys: Vec<&str> = object.keys().take(SHOWN).map(String::as_str).collect();
    if object.len() > SHOWN {
        keys.push("...");
    }
    format!("an object with keys {}", keys.join(", "))
}
