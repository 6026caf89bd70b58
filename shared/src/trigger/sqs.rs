//! Messages from an SQS queue, delivered by Lambda's event source mapping
//! in batches: each message body is one request shaped like an EventBridge
//! `detail` (`action`, `device`, `reason`, `ticket`, `requestedBy`, ...).
//!
//! A message the bulk function queued also names its batch (`batchId`):
//! it goes into the caller, so the audit line and the action log name the
//! batch, and the write function settles the device in it.
//!
//! Lambda's duplicate deliveries and redeliveries of a message keep its
//! `messageId`, which is why it stands in for the EventBridge event id as
//! the idempotency key when the body has no `idempotencyKey`.

use super::{Incoming, RequestReader};
use crate::action::Action;
use crate::error::ServiceError;
use crate::origin::{Caller, Source};
use crate::request::clip;
use serde_json::Value;

/// One message of the batch, read.
#[derive(Debug)]
pub struct QueuedRequest {
    /// What the batch response names a failed message by.
    pub message_id: String,
    pub incoming: Incoming,
}

/// The batch's requests, or `None` when the event is not an SQS batch.
pub fn messages(action: Action, event: &Value) -> Option<Vec<QueuedRequest>> {
    let records = event.get("Records")?.as_array()?;
    let from_sqs = |r: &Value| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
    if records.is_empty() || !records.iter().all(from_sqs) {
        return None;
    }
    Some(records.iter().map(|r| read(action, r)).collect())
}

fn read(action: Action, record: &Value) -> QueuedRequest {
    let text = |name: &str| record.get(name).and_then(Value::as_str);
    let message_id = text("messageId").unwrap_or_default().to_string();
    let mut caller = Caller::queue(
        text("eventSourceARN").unwrap_or_default().to_string(),
        Some(message_id.clone()).filter(|id| !id.is_empty()),
    );
    let request = match text("body").map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(mut body))) => match take_batch_id(&mut body) {
            Ok(batch_id) => {
                caller.batch_id = batch_id;
                action.read_detail(&body)
            }
            Err(e) => Err(e),
        },
        Some(Ok(_)) => Err(ServiceError::invalid(
            "the message body must be a JSON object: the request, with \"action\"",
        )),
        _ => Err(ServiceError::invalid(
            "the message body is not JSON: send the request as a JSON object, with \"action\"",
        )),
    };
    let mut incoming = Incoming {
        source: Source::Sqs,
        caller,
        request,
    };
    incoming.finish::<Action>();
    QueuedRequest {
        message_id,
        incoming,
    }
}

/// Longest batch id: the bulk function's are 32 hexadecimal characters.
const MAX_BATCH_ID_CHARS: usize = 64;

/// `batchId` taken out of the body (the request itself has no such field).
fn take_batch_id(body: &mut serde_json::Map<String, Value>) -> Result<Option<String>, ServiceError> {
    match body.remove("batchId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_batch_id(&id) => Ok(Some(id)),
        Some(other) => Err(ServiceError::invalid(format!(
            "\"batchId\" must be a batch id (letters, digits and -, at most {MAX_BATCH_ID_CHARS}), got {}",
            clip(&other.to_string())
        ))),
    }
}

pub(crate) fn is_batch_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_BATCH_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: &str, body: &str) -> Value {
        json!({"messageId": id, "receiptHandle": "h", "body": body, "attributes": {},
               "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
               "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:bulk-reset", "awsRegion": "eu-west-1"})
    }

    #[test]
    fn each_message_is_one_request_keyed_by_its_message_id() {
        let good = json!({"action": "resetPasscode", "device": {"id": "11111111-0000-4000-8000-000000000001"},
                          "reason": "bulk", "requestedBy": "incident-42"})
        .to_string();
        let event = json!({"Records": [record("m1", &good), record("m2", "not json"), record("m3", "[1]")]});
        let batch = messages(Action::ResetPasscode, &event).unwrap();
        assert_eq!(batch.len(), 3);
        let first = &batch[0].incoming;
        assert_eq!((first.source, first.caller.kind.as_str()), (Source::Sqs, "sqs"));
        assert_eq!(first.caller.event_id.as_deref(), Some("m1"));
        assert_eq!(first.caller.requested_by.as_deref(), Some("incident-42"));
        assert!(first.request.is_ok());
        assert!(batch[1].incoming.request.is_err() && batch[2].incoming.request.is_err());
        assert_eq!(batch[2].message_id, "m3");
        assert_eq!(first.caller.batch_id, None);
    }

    #[test]
    fn a_bulk_message_names_its_batch() {
        let body = |batch: Value| {
            json!({"action": "resetPasscode", "device": {"id": "11111111-0000-4000-8000-000000000001"},
                   "reason": "bulk", "batchId": batch})
            .to_string()
        };
        let event = json!({"Records": [record("m1", &body(json!("0f3a9c"))), record("m2", &body(json!("a b"))),
                                       record("m3", &body(json!(7)))]});
        let batch = messages(Action::ResetPasscode, &event).unwrap();
        let first = &batch[0].incoming;
        assert!(first.request.is_ok());
        assert_eq!(first.caller.batch_id.as_deref(), Some("0f3a9c"));
        for bad in &batch[1..] {
            let err = bad.incoming.request.as_ref().unwrap_err();
            assert!(err.message.contains("\"batchId\" must be a batch id"), "{}", err.message);
        }
    }

    #[test]
    fn other_events_are_not_batches() {
        assert!(messages(Action::ResetPasscode, &json!({"Records": []})).is_none());
        let s3 = json!({"Records": [{"eventSource": "aws:s3"}]});
        assert!(messages(Action::ResetPasscode, &s3).is_none());
        assert!(messages(Action::ResetPasscode, &json!({"detail": {}})).is_none());
    }
}
