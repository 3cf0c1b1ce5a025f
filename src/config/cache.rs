//! The caches' settings: `PUSHBUILD_CACHE_MAX_MB`, `PUSHBUILD_CACHE_DAYS` and
//! `PUSHBUILD_DEFAULT_BRANCH`.

use super::{ConfigError, Vars, invalid};
use crate::cache::CacheSettings;

/// The caches' settings from `var` (the function, `serve` and `pushbuild run` read the same).
pub fn cache_settings(var: impl Fn(&str) -> Option<String>) -> Result<CacheSettings, ConfigError> {
    read(&Vars(&var))
}

pub(super) fn read(vars: &Vars) -> Result<CacheSettings, ConfigError> {
    let defaults = CacheSettings::default();
    let max_mb = vars.number("PUSHBUILD_CACHE_MAX_MB", 1, 1 << 20)?;
    let days = vars.number("PUSHBUILD_CACHE_DAYS", 1, 3650)?;
    let default_branch = match vars.get("PUSHBUILD_DEFAULT_BRANCH") {
        Some(name) => {
            let name = name
                .strip_prefix("refs/heads/")
                .unwrap_or(&name)
                .to_string();
            if let Some(problem) = crate::names::ref_name_problem(&name) {
                let expected = format!("a branch name such as `main` ({problem})");
                return Err(invalid("PUSHBUILD_DEFAULT_BRANCH", expected, Some(&name)));
            }
            name
        }
        None => defaults.default_branch,
    };
    Ok(CacheSettings {
        max_bytes: max_mb.map_or(defaults.max_bytes, |mb| mb << 20),
        days: days.unwrap_or(defaults.days),
        default_branch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_settings_have_defaults_and_name_a_bad_value() {
        let none = cache_settings(|_| None).unwrap();
        assert_eq!(none, CacheSettings::default());
        assert_eq!((none.max_bytes, none.days), (1 << 30, 30));
        let set = cache_settings(|name| match name {
            "PUSHBUILD_CACHE_MAX_MB" => Some("64".into()),
            "PUSHBUILD_CACHE_DAYS" => Some("7".into()),
            "PUSHBUILD_DEFAULT_BRANCH" => Some("refs/heads/trunk".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (set.max_bytes, set.days, set.default_branch.as_str()),
            (64 << 20, 7, "trunk")
        );
        let err = cache_settings(|name| (name == "PUSHBUILD_CACHE_DAYS").then(|| "0".into()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "PUSHBUILD_CACHE_DAYS: expected a whole number from 1 to 3650, found \"0\""
        );
        let err = cache_settings(|name| (name == "PUSHBUILD_DEFAULT_BRANCH").then(|| "-x".into()))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PUSHBUILD_DEFAULT_BRANCH: expected a branch name")
        );
    }
}
