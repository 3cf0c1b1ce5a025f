//! The index in one DynamoDB table (on-demand). Key design (`pk`, `sk`, both strings):
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | a project's counter | `PROJECT#<project>` | `COUNTER` | `last` |
//! | a build | `PROJECT#<project>` | `BUILD#<build-id>` | the entry; `gsi1pk`/`gsi1sk`; `open_pk` while open |
//! | a month's sums | `MONTH#<YYYY-MM>` | `SUMS#<repository>` (`SUMS#`: the total) | `minutes`, `builds`, … |
//! | a claim | `CLAIM#<project>#<sha256 of the key>` | `CLAIM` | `expires_ms`, `ttl` (TTL) |
//! | a project's placement | `PROJECT#<project>` | `PLACEMENT` | `compute`, `since_ms`, `reason` |
//!
//! Two global secondary indexes: `by-month` (`gsi1pk` = `MONTH#<YYYY-MM>`, `gsi1sk` =
//! `<build-id> <project>`): a month's builds newest first; `open` (`open_pk` = `OPEN`,
//! `expires_ms`): sparse, only open builds, by expiry, for the sweep and the running builds.
//!
//! A reservation is one `TransactWriteItems` of three updates: the build (still open, one
//! minute fewer reserved), the month's total and the repository's sums (each under its cap).
//! Any one condition failing cancels all three, so no cap is ever passed.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use tokio::runtime::Handle;

use super::{Closed, Closing, Entry, Grant, Index, IndexError, Page, Placement, Sums};
use crate::batch::{BatchRecord, Step};
use crate::billing::Budget;
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;

mod batches;
mod create;
mod item;
mod minutes;
mod requests;

use item::{entry_from_item, get_i, get_s, get_u, item_from_entry, n, s, time};

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
        // Six tries, as the S3 store's: DynamoDB throttles in bursts (the SDK's default is 3).
        let config = aws_sdk_dynamodb::config::Builder::from(sdk_config)
            .retry_config(
                aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(6),
            )
            .interceptor(crate::store::retries::LogRetries {
                service: "DynamoDB",
            })
            .build();
        Ok(DynamoIndex {
            client: Client::from_conf(config),
            table,
            handle,
        })
    }

    /// The item `entry` is stored as (for loading many builds at once, as the benchmark does).
    pub fn item(entry: &Entry) -> HashMap<String, AttributeValue> {
        item_from_entry(entry)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

impl Index for DynamoIndex {
    fn next_number(&self, project: &ProjectName) -> Result<u64, IndexError> {
        let project = project.as_str();
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
        project: &ProjectName,
        key: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<bool, IndexError> {
        let project = project.as_str();
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
        self.written(sent)
    }

    fn release(&self, project: &ProjectName, key: &str) -> Result<(), IndexError> {
        let project = project.as_str();
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

    fn queue(&self, entry: &Entry) -> Result<(), IndexError> {
        let sent = self.block(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item_from_entry(entry)))
                .condition_expression("attribute_not_exists(pk)")
                .send(),
        );
        self.written(sent).map(drop)
    }

    fn discard_queued(&self, project: &ProjectName, build_id: &BuildId) -> Result<(), IndexError> {
        let (project, build_id) = (project.as_str(), build_id.as_str());
        let sent = self.block(
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::build_key(project, build_id)))
                .condition_expression("#state = :queued")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":queued", s(BuildState::Queued.as_str()))
                .send(),
        );
        self.written(sent).map(drop)
    }

    fn open(&self, entry: &Entry) -> Result<(), IndexError> {
        let entry = entry.opening();
        // New, or the queued entry of this build.
        let sent = self.block(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item_from_entry(&entry)))
                .condition_expression("attribute_not_exists(pk) OR #state = :queued")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":queued", s(BuildState::Queued.as_str()))
                .send(),
        );
        // Not written: opened already (a retried call), and the entry stands as it is.
        self.written(sent).map(drop)
    }

    fn reserve(
        &self,
        project: &ProjectName,
        build_id: &BuildId,
        minute: u64,
        expires_at: DateTime<Utc>,
        caps: &Budget,
    ) -> Result<Grant, IndexError> {
        self.reserve_minute(project, build_id, minute, expires_at, caps)
    }

    fn close(&self, closing: &Closing) -> Result<Closed, IndexError> {
        self.close_build(closing)
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

    fn entry(
        &self,
        project: &ProjectName,
        build_id: &BuildId,
    ) -> Result<Option<Entry>, IndexError> {
        let (project, build_id) = (project.as_str(), build_id.as_str());
        self.get_entry(project, build_id)
    }

    fn project_builds(
        &self,
        project: &ProjectName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError> {
        let project = project.as_str();
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
        self.add_closed_build(entry)
    }

    fn placement(&self, project: &ProjectName) -> Result<Option<Placement>, IndexError> {
        let project = project.as_str();
        let got = self.block(
            self.client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(&format!("PROJECT#{project}")))
                .key("sk", s("PLACEMENT"))
                .consistent_read(true)
                .send(),
        );
        let got = got.map_err(|err| self.fail(err))?;
        let Some(item) = got.item() else {
            return Ok(None);
        };
        Ok(Some(Placement {
            compute: get_s(item, "compute")?,
            since: time(get_i(item, "since_ms")?)?,
            reason: get_s(item, "reason")?,
        }))
    }

    fn set_placement(
        &self,
        project: &ProjectName,
        placement: Option<&Placement>,
    ) -> Result<(), IndexError> {
        let project = project.as_str();
        match placement {
            Some(p) => self
                .block(
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .item("pk", s(&format!("PROJECT#{project}")))
                        .item("sk", s("PLACEMENT"))
                        .item("compute", s(&p.compute))
                        .item("since_ms", n(p.since.timestamp_millis()))
                        .item("reason", s(&p.reason))
                        .send(),
                )
                .map(drop)
                .map_err(|err| self.fail(err)),
            None => self
                .block(
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .key("pk", s(&format!("PROJECT#{project}")))
                        .key("sk", s("PLACEMENT"))
                        .send(),
                )
                .map(drop)
                .map_err(|err| self.fail(err)),
        }
    }

    fn open_batch(&self, record: &BatchRecord) -> Result<bool, IndexError> {
        self.put_batch(record)
    }

    fn batch(&self, project: &str, batch_id: &str) -> Result<Option<BatchRecord>, IndexError> {
        self.read_batch(project, batch_id)
    }

    fn change_batch(
        &self,
        project: &str,
        batch_id: &str,
        change: &mut dyn FnMut(&mut BatchRecord) -> Step,
    ) -> Result<Option<(Step, BatchRecord)>, IndexError> {
        self.update_batch(project, batch_id, change)
    }
}
