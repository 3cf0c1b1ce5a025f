//! Telling the host how a webhook's build went: `pending` when it starts, then `success`,
//! `failure` or `error`. The pending status is sent while the build runs; the final one waits
//! for it (so it never lands first) and for its own retries, but never changes the build's
//! result.

use std::sync::Arc;

use super::{BuildError, BuildSummary};
use crate::config::GitSettings;
use crate::pipeline::BuildIdentity;
use crate::state::BuildState;
use crate::status::{self, CommitStatus, HostApi, State, StatusTarget};
use crate::trigger::{BuildTarget, Host};

/// Where the status of `target`'s build goes: a webhook's build whose host has an API here;
/// `None` otherwise.
pub(super) fn target(
    apis: &[(Host, Arc<dyn HostApi>)],
    git: &GitSettings,
    base_env: &[(String, String)],
    target: &BuildTarget,
    identity: &BuildIdentity,
) -> Option<StatusTarget> {
    let webhook = target.webhook.as_ref()?;
    let commit = target.commit.clone()?;
    api_for(apis, webhook.host)?;
    let vars = template_vars(base_env, identity);
    let mut context = status::expand(&git.status_context, &vars);
    // A batch's child has a status of its own: `<context>/<identifier>`.
    if let Some(child) = &target.batch {
        context = format!("{context}/{}", child.identifier);
    }
    Some(StatusTarget {
        host: webhook.host,
        repository: webhook.repository.clone(),
        commit,
        context,
        target_url: git
            .status_target_url
            .as_deref()
            .map(|template| status::expand(template, &vars)),
    })
}

fn api_for(apis: &[(Host, Arc<dyn HostApi>)], host: Host) -> Option<Arc<dyn HostApi>> {
    apis.iter()
        .find(|(h, _)| *h == host)
        .map(|(_, api)| api.clone())
}

/// A build whose result goes back to its commit.
pub(super) struct Report {
    api: Arc<dyn HostApi>,
    target: StatusTarget,
    pending: tokio::task::JoinHandle<()>,
}

impl Report {
    /// Sends `pending` for the build, to `target`.
    pub fn start(
        apis: &[(Host, Arc<dyn HostApi>)],
        target: StatusTarget,
        identity: &BuildIdentity,
    ) -> Option<Report> {
        let api = api_for(apis, target.host)?;
        let pending = CommitStatus::new(
            State::Pending,
            target.context.clone(),
            target.target_url.clone(),
            &format!("Build {} is running", identity.build_id),
        );
        let (task_api, repository, commit) = (
            api.clone(),
            target.repository.clone(),
            target.commit.clone(),
        );
        let pending = tokio::spawn(async move {
            status::report(&*task_api, &repository, &commit, &pending).await;
        });
        Some(Report {
            api,
            target,
            pending,
        })
    }

    /// Sends the final status once the pending one is done (a build handed to CodeBuild: a
    /// pending status saying so; its final one comes when CodeBuild's result does). A push that
    /// runs as a batch sends nothing more: the batch's own status comes when it closes, which
    /// may be before this (its children run elsewhere).
    pub async fn finish(self, result: &Result<BuildSummary, BuildError>) {
        let _ = self.pending.await;
        if let Ok(BuildSummary {
            status: BuildState::InProgress,
            batch: Some(_),
            ..
        }) = result
        {
            return;
        }
        send(&*self.api, &self.target, result).await;
    }
}

/// Sends the final status of a build that ended after its invocation (on CodeBuild).
pub(super) async fn send_final(
    apis: &[(Host, Arc<dyn HostApi>)],
    target: StatusTarget,
    summary: &BuildSummary,
) {
    if let Some(api) = api_for(apis, target.host) {
        send(&*api, &target, &Ok(summary.clone())).await;
    }
}

async fn send(api: &dyn HostApi, target: &StatusTarget, result: &Result<BuildSummary, BuildError>) {
    let (state, description) = match result {
        Ok(summary) => (State::of(summary.status), describe(summary)),
        Err(err) => (
            State::Error,
            format!("pushbuild could not run the build ({})", err.error_type()),
        ),
    };
    let status = CommitStatus::new(
        state,
        target.context.clone(),
        target.target_url.clone(),
        &description,
    );
    status::report(api, &target.repository, &target.commit, &status).await;
}

/// `SUCCEEDED in 12.3 s, 1 billed minute`; a skipped build says why.
fn describe(summary: &BuildSummary) -> String {
    if summary.status == BuildState::InProgress {
        return format!(
            "Moved to AWS CodeBuild: {}",
            summary.reason.as_deref().unwrap_or("running there")
        );
    }
    if summary.status == BuildState::Skipped {
        return format!(
            "SKIPPED: {}",
            summary.reason.as_deref().unwrap_or("not run")
        );
    }
    let seconds = summary.duration_ms.unwrap_or_default() as f64 / 1000.0;
    let minutes = summary.billed_minutes;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    let ended = match (summary.status, summary.reason.as_deref()) {
        // Why it was stopped: `superseded by <build id>`, `asked by alice`.
        (BuildState::Stopped, Some(reason)) => format!(
            "STOPPED after {seconds:.1} s, {minutes} billed {unit}: {}",
            reason.strip_prefix("BUILD_STOPPED: ").unwrap_or(reason)
        ),
        _ => format!(
            "{} in {seconds:.1} s, {minutes} billed {unit}",
            summary.status
        ),
    };
    // The tests first: the host cuts a long description at its end.
    match &summary.tests {
        Some(tests) => format!("{tests} · {ended}"),
        None => ended,
    }
}

/// The batch's own status when it ends, on the context of the push that started it:
/// `SUCCEEDED: 4 of 4 builds succeeded`.
pub(super) async fn send_batch(
    apis: &[(Host, Arc<dyn HostApi>)],
    git: &GitSettings,
    base_env: &[(String, String)],
    target: &BuildTarget,
    record: &crate::batch::BatchRecord,
) {
    let mut identity = BuildIdentity::new(target.project.clone(), target.initiator.clone());
    if let Ok(id) = crate::names::BuildId::parse(&record.batch_id) {
        identity.build_id = id;
    }
    let Some(status_target) = self::target(apis, git, base_env, target, &identity) else {
        return;
    };
    let Some(api) = api_for(apis, status_target.host) else {
        return;
    };
    let succeeded = record
        .children
        .iter()
        .filter(|c| c.status == BuildState::Succeeded)
        .count();
    let description = format!(
        "Batch {}: {succeeded} of {} builds succeeded",
        record.status,
        record.children.len()
    );
    let status = CommitStatus::new(
        State::of(record.status),
        status_target.context.clone(),
        status_target.target_url.clone(),
        &description,
    );
    status::report(
        &*api,
        &status_target.repository,
        &status_target.commit,
        &status,
    )
    .await;
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
    set("PUSHBUILD_BUILD_ID", Some(identity.build_id.to_string()));
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
