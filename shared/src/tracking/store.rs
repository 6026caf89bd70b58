//! The action log in DynamoDB: written once by the write functions, read
//! by `passcode-status`, followed by the tracker.
//!
//! It is a table of its own rather than more items in the idempotency
//! table: its records live for weeks where idempotency records live for
//! an hour, it is read by device (status) and by next poll (tracker) where
//! idempotency items are read by request key only, and tracking must not
//! depend on whether a deployer enabled idempotency.
//!
//! Every tracker write is conditional, so overlapping runs never report
//! one action twice: a run first takes a short lease on a record that is
//! still open and still due at the time it read it; only the lease holder
//! may reschedule or close it.

use super::record::*;
use crate::aws::error_text;
use crate::dynamo::{Item, conditional, n, s};
use aws_sdk_dynamodb::types::AttributeValue;

/// The sparse index of open actions by next poll.
pub const OPEN_INDEX: &str = "open-by-next-poll";

pub struct ActionLog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// A page of due actions and where the next page starts.
pub struct Page {
    pub records: Vec<ActionRecord>,
    pub next: Option<Item>,
}

/// How a record that one run holds is closed.
pub struct Closing<'a> {
    pub state: &'a str,
    pub intune_error_code: Option<i64>,
    pub at: String,
}

impl ActionLog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> ActionLog {
        ActionLog { client, table }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Records an accepted action; its first poll is due `first_poll_ms`
    /// after acceptance. One PutItem.
    pub async fn put(&self, record: &ActionRecord, first_poll_ms: i64) -> Result<(), String> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record.to_new_item(first_poll_ms)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }

    /// Makes an open record due now (a batch whose last device was just
    /// settled); a closed or missing record stays as it is.
    pub async fn due_now(&self, device_id: &str, action_key: &str, now_ms: i64) -> Result<bool, String> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(DEVICE_ID, AttributeValue::S(device_id.to_string()))
            .key(ACTION_KEY, AttributeValue::S(action_key.to_string()))
            .update_expression("SET #next = :now")
            .condition_expression("attribute_exists(#open) AND #next > :now")
            .expression_attribute_names("#open", OPEN_PARTITION)
            .expression_attribute_names("#next", NEXT_POLL_AT_MS)
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        conditional(result)
    }

    /// The device's newest `limit` actions, newest first. One Query.
    pub async fn for_device(
        &self,
        device_id: &str,
        limit: i32,
    ) -> Result<Vec<ActionRecord>, String> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#d = :d")
            .expression_attribute_names("#d", DEVICE_ID)
            .expression_attribute_values(":d", s(device_id))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(ActionRecord::from_item)
            .collect())
    }

    /// Open actions due by `now_ms`, most overdue first.
    pub async fn due(&self, now_ms: i64, limit: i32, start: Option<Item>) -> Result<Page, String> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .key_condition_expression("#open = :open AND #next <= :now")
            .expression_attribute_names("#open", OPEN_PARTITION)
            .expression_attribute_names("#next", NEXT_POLL_AT_MS)
            .expression_attribute_values(":open", s(OPEN))
            .expression_attribute_values(":now", n(now_ms))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        Ok(Page {
            records: out
                .items()
                .iter()
                .filter_map(ActionRecord::from_item)
                .collect(),
            next: out.last_evaluated_key().cloned(),
        })
    }

    /// Takes `record` for this run until `lease_until_ms`, if it is still
    /// open, still due when it was read, and no other run holds it. `false`:
    /// another run has it or already moved it on.
    pub async fn claim(
        &self,
        record: &ActionRecord,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, String> {
        let seen_next = record.tracking.next_poll_at_ms.unwrap_or(0);
        let result = self
            .update(record)
            .update_expression("SET #owner = :owner, #until = :until")
            .condition_expression(
                "attribute_exists(#open) AND #next = :seen AND (attribute_not_exists(#until) OR #until < :now)",
            )
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL_MS)
            .expression_attribute_names("#open", OPEN_PARTITION)
            .expression_attribute_names("#next", NEXT_POLL_AT_MS)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(lease_until_ms))
            .expression_attribute_values(":seen", n(seen_next))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        conditional(result)
    }

    /// Leaves the record open, due again at `next_ms`, and gives the lease
    /// back. `polled_at` is set when Graph was read.
    pub async fn reschedule(
        &self,
        record: &ActionRecord,
        owner: &str,
        polled_at: Option<&str>,
        next_ms: i64,
    ) -> Result<bool, String> {
        let mut update = self
            .update(record)
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL_MS)
            .expression_attribute_names("#next", NEXT_POLL_AT_MS)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":next", n(next_ms));
        update = match polled_at {
            Some(at) => update
                .update_expression(
                    "SET #next = :next, #polled = :polled ADD #polls :one REMOVE #owner, #until",
                )
                .expression_attribute_names("#polled", LAST_POLLED_AT)
                .expression_attribute_names("#polls", POLLS)
                .expression_attribute_values(":polled", s(at))
                .expression_attribute_values(":one", n(1)),
            None => update.update_expression("SET #next = :next REMOVE #owner, #until"),
        };
        conditional(update.send().await)
    }

    /// Closes the record after its result event was published: out of the
    /// open index for good.
    pub async fn close(
        &self,
        record: &ActionRecord,
        owner: &str,
        closing: &Closing<'_>,
    ) -> Result<bool, String> {
        let mut update = self
            .update(record)
            .update_expression(
                "SET #final = :final, #finalAt = :at, #polled = :at ADD #polls :one REMOVE #open, #next, #owner, #until",
            )
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#final", FINAL_STATE)
            .expression_attribute_names("#finalAt", FINAL_AT)
            .expression_attribute_names("#polled", LAST_POLLED_AT)
            .expression_attribute_names("#polls", POLLS)
            .expression_attribute_names("#open", OPEN_PARTITION)
            .expression_attribute_names("#next", NEXT_POLL_AT_MS)
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL_MS)
            .expression_attribute_values(":final", s(closing.state))
            .expression_attribute_values(":at", s(&closing.at))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":owner", s(owner));
        if let Some(code) = closing.intune_error_code {
            update = update
                .update_expression(
                    "SET #final = :final, #finalAt = :at, #polled = :at, #code = :code ADD #polls :one REMOVE #open, #next, #owner, #until",
                )
                .expression_attribute_names("#code", INTUNE_ERROR_CODE)
                .expression_attribute_values(":code", n(code));
        }
        conditional(update.send().await)
    }

    fn update(
        &self,
        record: &ActionRecord,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(DEVICE_ID, AttributeValue::S(record.device_id.clone()))
            .key(ACTION_KEY, AttributeValue::S(record.action_key()))
    }
}
