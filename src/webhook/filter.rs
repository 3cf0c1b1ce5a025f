//! Webhook filter groups in CodeBuild's own shape, so a user can paste theirs:
//! `[[{"type": "EVENT", "pattern": "PUSH, PULL_REQUEST_CREATED"}, {"type": "HEAD_REF",
//! "pattern": "^refs/heads/main$", "excludeMatchedPattern": false}]]`.
//!
//! The filters of a group must all match (AND); any group that matches triggers a build (OR).
//! `EVENT` is a comma-separated list of event names; every other pattern is a regular
//! expression. A filter with `excludeMatchedPattern` matches when its pattern does not.

use regex::Regex;
use serde_json::Value;

use super::event::HostEvent;
use crate::names::{RefKind, split_ref};
use crate::trigger::EventKind;
use crate::trigger::json::kind;

/// The filter types pushbuild knows, as CodeBuild names them.
const TYPES: [&str; 8] = [
    "EVENT",
    "HEAD_REF",
    "BASE_REF",
    "ACTOR_ACCOUNT_ID",
    "FILE_PATH",
    "COMMIT_MESSAGE",
    "TAG_NAME",
    "REPOSITORY_NAME",
];

/// Why a filter-group setting cannot be used: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("expected a JSON array of filter groups (arrays of filters): {0}")]
    NotJson(String),
    #[error("{at}: {problem}")]
    Invalid { at: String, problem: String },
}

/// One filter of a group.
#[derive(Debug, Clone)]
enum Filter {
    /// `EVENT`: the event is one of these.
    Event(Vec<EventKind>),
    /// A regular expression over one of the event's values.
    Pattern {
        field: Field,
        regex: Regex,
        exclude: bool,
    },
}

/// What a pattern filter looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    HeadRef,
    BaseRef,
    ActorAccountId,
    FilePath,
    CommitMessage,
    TagName,
    RepositoryName,
}

impl Field {
    /// The value of `event` this field looks at, when the event has one.
    fn value(self, event: &HostEvent) -> Option<&str> {
        match self {
            Field::HeadRef => Some(&event.head_ref),
            Field::BaseRef => event.base_ref.as_deref(),
            Field::ActorAccountId => event.actor_account_id.as_deref(),
            Field::CommitMessage => event.commit_message.as_deref(),
            Field::TagName => match split_ref(&event.head_ref) {
                Some((RefKind::Tag, name)) => Some(name),
                _ => None,
            },
            Field::RepositoryName => event.repository.rsplit('/').next(),
            // Matched file by file.
            Field::FilePath => None,
        }
    }
}

/// The webhook's filter groups (`PUSHBUILD_FILTER_GROUPS`).
#[derive(Debug, Clone)]
pub struct FilterGroups {
    groups: Vec<Vec<Filter>>,
    /// The setting's text (`None`: the default), which is what two settings compare by.
    source: Option<String>,
}

impl PartialEq for FilterGroups {
    fn eq(&self, other: &FilterGroups) -> bool {
        self.source == other.source
    }
}

impl Default for FilterGroups {
    /// Unset: pushes, and pull requests created, updated and reopened, build.
    fn default() -> FilterGroups {
        FilterGroups {
            groups: vec![vec![Filter::Event(vec![
                EventKind::Push,
                EventKind::PullRequestCreated,
                EventKind::PullRequestUpdated,
                EventKind::PullRequestReopened,
            ])]],
            source: None,
        }
    }
}

impl FilterGroups {
    /// Reads the setting's JSON; an error names the group and filter (counting from 1).
    pub fn parse(text: &str) -> Result<FilterGroups, FilterError> {
        let value: Value =
            serde_json::from_str(text).map_err(|err| FilterError::NotJson(err.to_string()))?;
        let Some(groups) = value.as_array() else {
            return Err(FilterError::NotJson(format!("found {}", kind(&value))));
        };
        if groups.is_empty() {
            return Err(FilterError::Invalid {
                at: "the setting".into(),
                problem: "no filter group: nothing would ever build".into(),
            });
        }
        let groups = groups
            .iter()
            .enumerate()
            .map(|(g, group)| parse_group(g + 1, group))
            .collect::<Result<_, _>>()?;
        Ok(FilterGroups {
            groups,
            source: Some(text.to_string()),
        })
    }

    /// Whether some group matches `event`.
    pub fn matches(&self, event: &HostEvent) -> bool {
        self.groups
            .iter()
            .any(|group| group.iter().all(|filter| filter.matches(event)))
    }

    /// Whether some group looks at the files an event changes (a pull request's must then be
    /// asked of the host).
    pub fn needs_files(&self) -> bool {
        self.groups.iter().flatten().any(|filter| {
            matches!(
                filter,
                Filter::Pattern {
                    field: Field::FilePath,
                    ..
                }
            )
        })
    }
}

fn parse_group(number: usize, group: &Value) -> Result<Vec<Filter>, FilterError> {
    let at = format!("group {number}");
    let Some(filters) = group.as_array() else {
        return Err(FilterError::Invalid {
            at,
            problem: format!("expected an array of filters, found {}", kind(group)),
        });
    };
    let filters = filters
        .iter()
        .enumerate()
        .map(|(f, filter)| parse_filter(&format!("{at}, filter {}", f + 1), filter))
        .collect::<Result<Vec<_>, _>>()?;
    if !filters.iter().any(|f| matches!(f, Filter::Event(_))) {
        return Err(FilterError::Invalid {
            at,
            problem: "a group needs an EVENT filter (as CodeBuild's do)".into(),
        });
    }
    Ok(filters)
}

fn parse_filter(at: &str, filter: &Value) -> Result<Filter, FilterError> {
    let invalid = |problem: String| FilterError::Invalid {
        at: at.to_string(),
        problem,
    };
    let Some(object) = filter.as_object() else {
        return Err(invalid(format!(
            "expected an object with `type` and `pattern`, found {}",
            kind(filter)
        )));
    };
    for key in object.keys() {
        if !["type", "pattern", "excludeMatchedPattern"].contains(&key.as_str()) {
            return Err(invalid(format!(
                "unknown key `{key}`; expected type, pattern, excludeMatchedPattern"
            )));
        }
    }
    let text = |key: &str| match object.get(key) {
        Some(Value::String(text)) => Ok(text.as_str()),
        Some(other) => Err(invalid(format!(
            "`{key}`: expected a string, found {}",
            kind(other)
        ))),
        None => Err(invalid(format!("`{key}` is required"))),
    };
    let kind_name = text("type")?;
    let pattern = text("pattern")?;
    let at = format!("{at} ({kind_name})");
    let invalid = |problem: String| FilterError::Invalid {
        at: at.clone(),
        problem,
    };
    let exclude = match object.get("excludeMatchedPattern") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => {
            return Err(invalid(format!(
                "`excludeMatchedPattern`: expected true or false, found {}",
                kind(other)
            )));
        }
    };
    let field = match kind_name {
        "EVENT" => {
            if exclude {
                return Err(invalid(
                    "excludeMatchedPattern cannot be used with EVENT".into(),
                ));
            }
            return parse_events(pattern, &at).map(Filter::Event);
        }
        "HEAD_REF" => Field::HeadRef,
        "BASE_REF" => Field::BaseRef,
        "ACTOR_ACCOUNT_ID" => Field::ActorAccountId,
        "FILE_PATH" => Field::FilePath,
        "COMMIT_MESSAGE" => Field::CommitMessage,
        "TAG_NAME" => Field::TagName,
        "REPOSITORY_NAME" => Field::RepositoryName,
        other => {
            return Err(invalid(format!(
                "unknown type `{other}`; expected one of {}",
                TYPES.join(", ")
            )));
        }
    };
    let regex = Regex::new(pattern)
        .map_err(|err| invalid(format!("the pattern is not a regular expression: {err}")))?;
    Ok(Filter::Pattern {
        field,
        regex,
        exclude,
    })
}

fn parse_events(list: &str, at: &str) -> Result<Vec<EventKind>, FilterError> {
    let mut events = Vec::new();
    for name in list.split(',').map(str::trim) {
        match EventKind::ALL.into_iter().find(|e| e.as_str() == name) {
            Some(event) => events.push(event),
            None => {
                let known: Vec<&str> = EventKind::ALL.iter().map(|e| e.as_str()).collect();
                return Err(FilterError::Invalid {
                    at: at.to_string(),
                    problem: format!(
                        "unknown event `{name}`; expected a comma-separated list of {}",
                        known.join(", ")
                    ),
                });
            }
        }
    }
    Ok(events)
}

impl Filter {
    fn matches(&self, event: &HostEvent) -> bool {
        match self {
            Filter::Event(kinds) => kinds.contains(&event.kind),
            Filter::Pattern {
                field: Field::FilePath,
                regex,
                exclude,
            } => {
                let files = event.changed_files.as_deref().unwrap_or_default();
                if *exclude {
                    // Excluding `docs/` still builds a change that also touches `src/`.
                    files.iter().any(|file| !regex.is_match(file))
                } else {
                    files.iter().any(|file| regex.is_match(file))
                }
            }
            Filter::Pattern {
                field,
                regex,
                exclude,
            } => {
                // A value the event does not have matches no pattern.
                let matched = field
                    .value(event)
                    .is_some_and(|value| regex.is_match(value));
                matched != *exclude
            }
        }
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
