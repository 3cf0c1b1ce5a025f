//! GitHub's REST API: `POST /repos/{owner}/{repo}/statuses/{sha}` and
//! `GET /repos/{owner}/{repo}/pulls/{number}/files` (every page, following the `Link` header),
//! at `PUSHBUILD_GITHUB_API_URL`, with the token as a bearer token.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ApiError, ApiFuture, CommitStatus, HostApi};
use crate::names::CommitId;
use crate::secret::Secret;

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Files per page (GitHub's most), and the most pages read (GitHub lists at most 3,000 files).
const PER_PAGE: usize = 100;
const MAX_PAGES: usize = 30;

/// GitHub's API at one base URL.
#[derive(Debug)]
pub struct GitHubApi {
    /// Made on first use: loading the TLS roots costs milliseconds that a function's start
    /// should not pay before it has a webhook to answer.
    client: std::sync::OnceLock<reqwest::Client>,
    api_url: String,
    token: Option<Secret>,
}

impl GitHubApi {
    pub fn new(api_url: &str, token: Option<Secret>) -> GitHubApi {
        GitHubApi {
            client: std::sync::OnceLock::new(),
            api_url: api_url.trim_end_matches('/').to_string(),
            token,
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .user_agent(concat!("pushbuild/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default()
        })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self
            .client()
            .request(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28");
        match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }

    async fn send(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let response = request.send().await.map_err(|err| ApiError::Unreachable {
            operation,
            message: err.without_url().to_string(),
        })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let mut body = response.text().await.unwrap_or_default();
        body.truncate(300);
        Err(ApiError::Refused {
            operation,
            status,
            body,
        })
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
            let url = format!("{}/repos/{repository}/statuses/{commit}", self.api_url);
            let mut body = json!({
                "state": status.state.as_str(),
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
            self.send("POST statuses", request).await.map(|_| ())
        })
    }

    fn pull_request_files<'a>(
        &'a self,
        repository: &'a str,
        number: u64,
    ) -> ApiFuture<'a, Vec<String>> {
        Box::pin(async move {
            const OPERATION: &str = "GET pull request files";
            let mut files = Vec::new();
            let mut next = Some(format!(
                "{}/repos/{repository}/pulls/{number}/files?per_page={PER_PAGE}",
                self.api_url
            ));
            let mut pages = 0;
            while let Some(url) = next.take() {
                pages += 1;
                let response = self
                    .send(OPERATION, self.request(reqwest::Method::GET, &url))
                    .await?;
                // The token goes only to the configured API: a next page elsewhere is not read.
                next = next_page(response.headers())
                    .filter(|url| url.starts_with(&format!("{}/", self.api_url)))
                    .filter(|_| pages < MAX_PAGES);
                let text = response.text().await.map_err(|err| ApiError::Unreachable {
                    operation: OPERATION,
                    message: err.without_url().to_string(),
                })?;
                let page: Value =
                    serde_json::from_str(&text).map_err(|err| ApiError::Malformed {
                        operation: OPERATION,
                        message: err.to_string(),
                    })?;
                let items = page.as_array().ok_or_else(|| ApiError::Malformed {
                    operation: OPERATION,
                    message: "expected an array of files".into(),
                })?;
                for item in items {
                    let name = item["filename"]
                        .as_str()
                        .ok_or_else(|| ApiError::Malformed {
                            operation: OPERATION,
                            message: "a file without `filename`".into(),
                        })?;
                    files.push(name.to_string());
                }
            }
            Ok(files)
        })
    }
}

/// The `rel="next"` URL of a `Link` header, when there is one.
fn next_page(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "link",
            "<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_page(&headers).as_deref(),
            Some("https://api.github.com/x?page=2")
        );
        headers.insert(
            "link",
            "<https://api.github.com/x?page=1>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_page(&headers), None);
    }
}
