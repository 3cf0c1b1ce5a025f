//! Telling people when a build fails, and when a reference whose last build failed builds again
//! (see [`crate::status::notify`]). The last build is looked for among the project's newest 50
//! builds (one page of the index), never further back.

use std::time::Duration;

use super::{BuildSummary, Builds, in_index};
use crate::names::BuildId;
use crate::state::BuildState;
use crate::status::notify::Notice;

/// The longest a notification may take: it never holds a build's answer longer.
const NOTIFY_WITHIN: Duration = Duration::from_secs(5);

impl<S> Builds<S> {
    /// After a build's end: a message when it failed or fixed its reference.
    pub(super) async fn notify_end(&self, summary: &BuildSummary) {
        let Some(notify) = &self.notify else {
            return;
        };
        let fixed = match summary.status {
            BuildState::Failed | BuildState::TimedOut => false,
            BuildState::Succeeded => self.last_failed(summary).await,
            _ => return,
        };
        if summary.status == BuildState::Succeeded && !fixed {
            return;
        }
        let link = self.build_link(summary);
        let notice = Notice {
            project: summary.repository.as_str(),
            reference: summary.reference.as_deref().map(crate::names::short_ref),
            build_id: summary.build_id.as_deref().unwrap_or("-"),
            status: summary.status.as_str(),
            reason: summary.reason.as_deref(),
            link: link.as_deref(),
            fixed,
        };
        let text = notice.text();
        match tokio::time::timeout(NOTIFY_WITHIN, notify.send(&text)).await {
            Ok(Ok(())) => tracing::info!(build_id = notice.build_id, "notified"),
            Ok(Err(why)) => tracing::warn!(
                build_id = notice.build_id,
                why,
                "the notification was not sent"
            ),
            Err(_) => tracing::warn!(
                build_id = notice.build_id,
                "the notification took too long: dropped"
            ),
        }
    }

    /// Whether the build of `summary`'s reference before it ended badly.
    async fn last_failed(&self, summary: &BuildSummary) -> bool {
        let (Some(reference), Some(id)) = (summary.reference.clone(), summary.build_id.clone())
        else {
            return false;
        };
        let project = summary.repository.clone();
        let page = in_index(&self.books.index, move |index| {
            index.project_builds(&project, None, 50)
        })
        .await;
        let Ok(page) = page else {
            return false;
        };
        // By when they began: build ids sort by the second only.
        let this = BuildId::parse(&id).ok();
        let Some(began) = page
            .entries
            .iter()
            .find(|e| Some(&e.build_id) == this.as_ref())
            .map(|e| e.start_time)
        else {
            return false;
        };
        page.entries
            .iter()
            .filter(|e| Some(&e.build_id) != this.as_ref() && e.start_time <= began)
            .filter(|e| e.reference.as_deref() == Some(reference.as_str()))
            .filter(|e| {
                matches!(
                    e.state,
                    BuildState::Succeeded | BuildState::Failed | BuildState::TimedOut
                )
            })
            .max_by_key(|e| e.start_time)
            .is_some_and(|e| e.state.is_failure())
    }

    /// The build's page when the pages' address is known, else its log.
    fn build_link(&self, summary: &BuildSummary) -> Option<String> {
        let id = summary.build_id.as_deref()?;
        self.page_link(summary.repository.as_str(), id)
            .or_else(|| summary.log_uri.clone())
    }

    /// The build's page, when the pages' address is known.
    pub(super) fn page_link(&self, project: &str, build_id: &str) -> Option<String> {
        let template = self.config.git.status_target_url.as_deref()?;
        Some(crate::status::expand(
            template,
            &[
                ("PUSHBUILD_PROJECT".to_string(), project.to_string()),
                ("PUSHBUILD_BUILD_ID".to_string(), build_id.to_string()),
            ],
        ))
    }
}
