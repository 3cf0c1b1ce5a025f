//! Where builds are told about: a Slack-compatible incoming webhook (`PUSHBUILD_NOTIFY_URL`)
//! and an EventBridge bus (`PUSHBUILD_EVENT_BUS`).

use super::{ConfigError, invalid};

/// `PUSHBUILD_NOTIFY_URL`, an http(s) URL never shown (the URL is the secret).
pub(super) fn notify_url(
    url: Option<String>,
) -> Result<Option<crate::secret::Secret>, ConfigError> {
    match url {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => Err(invalid(
            "PUSHBUILD_NOTIFY_URL",
            "an http:// or https:// URL (its value is not shown)",
            None,
        )),
        url => Ok(url.map(crate::secret::Secret::new)),
    }
}

/// `PUSHBUILD_EVENT_BUS`: a bus's name (`default`) or ARN, as EventBridge spells them.
pub(super) fn event_bus(bus: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(bus) = bus.map(|b| b.trim().to_string()).filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let fits = bus.len() <= 1600
        && bus
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c));
    if fits {
        Ok(Some(bus))
    } else {
        Err(invalid(
            "PUSHBUILD_EVENT_BUS",
            "an event bus's name (letters, digits, `.`, `-`, `_`, `/`) or ARN",
            Some(&bus),
        ))
    }
}
