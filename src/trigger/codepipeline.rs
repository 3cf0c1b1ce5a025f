//! CodePipeline's Lambda invoke action: a `{"CodePipeline.job": …}` event read into a [`Job`]. The
//! event holds temporary credentials for the pipeline's artifact bucket
//! (`data.artifactCredentials`): they are kept as [`Secret`]s, and no error names their values.
//! The action's `UserParameters` is JSON: `{"buildspec": "ci/buildspec.yml", "variables":
//! {"STAGE": "prod"}, "project": "web"}`, every key optional.

use serde_json::Value;

use super::EventError;
use super::check;
use super::json::Node;
use crate::names::{ProjectName, RepositoryName};
use crate::secret::Secret;

/// The event's top-level key.
pub const JOB_KEY: &str = "CodePipeline.job";

/// The project a job's build belongs to when `UserParameters` names none.
pub const DEFAULT_PROJECT: &str = "codepipeline";

/// Whether `event` is a CodePipeline job.
pub fn is_job(event: &Value) -> bool {
    event.get(JOB_KEY).is_some()
}

/// One job of a pipeline's action.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job's id (what its results are put against).
    pub id: String,
    /// The first input artifact: the source.
    pub input: Location,
    /// The input artifact's revision (a commit id for a git source), when CodePipeline gives one.
    pub revision: Option<String>,
    /// The first output artifact, when the action declares one.
    pub output: Option<Location>,
    pub credentials: ArtifactCredentials,
    /// The KMS key the artifact bucket's objects are encrypted with, when there is one.
    pub kms_key: Option<String>,
    /// Set when this call follows up a build an earlier call began.
    pub continuation: Option<String>,
    /// The action's `UserParameters`, or why they are wrong (a configuration error the
    /// pipeline is told of, not an invocation error).
    pub parameters: Result<Parameters, String>,
}

impl Job {
    /// The job's id as a name for its source (job ids are UUIDs).
    pub fn name(&self) -> Result<RepositoryName, EventError> {
        RepositoryName::parse(&self.id).map_err(|err| EventError::Invalid {
            path: format!("{JOB_KEY}.id"),
            problem: err.to_string(),
        })
    }
}

/// An artifact in the pipeline's bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub key: String,
}

/// The job's temporary credentials for its artifact bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// What the action's `UserParameters` ask of the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters {
    pub project: Option<ProjectName>,
    pub buildspec: Option<String>,
    /// Variables that override the buildspec's, by name.
    pub variables: Vec<(String, String)>,
}

/// Reads a job event; errors name the field (never a credential's value).
pub fn job(event: &Value) -> Result<Job, EventError> {
    let root = Node::root(event);
    let job = root.need(JOB_KEY, "the CodePipeline job")?;
    let id = job.str("id")?.to_string();
    let data = job.need("data", "the job's data")?;
    let inputs = data
        .need("inputArtifacts", "the input artifacts")?
        .items()?;
    let Some(first) = inputs.first() else {
        return Err(EventError::Missing {
            path: data.child_path("inputArtifacts[0]"),
            expected: "an input artifact: the source to build",
        });
    };
    let input = location(first)?;
    let revision = first.opt_str("revision")?.map(str::to_string);
    let output = match data.get("outputArtifacts")? {
        Some(outputs) => outputs.items()?.first().map(location).transpose()?,
        None => None,
    };
    let credentials = credentials(&data.need("artifactCredentials", "the artifact credentials")?)?;
    let kms_key = match data.get("encryptionKey")? {
        Some(key) => key.opt_str("id")?.map(str::to_string),
        None => None,
    };
    let continuation = data.opt_str("continuationToken")?.map(str::to_string);
    let configuration = match data.get("actionConfiguration")? {
        Some(action) => action.get("configuration")?,
        None => None,
    };
    let parameters = match configuration {
        Some(configuration) => configuration
            .opt_str("UserParameters")?
            .map_or_else(|| Ok(Parameters::default()), parameters),
        None => Ok(Parameters::default()),
    };
    Ok(Job {
        id,
        input,
        revision,
        output,
        credentials,
        kms_key,
        continuation,
        parameters,
    })
}

fn location(artifact: &Node) -> Result<Location, EventError> {
    let location = artifact.need("location", "the artifact's location")?;
    if let Some(kind) = location.opt_str("type")?
        && kind != "S3"
    {
        return Err(location.invalid(format!("expected an S3 location, found `{kind}`")));
    }
    let s3 = location.need("s3Location", "the artifact's bucket and key")?;
    Ok(Location {
        bucket: s3.str("bucketName")?.to_string(),
        key: s3.str("objectKey")?.to_string(),
    })
}

fn credentials(node: &Node) -> Result<ArtifactCredentials, EventError> {
    // Read by hand so that a wrong value is never echoed: only its field is named.
    let secret = |key: &str| -> Result<Option<Secret>, EventError> {
        match node.get(key)? {
            None => Ok(None),
            Some(value) => match value.value.as_str() {
                Some(text) => Ok(Some(Secret::new(text))),
                None => Err(value.wrong("a string")),
            },
        }
    };
    Ok(ArtifactCredentials {
        access_key_id: node.str("accessKeyId")?.to_string(),
        secret_access_key: secret("secretAccessKey")?.ok_or_else(|| EventError::Missing {
            path: node.child_path("secretAccessKey"),
            expected: "the artifact bucket's secret key",
        })?,
        session_token: secret("sessionToken")?,
    })
}

/// The action's `UserParameters`, or what is wrong with them (naming the key).
pub fn parameters(text: &str) -> Result<Parameters, String> {
    if text.trim().is_empty() {
        return Ok(Parameters::default());
    }
    let value: Value = serde_json::from_str(text).map_err(|err| {
        format!(
            "UserParameters: expected JSON such as {{\"buildspec\": \"ci/buildspec.yml\"}}: {err}"
        )
    })?;
    let node = Node {
        value: &value,
        path: "UserParameters".to_string(),
    };
    let mut parameters = Parameters::default();
    for (key, field) in node.entries().map_err(|err| err.to_string())? {
        match key {
            "project" => {
                let name = field.as_str().map_err(|err| err.to_string())?;
                let project =
                    ProjectName::parse(name).map_err(|err| field.invalid(err.to_string()));
                parameters.project = Some(project.map_err(|err| err.to_string())?);
            }
            "buildspec" => {
                parameters.buildspec = Some(check::buildspec(&field).map_err(|e| e.to_string())?);
            }
            "variables" => parameters.variables = variables(&field)?,
            other => {
                return Err(format!(
                    "UserParameters.{other}: unknown key; expected project, buildspec or variables"
                ));
            }
        }
    }
    Ok(parameters)
}

fn variables(node: &Node) -> Result<Vec<(String, String)>, String> {
    let mut variables = Vec::new();
    for (name, value) in node.entries().map_err(|err| err.to_string())? {
        let named = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !named {
            return Err(format!(
                "{}: not a variable name (letters, digits and `_`, not starting with a digit)",
                node.child_path(name)
            ));
        }
        let text = match value.value {
            Value::String(text) => text.clone(),
            Value::Number(_) | Value::Bool(_) => value.value.to_string(),
            _ => return Err(value.wrong("a string").to_string()),
        };
        variables.push((name.to_string(), text));
    }
    Ok(variables)
}

#[cfg(test)]
#[path = "codepipeline_tests.rs"]
mod tests;
