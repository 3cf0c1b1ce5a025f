//! A build's id: the UTC time it started (so ids sort by time) and a random part,
//! `20261122T231000Z-3f9c1a2b`. It names the build's folder in the store and its item in the
//! index, so only what is safe in an object key and a path passes.

use std::fmt;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::NameError;

/// A build's id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BuildId(String);

impl BuildId {
    /// A new id: the start time (sortable) and eight random hex digits.
    pub fn new() -> BuildId {
        let random = uuid::Uuid::new_v4().simple().to_string();
        BuildId(format!(
            "{}-{}",
            Utc::now().format("%Y%m%dT%H%M%SZ"),
            &random[..8]
        ))
    }

    /// An id as stored or given: 1 to 64 letters, digits, `.`, `_` or `-`, neither `.` nor
    /// `..` (every id pushbuild has made passes; so do the ones tests choose).
    pub fn parse(text: &str) -> Result<BuildId, NameError> {
        if !super::key_safe(text, 64) {
            return Err(NameError::BuildId {
                found: text.to_string(),
            });
        }
        Ok(BuildId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for BuildId {
    fn default() -> BuildId {
        BuildId::new()
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BuildId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for BuildId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for BuildId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
