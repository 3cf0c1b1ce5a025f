//! The webhook secrets and tokens on AWS: one Secrets Manager secret (`PUSHBUILD_SECRETS_ARN`),
//! a JSON object read once per cold start. Its keys: `github_webhook_secret`, `github_token`,
//! `gitlab_webhook_token`, `gitlab_signing_token`, `gitlab_token`, `bitbucket_webhook_secret`,
//! `bitbucket_token`, `ui_token` (the build pages' login).
//! An empty value counts as unset, so the template can create the secret with empty values for
//! the user to fill. Values are never shown in messages.

use super::{Config, ConfigError};
use crate::secret::Secret;

/// The keys the secret may hold.
pub const KEYS: [&str; 8] = [
    "github_webhook_secret",
    "github_token",
    "gitlab_webhook_token",
    "gitlab_signing_token",
    "gitlab_token",
    "bitbucket_webhook_secret",
    "bitbucket_token",
    "ui_token",
];

/// Puts the secret's values (the text of its JSON object) into `config`.
pub fn apply(json: &str, config: &mut Config) -> Result<(), ConfigError> {
    let bad = |problem: String| ConfigError::Setting {
        name: "PUSHBUILD_SECRETS_ARN",
        problem,
    };
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|_| bad("the secret is not a JSON object (its value is not shown)".into()))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad("the secret is not a JSON object (its value is not shown)".into()))?;
    if let Some(unknown) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(bad(format!(
            "the secret has an unknown key `{unknown}`; expected {}",
            KEYS.join(", ")
        )));
    }
    let get = |key: &str| -> Result<Option<Secret>, ConfigError> {
        match object.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(Secret::new(text.trim()))),
            Some(_) => Err(bad(format!("the secret's `{key}` is not a string"))),
        }
    };
    let hooks = &mut config.webhooks;
    let slots = [
        ("github_webhook_secret", &mut hooks.github.webhook_secret),
        ("github_token", &mut hooks.github.token),
        ("gitlab_webhook_token", &mut hooks.gitlab.webhook_secret),
        ("gitlab_signing_token", &mut hooks.gitlab.signing_secret),
        ("gitlab_token", &mut hooks.gitlab.token),
        (
            "bitbucket_webhook_secret",
            &mut hooks.bitbucket.webhook_secret,
        ),
        ("bitbucket_token", &mut hooks.bitbucket.token),
    ];
    for (key, slot) in slots {
        if let Some(value) = get(key)? {
            *slot = Some(value);
        }
    }
    if let Some(value) = get("ui_token")? {
        config.ui_token = Some(value);
    }
    Ok(())
}

/// Reads the secret's value from Secrets Manager.
#[cfg(feature = "aws")]
pub async fn fetch(sdk: &aws_config::SdkConfig, arn: &str) -> Result<String, ConfigError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| ConfigError::Setting {
            name: "PUSHBUILD_SECRETS_ARN",
            problem: format!(
                "cannot read the secret {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&err)
            ),
        })?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| ConfigError::Setting {
            name: "PUSHBUILD_SECRETS_ARN",
            problem: format!("the secret {arn} holds no string (a binary secret?)"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_vars(|name| (name == "PUSHBUILD_BUCKET").then(|| "b-1".to_string()))
            .expect("settings")
    }

    #[test]
    fn the_secret_fills_the_webhook_secret_and_the_token_and_shows_neither() {
        let mut config = config();
        apply(
            r#"{"github_webhook_secret": "whs-1", "github_token": "ghp-2"}"#,
            &mut config,
        )
        .expect("applies");
        let github = &config.webhooks.github;
        assert_eq!(
            github.webhook_secret.as_ref().map(Secret::expose),
            Some("whs-1")
        );
        assert_eq!(github.token.as_ref().map(Secret::expose), Some("ghp-2"));

        let mut config = self::config();
        apply(
            r#"{"github_webhook_secret": "", "github_token": null}"#,
            &mut config,
        )
        .expect("empty values are unset");
        assert_eq!(config.webhooks.github.webhook_secret, None);

        for (bad, want) in [
            (
                "ghp-not-json",
                "PUSHBUILD_SECRETS_ARN: the secret is not a JSON object (its value is not shown)",
            ),
            (
                r#"{"github_tokn": "x"}"#,
                "PUSHBUILD_SECRETS_ARN: the secret has an unknown key `github_tokn`; expected \
                 github_webhook_secret, github_token, gitlab_webhook_token, gitlab_signing_token, \
                 gitlab_token, bitbucket_webhook_secret, bitbucket_token, ui_token",
            ),
            (
                r#"{"github_token": 5}"#,
                "PUSHBUILD_SECRETS_ARN: the secret's `github_token` is not a string",
            ),
        ] {
            let err = apply(bad, &mut self::config()).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }
}
