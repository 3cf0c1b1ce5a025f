//! Telling people: a short message to a Slack-compatible incoming webhook
//! (`PUSHBUILD_NOTIFY_URL`; `POST {"text": …}`, which Slack, Mattermost, Rocket.Chat and
//! Discord's Slack-compatible endpoint take) when a build fails, and when a branch is fixed.
//! Like commit statuses, a notification never fails a build: one that cannot be sent within a
//! few seconds is logged (never with its URL, which is a secret) and dropped.

use std::future::Future;
use std::pin::Pin;

/// Where messages go.
pub trait Notify: Send + Sync {
    /// Sends `text`; why not, when it could not.
    fn send<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// What happened to a build, for its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice<'a> {
    pub project: &'a str,
    /// `main`, `pull/7`: the reference, short.
    pub reference: Option<&'a str>,
    pub build_id: &'a str,
    /// `FAILED`, `TIMED_OUT`, or `SUCCEEDED` for a fix.
    pub status: &'a str,
    /// Why it failed (its failed phase's message), when it did.
    pub reason: Option<&'a str>,
    /// The build's page, or its log.
    pub link: Option<&'a str>,
    /// Whether it fixed a reference whose last build failed.
    pub fixed: bool,
}

impl Notice<'_> {
    /// The message: one line, the link last.
    pub fn text(&self) -> String {
        let on = self
            .reference
            .map(|r| format!(" on {r}"))
            .unwrap_or_default();
        let mut text = if self.fixed {
            format!(
                "Fixed: {}{on} builds again (build {} SUCCEEDED)",
                self.project, self.build_id
            )
        } else {
            format!(
                "{} build {} {}{on}",
                self.project, self.build_id, self.status
            )
        };
        if let (false, Some(reason)) = (self.fixed, self.reason) {
            let reason: String = reason.chars().take(300).collect();
            text.push_str(&format!(": {reason}"));
        }
        if let Some(link) = self.link {
            text.push_str(&format!(" <{link}>"));
        }
        text
    }
}

/// An incoming webhook at a URL (a secret: whoever has it can post).
#[cfg(feature = "server")]
pub struct IncomingWebhook {
    url: crate::secret::Secret,
    client: reqwest::Client,
}

/// The incoming webhook `PUSHBUILD_NOTIFY_URL` names, when it is set.
#[cfg(feature = "server")]
pub fn incoming_webhook(url: Option<crate::secret::Secret>) -> Option<std::sync::Arc<dyn Notify>> {
    url.map(|url| std::sync::Arc::new(IncomingWebhook::new(url)) as std::sync::Arc<dyn Notify>)
}

#[cfg(feature = "server")]
impl IncomingWebhook {
    pub fn new(url: crate::secret::Secret) -> IncomingWebhook {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        IncomingWebhook { url, client }
    }
}

#[cfg(feature = "server")]
impl Notify for IncomingWebhook {
    fn send<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let body = serde_json::json!({ "text": text }).to_string();
            let answer = self
                .client
                .post(self.url.expose())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                // The error's text names the URL: only its kind is kept.
                .map_err(|err| {
                    if err.is_timeout() {
                        "no answer in 5 s".to_string()
                    } else {
                        "could not connect".to_string()
                    }
                })?;
            if answer.status().is_success() {
                Ok(())
            } else {
                Err(format!("answered {}", answer.status().as_u16()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_says_why_and_links_the_page_and_a_fix_says_so() {
        let failed = Notice {
            project: "github.com/octo/app",
            reference: Some("main"),
            build_id: "b-2",
            status: "FAILED",
            reason: Some("COMMAND_EXECUTION_ERROR: Error while executing command: make"),
            link: Some("https://ci.example.com/builds/github.com/octo/app/b-2"),
            fixed: false,
        };
        assert_eq!(
            failed.text(),
            "github.com/octo/app build b-2 FAILED on main: COMMAND_EXECUTION_ERROR: Error while \
             executing command: make <https://ci.example.com/builds/github.com/octo/app/b-2>"
        );
        let fixed = Notice {
            status: "SUCCEEDED",
            reason: None,
            fixed: true,
            build_id: "b-3",
            link: None,
            ..failed
        };
        assert_eq!(
            fixed.text(),
            "Fixed: github.com/octo/app on main builds again (build b-3 SUCCEEDED)"
        );
    }
}
