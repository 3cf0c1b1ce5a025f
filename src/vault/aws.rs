//! [`Vault`] over the AWS SDK: Systems Manager's `GetParameters` (decrypted) and Secrets
//! Manager's `GetSecretValue`. The SDK is async: each call is driven on a tokio runtime with
//! `Handle::block_on`, so call them off the runtime's own threads. Endpoints come from the SDK's
//! conventions (`AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`).

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use tokio::runtime::Handle;

use super::{SecretRef, Vault, VaultError};

/// The service errors that are the build's input's fault (the names missing or refused); any
/// other is worth a retry.
const REFUSALS: [&str; 7] = [
    "ResourceNotFoundException",
    "AccessDeniedException",
    "AccessDenied",
    "ParameterNotFound",
    "ValidationException",
    "InvalidParameterException",
    "InvalidRequestException",
];

/// Parameters and secrets through the SDK's clients.
pub struct AwsVault {
    ssm: aws_sdk_ssm::Client,
    secrets: aws_sdk_secretsmanager::Client,
    handle: Handle,
}

impl AwsVault {
    /// Clients from the SDK's configuration, driven on the current tokio runtime.
    pub fn from_conf(sdk: &aws_config::SdkConfig) -> Option<AwsVault> {
        Some(AwsVault {
            ssm: aws_sdk_ssm::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            handle: Handle::try_current().ok()?,
        })
    }
}

fn error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    service: &'static str,
    err: SdkError<E, R>,
) -> VaultError {
    match err.as_service_error() {
        Some(refused) if refused.code().is_some_and(|code| REFUSALS.contains(&code)) => {
            VaultError::Refused {
                code: refused.code().unwrap_or_default().to_string(),
                message: refused.message().unwrap_or_default().to_string(),
            }
        }
        Some(other) => VaultError::Unavailable {
            service,
            message: format!(
                "{}: {}",
                other.code().unwrap_or("error"),
                other.message().unwrap_or("")
            ),
        },
        None => VaultError::Unavailable {
            service,
            message: format!("{err:?}"),
        },
    }
}

impl Vault for AwsVault {
    fn parameters(&self, names: &[String]) -> Result<Vec<(String, String)>, VaultError> {
        let call = self
            .ssm
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true);
        let out = self
            .handle
            .block_on(call.send())
            .map_err(|err| error("Systems Manager", err))?;
        Ok(out
            .parameters()
            .iter()
            .filter_map(|p| Some((p.name()?.to_string(), p.value()?.to_string())))
            .collect())
    }

    fn secret(&self, reference: &SecretRef) -> Result<String, VaultError> {
        let call = self
            .secrets
            .get_secret_value()
            .secret_id(&reference.id)
            .set_version_stage(reference.version_stage.clone())
            .set_version_id(reference.version_id.clone());
        let out = self
            .handle
            .block_on(call.send())
            .map_err(|err| error("Secrets Manager", err))?;
        out.secret_string()
            .map(str::to_string)
            .ok_or_else(|| VaultError::Refused {
                code: "BinarySecret".to_string(),
                message: format!(
                    "secret {} holds binary data, not a string a variable can take",
                    reference.id
                ),
            })
    }
}
