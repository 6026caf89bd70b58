//! The write functions' side of a batch: how a queued device's request
//! ended is recorded once in the batch's item (`bulk#<batchId>`), under
//! `settledDevices.<deviceId>`, and counted there, in one conditional
//! update: the first settlement wins, so a redelivered message never
//! counts twice. The bulk function reads it back (see `store`).
//!
//! One item per batch keeps a settlement to one write and the progress to
//! one read. Its size grows with the batch: at most `BULK_MAX_DEVICES`
//! (1,000) entries of about 150 bytes, well within DynamoDB's 400 KB.

use crate::dynamo::{Item, conditional, n, number, s, text};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;

pub(crate) const ID: &str = "id";

/// The batch's key: of its item here, and of its record in the action
/// log (where it stands for the record's device).
pub(crate) fn batch_key(batch_id: &str) -> String {
    format!("bulk#{batch_id}")
}

/// A strongly consistent read of the batch's item.
pub(crate) fn read_batch(client: &Client, table: &str, batch_id: &str) -> GetItemFluentBuilder {
    client
        .get_item()
        .table_name(table)
        .key(ID, s(&batch_key(batch_id)))
        .consistent_read(true)
}

/// An update of the batch's item.
pub(crate) fn update_batch(client: &Client, table: &str, batch_id: &str) -> UpdateItemFluentBuilder {
    client
        .update_item()
        .table_name(table)
        .key(ID, s(&batch_key(batch_id)))
}

/// The map of settled devices in the batch's item.
pub(crate) const SETTLED_DEVICES: &str = "settledDevices";
/// Devices of the batch not settled yet, counted down from the number sent.
pub(crate) const REMAINING: &str = "remaining";

/// What a settlement found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The device was settled before (a redelivery), or the batch is gone.
    Before,
    Now,
    /// This was the batch's last device; the key of its record in the
    /// action log.
    Last { created_at_ms: i64, request_id: String },
}

/// How a device's queued request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub device_id: String,
    /// The outcome (`accepted`, `alreadyPending`) or error code
    /// (`bulkStopped`, `unsupportedPlatform`, ...).
    pub outcome: String,
    pub request_id: String,
    pub settled_at: String,
}

/// The batch's counts (after a settlement, or as the tracker reads them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// The batch's action (`resetPasscode`, `removePasscode`).
    pub action: String,
    pub to_send: i64,
    pub settled: i64,
    /// Settled devices per outcome.
    pub outcomes: Vec<(String, i64)>,
    /// When the batch was created and by which request: the key of its
    /// record in the action log.
    pub created_at_ms: i64,
    pub request_id: String,
}

impl BatchCounts {
    /// Whether every device has settled: read by the tracker only.
    #[cfg_attr(not(feature = "tracker"), allow(dead_code))]
    pub fn complete(&self) -> bool {
        self.settled >= self.to_send
    }

    fn from_item(item: &Item) -> BatchCounts {
        let mut outcomes: Vec<(String, i64)> = item
            .get("outcomes")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        outcomes.sort();
        BatchCounts {
            action: text(item, "action").unwrap_or_default(),
            to_send: number(item, "toSend").unwrap_or(0),
            settled: number(item, "settled").unwrap_or(0),
            outcomes,
            created_at_ms: number(item, "createdAtMs").unwrap_or(0),
            request_id: text(item, "requestId").unwrap_or_default(),
        }
    }
}

pub struct BatchSettler {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl BatchSettler {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> BatchSettler {
        BatchSettler { client, table }
    }

    /// Records how a device's request ended, once. The batch counts
    /// down `remaining` (set to the number of devices when it was
    /// created); the settlement that takes it to zero is the last.
    pub async fn settle(&self, batch_id: &str, settlement: &Settlement) -> Result<Settled, String> {
        let entry = AttributeValue::M(HashMap::from([
            ("outcome".to_string(), s(&settlement.outcome)),
            ("requestId".to_string(), s(&settlement.request_id)),
            ("settledAt".to_string(), s(&settlement.settled_at)),
        ]));
        let result = update_batch(&self.client, &self.table, batch_id)
            .update_expression("SET #devices.#d = :entry ADD #settled :one, #remaining :minus, #outcomes.#o :one")
            .condition_expression("attribute_exists(#devices) AND attribute_not_exists(#devices.#d)")
            .expression_attribute_names("#devices", SETTLED_DEVICES)
            .expression_attribute_names("#d", &settlement.device_id)
            .expression_attribute_names("#settled", "settled")
            .expression_attribute_names("#remaining", REMAINING)
            .expression_attribute_names("#outcomes", "outcomes")
            .expression_attribute_names("#o", &settlement.outcome)
            .expression_attribute_values(":entry", entry)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":minus", n(-1))
            // Only what changed: ALL_NEW would return the whole item.
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let mut remaining = None;
        let result = result.map(|out| remaining = out.attributes().and_then(|a| number(a, REMAINING)));
        if !conditional(result)? {
            return Ok(Settled::Before);
        }
        if remaining != Some(0) {
            return Ok(Settled::Now);
        }
        // The last one: the batch's key in the action log, once per batch.
        let counts = self.counts(batch_id).await?.unwrap_or_default();
        Ok(Settled::Last {
            created_at_ms: counts.created_at_ms,
            request_id: counts.request_id,
        })
    }

    /// The batch's counts, without its per-device map; `None` when it is
    /// gone (expired).
    pub async fn counts(&self, batch_id: &str) -> Result<Option<BatchCounts>, String> {
        let out = read_batch(&self.client, &self.table, batch_id)
            .projection_expression("#a, toSend, settled, outcomes, createdAtMs, requestId")
            .expression_attribute_names("#a", "action")
            .send()
            .await
            .map_err(|e| crate::aws::error_text(&e))?;
        Ok(out.item().map(BatchCounts::from_item))
    }
}
