//! `PUSHBUILD_SUPERSEDE`: which newer pushes stop the builds their reference already has.

use super::{ConfigError, invalid};

/// `PUSHBUILD_SUPERSEDE`: `off` (the default), `branch`, `pull-request` or `both`: a newer push
/// to a branch (a pull request) stops that reference's running and queued builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Supersede {
    #[default]
    Off,
    Branch,
    PullRequest,
    Both,
}

impl Supersede {
    pub(super) fn parse(text: Option<&str>) -> Result<Supersede, ConfigError> {
        Ok(match text.map(str::trim) {
            None | Some("off") => Supersede::Off,
            Some("branch") => Supersede::Branch,
            Some("pull-request") => Supersede::PullRequest,
            Some("both") => Supersede::Both,
            Some(other) => {
                return Err(invalid(
                    "PUSHBUILD_SUPERSEDE",
                    "off, branch, pull-request or both",
                    Some(other),
                ));
            }
        })
    }

    /// Whether a newer build of `reference` stops the older ones.
    pub fn covers(self, reference: &str) -> bool {
        let branch = reference.starts_with("refs/heads/");
        let pull = reference.starts_with("refs/pull/");
        match self {
            Supersede::Off => false,
            Supersede::Branch => branch,
            Supersede::PullRequest => pull,
            Supersede::Both => branch || pull,
        }
    }
}
