//! A build's secret variables, resolved as CodeBuild resolves them before any command runs:
//! `env.parameter-store` (`NAME: /param/name`) with SSM `GetParameters`, decrypted, at most 10
//! names a call; `env.secrets-manager` (`NAME: secret-id:json-key:version-stage:version-id`)
//! with `GetSecretValue`, by name or ARN: the whole secret without a json key, the stage
//! `AWSCURRENT` unless one is named, a stage and a version id not both.
//!
//! The port is [`Vault`]; its adapter on AWS is `aws.rs`. Locally (`pushbuild run`, and builds
//! where no vault is set) the values come from pushbuild's own environment under the variable's
//! name ([`from_environment`]). A value that cannot be had is the build's fault when the service
//! says the parameter or secret is missing or refused: the build fails in DOWNLOAD_SOURCE with
//! CodeBuild's words. Any other failure is pushbuild's, worth a retry.

#[cfg(feature = "aws")]
mod aws;

#[cfg(feature = "aws")]
pub use aws::AwsVault;

use crate::buildspec::Env;

/// The most names one `GetParameters` call takes.
pub const PARAMETERS_PER_CALL: usize = 10;

/// Where a build's secrets are read: Systems Manager's parameters and Secrets Manager's
/// secrets. Blocking: call it off the async threads.
pub trait Vault: Send + Sync {
    /// The values of the parameters named (at most [`PARAMETERS_PER_CALL`]), decrypted, by name;
    /// a name it does not know is left out.
    fn parameters(&self, names: &[String]) -> Result<Vec<(String, String)>, VaultError>;

    /// A secret's value (its `SecretString`), at a stage or a version when one is named.
    fn secret(&self, reference: &SecretRef) -> Result<String, VaultError>;
}

/// Why a vault could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The service refused or does not know it (`ResourceNotFoundException`,
    /// `AccessDeniedException`, …): the build's input is at fault.
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// The service did not answer as it should (throttling, 5xx, the network): worth a retry.
    #[error("{service} is unavailable: {message}")]
    Unavailable {
        service: &'static str,
        message: String,
    },
}

/// A `secrets-manager` reference: `secret-id:json-key:version-stage:version-id`, the id a name
/// or an ARN (whose own `:`s are kept), the rest optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub id: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

impl SecretRef {
    /// Reads a reference; the message says what is wrong with it.
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let parts: Vec<&str> = text.split(':').collect();
        // An ARN is `arn:partition:secretsmanager:region:account:secret:name`.
        let id_parts = if text.starts_with("arn:") { 7 } else { 1 };
        if parts.len() < id_parts || parts.len() > id_parts + 3 {
            return Err(
                "expected secret-id:json-key:version-stage:version-id (the id a name or an ARN)"
                    .to_string(),
            );
        }
        let id = parts[..id_parts].join(":");
        let part = |i: usize| {
            parts
                .get(id_parts + i)
                .filter(|p| !p.is_empty())
                .map(|p| p.to_string())
        };
        let reference = SecretRef {
            id,
            json_key: part(0),
            version_stage: part(1),
            version_id: part(2),
        };
        if reference.id.is_empty() {
            return Err("the secret's id is empty".to_string());
        }
        if reference.version_stage.is_some() && reference.version_id.is_some() {
            return Err("a version stage and a version id cannot both be named".to_string());
        }
        Ok(reference)
    }
}

/// What resolving a build's secrets gave: the variables, or why the build cannot have them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Values(Vec<(String, String)>),
    /// The build's input is at fault: DOWNLOAD_SOURCE fails with this message.
    Refused(String),
}

/// Resolves `env`'s `parameter-store` and `secrets-manager` variables through `vault`, in file
/// order (parameters first); an `exported-variables` name that is a secret is refused, as on
/// CodeBuild. Only pushbuild's own failures (an unavailable service) are errors.
pub fn resolve(vault: &dyn Vault, env: &Env) -> Result<Resolved, VaultError> {
    if let Some(refused) = exported_secret(env) {
        return Ok(Resolved::Refused(refused));
    }
    let mut values = Vec::new();
    for chunk in env.parameter_store.chunks(PARAMETERS_PER_CALL) {
        let names: Vec<String> = chunk.iter().map(|(_, name)| name.clone()).collect();
        let found = match vault.parameters(&names) {
            Ok(found) => found,
            Err(VaultError::Refused { code, message }) => {
                return Ok(Resolved::Refused(format!(
                    "Decrypted Variables Error Message: {code}: {message}"
                )));
            }
            Err(err) => return Err(err),
        };
        for (variable, name) in chunk {
            match found.iter().find(|(n, _)| n == name) {
                Some((_, value)) => values.push((variable.clone(), value.clone())),
                None => {
                    return Ok(Resolved::Refused(format!(
                        "Decrypted Variables Error Message: parameter does not exist: {name}"
                    )));
                }
            }
        }
    }
    for (variable, text) in &env.secrets_manager {
        let reference = match SecretRef::parse(text) {
            Ok(reference) => reference,
            Err(problem) => {
                return Ok(Resolved::Refused(format!(
                    "env.secrets-manager.{variable}: {problem}"
                )));
            }
        };
        let value = match vault.secret(&reference) {
            Ok(value) => value,
            Err(VaultError::Refused { code, message }) => {
                return Ok(Resolved::Refused(format!(
                    "Secrets Manager Error: {code}: {message}"
                )));
            }
            Err(err) => return Err(err),
        };
        match json_value(&value, reference.json_key.as_deref()) {
            Ok(value) => values.push((variable.clone(), value)),
            Err(problem) => {
                return Ok(Resolved::Refused(format!(
                    "Secrets Manager Error: secret {}: {problem}",
                    reference.id
                )));
            }
        }
    }
    Ok(Resolved::Values(values))
}

/// Locally, each secret variable takes its value from pushbuild's own environment under the
/// variable's name (there is no AWS account to ask); `lookup` gives a variable's value.
pub fn from_environment(env: &Env, lookup: impl Fn(&str) -> Option<String>) -> Resolved {
    if let Some(refused) = exported_secret(env) {
        return Resolved::Refused(refused);
    }
    let declared = [
        ("parameter-store", &env.parameter_store),
        ("secrets-manager", &env.secrets_manager),
    ];
    let mut values = Vec::new();
    for (section, vars) in declared {
        for (name, _) in vars {
            match lookup(name) {
                Some(value) => values.push((name.clone(), value)),
                None => {
                    return Resolved::Refused(format!(
                        "env.{section}.{name}: a local build reads secret variables from its own \
                         environment; set {name} before starting pushbuild"
                    ));
                }
            }
        }
    }
    Resolved::Values(values)
}

/// An `exported-variables` name that is a secret (CodeBuild refuses to export those too).
fn exported_secret(env: &Env) -> Option<String> {
    let secret = |name: &String| {
        env.parameter_store
            .iter()
            .map(|(n, _)| ("parameter-store", n))
            .chain(
                env.secrets_manager
                    .iter()
                    .map(|(n, _)| ("secrets-manager", n)),
            )
            .find(|(_, n)| *n == name)
    };
    env.exported_variables.iter().find_map(|name| {
        secret(name).map(|(section, _)| {
            format!(
                "env.exported-variables: {name} is a secret variable (env.{section}), which \
                 cannot be exported"
            )
        })
    })
}

/// The secret's value, or its `json_key`'s when one is named (the secret must then be a JSON
/// object, and the key's value a string or a number).
fn json_value(secret: &str, json_key: Option<&str>) -> Result<String, String> {
    let Some(key) = json_key else {
        return Ok(secret.to_string());
    };
    let object: serde_json::Value = serde_json::from_str(secret)
        .map_err(|_| format!("the json key {key} was asked for, but the secret is not JSON"))?;
    match object.get(key) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(value.to_string())
        }
        Some(_) => Err(format!("the json key {key} does not hold a string")),
        None => Err(format!("the json key {key} is not in the secret")),
    }
}

#[cfg(test)]
mod tests;
