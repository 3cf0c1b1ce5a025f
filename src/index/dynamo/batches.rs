//! A batch's state in DynamoDB: one item per batch (`PROJECT#<project>`, `BATCH#<batch-id>`)
//! holding the state as JSON and a `version`; each change is written only if the version is the
//! one it read (else read again and change again), so two children ending at once are applied
//! one after the other.

use std::collections::HashMap;

use super::item::{get_s, get_u, int, malformed, n, s};
use super::{CONFLICT_TRIES, DynamoIndex, Item};
use crate::batch::{BatchRecord, Step};
use crate::index::IndexError;

fn batch_key(project: &str, batch_id: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), s(&format!("PROJECT#{project}"))),
        ("sk".to_string(), s(&format!("BATCH#{batch_id}"))),
    ])
}

fn encode(record: &BatchRecord) -> Result<String, IndexError> {
    serde_json::to_string(record).map_err(|err| malformed("batch state", err.to_string()))
}

impl DynamoIndex {
    pub(super) fn put_batch(&self, record: &BatchRecord) -> Result<bool, IndexError> {
        let mut item = batch_key(&record.project, &record.batch_id);
        item.insert("state".into(), s(&encode(record)?));
        item.insert("version".into(), n(0));
        let sent = self.block(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send(),
        );
        self.written(sent)
    }

    /// The batch's state and version.
    fn get_batch(
        &self,
        project: &str,
        batch_id: &str,
    ) -> Result<Option<(BatchRecord, u64)>, IndexError> {
        let got = self.block(
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(batch_key(project, batch_id)))
                .consistent_read(true)
                .send(),
        );
        let got = got.map_err(|err| self.fail(err))?;
        let Some(item) = got.item() else {
            return Ok(None);
        };
        let record = serde_json::from_str(&get_s(item, "state")?)
            .map_err(|err| malformed("batch state", err.to_string()))?;
        Ok(Some((record, get_u(item, "version")?)))
    }

    pub(super) fn read_batch(
        &self,
        project: &str,
        batch_id: &str,
    ) -> Result<Option<BatchRecord>, IndexError> {
        Ok(self.get_batch(project, batch_id)?.map(|(record, _)| record))
    }

    pub(super) fn update_batch(
        &self,
        project: &str,
        batch_id: &str,
        change: &mut dyn FnMut(&mut BatchRecord) -> Step,
    ) -> Result<Option<(Step, BatchRecord)>, IndexError> {
        for _ in 0..CONFLICT_TRIES {
            let Some((mut record, version)) = self.get_batch(project, batch_id)? else {
                return Ok(None);
            };
            let step = change(&mut record);
            let sent = self.block(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(batch_key(project, batch_id)))
                    .update_expression("SET #state = :state, #version = :next")
                    .condition_expression("#version = :read")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":state", s(&encode(&record)?))
                    .expression_attribute_values(":next", n(int(version) + 1))
                    .expression_attribute_values(":read", n(int(version)))
                    .send(),
            );
            if self.written(sent)? {
                return Ok(Some((step, record)));
            }
            // Someone changed it since it was read: read it again.
        }
        Err(IndexError::Dynamo {
            table: self.table.clone(),
            message: format!("batch {project}:{batch_id} could not be changed: it kept changing"),
            retryable: true,
        })
    }
}
