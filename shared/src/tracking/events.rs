//! The result events the tracker puts on the project's bus.
//!
//! Delivery is at least once: the record is closed after the event was
//! accepted by EventBridge, so a tracker that dies between the two reports
//! the action again on a later run. Every event of one action carries the
//! same `trackingId`; consumers that must not act twice deduplicate on it.
//! No event carries a passcode: the verdict never holds one.

use super::record::ActionRecord;
use crate::bulk::settle::BatchCounts;
use super::verdict::Final;
use serde_json::{Value, json};

pub const COMPLETED: &str = "Passcode Action Completed";
pub const EXPIRED: &str = "Passcode Action Expired";
/// A bulk batch whose devices are all settled (or that expired first).
pub const BATCH_COMPLETED: &str = "Passcode Bulk Action Completed";

pub fn detail_type(outcome: &Final) -> &'static str {
    if outcome.is_expiry() { EXPIRED } else { COMPLETED }
}

/// The event's `detail`: everything a ticketing rule matches on.
pub fn detail(record: &ActionRecord, outcome: &Final, final_at: &str) -> Value {
    let mut detail = json!({
        "trackingId": record.tracking_id(),
        "action": record.action,
        "deviceId": record.device_id,
        "requestId": record.request_id,
        "acceptedAt": record.accepted_at(),
        "finalState": outcome.state,
        "finalAt": final_at,
        "hint": outcome.hint,
        "polls": record.tracking.polls + 1,
        "caller": record.caller,
    });
    let optional = [
        ("deviceName", &record.device_name),
        ("graphRequestId", &record.graph_request_id),
        ("ticket", &record.ticket),
        ("reason", &record.reason),
        ("requestedBy", &record.caller.requested_by),
        ("idempotencyKey", &record.idempotency_key),
        ("eventId", &record.caller.event_id),
        ("batchId", &record.caller.batch_id),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            detail[name] = json!(value);
        }
    }
    if let Some(code) = outcome.intune_error_code {
        detail["intuneErrorCode"] = json!(code);
    }
    detail
}

/// The `detail` of a batch's report: the counts per outcome and what the
/// batch's request said. `complete` is false when the batch expired with
/// devices not settled (still queued, or in the dead-letter queue).
pub fn batch_detail(record: &ActionRecord, counts: &BatchCounts, final_at: &str) -> Value {
    let batch_id = record.caller.batch_id.clone().unwrap_or_default();
    let mut detail = json!({
        "trackingId": record.tracking_id(),
        "batchId": batch_id,
        "action": counts.action,
        "requestId": record.request_id,
        "acceptedAt": record.accepted_at(),
        "finalAt": final_at,
        "complete": counts.complete(),
        "toSend": counts.to_send,
        "settled": counts.settled,
        "unsettled": (counts.to_send - counts.settled).max(0),
        "outcomes": counts.outcomes.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<String, Value>>(),
        "caller": record.caller,
    });
    for (name, value) in [
        ("ticket", &record.ticket),
        ("reason", &record.reason),
        ("requestedBy", &record.caller.requested_by),
        ("idempotencyKey", &record.idempotency_key),
    ] {
        if let Some(value) = value {
            detail[name] = json!(value);
        }
    }
    detail
}

#[cfg(feature = "tracker")]
pub struct EventPublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    source: String,
}

#[cfg(feature = "tracker")]
impl EventPublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String, source: String) -> EventPublisher {
        EventPublisher { client, bus, source }
    }

    /// An action's result event.
    pub async fn publish(
        &self,
        record: &ActionRecord,
        outcome: &Final,
        final_at: &str,
    ) -> Result<(), String> {
        let resource = format!("intune:managedDevice/{}", record.device_id);
        let detail = detail(record, outcome, final_at);
        self.put(detail_type(outcome), &detail, resource).await
    }

    /// A batch's report.
    pub async fn publish_batch(
        &self,
        record: &ActionRecord,
        counts: &BatchCounts,
        final_at: &str,
    ) -> Result<(), String> {
        let detail = batch_detail(record, counts, final_at);
        self.put(BATCH_COMPLETED, &detail, record.device_id.clone()).await
    }

    /// One PutEvents with one entry; an entry EventBridge refused is an error.
    async fn put(&self, detail_type: &str, detail: &Value, resource: String) -> Result<(), String> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&self.source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .resources(resource)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| crate::aws::error_text(&e))?;
        if out.failed_entry_count() > 0 {
            let code = out
                .entries()
                .first()
                .and_then(|e| e.error_code())
                .unwrap_or("unknown");
            return Err(format!("EventBridge refused the event ({code})"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::Caller;

    #[test]
    fn an_event_carries_what_a_ticket_rule_matches_on_and_no_passcode() {
        let record = ActionRecord {
            device_id: "d-1".into(),
            action: "resetPasscode".into(),
            request_id: "req-1".into(),
            accepted_at_ms: 1_795_000_000_000,
            ticket: Some("INC0012345".into()),
            caller: Caller {
                kind: "eventBridge".into(),
                requested_by: Some("agent@contoso.com".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let failed = Final {
            state: "failed",
            intune_error_code: Some(-2016345060),
            hint: "assign a passcode policy".into(),
        };
        let d = detail(&record, &failed, "2026-11-18T12:00:00.000Z");
        assert_eq!(d["ticket"], "INC0012345");
        assert_eq!(d["requestedBy"], "agent@contoso.com");
        assert_eq!(d["finalState"], "failed");
        assert_eq!(d["intuneErrorCode"], -2016345060);
        assert_eq!(d["trackingId"], record.tracking_id());
        assert!(d.get("passcode").is_none());
        assert_eq!(detail_type(&failed), COMPLETED);
        let expired = crate::tracking::verdict::expired(std::time::Duration::from_secs(3600));
        assert_eq!(detail_type(&expired), EXPIRED);
    }
}
