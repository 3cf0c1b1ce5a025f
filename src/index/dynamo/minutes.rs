//! The steps that count minutes, each one transaction: reserving a build's next minute
//! against the caps, closing a build (its unused minutes given back to the sums), and adding a
//! build that ended elsewhere (a rebuild from the store).

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::item::{build_error, closed_delta, int, item_from_entry, malformed, n, s};
use super::{CONFLICT_TRIES, DynamoIndex};
use crate::billing::Budget;
use crate::index::{Closed, Closing, Entry, Grant, IndexError, refusal, settle, usd_to_e7};
use crate::names::{BuildId, ProjectName};
use crate::state::BuildState;

impl DynamoIndex {
    pub(super) fn reserve_minute(
        &self,
        project: &ProjectName,
        build_id: &BuildId,
        minute: u64,
        expires_at: DateTime<Utc>,
        caps: &Budget,
    ) -> Result<Grant, IndexError> {
        let (project, build_id) = (project.as_str(), build_id.as_str());
        let Some(entry) = self.get_entry(project, build_id)? else {
            return Ok(Grant::Refused(format!(
                "the build {project}:{build_id} is not in the index"
            )));
        };
        if entry.reserved_minutes >= minute && entry.state == BuildState::InProgress {
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
            .expression_attribute_values(":open", s(BuildState::InProgress.as_str()))
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
                Some(e) if e.state == BuildState::InProgress && e.reserved_minutes >= minute => {
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

    pub(super) fn close_build(&self, closing: &Closing) -> Result<Closed, IndexError> {
        for _ in 0..CONFLICT_TRIES {
            let Some(entry) =
                self.get_entry(closing.project.as_str(), closing.build_id.as_str())?
            else {
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
            let build = self.close_update(closing, &entry, billed, cost_e7)?;
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
                self.sums_update(&month, closing.project.as_str(), &delta, None)?,
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
}

impl DynamoIndex {
    /// The update that closes `entry` as `closing` says, if nobody changed it since it was read.
    fn close_update(
        &self,
        closing: &Closing,
        entry: &Entry,
        billed: u64,
        cost_e7: u64,
    ) -> Result<Update, IndexError> {
        let reserved = entry.reserved_minutes;
        let mut build = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::build_key(
                closing.project.as_str(),
                closing.build_id.as_str(),
            )))
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
        let mut set =
            "SET #state = :state, #billed = :billed, #cost = :cost, #duration = :duration"
                .to_string();
        if let Some(tests) = &closing.tests {
            set.push_str(", #tests = :tests");
            build = build
                .expression_attribute_names("#tests", "tests")
                .expression_attribute_values(":tests", s(tests));
        }
        build = match &closing.reason {
            Some(reason) => build
                .update_expression(format!("{set}, #reason = :reason REMOVE #open"))
                .expression_attribute_names("#reason", "reason")
                .expression_attribute_values(":reason", s(reason)),
            None => build.update_expression(format!("{set} REMOVE #open")),
        };
        build.build().map_err(|err| build_error(&self.table, err))
    }

    pub(super) fn add_closed_build(&self, entry: &Entry) -> Result<bool, IndexError> {
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
            self.sums_update(&month, entry.project.as_str(), &delta, None)?,
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
        // Not written: the counter is past this number already.
        self.written(raised).map(|_| true)
    }
}
