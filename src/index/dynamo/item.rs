//! Items as the table holds them: attribute values to and from an [`Entry`], and the errors of
//! reading them.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};

use super::{DynamoIndex, Item};
use crate::index::{Entry, IndexError, usd_to_e7};
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;

pub(super) fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

pub(super) fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

pub(super) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn build_error(table: &str, err: impl std::fmt::Display) -> IndexError {
    IndexError::Dynamo {
        table: table.to_string(),
        message: err.to_string(),
        retryable: false,
    }
}

pub(super) fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    table: &str,
    err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> IndexError {
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || matches!(
                    err.code(),
                    Some(
                        "ProvisionedThroughputExceededException"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "InternalServerError"
                    )
                )
        }
        _ => false,
    };
    IndexError::Dynamo {
        table: table.to_string(),
        message: DisplayErrorContext(&err).to_string(),
        retryable,
    }
}

pub(super) fn malformed(what: &str, message: impl Into<String>) -> IndexError {
    IndexError::Malformed {
        what: what.to_string(),
        message: message.into(),
    }
}

pub(super) fn get_s(item: &Item, name: &str) -> Result<String, IndexError> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text.clone()),
        _ => Err(malformed("build item", format!("`{name}` is not a string"))),
    }
}

pub(super) fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Some(text.clone()),
        _ => None,
    }
}

pub(super) fn get_i(item: &Item, name: &str) -> Result<i64, IndexError> {
    get_opt_i(item, name)?.ok_or_else(|| malformed("item", format!("`{name}` is missing")))
}

pub(super) fn get_opt_i(item: &Item, name: &str) -> Result<Option<i64>, IndexError> {
    match item.get(name) {
        Some(AttributeValue::N(text)) => text
            .parse::<i64>()
            .map(Some)
            .map_err(|_| malformed("item", format!("`{name}` = {text} is not a whole number"))),
        None => Ok(None),
        Some(_) => Err(malformed("item", format!("`{name}` is not a number"))),
    }
}

pub(super) fn get_u(item: &Item, name: &str) -> Result<u64, IndexError> {
    Ok(u64::try_from(get_opt_i(item, name)?.unwrap_or(0)).unwrap_or(0))
}

pub(super) fn time(ms: i64) -> Result<DateTime<Utc>, IndexError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| malformed("time", format!("{ms} is not a time in milliseconds")))
}

pub(super) fn entry_from_item(item: &Item) -> Result<Entry, IndexError> {
    let price = match item.get("price") {
        Some(AttributeValue::N(text)) => text.parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    };
    Ok(Entry {
        project: ProjectName::parse(&get_s(item, "project")?)?,
        build_id: BuildId::parse(&get_s(item, "build_id")?)?,
        number: get_u(item, "number")?,
        state: BuildState::parse(&get_s(item, "state")?)?,
        start_time: time(get_i(item, "start_ms")?)?,
        deadline: get_opt_i(item, "deadline_ms")?.map(time).transpose()?,
        expires_at: time(get_i(item, "expires_ms")?)?,
        commit: get_opt_s(item, "commit"),
        reference: get_opt_s(item, "ref"),
        initiator: get_s(item, "initiator")?,
        reserved_minutes: get_u(item, "reserved")?,
        billed_minutes: get_u(item, "billed")?,
        cost_usd: get_u(item, "cost_e7")? as f64 / 1e7,
        duration_ms: get_u(item, "duration_ms")?,
        price_usd_per_minute: price,
        price_basis: get_opt_s(item, "price_basis").unwrap_or_default(),
        reason: get_opt_s(item, "reason"),
        tests: get_opt_s(item, "tests"),
        batch: get_opt_s(item, "batch"),
    })
}

pub(super) fn item_from_entry(entry: &Entry) -> Item {
    let mut item = DynamoIndex::build_key(entry.project.as_str(), entry.build_id.as_str());
    let month = entry.month();
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_string(), value);
    };
    put("project", s(entry.project.as_str()));
    put("build_id", s(entry.build_id.as_str()));
    put("number", n(int(entry.number)));
    put("state", s(entry.state.as_str()));
    put("month", s(&month));
    put("start_ms", n(entry.start_time.timestamp_millis()));
    if let Some(deadline) = entry.deadline {
        put("deadline_ms", n(deadline.timestamp_millis()));
    }
    put("expires_ms", n(entry.expires_at.timestamp_millis()));
    if let Some(commit) = &entry.commit {
        put("commit", s(commit));
    }
    if let Some(reference) = &entry.reference {
        put("ref", s(reference));
    }
    put("initiator", s(&entry.initiator));
    put("reserved", n(int(entry.reserved_minutes)));
    put("billed", n(int(entry.billed_minutes)));
    put("cost_e7", n(int(usd_to_e7(entry.cost_usd))));
    put("duration_ms", n(int(entry.duration_ms)));
    put(
        "price",
        AttributeValue::N(entry.price_usd_per_minute.to_string()),
    );
    put("price_basis", s(&entry.price_basis));
    if let Some(reason) = &entry.reason {
        put("reason", s(reason));
    }
    if let Some(batch) = &entry.batch {
        put("batch", s(batch));
    }
    if let Some(tests) = &entry.tests {
        put("tests", s(tests));
    }
    put("gsi1pk", s(&format!("MONTH#{month}")));
    put(
        "gsi1sk",
        s(&format!("{} {}", entry.build_id, entry.project)),
    );
    if entry.state.is_open() {
        put("open_pk", s("OPEN"));
    }
    item
}

/// What a closed build adds to its month's sums.
pub(super) fn closed_delta(
    state: BuildState,
    unused: u64,
    billed: u64,
    cost_e7: u64,
    duration_ms: u64,
    minutes_from_billed: bool,
) -> Vec<(&'static str, i64)> {
    let minutes = if minutes_from_billed {
        int(billed)
    } else {
        -int(unused)
    };
    vec![
        ("minutes", minutes),
        ("builds", 1),
        (
            "failures",
            i64::from(matches!(state, BuildState::Failed | BuildState::TimedOut)),
        ),
        ("skipped", i64::from(state == BuildState::Skipped)),
        ("cost_e7", int(cost_e7)),
        ("duration_ms", int(duration_ms)),
    ]
}
