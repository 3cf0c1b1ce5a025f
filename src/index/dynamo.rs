//! The index in one DynamoDB table (on-demand). Key design (`pk`, `sk`, both strings):
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | a project's counter | `PROJECT#<project>` | `COUNTER` | `last` |
//! | a build | `PROJECT#<project>` | `BUILD#<build-id>` | the entry; `gsi1pk`/`gsi1sk`; `open_pk` while open |
//! | a month's sums | `MONTH#<YYYY-MM>` | `SUMS#<repository>` (`SUMS#`: the total) | `minutes`, `builds`, … |
//! | a claim | `CLAIM#<project>#<sha256 of the key>` | `CLAIM` | `expires_ms`, `ttl` (TTL) |
//!
//! Two global secondary indexes: `by-month` (`gsi1pk` = `MONTH#<YYYY-MM>`, `gsi1sk` =
//! `<build-id> <project>`): a month's builds newest first; `open` (`open_pk` = `OPEN`,
//! `expires_ms`): sparse, only open builds, by expiry, for the sweep and the running builds.
//!
//! A reservation is one `TransactWriteItems` of three updates: the build (still open, one
//! minute fewer reserved), the month's total and the repository's sums (each under its cap).
//! Any one condition failing cancels all three, so no cap is ever passed.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use chrono::{DateTime, TimeZone, Utc};
use tokio::runtime::Handle;

use super::{
    Closed, Closing, Entry, Grant, Index, IndexError, Page, State, Sums, refusal, settle, usd_to_e7,
};
use crate::billing::Budget;

type Item = HashMap<String, AttributeValue>;

/// How many times a transaction that conflicted with another is tried.
const CONFLICT_TRIES: u32 = 20;

/// The index in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoIndex {
    client: Client,
    table: String,
    handle: Handle,
}

impl DynamoIndex {
    /// An index over `table` with a client made from `sdk_config` (endpoint by the SDK's
    /// conventions: `AWS_ENDPOINT_URL_DYNAMODB`). Call inside a tokio runtime; the methods then
    /// block on it, so call them from plain threads or `spawn_blocking`.
    pub fn from_conf(
        sdk_config: &aws_config::SdkConfig,
        table: impl Into<String>,
    ) -> Result<DynamoIndex, IndexError> {
        let table = table.into();
        let handle = Handle::try_current().map_err(|_| IndexError::Dynamo {
            table: table.clone(),
            message: "no async runtime to drive the DynamoDB client".to_string(),
            retryable: false,
        })?;
        Ok(DynamoIndex {
            client: Client::new(sdk_config),
            table,
            handle,
        })
    }

    /// Creates the table with its two indexes and its TTL (for `pushbuild index create` and
    /// tests; CloudFormation creates it on AWS), and waits until it is active.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), IndexError> {
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|err| build_error(table, err))
        };
        let attribute = |name: &str, kind| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .map_err(|err| build_error(table, err))
        };
        let index =
            |name: &str, hash: &str, range: &str| -> Result<GlobalSecondaryIndex, IndexError> {
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(hash, KeyType::Hash)?)
                    .key_schema(key(range, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|err| build_error(table, err))
            };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attribute("pk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("sk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("gsi1pk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("gsi1sk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("open_pk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("expires_ms", ScalarAttributeType::N)?)
            .global_secondary_indexes(index("by-month", "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(index("open", "open_pk", "expires_ms")?)
            .send()
            .await
            .map_err(|err| sdk_error(table, err))?;
        for _ in 0..600 {
            let described = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|err| sdk_error(table, err))?;
            let active = described
                .table()
                .and_then(|t| t.table_status())
                .is_some_and(|s| s.as_str() == "ACTIVE");
            if active {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("ttl")
                    .enabled(true)
                    .build()
                    .map_err(|err| build_error(table, err))?,
            )
            .send()
            .await
            .map_err(|err| sdk_error(table, err))?;
        Ok(())
    }

    /// The item `entry` is stored as (for loading many builds at once, as the benchmark does).
    pub fn item(entry: &Entry) -> HashMap<String, AttributeValue> {
        item_from_entry(entry)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn block<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.handle.block_on(work)
    }

    fn fail<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> IndexError {
        sdk_error(&self.table, err)
    }

    fn build_key(project: &str, build_id: &str) -> Item {
        HashMap::from([
            ("pk".to_string(), s(&format!("PROJECT#{project}"))),
            ("sk".to_string(), s(&format!("BUILD#{build_id}"))),
        ])
    }

    fn sums_key(month: &str, repository: &str) -> Item {
        HashMap::from([
            ("pk".to_string(), s(&format!("MONTH#{month}"))),
            ("sk".to_string(), s(&format!("SUMS#{repository}"))),
        ])
    }

    fn get_entry(&self, project: &str, build_id: &str) -> Result<Option<Entry>, IndexError> {
        let got = self.block(
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(Self::build_key(project, build_id)))
                .consistent_read(true)
                .send(),
        );
        let got = got.map_err(|err| self.fail(err))?;
        got.item().map(entry_from_item).transpose()
    }

    /// One update of a month's sums, as a transaction item, under `cap` when there is one.
    fn sums_update(
        &self,
        month: &str,
        repository: &str,
        delta: &[(&str, i64)],
        cap: Option<u64>,
    ) -> Result<TransactWriteItem, IndexError> {
        // Every name is aliased: DynamoDB reserves many words.
        let mut expression = String::from("ADD ");
        let mut values: Item = HashMap::new();
        let mut names: HashMap<String, String> = HashMap::new();
        for (i, (name, amount)) in delta.iter().enumerate() {
            if i > 0 {
                expression.push_str(", ");
            }
            expression.push_str(&format!("#a{i} :d{i}"));
            names.insert(format!("#a{i}"), (*name).to_string());
            values.insert(format!(":d{i}"), n(*amount));
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::sums_key(month, repository)))
            .update_expression(expression);
        if let Some(cap) = cap {
            update = update.condition_expression("attribute_not_exists(#cap) OR #cap < :cap");
            names.insert("#cap".to_string(), "minutes".to_string());
            values.insert(":cap".to_string(), n(int(cap)));
        }
        let update = update
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|err| build_error(&self.table, err))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs a transaction; `Ok(None)` when it committed, `Ok(Some(reasons))` when a condition
    /// cancelled it (each item's reason code, `None` for an item that was not at fault).
    fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<String>>, IndexError> {
        for attempt in 0..CONFLICT_TRIES {
            let sent = self.block(
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(items.clone()))
                    .send(),
            );
            let err = match sent {
                Ok(_) => return Ok(None),
                Err(err) => err,
            };
            if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                err.as_service_error()
            {
                let reasons: Vec<String> = cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_string())
                    .collect();
                let conflicted = reasons
                    .iter()
                    .any(|r| r == "TransactionConflict" || r == "ThrottlingError");
                if !conflicted {
                    return Ok(Some(reasons));
                }
                // Another transaction held one of the items: try again shortly.
                std::thread::sleep(Duration::from_millis(5 + 10 * u64::from(attempt)));
                continue;
            }
            return Err(self.fail(err));
        }
        Err(IndexError::Dynamo {
            table: self.table.clone(),
            message: format!("a transaction conflicted with others {CONFLICT_TRIES} times"),
            retryable: true,
        })
    }

    fn query(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Item,
        forward: bool,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), IndexError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(forward)
            .set_exclusive_start_key(start);
        if let Some(limit) = limit {
            request = request.limit(i32::try_from(limit).unwrap_or(i32::MAX));
        }
        let answer = self.block(request.send()).map_err(|err| self.fail(err))?;
        Ok((
            answer.items().to_vec(),
            answer.last_evaluated_key().cloned(),
        ))
    }

    /// Every item a query gives, page after page.
    fn query_all(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Item,
    ) -> Result<Vec<Item>, IndexError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.query(index, condition, values.clone(), true, None, start)?;
            items.extend(page);
            match next {
                Some(next) => start = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// A page of at most `limit` entries from a query, newest first, with the cursor made by
    /// `cursor` from the last one.
    fn entry_page(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Item,
        limit: usize,
        start: Option<Item>,
    ) -> Result<Page, IndexError> {
        let limit = limit.max(1);
        let (items, _) = self.query(index, condition, values, false, Some(limit + 1), start)?;
        let mut entries = items
            .iter()
            .map(entry_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = (entries.len() > limit).then(|| {
            entries.truncate(limit);
            entries
                .last()
                .map(|e| format!("{} {}", e.build_id, e.project))
                .unwrap_or_default()
        });
        Ok(Page { entries, next })
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn build_error(table: &str, err: impl std::fmt::Display) -> IndexError {
    IndexError::Dynamo {
        table: table.to_string(),
        message: err.to_string(),
        retryable: false,
    }
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
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

fn malformed(what: &str, message: impl Into<String>) -> IndexError {
    IndexError::Malformed {
        what: what.to_string(),
        message: message.into(),
    }
}

fn get_s(item: &Item, name: &str) -> Result<String, IndexError> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text.clone()),
        _ => Err(malformed("build item", format!("`{name}` is not a string"))),
    }
}

fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Some(text.clone()),
        _ => None,
    }
}

fn get_i(item: &Item, name: &str) -> Result<i64, IndexError> {
    get_opt_i(item, name)?.ok_or_else(|| malformed("item", format!("`{name}` is missing")))
}

fn get_opt_i(item: &Item, name: &str) -> Result<Option<i64>, IndexError> {
    match item.get(name) {
        Some(AttributeValue::N(text)) => text
            .parse::<i64>()
            .map(Some)
            .map_err(|_| malformed("item", format!("`{name}` = {text} is not a whole number"))),
        None => Ok(None),
        Some(_) => Err(malformed("item", format!("`{name}` is not a number"))),
    }
}

fn get_u(item: &Item, name: &str) -> Result<u64, IndexError> {
    Ok(u64::try_from(get_opt_i(item, name)?.unwrap_or(0)).unwrap_or(0))
}

fn time(ms: i64) -> Result<DateTime<Utc>, IndexError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| malformed("time", format!("{ms} is not a time in milliseconds")))
}

fn entry_from_item(item: &Item) -> Result<Entry, IndexError> {
    let price = match item.get("price") {
        Some(AttributeValue::N(text)) => text.parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    };
    Ok(Entry {
        project: get_s(item, "project")?,
        build_id: get_s(item, "build_id")?,
        number: get_u(item, "number")?,
        state: State::parse(&get_s(item, "state")?)?,
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
    })
}

fn item_from_entry(entry: &Entry) -> Item {
    let mut item = DynamoIndex::build_key(&entry.project, &entry.build_id);
    let month = entry.month();
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_string(), value);
    };
    put("project", s(&entry.project));
    put("build_id", s(&entry.build_id));
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
fn closed_delta(
    state: State,
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
            i64::from(matches!(state, State::Failed | State::TimedOut)),
        ),
        ("skipped", i64::from(state == State::Skipped)),
        ("cost_e7", int(cost_e7)),
        ("duration_ms", int(duration_ms)),
    ]
}

impl Index for DynamoIndex {
    fn next_number(&self, project: &str) -> Result<u64, IndexError> {
        let key = HashMap::from([
            ("pk".to_string(), s(&format!("PROJECT#{project}"))),
            ("sk".to_string(), s("COUNTER")),
        ]);
        let answer = self.block(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("ADD #last :one")
                .expression_attribute_names("#last", "last")
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::UpdatedNew)
                .send(),
        );
        let answer = answer.map_err(|err| self.fail(err))?;
        let attributes = answer.attributes().cloned().unwrap_or_default();
        get_u(&attributes, "last")
    }

    fn claim(
        &self,
        project: &str,
        key: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<bool, IndexError> {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let sent = self.block(
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&format!("CLAIM#{project}#{hex}")))
                .item("sk", s("CLAIM"))
                .item("expires_ms", n(expires.timestamp_millis()))
                .item("ttl", n(expires.timestamp()))
                .condition_expression("attribute_not_exists(pk) OR expires_ms <= :now")
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .send(),
        );
        match sent {
            Ok(_) => Ok(true),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(err) => Err(self.fail(err)),
        }
    }

    fn release(&self, project: &str, key: &str) -> Result<(), IndexError> {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.block(
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(&format!("CLAIM#{project}#{hex}")))
                .key("sk", s("CLAIM"))
                .send(),
        )
        .map_err(|err| self.fail(err))?;
        Ok(())
    }

    fn open(&self, entry: &Entry) -> Result<(), IndexError> {
        let entry = Entry {
            state: State::InProgress,
            reserved_minutes: 0,
            billed_minutes: 0,
            cost_usd: 0.0,
            duration_ms: 0,
            ..entry.clone()
        };
        let sent = self.block(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item_from_entry(&entry)))
                .condition_expression("attribute_not_exists(pk)")
                .send(),
        );
        match sent {
            Ok(_) => Ok(()),
            // Opened already (a retried call): the entry stands as it is.
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(err) => Err(self.fail(err)),
        }
    }

    fn reserve(
        &self,
        project: &str,
        build_id: &str,
        minute: u64,
        expires_at: DateTime<Utc>,
        caps: &Budget,
    ) -> Result<Grant, IndexError> {
        let Some(entry) = self.get_entry(project, build_id)? else {
            return Ok(Grant::Refused(format!(
                "the build {project}:{build_id} is not in the index"
            )));
        };
        if entry.reserved_minutes >= minute && entry.state == State::InProgress {
            return Ok(Grant::Granted);
        }
        let month = entry.month();
        let build = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::build_key(project, build_id)))
            .update_expression("SET #reserved = :k, #expires = :e")
            .condition_expression("#state = :open AND #reserved = :before")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#reserved", "reserved")
            .expression_attribute_names("#expires", "expires_ms")
            .expression_attribute_values(":k", n(int(minute)))
            .expression_attribute_values(":before", n(int(minute - 1)))
            .expression_attribute_values(":e", n(expires_at.timestamp_millis()))
            .expression_attribute_values(":open", s(State::InProgress.as_str()))
            .build()
            .map_err(|err| build_error(&self.table, err))?;
        let total_cap = caps.monthly_minutes;
        let own_cap = caps.repository_cap(project);
        let items = vec![
            TransactWriteItem::builder().update(build).build(),
            self.sums_update(&month, "", &[("minutes", 1)], total_cap)?,
            self.sums_update(&month, project, &[("minutes", 1)], own_cap)?,
        ];
        let Some(reasons) = self.transact(items)? else {
            return Ok(Grant::Granted);
        };
        let failed = |i: usize| {
            reasons
                .get(i)
                .is_some_and(|r| r == "ConditionalCheckFailed")
        };
        if failed(0) {
            return Ok(match self.get_entry(project, build_id)? {
                Some(e) if e.state == State::InProgress && e.reserved_minutes >= minute => {
                    Grant::Granted
                }
                Some(e) => Grant::Refused(format!(
                    "the build was closed as {} before minute {minute}",
                    e.state.as_str()
                )),
                None => Grant::Refused(format!(
                    "the build {project}:{build_id} is not in the index"
                )),
            });
        }
        // A cap held: the month's figure stands at the cap.
        let reason = if failed(1) {
            refusal(caps, project, total_cap.unwrap_or(0), 0)
        } else {
            refusal(
                &Budget {
                    monthly_minutes: None,
                    ..caps.clone()
                },
                project,
                0,
                own_cap.unwrap_or(0),
            )
        };
        Ok(Grant::Refused(reason.unwrap_or_else(|| {
            format!("minute {minute} was refused: {}", reasons.join(", "))
        })))
    }

    fn close(&self, closing: &Closing) -> Result<Closed, IndexError> {
        for _ in 0..CONFLICT_TRIES {
            let Some(entry) = self.get_entry(&closing.project, &closing.build_id)? else {
                return Err(malformed(
                    "build entry",
                    format!(
                        "{}:{} was never opened, so it cannot be closed",
                        closing.project, closing.build_id
                    ),
                ));
            };
            if !entry.state.is_open() {
                return Ok(Closed::Already(Box::new(entry)));
            }
            let reserved = entry.reserved_minutes;
            let (billed, cost_e7) = settle(closing, reserved, entry.price_usd_per_minute);
            let mut build = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::build_key(&closing.project, &closing.build_id)))
                .condition_expression("#state = :was AND #reserved = :reserved")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#reserved", "reserved")
                .expression_attribute_names("#billed", "billed")
                .expression_attribute_names("#cost", "cost_e7")
                .expression_attribute_names("#duration", "duration_ms")
                .expression_attribute_names("#open", "open_pk")
                .expression_attribute_values(":was", s(entry.state.as_str()))
                .expression_attribute_values(":reserved", n(int(reserved)))
                .expression_attribute_values(":state", s(closing.state.as_str()))
                .expression_attribute_values(":billed", n(int(billed)))
                .expression_attribute_values(":cost", n(int(cost_e7)))
                .expression_attribute_values(":duration", n(int(closing.duration_ms)));
            let set =
                "SET #state = :state, #billed = :billed, #cost = :cost, #duration = :duration";
            build = match &closing.reason {
                Some(reason) => build
                    .update_expression(format!("{set}, #reason = :reason REMOVE #open"))
                    .expression_attribute_names("#reason", "reason")
                    .expression_attribute_values(":reason", s(reason)),
                None => build.update_expression(format!("{set} REMOVE #open")),
            };
            let build = build.build().map_err(|err| build_error(&self.table, err))?;
            let month = entry.month();
            let delta = closed_delta(
                closing.state,
                reserved - billed,
                billed,
                cost_e7,
                closing.duration_ms,
                false,
            );
            let items = vec![
                TransactWriteItem::builder().update(build).build(),
                self.sums_update(&month, "", &delta, None)?,
                self.sums_update(&month, &closing.project, &delta, None)?,
            ];
            if self.transact(items)?.is_none() {
                return Ok(Closed::Now {
                    billed_minutes: billed,
                });
            }
            // The entry changed between the read and the write: read it again.
        }
        Err(IndexError::Dynamo {
            table: self.table.clone(),
            message: format!(
                "{}:{} could not be closed: it kept changing",
                closing.project, closing.build_id
            ),
            retryable: true,
        })
    }

    fn expired(&self, now: DateTime<Utc>) -> Result<Vec<Entry>, IndexError> {
        let items = self.query_all(
            Some("open"),
            "open_pk = :open AND expires_ms < :now",
            HashMap::from([
                (":open".to_string(), s("OPEN")),
                (":now".to_string(), n(now.timestamp_millis())),
            ]),
        )?;
        items.iter().map(entry_from_item).collect()
    }

    fn month_sums(&self, month: &str) -> Result<Vec<Sums>, IndexError> {
        let items = self.query_all(
            None,
            "pk = :pk AND begins_with(sk, :sums)",
            HashMap::from([
                (":pk".to_string(), s(&format!("MONTH#{month}"))),
                (":sums".to_string(), s("SUMS#")),
            ]),
        )?;
        items
            .iter()
            .map(|item| {
                let sk = get_s(item, "sk")?;
                Ok(Sums {
                    repository: sk.strip_prefix("SUMS#").unwrap_or_default().to_string(),
                    minutes: get_u(item, "minutes")?,
                    builds: get_u(item, "builds")?,
                    failures: get_u(item, "failures")?,
                    skipped: get_u(item, "skipped")?,
                    cost_e7: get_u(item, "cost_e7")?,
                    duration_ms: get_u(item, "duration_ms")?,
                })
            })
            .collect()
    }

    fn entry(&self, project: &str, build_id: &str) -> Result<Option<Entry>, IndexError> {
        self.get_entry(project, build_id)
    }

    fn project_builds(
        &self,
        project: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError> {
        let start = after
            .and_then(|a| a.split_once(' '))
            .map(|(id, _)| Self::build_key(project, id));
        self.entry_page(
            None,
            "pk = :pk AND begins_with(sk, :build)",
            HashMap::from([
                (":pk".to_string(), s(&format!("PROJECT#{project}"))),
                (":build".to_string(), s("BUILD#")),
            ]),
            limit,
            start,
        )
    }

    fn month_builds(
        &self,
        month: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError> {
        let start = after.and_then(|a| a.split_once(' ')).map(|(id, project)| {
            let mut key = Self::build_key(project, id);
            key.insert("gsi1pk".to_string(), s(&format!("MONTH#{month}")));
            key.insert("gsi1sk".to_string(), s(&format!("{id} {project}")));
            key
        });
        self.entry_page(
            Some("by-month"),
            "gsi1pk = :month",
            HashMap::from([(":month".to_string(), s(&format!("MONTH#{month}")))]),
            limit,
            start,
        )
    }

    fn in_progress(&self) -> Result<Vec<Entry>, IndexError> {
        let items = self.query_all(
            Some("open"),
            "open_pk = :open",
            HashMap::from([(":open".to_string(), s("OPEN"))]),
        )?;
        items.iter().map(entry_from_item).collect()
    }

    fn add_closed(&self, entry: &Entry) -> Result<bool, IndexError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item_from_entry(entry)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|err| build_error(&self.table, err))?;
        let month = entry.month();
        let cost_e7 = usd_to_e7(entry.cost_usd);
        let delta = closed_delta(
            entry.state,
            0,
            entry.billed_minutes,
            cost_e7,
            entry.duration_ms,
            true,
        );
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.sums_update(&month, "", &delta, None)?,
            self.sums_update(&month, &entry.project, &delta, None)?,
        ];
        if self.transact(items)?.is_some() {
            return Ok(false);
        }
        let raised = self.block(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&format!("PROJECT#{}", entry.project)))
                .key("sk", s("COUNTER"))
                .update_expression("SET #last = :n")
                .condition_expression("attribute_not_exists(#last) OR #last < :n")
                .expression_attribute_names("#last", "last")
                .expression_attribute_values(":n", n(int(entry.number)))
                .send(),
        );
        match raised {
            Ok(_) => Ok(true),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(true),
            Err(err) => Err(self.fail(err)),
        }
    }
}
