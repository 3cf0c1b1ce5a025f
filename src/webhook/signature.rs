//! HMAC-SHA256 signatures over a webhook's exact body bytes, compared in constant time: GitHub's
//! and Bitbucket's hex `sha256=` signatures, GitLab's Standard Webhooks signatures, and plain
//! tokens (GitLab's `X-Gitlab-Token`).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a refused `sha256=<hex>` signature header says.
pub struct SignatureMessages {
    pub missing: &'static str,
    pub malformed: &'static str,
    pub mismatch: &'static str,
}

/// Checks a `sha256=<hex>` HMAC-SHA256 signature header over `body` (GitHub's
/// `X-Hub-Signature-256`, Bitbucket's `X-Hub-Signature`).
pub fn verify_hex_header(
    headers: &super::Headers,
    name: &str,
    messages: &SignatureMessages,
    secret: &[u8],
    body: &[u8],
) -> Result<(), super::WebhookError> {
    let refuse = |why| super::WebhookError::Unauthorized { why };
    let header = headers.get(name).ok_or(refuse(messages.missing))?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(refuse(messages.malformed))?;
    if hmac_sha256_hex_matches(secret, body, hex) {
        Ok(())
    } else {
        Err(refuse(messages.mismatch))
    }
}

/// How far a Standard Webhooks timestamp may be from now (five minutes).
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 300;

/// Whether two byte strings are equal, taking the same time wherever they differ (the length
/// is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a Standard Webhooks signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardRefusal {
    /// The signing secret is not `whsec_<base64>`.
    BadSecret,
    /// The timestamp is not a number, or is more than five minutes from now.
    Stale,
    /// No `v1,` signature in the header matches.
    Mismatch,
}

/// Checks a Standard Webhooks signature (`webhook-signature: v1,<base64> …`) over
/// `<id>.<timestamp>.<body>` with the `whsec_…` secret, at `now` (seconds since the epoch).
pub fn standard_webhook(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now: i64,
) -> Result<(), StandardRefusal> {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b64| engine.decode(b64).ok())
        .ok_or(StandardRefusal::BadSecret)?;
    let sent: i64 = timestamp.parse().map_err(|_| StandardRefusal::Stale)?;
    if (now - sent).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(StandardRefusal::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| StandardRefusal::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    let matches = header.split_whitespace().any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|b64| engine.decode(b64).ok())
            .is_some_and(|sig| constant_time_eq(&sig, &expected))
    });
    if matches {
        Ok(())
    } else {
        Err(StandardRefusal::Mismatch)
    }
}

/// A Standard Webhooks signature header for `<id>.<timestamp>.<body>` (for tests and tools).
pub fn standard_webhook_header(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b64| engine.decode(b64).ok())
        .unwrap_or_default();
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", engine.encode(mac.finalize().into_bytes()))
}

/// Whether `hex` (case-insensitive) is the HMAC-SHA256 of `body` under `secret`. The comparison
/// takes the same time wherever the first difference lies.
pub fn hmac_sha256_hex_matches(secret: &[u8], body: &[u8], hex: &str) -> bool {
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The HMAC-SHA256 of `body` under `secret`, as lowercase hex (for tests and tools that sign).
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_signatures_check_the_id_the_time_and_the_body() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let header = standard_webhook_header(secret, "msg_1", "1700000000", b"{}");
        let check = |id: &str, ts: &str, body: &[u8], header: &str, now: i64| {
            standard_webhook(secret, id, ts, body, header, now)
        };
        assert_eq!(
            check("msg_1", "1700000000", b"{}", &header, 1_700_000_100),
            Ok(())
        );
        // Another signature first in the header does not hide the matching one.
        let two = format!("v1,AAAA {header}");
        assert_eq!(
            check("msg_1", "1700000000", b"{}", &two, 1_700_000_000),
            Ok(())
        );
        assert_eq!(
            check("msg_2", "1700000000", b"{}", &header, 1_700_000_000),
            Err(StandardRefusal::Mismatch)
        );
        assert_eq!(
            check("msg_1", "1700000000", b"{ }", &header, 1_700_000_000),
            Err(StandardRefusal::Mismatch)
        );
        assert_eq!(
            check("msg_1", "1700000000", b"{}", &header, 1_700_000_301),
            Err(StandardRefusal::Stale)
        );
        assert_eq!(
            standard_webhook("not-whsec", "m", "1", b"", &header, 1),
            Err(StandardRefusal::BadSecret)
        );
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokem"));
        assert!(!constant_time_eq(b"token", b"token2"));
    }

    #[test]
    fn signatures_match_only_the_exact_body_and_secret() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let good = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(hmac_sha256_hex(secret, body), good);
        assert!(hmac_sha256_hex_matches(secret, body, good));
        assert!(hmac_sha256_hex_matches(secret, body, &good.to_uppercase()));
        assert!(!hmac_sha256_hex_matches(secret, b"Hello, World?", good));
        assert!(!hmac_sha256_hex_matches(b"another secret", body, good));
        assert!(!hmac_sha256_hex_matches(secret, body, &good[..62]));
        assert!(!hmac_sha256_hex_matches(secret, body, "zz"));
        assert!(!hmac_sha256_hex_matches(secret, body, ""));
    }
}
