//! CodeCommit trigger events: `Records[]`, each naming its repository by ARN and listing the
//! references a push changed.
//!
//! The event is read field by field rather than through `aws_lambda_events`'
//! `CodeCommitEvent`: that type has no `deleted` flag (a deleted branch would look like a push
//! to build), requires `eventTime` and the part counters that pushbuild does not use, and its
//! serde errors do not say which record or reference is wrong.

use serde_json::Value;

use super::check::{self, RefKind};
use super::json::Node;
use super::{BuildTarget, EventError, Planned, Skipped};
use crate::names::{RepositoryName, SourceVersion};

/// The `eventSource` of a CodeCommit trigger's records.
const EVENT_SOURCE: &str = "aws:codecommit";

/// Every branch and tag reference of every record, in order.
pub(crate) fn plan(event: &Value) -> Result<Vec<Planned>, EventError> {
    let root = Node::root(event);
    let mut planned = Vec::new();
    for record in root.need("Records", "an array of records")?.items()? {
        plan_record(&record, &mut planned)?;
    }
    Ok(planned)
}

/// The parts of a record every reference in it shares.
struct Record {
    repository: RepositoryName,
    region: String,
    account: String,
    event_id: Option<String>,
    initiator: String,
    overrides: Overrides,
}

fn plan_record(record: &Node, planned: &mut Vec<Planned>) -> Result<(), EventError> {
    let source = record.str("eventSource")?;
    if source != EVENT_SOURCE {
        return Err(EventError::Invalid {
            path: record.child_path("eventSource"),
            problem: format!("expected {EVENT_SOURCE:?}, found {source:?}"),
        });
    }
    let arn = Arn::parse(&record.need("eventSourceARN", "a CodeCommit repository ARN")?)?;
    let trigger = record.opt_str("eventTriggerName")?.unwrap_or("trigger");
    let shared = Record {
        repository: arn.repository,
        region: arn.region,
        account: arn.account,
        event_id: record.opt_str("eventId")?.map(str::to_string),
        initiator: format!("codecommit/{trigger}"),
        overrides: custom_data(record)?,
    };
    let references = record
        .need("codecommit", "an object with `references`")?
        .need("references", "an array of references")?;
    for reference in references.items()? {
        planned.push(plan_reference(&shared, &reference)?);
    }
    Ok(())
}

fn plan_reference(record: &Record, reference: &Node) -> Result<Planned, EventError> {
    let (full, kind) = check::reference(&reference.need("ref", "a string")?)?;
    // A skipped reference's commit is reported as given: it is never checked out.
    let skip = |reason: String| {
        Ok(Planned::Skip(Skipped {
            repository: record.repository.clone().into(),
            reference: Some(full.to_string()),
            commit: reference.opt_str("commit")?.map(str::to_string),
            reason,
        }))
    };
    if kind == RefKind::Other {
        return skip(format!("{full} is neither a branch nor a tag"));
    }
    if reference.flag("deleted")? {
        return skip(format!("{} was deleted", kind.describe(full)));
    }
    let commit = reference
        .get("commit")?
        .map(|node| check::commit(&node))
        .transpose()?;
    let version = match &commit {
        Some(commit) => SourceVersion::Commit(commit.clone()),
        None => check::source_version(&reference.need("ref", "a string")?)?,
    };
    Ok(Planned::Build(Box::new(BuildTarget {
        commit,
        reference: Some(full.to_string()),
        buildspec: record.overrides.buildspec.clone(),
        env_overrides: record.overrides.variables.clone(),
        webhook_trigger: kind.webhook_trigger(),
        dedup_key: record.event_id.as_ref().map(|id| format!("{id}:{full}")),
        region: Some(record.region.clone()),
        account: Some(record.account.clone()),
        ..BuildTarget::codecommit(record.repository.clone(), version, &record.initiator)
    })))
}

/// `arn:<partition>:codecommit:<region>:<account>:<repository>`, taken apart.
#[derive(Debug, PartialEq, Eq)]
struct Arn {
    region: String,
    account: String,
    repository: RepositoryName,
}

impl Arn {
    fn parse(node: &Node) -> Result<Arn, EventError> {
        let text = node.as_str()?;
        let bad = || {
            node.invalid(format!(
                "expected a CodeCommit repository ARN \
                 (`arn:aws:codecommit:<region>:<account>:<repository>`), found {text:?}"
            ))
        };
        let parts: Vec<&str> = text.split(':').collect();
        let [arn, partition, service, region, account, repository] = parts[..] else {
            return Err(bad());
        };
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if arn != "arn"
            || partition.is_empty()
            || service != "codecommit"
            || region.is_empty()
            || !account_ok
            || repository.is_empty()
        {
            return Err(bad());
        }
        Ok(Arn {
            region: region.to_string(),
            account: account.to_string(),
            repository: check::repository(repository, &node.path)?,
        })
    }
}

/// What a trigger's custom data may set for its builds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Overrides {
    buildspec: Option<String>,
    variables: Vec<(String, String)>,
}

/// Reads the trigger's `customData`. Text that is not a JSON object (a note, a number) is
/// ignored; an object may set `buildspec` (a path) and `environmentVariables` (an object of
/// names to strings, or `[{name, value}]`); its other keys are ignored. Wrong types are errors.
fn custom_data(record: &Node) -> Result<Overrides, EventError> {
    let Some(text) = record.opt_str("customData")? else {
        return Ok(Overrides::default());
    };
    let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(text) else {
        return Ok(Overrides::default());
    };
    let data = Node {
        value: &value,
        path: record.child_path("customData"),
    };
    let buildspec = data
        .get("buildspec")?
        .map(|node| check::buildspec(&node))
        .transpose()?;
    let variables = match data.get("environmentVariables")? {
        None => Vec::new(),
        Some(node) if node.value.is_array() => check::override_list(&node)?,
        Some(node) if node.value.is_object() => check::override_map(&node)?,
        Some(node) => {
            return Err(node.wrong("an object of names to strings, or [{name, value}]"));
        }
    };
    Ok(Overrides {
        buildspec,
        variables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn arn(text: &str, expect: Result<(&str, &str, &str), &str>) {
        let value = Value::String(text.to_string());
        let node = Node {
            value: &value,
            path: "Records[0].eventSourceARN".to_string(),
        };
        match (Arn::parse(&node), expect) {
            (Ok(got), Ok((region, account, repository))) => assert_eq!(
                got,
                Arn {
                    region: region.into(),
                    account: account.into(),
                    repository: RepositoryName::parse(repository).unwrap()
                }
            ),
            (Err(err), Err(part)) => {
                let message = err.to_string();
                assert!(
                    message.starts_with("Records[0].eventSourceARN: "),
                    "{message}"
                );
                assert!(message.contains(part), "{message} lacks {part}");
            }
            (got, expect) => panic!("{text}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn arns_name_region_account_and_repository() {
        let ok = |r, a, n| Ok((r, a, n));
        arn(
            "arn:aws:codecommit:us-east-1:123456789012:pushbuild-demo",
            ok("us-east-1", "123456789012", "pushbuild-demo"),
        );
        arn(
            "arn:aws-cn:codecommit:cn-north-1:123456789012:a.b_c",
            ok("cn-north-1", "123456789012", "a.b_c"),
        );
        arn(
            "arn:aws:s3:::bucket",
            Err("expected a CodeCommit repository ARN"),
        );
        arn(
            "arn:aws:codecommit:us-east-1:1234:repo",
            Err("found \"arn:aws:codecommit"),
        );
        arn(
            "arn:aws:codecommit::123456789012:repo",
            Err("repository ARN"),
        );
        arn(
            "arn:aws:codecommit:us-east-1:123456789012:",
            Err("repository ARN"),
        );
        arn(
            "arn:aws:codecommit:us-east-1:123456789012:a:b",
            Err("repository ARN"),
        );
        arn("pushbuild-demo", Err("repository ARN"));
        arn(
            "arn:aws:codecommit:us-east-1:123456789012:..",
            Err("repository name"),
        );
        arn(
            "arn:aws:codecommit:us-east-1:123456789012:a b",
            Err("repository name"),
        );
    }
}
