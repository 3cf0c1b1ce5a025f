//! The environment a build's commands see, layered as CodeBuild layers it.

use std::path::Path;

use crate::buildspec::BuildSpec;
use crate::names::{BuildId, CommitId, ProjectName};

/// What is known about a build before it runs: the values behind the `CODEBUILD_*` variables.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildInfo {
    /// The build's id within its project (`20261122T231000Z-3f9c1a2b`).
    pub build_id: BuildId,
    /// The repository or project the build belongs to.
    pub project: ProjectName,
    /// Counts the project's builds, from 1.
    pub build_number: u64,
    /// Who or what started the build (`pushbuild-cli/alice`, `codecommit/<trigger>`).
    pub initiator: String,
    /// What was asked for: a branch, a `refs/...` name or a commit id.
    pub source_version: Option<String>,
    /// The commit that was built.
    pub resolved_source_version: Option<CommitId>,
    pub source_repo_url: Option<String>,
    /// `branch/<name>` or `tag/<name>` for builds started by a push.
    pub webhook_trigger: Option<String>,
    /// CodeBuild's webhook variables, for builds a webhook started.
    pub webhook: Option<WebhookVars>,
    /// Milliseconds since the Unix epoch.
    pub start_time_ms: i64,
}

/// The values of CodeBuild's webhook variables (`CODEBUILD_WEBHOOK_EVENT`, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookVars {
    /// `PUSH`, `PULL_REQUEST_CREATED`, …
    pub event: String,
    pub head_ref: String,
    pub base_ref: Option<String>,
    pub actor_account_id: Option<String>,
    pub prev_commit: Option<String>,
}

impl BuildInfo {
    /// Build `build_number` of `project`, with nothing else known yet.
    pub fn new(project: ProjectName, build_id: BuildId, build_number: u64) -> BuildInfo {
        BuildInfo {
            build_id,
            project,
            build_number,
            initiator: String::new(),
            source_version: None,
            resolved_source_version: None,
            source_repo_url: None,
            webhook_trigger: None,
            webhook: None,
            start_time_ms: 0,
        }
    }

    /// `CODEBUILD_BUILD_ID`: `<project>:<build-id>`, as CodeBuild forms it.
    pub fn codebuild_build_id(&self) -> String {
        format!("{}:{}", self.project, self.build_id)
    }
}

/// The whole environment of a build, in the order it is layered (later entries win):
/// the base (the caller's own environment), the buildspec's `variables`, the caller's overrides
/// (a manual build's override list), the secret variables, then the `CODEBUILD_*` variables,
/// which a buildspec cannot override.
pub fn environment(
    base: &[(String, String)],
    spec: &BuildSpec,
    overrides: &[(String, String)],
    secrets: &[(String, String)],
    info: &BuildInfo,
    src_dir: &Path,
    home: Option<&Path>,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let mut set = |name: &str, value: &str| set_var(&mut env, name, value);
    for (k, v) in base {
        set(k, v);
    }
    for (k, v) in &spec.env.variables {
        set(k, v);
    }
    for (k, v) in overrides {
        set(k, v);
    }
    for (k, v) in secrets {
        set(k, v);
    }
    if let Some(home) = home {
        set("HOME", &home.display().to_string());
    }
    set("CI", "true");
    set("CODEBUILD_CI", "true");
    set("CODEBUILD_SRC_DIR", &src_dir.display().to_string());
    set("CODEBUILD_BUILD_ID", &info.codebuild_build_id());
    set("CODEBUILD_BUILD_NUMBER", &info.build_number.to_string());
    set("CODEBUILD_BUILD_SUCCEEDING", "1");
    set("CODEBUILD_START_TIME", &info.start_time_ms.to_string());
    set("CODEBUILD_INITIATOR", &info.initiator);
    let optional = [
        ("CODEBUILD_SOURCE_VERSION", info.source_version.as_deref()),
        (
            "CODEBUILD_RESOLVED_SOURCE_VERSION",
            info.resolved_source_version.as_ref().map(CommitId::as_str),
        ),
        ("CODEBUILD_SOURCE_REPO_URL", info.source_repo_url.as_deref()),
        ("CODEBUILD_WEBHOOK_TRIGGER", info.webhook_trigger.as_deref()),
    ];
    let webhook = info.webhook.as_ref();
    let webhook_vars = [
        ("CODEBUILD_WEBHOOK_EVENT", webhook.map(|w| w.event.as_str())),
        (
            "CODEBUILD_WEBHOOK_HEAD_REF",
            webhook.map(|w| w.head_ref.as_str()),
        ),
        (
            "CODEBUILD_WEBHOOK_BASE_REF",
            webhook.and_then(|w| w.base_ref.as_deref()),
        ),
        (
            "CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID",
            webhook.and_then(|w| w.actor_account_id.as_deref()),
        ),
        (
            "CODEBUILD_WEBHOOK_PREV_COMMIT",
            webhook.and_then(|w| w.prev_commit.as_deref()),
        ),
    ];
    for (name, value) in optional.into_iter().chain(webhook_vars) {
        if let Some(value) = value {
            set(name, value);
        }
    }
    env
}

/// The value of `name` in `env`, if it is set.
pub fn get_var(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Sets `name` in an environment list, replacing an earlier value.
pub fn set_var(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    match env.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => env.push((name.to_string(), value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildspec::{BuildSpec, Env, Phases, Version};

    fn spec(vars: &[(&str, &str)]) -> BuildSpec {
        BuildSpec {
            version: Version::V0_2,
            run_as: None,
            env: Env {
                variables: vars
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Env::default()
            },
            proxy: None,
            batch: None,
            phases: Phases::default(),
            reports: vec![],
            artifacts: None,
            cache: None,
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn layers_override_in_codebuild_order() {
        let info = BuildInfo {
            initiator: "me".into(),
            webhook_trigger: Some("branch/main".into()),
            ..BuildInfo::new(
                ProjectName::parse("web").unwrap(),
                BuildId::parse("b1").unwrap(),
                7,
            )
        };
        let env = environment(
            &pairs(&[
                ("PATH", "/bin"),
                ("A", "base"),
                ("CODEBUILD_BUILD_ID", "forged"),
            ]),
            &spec(&[("A", "spec"), ("B", "spec"), ("C", "spec")]),
            &pairs(&[("B", "override")]),
            &pairs(&[("C", "secret")]),
            &info,
            Path::new("/src"),
            Some(Path::new("/tmp/home")),
        );
        assert_eq!(get(&env, "PATH"), Some("/bin"));
        assert_eq!(get(&env, "A"), Some("spec"));
        assert_eq!(get(&env, "B"), Some("override"));
        assert_eq!(get(&env, "C"), Some("secret"));
        assert_eq!(get(&env, "HOME"), Some("/tmp/home"));
        assert_eq!(get(&env, "CODEBUILD_BUILD_ID"), Some("web:b1"));
        assert_eq!(get(&env, "CODEBUILD_BUILD_NUMBER"), Some("7"));
        assert_eq!(get(&env, "CODEBUILD_WEBHOOK_TRIGGER"), Some("branch/main"));
        assert_eq!(get(&env, "CODEBUILD_RESOLVED_SOURCE_VERSION"), None);
        assert_eq!(get(&env, "CI"), Some("true"));
        assert_eq!(env.iter().filter(|(k, _)| k == "A").count(), 1);
    }

    #[test]
    fn a_webhook_build_has_codebuilds_webhook_variables() {
        let info = BuildInfo {
            webhook: Some(WebhookVars {
                event: "PULL_REQUEST_UPDATED".into(),
                head_ref: "refs/heads/feature".into(),
                base_ref: Some("refs/heads/main".into()),
                actor_account_id: Some("583231".into()),
                prev_commit: None,
            }),
            ..BuildInfo::new(
                ProjectName::parse("web").unwrap(),
                BuildId::parse("b1").unwrap(),
                1,
            )
        };
        let env = environment(&[], &spec(&[]), &[], &[], &info, Path::new("/src"), None);
        assert_eq!(
            get(&env, "CODEBUILD_WEBHOOK_EVENT"),
            Some("PULL_REQUEST_UPDATED")
        );
        assert_eq!(
            get(&env, "CODEBUILD_WEBHOOK_HEAD_REF"),
            Some("refs/heads/feature")
        );
        assert_eq!(
            get(&env, "CODEBUILD_WEBHOOK_BASE_REF"),
            Some("refs/heads/main")
        );
        assert_eq!(
            get(&env, "CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID"),
            Some("583231")
        );
        assert_eq!(get(&env, "CODEBUILD_WEBHOOK_PREV_COMMIT"), None);
        let plain = BuildInfo::new(
            ProjectName::parse("web").unwrap(),
            BuildId::parse("b1").unwrap(),
            1,
        );
        let env = environment(&[], &spec(&[]), &[], &[], &plain, Path::new("/src"), None);
        assert_eq!(get(&env, "CODEBUILD_WEBHOOK_EVENT"), None);
    }
}
