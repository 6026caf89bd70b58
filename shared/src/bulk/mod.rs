//! Many devices in one request (`bulk-passcode`):
//!
//! ```text
//! request ─ plan (lookup, eligibility, pending: per reference) ─ brake ─ batch record ─ one SQS message per device
//!                                                                                        └─ reset-passcode / remove-passcode, one device each
//! ```
//!
//! Nothing about safety is new here: the plan runs the single request's
//! checks, to answer a preview and to leave out devices that cannot take
//! the action, and each queued device goes through the write function's
//! single-device path again (lookup, eligibility, idempotency, pending
//! check, write budget). The brake: a cap per request
//! (`BULK_MAX_DEVICES`), a cap per hour across batches
//! (`BULK_MAX_DEVICES_PER_HOUR`), `expectedCount` above a threshold
//! (`BULK_EXPECTED_COUNT_ABOVE`), and the stop switch (`stop`), which
//! refuses new batches here and stops queued devices in the write
//! functions. Each device's end is settled in the batch by the write
//! function (see [`store`]), which is what the progress call reads.
//!
//! Only [`settle`] is built without the `bulk` feature: the write
//! functions settle devices with it.

pub(crate) mod settle;
#[cfg(feature = "bulk")]
pub(crate) mod store;

#[cfg(feature = "bulk")]
mod plan;
#[cfg(feature = "bulk")]
mod pool;
#[cfg(feature = "bulk")]
mod progress;
#[cfg(feature = "bulk")]
mod queue;
#[cfg(feature = "bulk")]
mod request;
#[cfg(feature = "bulk")]
mod settings;
#[cfg(feature = "bulk")]
mod submit;

#[cfg(feature = "bulk")]
pub use app::{BulkApp, handle};
#[cfg(feature = "bulk")]
pub use queue::BulkQueues;
#[cfg(feature = "bulk")]
pub use settings::BulkSettings;
#[cfg(all(feature = "bulk", test, not(feature = "fuzzing")))]
pub(crate) use request::{BulkCall, BulkReader};
// The fuzz target `bulk_request` (tests/fuzz) reads bulk events the way
// [`handle`] does; normal builds keep all of this private.
#[cfg(all(feature = "bulk", feature = "fuzzing"))]
pub use request::{
    BulkCall, BulkReader, BulkRequest, MAX_BULK_BODY_BYTES, SUBMIT_FIELDS, Targets,
};

/// What [`handle`] reads from an event, for a given `BULK_MAX_DEVICES`.
#[cfg(all(feature = "bulk", feature = "fuzzing"))]
pub fn read_event(
    max_devices: usize,
    event: &serde_json::Value,
) -> crate::trigger::Parsed<BulkCall> {
    crate::trigger::read(&BulkReader { max_devices }, event)
}

#[cfg(feature = "bulk")]
mod app {
    use super::plan::Counts;
    use super::queue::BulkQueues;
    use super::request::{BulkCall, BulkReader};
    use super::settings::BulkSettings;
    use super::store::BatchStore;
    use crate::action::BULK_FUNCTION;
    use crate::error::ServiceError;
    use crate::graph::Graph;
    use crate::origin::Caller;
    use crate::retry::Deadline;
    use crate::rights::RequiredRight;
    use crate::stop::StopSwitch;
    use crate::trigger;
    use lambda_runtime::{Diagnostic, LambdaEvent};
    use serde::Serialize;
    use serde_json::Value;
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// Everything an execution environment builds once.
    pub struct BulkApp {
        pub graph: Graph,
        pub store: BatchStore,
        pub queues: BulkQueues,
        pub stop: StopSwitch,
        pub settings: BulkSettings,
        pub right: RequiredRight,
        /// The write functions' pending window, for the plan's check.
        pub pending_window: Duration,
        /// Where a queued batch is left for the tracker; `None` without
        /// `ACTIONS_TABLE` (then no completion event).
        pub actions: Option<crate::tracking::ActionLog>,
    }

    /// What a bulk call answers, and what its audit line records.
    pub(crate) struct Answer {
        pub status: u16,
        pub outcome: &'static str,
        pub body: serde_json::Value,
        pub batch_id: Option<String>,
        pub counts: Option<Counts>,
    }

    impl Answer {
        pub(crate) fn new(
            status: u16,
            outcome: &'static str,
            body: serde_json::Value,
            batch_id: Option<String>,
            counts: Option<Counts>,
        ) -> Answer {
            Answer {
                status,
                outcome,
                body,
                batch_id,
                counts,
            }
        }
    }

    impl BulkApp {
        /// New batches wait while the stop switch is on.
        pub(crate) async fn brake_released(&self) -> Result<(), ServiceError> {
            self.stop
                .released(
                    "Bulk sending is stopped (the bulk stop switch is on); nothing was queued. Turn the switch off and send the request again.",
                    "The bulk stop switch could not be read, so nothing was queued; retry the request.",
                )
                .await
        }
    }

    pub async fn handle(app: &BulkApp, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
        let started = Instant::now();
        let (payload, context) = event.into_parts();
        let deadline = Deadline::from_epoch_ms(context.deadline);
        let reader = BulkReader {
            max_devices: app.settings.max_devices,
        };
        let parsed = trigger::read(&reader, &payload);
        drop(payload);
        // Rights first: a caller without them learns nothing.
        let authorized = match &parsed.caller.grants {
            Some(grants) => app.right.check_for(BULK_FUNCTION, grants),
            None => Ok(()),
        };
        let result = match (authorized, &parsed.request) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(e.clone()),
            (Ok(()), Ok(BulkCall::Submit(request))) => {
                super::submit::submit(app, request, &parsed.caller, &context.request_id, &deadline).await
            }
            (Ok(()), Ok(BulkCall::Progress { action, batch_id })) => {
                super::progress::progress(&app.store, *action, batch_id).await
            }
        };
        audit(&parsed, &context.request_id, &result, started.elapsed());
        let action = parsed
            .request
            .as_ref()
            .map_or("bulk", |call| call.action().event_action());
        let answer = result.as_ref().map(|a| {
            let body = if parsed.source.is_api() {
                a.body.clone()
            } else {
                compact(a.body.clone())
            };
            (a.status, body)
        });
        crate::response::render_answer(parsed.source, action, &context.request_id, answer)
    }

    /// Most device lines in an EventBridge or direct answer.
    const EVENT_ANSWER_LINES: usize = 100;

    /// An EventBridge or direct answer travels on: to the function's
    /// destination (an event of at most 256 KB) or into a Step Functions
    /// state (the same limit). A long device list keeps only the devices
    /// that need a look (not sent, or not accepted), at most
    /// [`EVENT_ANSWER_LINES`]; the progress route has them all.
    fn compact(mut body: Value) -> Value {
        let Some(lines) = body.get_mut("devices").and_then(Value::as_array_mut) else {
            return body;
        };
        if lines.len() <= EVENT_ANSWER_LINES {
            return body;
        }
        let total = lines.len();
        let fine = |l: &Value| {
            l["result"] == "send" && (l.get("state").is_none() || l["state"] == "accepted")
        };
        lines.retain(|l| !fine(l));
        lines.truncate(EVENT_ANSWER_LINES);
        let kept = lines.len();
        body["devicesOmitted"] = Value::from(total - kept);
        body
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde_json::json;

        #[test]
        fn long_event_answers_keep_the_devices_that_need_a_look() {
            let mut lines: Vec<Value> = (0..300).map(|i| json!({"result": "send", "deviceId": i})).collect();
            lines[7] = json!({"result": "refused", "code": "unsupportedPlatform"});
            lines[9] = json!({"result": "send", "state": "bulkStopped"});
            let body = compact(json!({"outcome": "queued", "devices": lines}));
            assert_eq!(body["devices"].as_array().unwrap().len(), 2);
            assert_eq!(body["devicesOmitted"], 298);
            let short = compact(json!({"devices": [{"result": "send"}]}));
            assert!(short.get("devicesOmitted").is_none());
        }
    }

    /// One audit line per bulk call; each device's queued request has its
    /// own line, with the batch id, in the write function's log.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct BulkAudit<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        time: String,
        request_id: &'a str,
        function: &'static str,
        action: Option<&'static str>,
        source: &'static str,
        caller: &'a Caller,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ticket: Option<&'a str>,
        dry_run: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        batch_id: Option<&'a str>,
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_message: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        counts: Option<Counts>,
        duration_ms: u64,
    }

    fn audit(
        parsed: &trigger::Parsed<BulkCall>,
        request_id: &str,
        result: &Result<Answer, ServiceError>,
        duration: Duration,
    ) {
        let submit = match &parsed.request {
            Ok(BulkCall::Submit(request)) => Some(request),
            _ => None,
        };
        let progress_id = match &parsed.request {
            Ok(BulkCall::Progress { batch_id, .. }) => Some(batch_id.as_str()),
            _ => None,
        };
        let answer = result.as_ref().ok();
        let error = result.as_ref().err();
        let line = BulkAudit {
            kind: "bulkAudit",
            time: crate::clock::format(crate::clock::now()),
            request_id,
            function: BULK_FUNCTION,
            action: parsed.request.as_ref().ok().map(|c| c.action().event_action()),
            source: parsed.source.as_str(),
            caller: &parsed.caller,
            reason: submit.and_then(|r| r.reason.as_deref()),
            ticket: submit.and_then(|r| r.ticket.as_deref()),
            dry_run: submit.is_some_and(|r| r.dry_run),
            idempotency_key: submit.and_then(|r| r.idempotency_key.as_deref()),
            batch_id: answer.and_then(|a| a.batch_id.as_deref()).or(progress_id),
            outcome: answer.map_or("rejected", |a| a.outcome),
            error_code: error.map(|e| e.code.as_str()),
            error_message: error.map(|e| e.message.as_str()),
            counts: answer.and_then(|a| a.counts),
            duration_ms: duration.as_millis() as u64,
        };
        if let Ok(mut text) = serde_json::to_vec(&line) {
            text.push(b'\n');
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&text);
            let _ = out.flush();
        }
        if let Some(e) = error {
            tracing::info!(code = e.code.as_str(), transient = e.transient, "bulk request ended with an error: {}", e.message);
        }
    }
}

#[cfg(feature = "bulk")]
pub(crate) use app::Answer;
