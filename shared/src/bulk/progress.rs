//! How far a batch has come: its plan, and for each device sent whether its
//! queued request has ended and how (two reads: the batch and its plan).

use super::plan::{self, Verdict};
use super::store::{BatchStore, QUEUED, SENDING};
use super::submit::table_error;
use super::Answer;
use crate::action::Action;
use crate::error::{ErrorCode, ServiceError};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Settled outcomes that mean the device got the action.
const SENT: &[&str] = &["accepted"];

pub(super) async fn progress(store: &BatchStore, action: Action, batch_id: &str) -> Result<Answer, ServiceError> {
    let not_found = || {
        ServiceError::new(
            ErrorCode::BatchNotFound,
            format!(
                "No bulk {} batch {batch_id:?} is known (batches can be read for 30 days).",
                action.function_name()
            ),
        )
    };
    let batch = store.find(batch_id).await.map_err(table_error)?.ok_or_else(not_found)?;
    if batch.action != action.event_action() {
        return Err(not_found());
    }
    let lines = store.plan(batch_id).await.map_err(table_error)?;
    let sent_ids: Vec<&str> = lines
        .iter()
        .filter(|l| l.result == Verdict::Send)
        .filter_map(|l| l.device_id.as_deref())
        .collect();
    let settled = &batch.settled_devices;

    let mut outcomes: BTreeMap<&str, u32> = BTreeMap::new();
    let mut devices = Vec::with_capacity(lines.len());
    for line in &lines {
        let mut entry = serde_json::to_value(line).unwrap_or_default();
        if line.result == Verdict::Send {
            let found = line.device_id.as_ref().and_then(|id| settled.get(id));
            let state = found.map_or(QUEUED, |s| s.outcome.as_str());
            *outcomes.entry(state).or_default() += 1;
            entry["state"] = json!(state);
            if let Some(s) = found {
                entry["requestId"] = json!(s.request_id);
                entry["settledAt"] = json!(s.settled_at);
            }
        }
        devices.push(entry);
    }
    let queued = outcomes.get(QUEUED).copied().unwrap_or(0);
    let sent: u32 = SENT.iter().filter_map(|o| outcomes.get(o)).sum();
    let state = match (batch.state.as_str(), queued) {
        (SENDING, _) => SENDING,
        (_, 0) => "done",
        _ => "inProgress",
    };
    let mut counts = serde_json::to_value(plan::counts(&lines)).unwrap_or_default();
    counts["settled"] = json!(sent_ids.len() as u32 - queued);
    counts["outcomes"] = json!(outcomes);
    let mut body = json!({
        "outcome": "progress",
        "batchId": batch_id,
        "action": batch.action,
        "state": state,
        "createdAt": batch.created_at,
        "requestId": batch.request_id,
        "counts": counts,
        "devices": devices,
    });
    let optional: Map<String, Value> = [
        ("reason", &batch.reason),
        ("ticket", &batch.ticket),
        ("requestedBy", &batch.requested_by),
        ("idempotencyKey", &batch.idempotency_key),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), json!(v))))
    .collect();
    if let Some(body) = body.as_object_mut() {
        body.extend(optional);
    }
    body["message"] = json!(format!(
        "{sent} of {} devices were sent; {queued} are still queued (waiting for the write budget, being retried, or in the dead-letter queue). Devices stopped by the bulk stop switch show \"bulkStopped\".",
        sent_ids.len()
    ));
    Ok(Answer::new(200, "progress", body, Some(batch_id.to_string()), None))
}
