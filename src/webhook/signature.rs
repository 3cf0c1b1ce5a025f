//! HMAC-SHA256 signatures over a webhook's exact body bytes, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

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
