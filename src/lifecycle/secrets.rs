//! A build that runs here gets its secret variables before any command runs, as CodeBuild
//! resolves them in DOWNLOAD_SOURCE (see `crate::vault`): their values go into the build's
//! environment and are masked in its log as `***`; one that cannot be had fails the build in
//! DOWNLOAD_SOURCE with CodeBuild's words. A build handed to CodeBuild resolves them there.

use super::{BuildError, Builds, run_blocking};
use crate::executor::{ContextCode, PhaseContext};
use crate::pipeline::{Ready, Work};
use crate::vault::{self, Resolved};

impl<S> Builds<S> {
    /// `ready` with its secret variables, or why it cannot have them.
    pub(super) async fn with_secrets(&self, mut ready: Box<Ready>) -> Result<Work, BuildError> {
        let env = &ready.spec.env;
        if env.parameter_store.is_empty() && env.secrets_manager.is_empty() {
            return Ok(Work::Run(ready));
        }
        let resolved = match &self.vault {
            Some(vault) => {
                let (vault, env) = (vault.clone(), env.clone());
                run_blocking(move || vault::resolve(&*vault, &env)).await??
            }
            None => vault::from_environment(env, |name| std::env::var(name).ok()),
        };
        match resolved {
            Resolved::Values(values) => {
                let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
                ready.notes.push(format!(
                    "Resolved {} secret variable(s): {}; their values are masked as *** in this \
                     log",
                    names.len(),
                    names.join(", ")
                ));
                ready.secrets = values;
                Ok(Work::Run(ready))
            }
            Resolved::Refused(message) => Ok(Work::CannotStart {
                context: PhaseContext::new(ContextCode::ClientError, message),
                notes: std::mem::take(&mut ready.notes),
            }),
        }
    }
}
