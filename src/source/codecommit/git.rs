//! Fetching a commit over CodeCommit's git endpoint, as `git-remote-codecommit` does: HTTPS basic
//! auth whose user is the access key (and `%` and the session token, when there is one) and whose
//! password is a SigV4 signature of the repository's path, made from the function's own
//! credentials. One shallow pack instead of a call per file, no 6 MB limit per file.

use aws_sdk_codecommit::config::{ProvideCredentials, SharedCredentialsProvider};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// CodeCommit's git endpoint for a region's repositories, and the credentials to sign with.
#[derive(Debug, Clone)]
pub struct GitEndpoint {
    /// `https://git-codecommit.<region>.amazonaws.com`, or another base URL (a test server's).
    pub base_url: String,
    pub region: String,
    pub credentials: SharedCredentialsProvider,
}

impl GitEndpoint {
    /// The endpoint of `region`.
    pub fn aws(region: &str, credentials: SharedCredentialsProvider) -> GitEndpoint {
        GitEndpoint {
            base_url: format!("https://git-codecommit.{region}.amazonaws.com"),
            region: region.to_string(),
            credentials,
        }
    }

    /// The repository's URL and the basic-auth pair to fetch it with, signed now.
    pub(super) async fn login(
        &self,
        repository: &str,
    ) -> Result<(String, (String, Secret)), String> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|err| format!("no AWS credentials to sign with: {err}"))?;
        let path = format!("/v1/repos/{repository}");
        let hostname = host_of(&self.base_url);
        let password = password(
            credentials.secret_access_key(),
            &self.region,
            hostname,
            &path,
            Utc::now(),
        );
        let username = match credentials.session_token() {
            Some(token) => format!("{}%{token}", credentials.access_key_id()),
            None => credentials.access_key_id().to_string(),
        };
        let url = format!("{}{path}", self.base_url.trim_end_matches('/'));
        Ok((url, (username, Secret::new(password))))
    }
}

/// The host of `url`, without its scheme, port or path.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// The password CodeCommit's git endpoint takes: `<timestamp>Z<SigV4 signature>` of the request
/// `GIT <path>` to `hostname`, with the service `codecommit`.
pub fn password(
    secret_key: &str,
    region: &str,
    hostname: &str,
    path: &str,
    now: DateTime<Utc>,
) -> String {
    let timestamp = now.format("%Y%m%dT%H%M%S").to_string();
    let date = &timestamp[..8];
    let canonical = format!("GIT\n{path}\n\nhost:{hostname}\n\nhost\n");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{date}/{region}/codecommit/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
    for part in [region, "codecommit", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    format!("{timestamp}Z{}", hex(&hmac(&key, to_sign.as_bytes())))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_password_is_a_timestamp_and_a_signature_of_the_repository_path() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 5).unwrap();
        let password = password(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "git-codecommit.us-east-1.amazonaws.com",
            "/v1/repos/demo",
            now,
        );
        let (timestamp, signature) = password.split_once('Z').unwrap();
        assert_eq!(timestamp, "20261130T120005");
        assert_eq!(signature.len(), 64);
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        // Another repository, region or key signs differently.
        let other = |secret: &str, region: &str, path: &str| {
            super::password(
                secret,
                region,
                "git-codecommit.us-east-1.amazonaws.com",
                path,
                now,
            )
        };
        let base = other(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "/v1/repos/demo",
        );
        assert_eq!(base, password);
        for changed in [
            other("another-key", "us-east-1", "/v1/repos/demo"),
            other(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "eu-west-1",
                "/v1/repos/demo",
            ),
            other(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "us-east-1",
                "/v1/repos/other",
            ),
        ] {
            assert_ne!(changed, password);
        }
        assert_eq!(
            host_of("https://git-codecommit.us-east-1.amazonaws.com/"),
            "git-codecommit.us-east-1.amazonaws.com"
        );
        assert_eq!(host_of("http://127.0.0.1:9000"), "127.0.0.1");
    }
}
