//! The write functions' side of a batch: how a queued device's request
//! ended is recorded once, in `bulk#<batchId>#d#<deviceId>` (a conditional
//! put: the first settlement wins, so a redelivered message never counts
//! twice), and counted in the batch (`bulk#<batchId>`). The bulk function
//! reads both back (see `store`).

use crate::dynamo::{conditional, n, number, s};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::time::Duration;

/// How long a batch can be read back.
pub const BATCH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub(crate) const ID: &str = "id";
/// The idempotency table's TTL attribute.
pub(crate) const EXPIRATION: &str = "expiration";

pub(crate) fn batch_key(batch_id: &str) -> String {
    format!("bulk#{batch_id}")
}

pub(crate) fn device_key(batch_id: &str, device_id: &str) -> String {
    format!("bulk#{batch_id}#d#{device_id}")
}

pub(crate) fn expiration() -> AttributeValue {
    n(crate::clock::now_ms() / 1000 + BATCH_TTL.as_secs() as i64)
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
    pub fn complete(&self) -> bool {
        self.settled >= self.to_send
    }

    fn from_item(item: &crate::dynamo::Item) -> BatchCounts {
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
            action: crate::dynamo::text(item, "action").unwrap_or_default(),
            to_send: number(item, "toSend").unwrap_or(0),
            settled: number(item, "settled").unwrap_or(0),
            outcomes,
            created_at_ms: number(item, "createdAtMs").unwrap_or(0),
            request_id: crate::dynamo::text(item, "requestId").unwrap_or_default(),
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

    /// Records how a device's request ended, once; `Ok(Some(counts))`
    /// when this call settled it, `Ok(None)` when it was settled before
    /// (or the batch is gone).
    pub async fn settle(
        &self,
        batch_id: &str,
        settlement: &Settlement,
    ) -> Result<Option<BatchCounts>, String> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ID, s(&device_key(batch_id, &settlement.device_id)))
            .item("outcome", s(&settlement.outcome))
            .item("requestId", s(&settlement.request_id))
            .item("settledAt", s(&settlement.settled_at))
            .item(EXPIRATION, expiration())
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", ID)
            .send()
            .await;
        if !conditional(put)? {
            return Ok(None);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ID, s(&batch_key(batch_id)))
            .update_expression("ADD settled :one, outcomes.#o :one")
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#o", &settlement.outcome)
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let mut counts = None;
        let result = result.map(|out| counts = out.attributes().map(BatchCounts::from_item));
        conditional(result).map(|_| counts)
    }

    /// The batch's counts; `None` when it is gone (expired).
    #[cfg(feature = "tracker")]
    pub async fn counts(&self, batch_id: &str) -> Result<Option<BatchCounts>, String> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, s(&batch_key(batch_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| crate::aws::error_text(&e))?;
        Ok(out.item().map(BatchCounts::from_item))
    }
}
