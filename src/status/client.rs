//! The HTTP client the hosts' API adapters share: made on first use (loading the TLS roots costs
//! milliseconds that a function's start should not pay before it has a webhook to answer), with a
//! timeout per call, and answers sorted into what the API documents and [`ApiError`]s.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::ApiError;

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most pages of one listing read (GitHub lists at most 3,000 files).
const MAX_PAGES: usize = 30;

/// Where a page of a listing says the next one is.
#[derive(Debug, Clone, Copy)]
pub(super) enum NextPage {
    /// A `Link: <…>; rel="next"` header (GitHub, GitLab).
    LinkHeader,
    /// A field of the page's JSON body (Bitbucket's `next`).
    BodyField(&'static str),
}

/// One host API's base URL and its client.
#[derive(Debug)]
pub(super) struct ApiClient {
    client: OnceLock<reqwest::Client>,
    /// The API's base URL, without a trailing `/`.
    pub base: String,
}

impl ApiClient {
    pub fn new(base: &str) -> ApiClient {
        ApiClient {
            client: OnceLock::new(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(TIMEOUT)
                    .user_agent(concat!("pushbuild/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .unwrap_or_default()
            })
            .request(method, url)
    }

    /// Whether `url` is under this API (a next page elsewhere is not followed: the token goes
    /// only to the configured API).
    pub fn owns(&self, url: &str) -> bool {
        url.starts_with(&format!("{}/", self.base))
    }

    /// Sends `request`; a 2xx answer is returned, any other is an error with the host's words.
    pub async fn send(
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

    /// Every page of a listing from `first`, each page's items read by `items`. A next page
    /// outside this API is not read (the token goes only to the configured API).
    pub async fn pages(
        &self,
        operation: &'static str,
        first: String,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
        next_page: NextPage,
        items: impl Fn(&Value) -> Result<Vec<String>, ApiError>,
    ) -> Result<Vec<String>, ApiError> {
        let (mut all, mut pages, mut next) = (Vec::new(), 0, Some(first));
        while let Some(url) = next.take() {
            pages += 1;
            let response = self.send(operation, request(&url)).await?;
            let from_header = next_link(response.headers());
            let page = ApiClient::json(operation, response).await?;
            all.extend(items(&page)?);
            let found = match next_page {
                NextPage::LinkHeader => from_header,
                NextPage::BodyField(field) => page[field].as_str().map(str::to_string),
            };
            next = found
                .filter(|url| self.owns(url))
                .filter(|_| pages < MAX_PAGES);
        }
        Ok(all)
    }

    /// The JSON answer to a GET.
    pub async fn get_json(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, ApiError> {
        let response = self.send(operation, request).await?;
        ApiClient::json(operation, response).await
    }

    /// The JSON body of an answer.
    pub async fn json(
        operation: &'static str,
        response: reqwest::Response,
    ) -> Result<Value, ApiError> {
        let text = response.text().await.map_err(|err| ApiError::Unreachable {
            operation,
            message: err.without_url().to_string(),
        })?;
        serde_json::from_str(&text).map_err(|err| ApiError::Malformed {
            operation,
            message: err.to_string(),
        })
    }
}

/// The `rel="next"` URL of a `Link` header, when there is one.
pub(super) fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
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

/// A string field of each item of a JSON array, or an error naming what is missing.
pub(super) fn strings_of(
    operation: &'static str,
    items: &Value,
    pointer: &str,
) -> Result<Vec<String>, ApiError> {
    let items = items.as_array().ok_or_else(|| ApiError::Malformed {
        operation,
        message: "expected an array".into(),
    })?;
    items
        .iter()
        .map(|item| {
            item.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ApiError::Malformed {
                    operation,
                    message: format!("an item without `{pointer}`"),
                })
        })
        .collect()
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
            next_link(&headers).as_deref(),
            Some("https://api.github.com/x?page=2")
        );
        headers.insert(
            "link",
            "<https://api.github.com/x?page=1>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&headers), None);
    }
}
