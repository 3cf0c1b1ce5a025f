//! Bitbucket Cloud's REST API (2.0) at `PUSHBUILD_BITBUCKET_API_URL`, the access token as a
//! bearer token: build statuses (`POST /2.0/repositories/{workspace}/{repo}/commit/{sha}/statuses/build`,
//! `INPROGRESS` then `SUCCESSFUL`, `FAILED` or `STOPPED`, keyed by the context so a later status
//! replaces the earlier one), the files of a pull request and of a push (`diffstat`, every page
//! by the answer's `next`), and the full id of the abbreviated commits its pull request payloads
//! carry (`GET …/commit/{hash}`).

use serde_json::{Value, json};

use super::client::{ApiClient, NextPage};
use super::{ApiError, ApiFuture, Change, CommitStatus, HostApi, State};
use crate::names::CommitId;
use crate::secret::Secret;

/// Bitbucket's API at one base URL (`https://api.bitbucket.org`).
#[derive(Debug)]
pub struct BitbucketApi {
    client: ApiClient,
    /// The site (`https://bitbucket.org`): a status needs a link, and the commit's page is the
    /// one to give when no target URL is set.
    site: String,
    token: Option<Secret>,
}

impl BitbucketApi {
    pub fn new(api_url: &str, site_url: &str, token: Option<Secret>) -> BitbucketApi {
        BitbucketApi {
            client: ApiClient::new(api_url),
            site: site_url.trim_end_matches('/').to_string(),
            token,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }

    fn repository(&self, path: &str) -> String {
        format!("{}/2.0/repositories/{path}", self.client.base)
    }
}

fn state(state: State) -> &'static str {
    match state {
        State::Pending => "INPROGRESS",
        State::Success => "SUCCESSFUL",
        State::Failure => "FAILED",
        State::Error => "STOPPED",
    }
}

/// The paths in a diffstat page (`new.path`, or `old.path` for a deleted file).
fn diffstat_paths(operation: &'static str, page: &Value) -> Result<Vec<String>, ApiError> {
    let values = page["values"]
        .as_array()
        .ok_or_else(|| ApiError::Malformed {
            operation,
            message: "expected `values`".into(),
        })?;
    values
        .iter()
        .map(|item| {
            item.pointer("/new/path")
                .or_else(|| item.pointer("/old/path"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ApiError::Malformed {
                    operation,
                    message: "a diffstat entry without a path".into(),
                })
        })
        .collect()
}

impl HostApi for BitbucketApi {
    fn post_status<'a>(
        &'a self,
        repository: &'a str,
        commit: &'a CommitId,
        status: &'a CommitStatus,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            let url = format!(
                "{}/commit/{commit}/statuses/build",
                self.repository(repository)
            );
            let link = status
                .target_url
                .clone()
                .unwrap_or_else(|| format!("{}/{repository}/commits/{commit}", self.site));
            let body = json!({
                "key": status.context,
                "name": status.context,
                "state": state(status.state),
                "url": link,
                "description": status.description,
            });
            let request = self
                .request(reqwest::Method::POST, &url)
                .header("content-type", "application/json")
                .body(body.to_string());
            self.client
                .send("POST statuses/build", request)
                .await
                .map(|_| ())
        })
    }

    fn changed_files<'a>(
        &'a self,
        repository: &'a str,
        change: Change<'a>,
    ) -> ApiFuture<'a, Vec<String>> {
        Box::pin(async move {
            const OPERATION: &str = "GET diffstat";
            let base = self.repository(repository);
            let first = match change {
                Change::PullRequest(id) => format!("{base}/pullrequests/{id}/diffstat"),
                // `A..B` is what A has that B has not; a new reference is against its parent.
                Change::Push {
                    before: Some(before),
                    after,
                } => format!("{base}/diffstat/{after}..{before}"),
                Change::Push {
                    before: None,
                    after,
                } => format!("{base}/diffstat/{after}"),
            };
            let get = |url: &str| self.request(reqwest::Method::GET, url);
            let items = |page: &Value| diffstat_paths(OPERATION, page);
            self.client
                .pages(OPERATION, first, get, NextPage::BodyField("next"), items)
                .await
        })
    }

    fn full_commit_id<'a>(
        &'a self,
        repository: &'a str,
        abbreviated: &'a str,
    ) -> ApiFuture<'a, CommitId> {
        Box::pin(async move {
            const OPERATION: &str = "GET commit";
            let url = format!("{}/commit/{abbreviated}", self.repository(repository));
            let body = self
                .client
                .get_json(OPERATION, self.request(reqwest::Method::GET, &url))
                .await?;
            body["hash"]
                .as_str()
                .and_then(|id| CommitId::parse(id).ok())
                .ok_or_else(|| ApiError::Malformed {
                    operation: OPERATION,
                    message: "no full commit `hash`".into(),
                })
        })
    }
}
