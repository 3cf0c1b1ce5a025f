//! Telling the host how a webhook's build went: `pending` when it starts, then `success`,
//! `failure` or `error`. The pending status is sent while the build runs; the final one waits
//! for it (so it never lands first) and for its own retries, but never changes the build's
//! result.

use std::sync::Arc;

use super::{BuildSummary, FunctionError};
use crate::config::GitSettings;
use crate::names::CommitId;
use crate::pipeline::BuildIdentity;
use crate::record::Status;
use crate::status::{self, CommitStatus, HostApi, State};
use crate::trigger::{BuildTarget, Host};

/// A build whose result goes back to its commit.
pub(super) struct Report {
    api: Arc<dyn HostApi>,
    repository: String,
    commit: CommitId,
    context: String,
    target_url: Option<String>,
    pending: tokio::task::JoinHandle<()>,
}

impl Report {
    /// Sends `pending` for a webhook's build whose host has an API here; `None` otherwise.
    pub fn start(
        apis: &[(Host, Arc<dyn HostApi>)],
        git: &GitSettings,
        base_env: &[(String, String)],
        target: &BuildTarget,
        identity: &BuildIdentity,
    ) -> Option<Report> {
        let webhook = target.webhook.as_ref()?;
        let commit = target.commit.clone()?;
        let api = apis
            .iter()
            .find(|(host, _)| *host == webhook.host)
            .map(|(_, api)| api.clone())?;
        let vars = template_vars(base_env, identity);
        let context = status::expand(&git.status_context, &vars);
        let target_url = git
            .status_target_url
            .as_deref()
            .map(|template| status::expand(template, &vars));
        let pending = CommitStatus::new(
            State::Pending,
            context.clone(),
            target_url.clone(),
            &format!("Build {} is running", identity.build_id),
        );
        let (task_api, repository, task_commit) =
            (api.clone(), webhook.repository.clone(), commit.clone());
        let pending = tokio::spawn(async move {
            status::report(&*task_api, &repository, &task_commit, &pending).await;
        });
        Some(Report {
            api,
            repository: webhook.repository.clone(),
            commit,
            context,
            target_url,
            pending,
        })
    }

    /// Sends the final status once the pending one is done.
    pub async fn finish(self, result: &Result<BuildSummary, FunctionError>) {
        let _ = self.pending.await;
        let (state, description) = match result {
            Ok(summary) => (State::of(summary.status), describe(summary)),
            Err(err) => (
                State::Error,
                format!("pushbuild could not run the build ({})", err.error_type()),
            ),
        };
        let status = CommitStatus::new(state, self.context, self.target_url, &description);
        status::report(&*self.api, &self.repository, &self.commit, &status).await;
    }
}

/// `SUCCEEDED in 12.3 s, 1 billed minute`; a skipped build says why.
fn describe(summary: &BuildSummary) -> String {
    if summary.status == Status::Skipped {
        return format!(
            "SKIPPED: {}",
            summary.reason.as_deref().unwrap_or("not run")
        );
    }
    let seconds = summary.duration_ms.unwrap_or_default() as f64 / 1000.0;
    let minutes = summary.billed_minutes;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!(
        "{} in {seconds:.1} s, {minutes} billed {unit}",
        summary.status
    )
}

/// What a status template can name: the function's environment and the build's known
/// `CODEBUILD_*` values (its number is not known yet when the build starts), with
/// `PUSHBUILD_PROJECT` and `PUSHBUILD_BUILD_ID`.
fn template_vars(base_env: &[(String, String)], identity: &BuildIdentity) -> Vec<(String, String)> {
    let mut vars = base_env.to_vec();
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            vars.push((name.to_string(), value));
        }
    };
    set("PUSHBUILD_PROJECT", Some(identity.project.to_string()));
    set("PUSHBUILD_BUILD_ID", Some(identity.build_id.clone()));
    set(
        "CODEBUILD_BUILD_ID",
        Some(format!("{}:{}", identity.project, identity.build_id)),
    );
    set("CODEBUILD_INITIATOR", Some(identity.initiator.clone()));
    set("CODEBUILD_SOURCE_VERSION", identity.source_version.clone());
    set(
        "CODEBUILD_RESOLVED_SOURCE_VERSION",
        identity.commit.as_ref().map(ToString::to_string),
    );
    set(
        "CODEBUILD_SOURCE_REPO_URL",
        identity.source_repo_url.clone(),
    );
    set(
        "CODEBUILD_WEBHOOK_TRIGGER",
        identity.webhook_trigger.clone(),
    );
    if let Some(webhook) = &identity.webhook {
        set("CODEBUILD_WEBHOOK_EVENT", Some(webhook.event.clone()));
        set("CODEBUILD_WEBHOOK_HEAD_REF", Some(webhook.head_ref.clone()));
        set("CODEBUILD_WEBHOOK_BASE_REF", webhook.base_ref.clone());
    }
    vars
}
