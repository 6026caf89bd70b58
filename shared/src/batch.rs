//! A batch of queued requests (SQS, through Lambda's event source mapping):
//! each message goes through exactly the path of a single request, one
//! after the other, with its own audit line and idempotency key.
//!
//! The answer names the messages to deliver again (`batchItemFailures`,
//! the mapping's `ReportBatchItemFailures`): those that failed in a way a
//! retry can fix (throttled, Graph or a table unavailable, in progress
//! elsewhere) and those the deadline left no time for. A request that can
//! never succeed (invalid, no such device, unsupported platform) or that
//! the brake stopped is consumed: its audit line says why.
//!
//! A message the bulk function queued names its batch: how its request
//! ended is settled in the batch once (see `bulk::settle`). A settlement
//! that cannot be written sends the message round again; its repeat is
//! answered from the idempotency record and settled then.

use crate::error::ServiceError;
use crate::handler::{App, serve};
use crate::metrics;
use crate::retry::Deadline;
use crate::bulk::settle::{Settled, Settlement, batch_key};
use crate::outcome::Outcome;
use crate::request::{DeviceRef, PasscodeRequest};
use crate::trigger::{Incoming, QueuedRequest};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A message is not started with less time than this left: one write
/// (lookup, claim, POST with a retry) fits in it.
const TIME_PER_MESSAGE: Duration = Duration::from_secs(5);

pub async fn handle(
    app: &App,
    messages: Vec<QueuedRequest>,
    request_id: &str,
    deadline: Deadline,
) -> Value {
    let mut failures = Vec::new();
    for QueuedRequest {
        message_id,
        incoming,
    } in messages
    {
        if deadline.remaining() < TIME_PER_MESSAGE {
            failures.push(message_id);
            continue;
        }
        let gate = braked(app).await;
        // Each message is its own request: its own id in the audit and
        // the idempotency record, its own Graph counts.
        let id = format!("{request_id}/{message_id}");
        let serving = serve(app, &incoming, &id, deadline, Instant::now(), gate);
        let result = metrics::counting(serving).await;
        let settled = match &result {
            Err(e) if e.transient => false,
            ended => settle(app, &incoming, &id, ended).await,
        };
        if !settled {
            failures.push(message_id);
        }
    }
    if !failures.is_empty() {
        tracing::info!(
            failed = failures.len(),
            "messages left for the queue to deliver again"
        );
    }
    json!({
        "batchItemFailures": failures
            .into_iter()
            .map(|id| json!({"itemIdentifier": id}))
            .collect::<Vec<_>>()
    })
}

/// Records a bulk device's end in its batch; `false` when that could not
/// be written (the message comes back). Requests of no batch have nothing
/// to settle.
async fn settle(app: &App, incoming: &Incoming, request_id: &str, result: &Result<Outcome, ServiceError>) -> bool {
    let (Some(batch_id), Some(store)) = (&incoming.caller.batch_id, &app.batches) else {
        return true;
    };
    let Ok(PasscodeRequest {
        device: DeviceRef::Id(device_id),
        ..
    }) = &incoming.request
    else {
        // The bulk function names every device by id; anything else in a
        // batch's message was not written by it.
        return true;
    };
    let outcome = match result {
        Ok(Outcome::Replayed { original, .. }) => original.name(),
        Ok(outcome) => outcome.name(),
        Err(e) => e.code.as_str(),
    };
    let settlement = Settlement {
        device_id: device_id.clone(),
        outcome: outcome.to_string(),
        request_id: request_id.to_string(),
        settled_at: crate::clock::format(crate::clock::now()),
    };
    match store.settle(batch_id, &settlement).await {
        Ok(Settled::Last {
            created_at_ms,
            request_id,
        }) => {
            tracing::info!(batch_id = %batch_id, "the batch's last device is settled");
            report_soon(app, batch_id, created_at_ms, &request_id).await;
            true
        }
        Ok(Settled::Now | Settled::Before) => true,
        Err(e) => {
            tracing::warn!(batch_id = %batch_id, "the device's end could not be recorded in its batch ({e}); the message comes back");
            false
        }
    }
}

/// The tracker reports a finished batch on its next run instead of at its
/// record's next scheduled look. Best effort: without it the report comes
/// later, not never.
async fn report_soon(app: &App, batch_id: &str, created_at_ms: i64, request_id: &str) {
    let Some(log) = &app.actions else {
        return;
    };
    let key = crate::tracking::action_key(created_at_ms, request_id);
    if let Err(e) = log
        .due_now(&batch_key(batch_id), &key, crate::clock::now_ms())
        .await
    {
        tracing::warn!(batch_id = %batch_id, "the finished batch could not be brought forward for the tracker ({e}); it is reported at its next scheduled look");
    }
}

/// The stop switch, for writes only.
async fn braked(app: &App) -> Result<(), ServiceError> {
    let Some(stop) = app.stop.as_ref().filter(|_| app.action.writes()) else {
        return Ok(());
    };
    stop.released(
        "Queued writes are stopped (the bulk stop switch is on); nothing was sent for this device. Turn the switch off and send the request again.",
        "The bulk stop switch could not be read, so nothing was sent; the message is delivered again.",
    )
    .await
}
