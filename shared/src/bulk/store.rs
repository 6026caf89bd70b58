//! Batches in the idempotency table (every write function already uses
//! it), under keys that start with `bulk#`:
//!
//! * `bulk#<batchId>`: who asked for what and why, the number of devices
//!   to send, and how each device's queued request ended (written by the
//!   write function that handled it, see `settle`);
//! * `bulk#<batchId>#plan`: every reference with its verdict (written once);
//! * `bulk#hour#<YYYY-MM-DDTHH>`: devices queued by all batches in that hour.
//!
//! Items expire with the table's TTL after [`BATCH_TTL`].
//! The write functions' side, settling a device, is [`super::settle`].

use super::plan::Line;
use crate::action::Action;
use super::settle::{ID, REMAINING, SETTLED_DEVICES, Settlement, batch_key, read_batch, update_batch};
use crate::dynamo::{Item, conditional, n, number, s, text};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::time::Duration;


/// A batch as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub batch_id: String,
    pub action: String,
    /// `sending` until every message is queued, then `queued`.
    pub state: String,
    pub created_at: String,
    pub created_at_ms: i64,
    pub request_id: String,
    pub fingerprint: String,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub requested_by: Option<String>,
    pub caller_kind: String,
    pub caller_principal: Option<String>,
    pub caller_user: Option<String>,
    pub idempotency_key: Option<String>,
    pub replace_pending: bool,
    pub to_send: i64,
    /// How each settled device's request ended, by device id.
    pub settled_devices: HashMap<String, Settlement>,
}

impl Batch {
    /// The action its devices get (the bulk function writes only the two
    /// bulk-capable names).
    pub fn action(&self) -> Action {
        Action::from_event_action(&self.action).unwrap_or(Action::ResetPasscode)
    }
}

pub const SENDING: &str = "sending";
pub const QUEUED: &str = "queued";

/// How long a batch can be read back.
pub const BATCH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The idempotency table's TTL attribute.
const EXPIRATION: &str = "expiration";

fn expiration() -> AttributeValue {
    n(crate::clock::now_ms() / 1000 + BATCH_TTL.as_secs() as i64)
}

pub struct BatchStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl BatchStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> BatchStore {
        BatchStore { client, table }
    }

    pub async fn find(&self, batch_id: &str) -> Result<Option<Batch>, String> {
        let out = read_batch(&self.client, &self.table, batch_id)
            .send()
            .await
            .map_err(|e| crate::aws::error_text(&e))?;
        Ok(out.item().map(|item| batch_from_item(batch_id, item)))
    }

    /// Stores the plan, then the batch if no batch has this id yet:
    /// `Ok(false)` when one has (a repeat with the same idempotency key).
    pub async fn create(&self, batch: &Batch, plan: &[Line]) -> Result<bool, String> {
        let plan_text = serde_json::to_string(plan).map_err(|e| e.to_string())?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(ID, s(&format!("bulk#{}#plan", batch.batch_id)))
            .item("plan", s(&plan_text))
            .item(EXPIRATION, expiration())
            .send()
            .await
            .map_err(|e| crate::aws::error_text(&e))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(batch_to_item(batch)))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", ID)
            .send()
            .await;
        conditional(result)
    }

    pub async fn plan(&self, batch_id: &str) -> Result<Vec<Line>, String> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, s(&format!("bulk#{batch_id}#plan")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| crate::aws::error_text(&e))?;
        let text = out.item().and_then(|item| text(item, "plan")).unwrap_or_default();
        serde_json::from_str(&text).map_err(|_| format!("the plan of batch {batch_id} could not be read"))
    }

    /// Every message is queued.
    pub async fn mark_queued(&self, batch_id: &str) -> Result<(), String> {
        update_batch(&self.client, &self.table, batch_id)
            .update_expression("SET #state = :queued")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":queued", s(QUEUED))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::aws::error_text(&e))
    }

    /// Takes `devices` from the hour's cap: `Ok(false)` when they do not fit.
    pub async fn take_hourly(&self, hour: &str, devices: u32, cap: u32) -> Result<bool, String> {
        if devices > cap {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ID, s(&format!("bulk#hour#{hour}")))
            .update_expression("SET #exp = :exp ADD #n :devices")
            .condition_expression("attribute_not_exists(#n) OR #n <= :room")
            .expression_attribute_names("#n", "devices")
            .expression_attribute_names("#exp", EXPIRATION)
            .expression_attribute_values(":devices", n(devices as i64))
            .expression_attribute_values(":room", n((cap - devices) as i64))
            .expression_attribute_values(":exp", n(crate::clock::now_ms() / 1000 + 2 * 3600))
            .send()
            .await;
        conditional(result)
    }
}

fn batch_to_item(b: &Batch) -> Item {
    let mut item: Item = HashMap::new();
    item.insert(ID.into(), s(&batch_key(&b.batch_id)));
    item.insert("action".into(), s(&b.action));
    item.insert("state".into(), s(&b.state));
    item.insert("createdAt".into(), s(&b.created_at));
    item.insert("createdAtMs".into(), n(b.created_at_ms));
    item.insert("requestId".into(), s(&b.request_id));
    item.insert("fingerprint".into(), s(&b.fingerprint));
    item.insert("callerKind".into(), s(&b.caller_kind));
    item.insert("toSend".into(), n(b.to_send));
    item.insert("replacePending".into(), AttributeValue::Bool(b.replace_pending));
    item.insert("settled".into(), n(0));
    item.insert("outcomes".into(), AttributeValue::M(HashMap::new()));
    item.insert(SETTLED_DEVICES.into(), AttributeValue::M(HashMap::new()));
    item.insert(REMAINING.into(), n(b.to_send));
    item.insert(EXPIRATION.into(), expiration());
    for (name, value) in [
        ("reason", &b.reason),
        ("ticket", &b.ticket),
        ("requestedBy", &b.requested_by),
        ("callerPrincipal", &b.caller_principal),
        ("callerUser", &b.caller_user),
        ("idempotencyKey", &b.idempotency_key),
    ] {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    item
}

/// The settlements in a batch's item, by device id.
fn settlements(item: &Item) -> HashMap<String, Settlement> {
    let Some(devices) = item.get(SETTLED_DEVICES).and_then(|v| v.as_m().ok()) else {
        return HashMap::new();
    };
    devices
        .iter()
        .filter_map(|(device_id, entry)| {
            let entry = entry.as_m().ok()?;
            let field = |name: &str| text(entry, name).unwrap_or_default();
            let settlement = Settlement {
                device_id: device_id.clone(),
                outcome: field("outcome"),
                request_id: field("requestId"),
                settled_at: field("settledAt"),
            };
            Some((device_id.clone(), settlement))
        })
        .collect()
}

fn batch_from_item(batch_id: &str, item: &Item) -> Batch {
    let t = |name: &str| text(item, name);
    Batch {
        batch_id: batch_id.to_string(),
        action: t("action").unwrap_or_default(),
        state: t("state").unwrap_or_default(),
        created_at: t("createdAt").unwrap_or_default(),
        created_at_ms: number(item, "createdAtMs").unwrap_or(0),
        request_id: t("requestId").unwrap_or_default(),
        fingerprint: t("fingerprint").unwrap_or_default(),
        reason: t("reason"),
        ticket: t("ticket"),
        requested_by: t("requestedBy"),
        caller_kind: t("callerKind").unwrap_or_default(),
        caller_principal: t("callerPrincipal"),
        caller_user: t("callerUser"),
        idempotency_key: t("idempotencyKey"),
        replace_pending: item.get("replacePending").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        to_send: number(item, "toSend").unwrap_or(0),
        settled_devices: settlements(item),
    }
}
