//! The webhook and git settings: filter groups, forks, each host's URLs, secrets and allowed
//! repositories, clone depth, submodules and the commit status's templates.

use super::{ConfigError, GitSettings, Vars, invalid};
use crate::secret::Secret;
use crate::trigger::Host;
use crate::webhook::{FilterGroups, HostSettings, WebhookSettings};

pub const DEFAULT_GITHUB_URL: &str = "https://github.com";
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
pub const DEFAULT_GITLAB_URL: &str = "https://gitlab.com";
pub const DEFAULT_BITBUCKET_URL: &str = "https://bitbucket.org";
pub const DEFAULT_BITBUCKET_API_URL: &str = "https://api.bitbucket.org";
pub const DEFAULT_STATUS_CONTEXT: &str = "pushbuild";

pub(super) fn settings(vars: &Vars) -> Result<WebhookSettings, ConfigError> {
    let filter_groups = match vars.get("PUSHBUILD_FILTER_GROUPS") {
        None => FilterGroups::default(),
        Some(text) => FilterGroups::parse(&text).map_err(|err| ConfigError::Setting {
            name: "PUSHBUILD_FILTER_GROUPS",
            problem: err.to_string(),
        })?,
    };
    let fork_pull_requests = match vars.get("PUSHBUILD_FORK_PULL_REQUESTS").as_deref() {
        None | Some("skip") => false,
        Some("build") => true,
        Some(other) => {
            return Err(invalid(
                "PUSHBUILD_FORK_PULL_REQUESTS",
                "`build` (pull requests from forks are built) or `skip` (the default)",
                Some(other),
            ));
        }
    };
    let github = HostSettings {
        host: Host::GitHub,
        url: url(vars, "PUSHBUILD_GITHUB_URL", DEFAULT_GITHUB_URL)?,
        api_url: url(vars, "PUSHBUILD_GITHUB_API_URL", DEFAULT_GITHUB_API_URL)?,
        webhook_secret: vars.get("PUSHBUILD_GITHUB_WEBHOOK_SECRET").map(Secret::new),
        signing_secret: None,
        token: vars.get("PUSHBUILD_GITHUB_TOKEN").map(Secret::new),
        repositories: repositories(vars, "PUSHBUILD_GITHUB_REPOSITORIES", false)?,
    };
    // GitLab's API lives under its URL unless said otherwise.
    let gitlab_url = url(vars, "PUSHBUILD_GITLAB_URL", DEFAULT_GITLAB_URL)?;
    let gitlab = HostSettings {
        host: Host::GitLab,
        api_url: url(
            vars,
            "PUSHBUILD_GITLAB_API_URL",
            &format!("{gitlab_url}/api/v4"),
        )?,
        url: gitlab_url,
        webhook_secret: vars.get("PUSHBUILD_GITLAB_WEBHOOK_TOKEN").map(Secret::new),
        signing_secret: vars.get("PUSHBUILD_GITLAB_SIGNING_TOKEN").map(Secret::new),
        token: vars.get("PUSHBUILD_GITLAB_TOKEN").map(Secret::new),
        repositories: repositories(vars, "PUSHBUILD_GITLAB_REPOSITORIES", true)?,
    };
    let bitbucket = HostSettings {
        host: Host::Bitbucket,
        url: url(vars, "PUSHBUILD_BITBUCKET_URL", DEFAULT_BITBUCKET_URL)?,
        api_url: url(
            vars,
            "PUSHBUILD_BITBUCKET_API_URL",
            DEFAULT_BITBUCKET_API_URL,
        )?,
        webhook_secret: vars
            .get("PUSHBUILD_BITBUCKET_WEBHOOK_SECRET")
            .map(Secret::new),
        signing_secret: None,
        token: vars.get("PUSHBUILD_BITBUCKET_TOKEN").map(Secret::new),
        repositories: repositories(vars, "PUSHBUILD_BITBUCKET_REPOSITORIES", false)?,
    };
    Ok(WebhookSettings {
        filter_groups,
        fork_pull_requests,
        github,
        gitlab,
        bitbucket,
    })
}

pub(super) fn git_settings(vars: &Vars) -> Result<GitSettings, ConfigError> {
    let clone_depth = vars.number("PUSHBUILD_GIT_CLONE_DEPTH", 0, u64::from(u32::MAX))?;
    let submodules = vars.flag("PUSHBUILD_GIT_SUBMODULES", false)?;
    let spare_files = match vars.get("PUSHBUILD_SPARE_FILES").as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) if v.eq_ignore_ascii_case("auto") => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            let expected = "auto, true or false";
            return Err(super::invalid("PUSHBUILD_SPARE_FILES", expected, Some(v)));
        }
    };
    let public_url = url_opt(vars, "PUSHBUILD_PUBLIC_URL")?;
    Ok(GitSettings {
        clone_depth: clone_depth.map_or(1, |d| u32::try_from(d).unwrap_or(u32::MAX)),
        submodules,
        spare_files,
        status_context: vars
            .get("PUSHBUILD_STATUS_CONTEXT")
            .unwrap_or_else(|| DEFAULT_STATUS_CONTEXT.to_string()),
        // The build's page, when the pages' address is known.
        status_target_url: match vars.get("PUSHBUILD_STATUS_TARGET_URL") {
            Some(template) => Some(template),
            None => public_url.as_ref().map(|base| {
                format!("{base}/builds/${{PUSHBUILD_PROJECT}}/${{PUSHBUILD_BUILD_ID}}")
            }),
        },
        public_url,
    })
}

/// An optional `http://` or `https://` URL, without a trailing `/`.
fn url_opt(vars: &Vars, name: &'static str) -> Result<Option<String>, ConfigError> {
    match vars.get(name) {
        Some(_) => url(vars, name, "").map(Some),
        None => Ok(None),
    }
}

/// An `http://` or `https://` URL, without a trailing `/`.
fn url(vars: &Vars, name: &'static str, default: &str) -> Result<String, ConfigError> {
    let Some(text) = vars.get(name) else {
        return Ok(default.to_string());
    };
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.contains('@') && !rest.contains(char::is_whitespace) =>
        {
            Ok(text.trim_end_matches('/').to_string())
        }
        // A URL with credentials in it is not shown: they are secret.
        _ => Err(invalid(
            name,
            "an http:// or https:// URL without credentials in it, such as https://github.example.com",
            (!text.contains('@')).then_some(text.as_str()),
        )),
    }
}

/// `owner/repo` and `owner/*` items, comma-separated (`nested`: GitLab's `group/sub/project`
/// and `group/sub/*` too).
fn repositories(vars: &Vars, name: &'static str, nested: bool) -> Result<Vec<String>, ConfigError> {
    let Some(text) = vars.get(name) else {
        return Ok(Vec::new());
    };
    let mut patterns = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let parts: Vec<&str> = item.split('/').collect();
        let part = |p: &&str| crate::names::RepositoryName::parse(p).is_ok();
        let (last, owners) = parts.split_last().unwrap_or((&"", &[]));
        let good = (parts.len() == 2 || nested && parts.len() > 2)
            && owners.iter().all(part)
            && (*last == "*" || part(last));
        if !good {
            let expected = if nested {
                "`group/project` or `group/*` items separated by commas"
            } else {
                "`owner/repo` or `owner/*` items separated by commas"
            };
            return Err(invalid(name, expected, Some(item)));
        }
        patterns.push(item.to_string());
    }
    Ok(patterns)
}
