//! The requests the index is made of: one item read, one transaction (tried again when it
//! conflicts with another), one page of a query.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use std::collections::HashMap;

use super::item::{build_error, entry_from_item, int, n, s, sdk_error};
use super::{CONFLICT_TRIES, DynamoIndex, Item};
use crate::index::{Entry, IndexError, Page};

impl DynamoIndex {
    /// The answer to a conditional write: whether it was written (false: its condition did not
    /// hold).
    pub(super) fn written<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        sent: Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
    ) -> Result<bool, IndexError> {
        match sent {
            Ok(_) => Ok(true),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(err) => Err(self.fail(err)),
        }
    }

    pub(super) fn block<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.handle.block_on(work)
    }

    pub(super) fn fail<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> IndexError {
        sdk_error(&self.table, err)
    }

    pub(super) fn build_key(project: &str, build_id: &str) -> Item {
        HashMap::from([
            ("pk".to_string(), s(&format!("PROJECT#{project}"))),
            ("sk".to_string(), s(&format!("BUILD#{build_id}"))),
        ])
    }

    pub(super) fn sums_key(month: &str, repository: &str) -> Item {
        HashMap::from([
            ("pk".to_string(), s(&format!("MONTH#{month}"))),
            ("sk".to_string(), s(&format!("SUMS#{repository}"))),
        ])
    }

    pub(super) fn get_entry(
        &self,
        project: &str,
        build_id: &str,
    ) -> Result<Option<Entry>, IndexError> {
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
    pub(super) fn sums_update(
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
    pub(super) fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<String>>, IndexError> {
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

    pub(super) fn query(
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
    pub(super) fn query_all(
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
    pub(super) fn entry_page(
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
