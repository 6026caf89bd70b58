//! A new batch: the plan, the brake's checks, the batch record, then one
//! queued message per device. A repeat with the same `idempotencyKey`
//! answers the same batch (and queues what a failed first attempt left).

use super::plan::{self, Checks, Counts, Line, Verdict};
use super::request::{BulkRequest, Targets};
use super::settle::batch_key;
use super::store::{Batch, QUEUED, SENDING};
use super::{Answer, BulkApp};
use crate::action::Action;
use crate::error::{ErrorCode, ServiceError};
use crate::idempotency::hex_sha256;
use crate::origin::Caller;
use crate::retry::Deadline;
use crate::tracking::ActionRecord;
use crate::tracking::record::BATCH_ACTION;
use serde_json::{Value, json};
use std::time::Duration;

/// A batch still `sending` this long after it was created was left by an
/// invocation that failed; a repeat queues its messages again.
const SENDING_GIVEN_UP_AFTER: Duration = Duration::from_secs(60);

/// The tracker's first look at a batch, unless its last device comes first.
const FIRST_LOOK: Duration = Duration::from_secs(5 * 60);

pub(super) async fn submit(
    app: &BulkApp,
    request: &BulkRequest,
    caller: &Caller,
    request_id: &str,
    deadline: &Deadline,
) -> Result<Answer, ServiceError> {
    let fingerprint = fingerprint(request);
    let keyed_id = request
        .idempotency_key
        .as_deref()
        .map(|key| hex_sha256(&["bulk", request.action.event_action(), key])[..32].to_string());
    if !request.dry_run {
        if let Some(id) = &keyed_id
            && let Some(batch) = app.store.find(id).await.map_err(table_error)?
        {
            return replay(app, batch, &fingerprint).await;
        }
        app.brake_released().await?;
    }
    let checks = Checks {
        action: request.action,
        pending_window: app.pending_window,
        replace_pending: request.replace_pending,
        max_devices: app.settings.max_devices,
    };
    let lines = plan::plan(&app.graph, &request.targets, &checks, deadline).await?;
    let counts = plan::counts(&lines);
    let needs_count = counts.to_send > app.settings.expected_count_above;
    if request.dry_run {
        let mut body = plan_body("preview", None, request.action, &counts, &lines);
        body["expectedCountRequired"] = json!(needs_count);
        body["message"] = json!(format!(
            "Nothing was sent. {} of {} references would be sent{}.",
            counts.to_send,
            counts.references,
            if needs_count { format!("; send \"expectedCount\": {} with the request", counts.to_send) } else { String::new() }
        ));
        return Ok(Answer::new(200, "preview", body, None, Some(counts)));
    }
    if counts.to_send == 0 {
        let mut body = plan_body("nothingToSend", None, request.action, &counts, &lines);
        body["message"] = json!("None of the devices can take the action now; nothing was queued. See each device's result.");
        return Ok(Answer::new(200, "nothingToSend", body, None, Some(counts)));
    }
    check_expected_count(request.expected_count, counts.to_send, needs_count)?;
    let hour = crate::clock::hour_key();
    if !app.store.take_hourly(&hour, counts.to_send, app.settings.max_per_hour).await.map_err(table_error)? {
        let mut e = ServiceError::new(
            ErrorCode::BulkHourlyLimit,
            format!(
                "Queuing {} more devices would pass the limit of {} bulk devices per hour (BULK_MAX_DEVICES_PER_HOUR, across all batches); nothing was queued. Retry in the next hour or send fewer devices.",
                counts.to_send, app.settings.max_per_hour
            ),
        );
        e.retry_after = Some(crate::clock::until_next_hour());
        return Err(e);
    }
    let batch_id = keyed_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let batch = new_batch(&batch_id, request, caller, request_id, fingerprint, counts.to_send);
    if !app.store.create(&batch, &lines).await.map_err(table_error)? {
        // Another invocation with the same key created it first.
        let existing = app.store.find(&batch_id).await.map_err(table_error)?;
        if let Some(existing) = existing {
            return replay(app, existing, &batch.fingerprint).await;
        }
    }
    send(app, &batch, &lines).await?;
    let mut body = plan_body("queued", Some(&batch_id), request.action, &counts, &lines);
    body["message"] = json!(format!(
        "{} devices were queued; each is sent at the tenant's write budget. Follow the batch at GET /v1/bulk/{}/{batch_id}.",
        counts.to_send,
        request.action.function_name()
    ));
    Ok(Answer::new(202, "queued", body, Some(batch_id), Some(counts)))
}

/// One message per device to send, then the batch is `queued`. The
/// tracker's record comes first, so that the write function settling the
/// last device, however quickly, finds it to make it due.
async fn send(app: &BulkApp, batch: &Batch, lines: &[Line]) -> Result<(), ServiceError> {
    let action = batch.action();
    let bodies = lines
        .iter()
        .filter(|l| l.result == Verdict::Send)
        .filter_map(|l| l.device_id.as_deref())
        .map(|device_id| message(batch, action, device_id))
        .collect();
    track(app, batch).await;
    app.queues.send(action, bodies).await?;
    app.store.mark_queued(&batch.batch_id).await.map_err(table_error)
}

/// Leaves the batch to the tracker, which reports it (`Passcode Bulk
/// Action Completed`) once every device is settled, or when it expires.
/// The write function that settles the last device makes it due at once;
/// the first scheduled look is a safety net. A failure is logged: the
/// devices are queued, and progress can still be read.
async fn track(app: &BulkApp, batch: &Batch) {
    let Some(log) = &app.actions else {
        return;
    };
    let record = ActionRecord {
        device_id: batch_key(&batch.batch_id),
        device_name: None,
        action: BATCH_ACTION.to_string(),
        request_id: batch.request_id.clone(),
        graph_request_id: None,
        accepted_at_ms: batch.created_at_ms,
        ticket: batch.ticket.clone(),
        reason: batch.reason.clone(),
        idempotency_key: batch.idempotency_key.clone(),
        caller: Caller {
            kind: batch.caller_kind.clone(),
            principal: batch.caller_principal.clone(),
            user: batch.caller_user.clone(),
            requested_by: batch.requested_by.clone(),
            batch_id: Some(batch.batch_id.clone()),
            ..Caller::default()
        },
        tracking: Default::default(),
    };
    if let Err(e) = log.put(&record, FIRST_LOOK.as_millis() as i64).await {
        tracing::error!(batch_id = %batch.batch_id, "the batch could not be left to the tracker ({e}); no completion event will follow for it");
    }
}

/// The request for one device, as the write function reads it from the
/// queue: a single EventBridge-style request with the batch's id.
fn message(batch: &Batch, action: Action, device_id: &str) -> String {
    let mut body = json!({
        "action": action.event_action(),
        "device": {"id": device_id},
        "reason": batch.reason,
        "batchId": batch.batch_id,
        "idempotencyKey": format!("bulk.{}.{device_id}", batch.batch_id),
        "replacePending": batch.replace_pending,
    });
    for (name, value) in [("ticket", &batch.ticket), ("requestedBy", &batch.requested_by)] {
        if let Some(value) = value {
            body[name] = json!(value);
        }
    }
    body.to_string()
}

/// A batch that already exists for this key: the same request gets it
/// back, another request is refused.
async fn replay(app: &BulkApp, batch: Batch, fingerprint: &str) -> Result<Answer, ServiceError> {
    if batch.fingerprint != fingerprint {
        return Err(ServiceError::new(
            ErrorCode::IdempotencyKeyReused,
            format!(
                "The idempotencyKey was already used for another bulk request (batch {}); nothing was queued. Use a new key for a new request.",
                batch.batch_id
            ),
        ));
    }
    let lines = app.store.plan(&batch.batch_id).await.map_err(table_error)?;
    let stale = crate::clock::now_ms() - batch.created_at_ms > SENDING_GIVEN_UP_AFTER.as_millis() as i64;
    if batch.state == SENDING && stale {
        send(app, &batch, &lines).await?;
    }
    let action = batch.action();
    let counts = plan::counts(&lines);
    let mut body = plan_body(QUEUED, Some(&batch.batch_id), action, &counts, &lines);
    body["replayed"] = json!(true);
    body["message"] = json!(format!(
        "This batch was created by an earlier request with the same idempotencyKey ({}); nothing was queued again.",
        batch.request_id
    ));
    Ok(Answer::new(202, "replayed", body, Some(batch.batch_id), Some(counts)))
}

/// Above the threshold the caller must say how many devices it expects
/// to be sent; any count given must be right.
fn check_expected_count(expected: Option<u32>, to_send: u32, required: bool) -> Result<(), ServiceError> {
    match expected {
        Some(n) if n == to_send => Ok(()),
        None if !required => Ok(()),
        given => Err(ServiceError::new(
            ErrorCode::ExpectedCountMismatch,
            match given {
                Some(n) => format!("The request would send {to_send} devices, not the expectedCount of {n}; nothing was queued. Preview it with \"dryRun\": true and check the list."),
                None => format!("The request would send {to_send} devices: above this deployment's threshold, \"expectedCount\": {to_send} must be sent with it (preview with \"dryRun\": true first); nothing was queued."),
            },
        )),
    }
}

/// What the request asks for, to tell a repeat from another request
/// under the same key.
fn fingerprint(request: &BulkRequest) -> String {
    let mut fields = vec![request.action.event_action().to_string()];
    match &request.targets {
        Targets::Devices(refs) => fields.extend(refs.iter().map(|r| r.describe())),
        Targets::AllOfUser(upn) => fields.push(format!("all devices of {upn}")),
    }
    fields.push(request.replace_pending.to_string());
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    hex_sha256(&fields)
}

fn new_batch(
    batch_id: &str,
    request: &BulkRequest,
    caller: &Caller,
    request_id: &str,
    fingerprint: String,
    to_send: u32,
) -> Batch {
    Batch {
        batch_id: batch_id.to_string(),
        action: request.action.event_action().to_string(),
        state: SENDING.to_string(),
        created_at: crate::clock::format(crate::clock::now()),
        created_at_ms: crate::clock::now_ms(),
        request_id: request_id.to_string(),
        fingerprint,
        reason: request.reason.clone(),
        ticket: request.ticket.clone(),
        // Who is behind the batch, for every device's audit line: the
        // event's requestedBy, else the API caller's name.
        requested_by: caller
            .requested_by
            .clone()
            .or_else(|| caller.user.clone())
            .or_else(|| caller.principal.clone()),
        caller_kind: caller.kind.clone(),
        caller_principal: caller.principal.clone(),
        caller_user: caller.user.clone(),
        idempotency_key: request.idempotency_key.clone(),
        replace_pending: request.replace_pending,
        to_send: to_send as i64,
        settled_devices: Default::default(),
    }
}

/// The plan as callers read it.
pub(super) fn plan_body(outcome: &str, batch_id: Option<&str>, action: Action, counts: &Counts, lines: &[Line]) -> Value {
    json!({
        "outcome": outcome,
        "batchId": batch_id,
        "action": action.event_action(),
        "counts": counts,
        "devices": lines,
    })
}

pub(super) fn table_error(e: String) -> ServiceError {
    ServiceError::new(
        ErrorCode::IdempotencyUnavailable,
        format!("The batch table could not be read or written ({e}); nothing more was queued. Retry the request."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_count_above_the_threshold_only_and_always_exact() {
        assert!(check_expected_count(None, 5, false).is_ok());
        assert!(check_expected_count(Some(5), 5, true).is_ok());
        let e = check_expected_count(None, 50, true).unwrap_err();
        assert_eq!(e.code, ErrorCode::ExpectedCountMismatch);
        assert!(e.message.contains("\"expectedCount\": 50"), "{}", e.message);
        let e = check_expected_count(Some(4), 5, false).unwrap_err();
        assert!(e.message.contains("not the expectedCount of 4"), "{}", e.message);
    }

    #[test]
    fn the_same_request_has_the_same_fingerprint() {
        let request = |serial: &str| BulkRequest {
            action: Action::ResetPasscode,
            targets: Targets::Devices(vec![crate::request::DeviceRef::SerialNumber(serial.into())]),
            reason: Some("r".into()),
            ticket: None,
            requested_by: None,
            idempotency_key: Some("k".into()),
            dry_run: false,
            replace_pending: false,
            expected_count: None,
        };
        assert_eq!(fingerprint(&request("A")), fingerprint(&request("A")));
        assert_ne!(fingerprint(&request("A")), fingerprint(&request("B")));
    }
}
