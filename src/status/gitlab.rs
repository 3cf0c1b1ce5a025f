//! GitLab's REST API (v4) under `PUSHBUILD_GITLAB_URL` + `/api/v4`, the token in `PRIVATE-TOKEN`:
//! `POST /projects/:id/statuses/:sha` (`running` when a build starts, then `success`, `failed` or
//! `canceled`), a merge request's files (`GET /projects/:id/merge_requests/:iid/diffs`, every
//! page), a push's (`GET /projects/:id/repository/compare`), and a full commit id
//! (`GET /projects/:id/repository/commits/:sha`). `:id` is the project's URL-encoded path.

use serde_json::{Value, json};

use super::client::{ApiClient, NextPage, strings_of};
use super::{ApiError, ApiFuture, Change, CommitStatus, HostApi, State};
use crate::names::CommitId;
use crate::secret::Secret;

const PER_PAGE: usize = 100;

/// GitLab's API at one base URL (`https://gitlab.com/api/v4`).
#[derive(Debug)]
pub struct GitLabApi {
    client: ApiClient,
    token: Option<Secret>,
}

impl GitLabApi {
    pub fn new(api_url: &str, token: Option<Secret>) -> GitLabApi {
        GitLabApi {
            client: ApiClient::new(api_url),
            token,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.header("private-token", token.expose()),
            None => request,
        }
    }

    /// `/projects/<group%2Fproject>`.
    fn project(&self, path: &str) -> String {
        format!("{}/projects/{}", self.client.base, path.replace('/', "%2F"))
    }
}

fn state(state: State) -> &'static str {
    match state {
        State::Pending => "running",
        State::Success => "success",
        State::Failure => "failed",
        State::Error => "canceled",
    }
}

impl HostApi for GitLabApi {
    fn post_status<'a>(
        &'a self,
        repository: &'a str,
        commit: &'a CommitId,
        status: &'a CommitStatus,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            let url = format!("{}/statuses/{commit}", self.project(repository));
            let mut body = json!({
                "state": state(status.state),
                "name": status.context,
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
            let project = self.project(repository);
            match change {
                Change::PullRequest(iid) => {
                    const OPERATION: &str = "GET merge request diffs";
                    let first = format!("{project}/merge_requests/{iid}/diffs?per_page={PER_PAGE}");
                    let get = |url: &str| self.request(reqwest::Method::GET, url);
                    let items = |page: &Value| strings_of(OPERATION, page, "/new_path");
                    self.client
                        .pages(OPERATION, first, get, NextPage::LinkHeader, items)
                        .await
                }
                Change::Push { before, after } => {
                    const OPERATION: &str = "GET compare";
                    let Some(before) = before else {
                        return Ok(Vec::new());
                    };
                    let url = format!("{project}/repository/compare?from={before}&to={after}");
                    let body = self
                        .client
                        .get_json(OPERATION, self.request(reqwest::Method::GET, &url))
                        .await?;
                    strings_of(OPERATION, &body["diffs"], "/new_path")
                }
            }
        })
    }

    fn full_commit_id<'a>(
        &'a self,
        repository: &'a str,
        abbreviated: &'a str,
    ) -> ApiFuture<'a, CommitId> {
        Box::pin(async move {
            const OPERATION: &str = "GET commit";
            let url = format!(
                "{}/repository/commits/{abbreviated}",
                self.project(repository)
            );
            let body = self
                .client
                .get_json(OPERATION, self.request(reqwest::Method::GET, &url))
                .await?;
            body["id"]
                .as_str()
                .and_then(|id| CommitId::parse(id).ok())
                .ok_or_else(|| ApiError::Malformed {
                    operation: OPERATION,
                    message: "no full commit `id`".into(),
                })
        })
    }
}
