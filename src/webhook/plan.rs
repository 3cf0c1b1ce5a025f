//! From a host's event to what to build, as CodeBuild's webhooks decide it: the repository must
//! be allowed, a filter group must match, a deleted reference and a `[skip ci]` commit are
//! skipped, and a fork's pull request is built only when the settings say so.

use super::event::HostEvent;
use super::{WebhookError, WebhookSettings};
use crate::names::{CommitId, ProjectName, Repo, SourceVersion, pull_request_ref};
use crate::trigger::{BuildTarget, EventKind, Skipped, WebhookInfo, skip_ci};

/// What one event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: the event does not concern this function (answered 200 with the reason).
    Ignored { reason: String },
    /// A build.
    Build(Box<BuildTarget>),
    /// A build that is not run, and why. `asked_for`: the filters asked for it (a fork's pull
    /// request), so the commit is told it was refused.
    Skip { skipped: Skipped, asked_for: bool },
}

/// Decides what `event` builds.
pub fn plan(event: &HostEvent, settings: &WebhookSettings) -> Result<Plan, WebhookError> {
    let host = settings.host(event.host);
    if !host.allows(&event.repository) {
        return Ok(Plan::Ignored {
            reason: format!(
                "repository {} is not in PUSHBUILD_{}_REPOSITORIES",
                event.repository,
                event.host.as_str().to_ascii_uppercase()
            ),
        });
    }
    let bad_path = |err: crate::names::NameError| WebhookError::BadRequest {
        field: "the repository's path".into(),
        problem: err.to_string(),
    };
    let source = Repo::hosted(event.host, &event.repository).map_err(bad_path)?;
    let project = host.project(&event.repository).map_err(bad_path)?;
    let skip = |reason: String, asked_for: bool| Plan::Skip {
        skipped: Skipped {
            repository: project.clone(),
            reference: Some(event.head_ref.clone()),
            commit: event.commit.as_ref().map(ToString::to_string),
            reason,
        },
        asked_for,
    };
    if !settings.filter_groups.matches(event) {
        return Ok(Plan::Ignored {
            reason: format!(
                "no filter group matches {} of {}",
                event.kind.as_str(),
                event.head_ref
            ),
        });
    }
    let commit = match (
        &event.commit,
        &event.abbreviated_commit,
        &event.pull_request,
    ) {
        (Some(commit), _, _) => commit.clone(),
        (None, None, None) => {
            return Ok(skip(format!("{} was deleted", event.head_ref), false));
        }
        // The front door asks the host for a full id before planning; without one nothing can
        // be built.
        (None, _, _) => {
            return Err(WebhookError::BadRequest {
                field: "the head commit".into(),
                problem: "only an abbreviated commit id is known".into(),
            });
        }
    };
    if let Some(reason) = refusal(event, settings) {
        let asked_for = event.pull_request.is_some();
        return Ok(skip(reason, asked_for));
    }
    Ok(Plan::Build(Box::new(target(
        event, project, source, commit,
    ))))
}

/// Why a build the filters let through is not run: a fork's pull request (unless forks are
/// built), or a push whose head commit asks to skip CI.
fn refusal(event: &HostEvent, settings: &WebhookSettings) -> Option<String> {
    if let Some(pr) = &event.pull_request {
        if pr.from_fork && !settings.fork_pull_requests {
            return Some(format!(
                "pull request #{} comes from a fork, whose code would run with the function's \
                 role; PUSHBUILD_FORK_PULL_REQUESTS=build builds such pull requests",
                pr.number
            ));
        }
    }
    let skip_asked =
        event.kind == EventKind::Push && event.commit_message.as_deref().is_some_and(skip_ci);
    skip_asked.then(|| "the commit message asks to skip CI ([skip ci] or [ci skip])".to_string())
}

/// The build an event asks for, at `commit` of `source`, as `project`.
fn target(event: &HostEvent, project: ProjectName, source: Repo, commit: CommitId) -> BuildTarget {
    let (version, reference) = match &event.pull_request {
        Some(pr) => (
            SourceVersion::PullRequest(pr.number),
            pull_request_ref(pr.number),
        ),
        None => (
            SourceVersion::Commit(commit.clone()),
            event.head_ref.clone(),
        ),
    };
    let initiator = match &event.actor_name {
        Some(name) => format!("{}/{name}", event.host.as_str()),
        None => event.host.as_str().to_string(),
    };
    BuildTarget {
        commit: Some(commit),
        reference: Some(reference),
        webhook_trigger: Some(event.trigger()),
        dedup_key: Some(format!("{}:{}", event.host.as_str(), event.delivery)),
        webhook: Some(WebhookInfo {
            host: event.host,
            event: event.kind,
            repository: event.repository.clone(),
            head_ref: event.head_ref.clone(),
            base_ref: event.base_ref.clone(),
            actor_account_id: event.actor_account_id.clone(),
            prev_commit: event.prev_commit.clone(),
        }),
        ..BuildTarget::new(project, source, version, initiator)
    }
}
