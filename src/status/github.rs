//! GitHub's REST API at `PUSHBUILD_GITHUB_API_URL`, the token as a bearer token:
//! `POST /repos/{owner}/{repo}/statuses/{sha}`, a pull request's files
//! (`GET /repos/{owner}/{repo}/pulls/{number}/files`, every page by the `Link` header) and a
//! push's (`GET /repos/{owner}/{repo}/compare/{before}...{after}`).

use serde_json::{Value, json};

use super::client::{ApiClient, NextPage, strings_of};
use super::{ApiError, ApiFuture, Change, CommitStatus, HostApi, State};
use crate::names::CommitId;
use crate::secret::Secret;

/// Files per page (GitHub's most).
const PER_PAGE: usize = 100;

/// GitHub's API at one base URL.
#[derive(Debug)]
pub struct GitHubApi {
    client: ApiClient,
    token: Option<Secret>,
}

impl GitHubApi {
    pub fn new(api_url: &str, token: Option<Secret>) -> GitHubApi {
        GitHubApi {
            client: ApiClient::new(api_url),
            token,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28");
        match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }
}

fn state(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Success => "success",
        State::Failure => "failure",
        State::Error => "error",
    }
}

impl HostApi for GitHubApi {
    fn post_status<'a>(
        &'a self,
        repository: &'a str,
        commit: &'a CommitId,
        status: &'a CommitStatus,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            let url = format!("{}/repos/{repository}/statuses/{commit}", self.client.base);
            let mut body = json!({
                "state": state(status.state),
                "context": status.context,
                "description": status.description,
            });
            if let Some(target) = &status.target_url {
                body["target_url"] = json!(target);
            }
            let request = self
                .request(reqwest::Method::POST, &url)
                .header("content-type", "application/json")
                .body(body.to_string());
            self.client.send("POST statuses", request).await.map(|_| ())
        })
    }

    fn changed_files<'a>(
        &'a self,
        repository: &'a str,
        change: Change<'a>,
    ) -> ApiFuture<'a, Vec<String>> {
        Box::pin(async move {
            let base = &self.client.base;
            let get = |url: &str| self.request(reqwest::Method::GET, url);
            match change {
                Change::PullRequest(number) => {
                    let first = format!(
                        "{base}/repos/{repository}/pulls/{number}/files?per_page={PER_PAGE}"
                    );
                    let items =
                        |page: &Value| strings_of("GET pull request files", page, "/filename");
                    self.client
                        .pages(
                            "GET pull request files",
                            first,
                            get,
                            NextPage::LinkHeader,
                            items,
                        )
                        .await
                }
                Change::Push { before: None, .. } => Ok(Vec::new()),
                Change::Push {
                    before: Some(before),
                    after,
                } => {
                    let first = format!(
                        "{base}/repos/{repository}/compare/{before}...{after}?per_page={PER_PAGE}"
                    );
                    let items =
                        |page: &Value| strings_of("GET compare", &page["files"], "/filename");
                    self.client
                        .pages("GET compare", first, get, NextPage::LinkHeader, items)
                        .await
                }
            }
        })
    }

    fn full_commit_id<'a>(
        &'a self,
        _repository: &'a str,
        abbreviated: &'a str,
    ) -> ApiFuture<'a, CommitId> {
        // GitHub's payloads carry full ids.
        Box::pin(async move {
            Err(ApiError::Malformed {
                operation: "commit id",
                message: format!("GitHub gave an abbreviated commit id {abbreviated:?}"),
            })
        })
    }
}
