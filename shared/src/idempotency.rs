//! One idempotency record per logical request, shared by every execution
//! environment through DynamoDB.
//!
//! The duplicate check in `handler` reads `deviceActionResults`, then POSTs.
//! That is not atomic: two environments handling the same request at the
//! same moment both see nothing pending and both send, and the user gets two
//! temporary passcodes. A conditional put on one item per request closes the
//! gap (the pattern of AWS Lambda Powertools' idempotency utility):
//!
//! 1. Before any Graph call, the invocation puts `{status: INPROGRESS}` under
//!    the request's key, on condition that no live item has that key.
//! 2. The invocation that wins runs the request, then stores its outcome
//!    (`COMPLETED`), or deletes the item when nothing was sent so that a
//!    retry can run again.
//! 3. Every other invocation with the key gets the stored outcome (a replay)
//!    or, while the winner still runs, `requestInProgress` (409, retryable).
//!
//! The key is the caller's `idempotencyKey`, else the EventBridge event id
//! (the same on EventBridge's duplicate deliveries and Lambda's retries),
//! else a hash of action, device, caller and a time window
//! (`IDEMPOTENCY_WINDOW_SECONDS`): a helpdesk double-submit lands in the
//! same window unless it straddles a window boundary, and the device lease
//! (`device_lease`) and the `deviceActionResults` check still catch that
//! case.
//!
//! An `INPROGRESS` item stops counting at the deadline of the invocation
//! that wrote it, so a Lambda that died mid-request does not block retries
//! for longer than the function timeout. When the POST's outcome is unknown
//! (connection lost after sending), the item is left to expire that way
//! rather than deleted: an immediate retry then gets `requestInProgress`
//! instead of racing Intune's `deviceActionResults`, which may not show the
//! action yet. Finished items answer repeats for `IDEMPOTENCY_TTL_SECONDS`;
//! DynamoDB's TTL deletes them later, so reads ignore expired items.
//!
//! Without `IDEMPOTENCY_TABLE` the functions rely on the
//! `deviceActionResults` check alone, which is not atomic (README,
//! "Duplicates and retries").

use crate::action::Action;
use crate::error::{ErrorCode, ServiceError};
use crate::outcome::Outcome;
use crate::request::PasscodeRequest;
use crate::retry::Deadline;
use crate::origin::Caller;
use crate::aws::error_text;
use crate::dynamo::{n, s};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;
use time::OffsetDateTime;

/// Item attributes. `expiration` is the table's TTL attribute.
const ID: &str = "id";
const STATUS: &str = "status";
const EXPIRATION: &str = "expiration";
const IN_PROGRESS_UNTIL: &str = "inProgressUntilMs";
const FINGERPRINT: &str = "fingerprint";
const REQUEST_ID: &str = "requestId";
const OUTCOME: &str = "outcome";

const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// Where a request's key came from; decides how messages describe a clash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    IdempotencyKey,
    EventId,
    Derived,
}

/// The key of one logical request and a fingerprint of what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub id: String,
    /// Hash of action and device: a reused `idempotencyKey` whose
    /// fingerprint differs names another request and is refused.
    pub fingerprint: String,
    pub origin: KeyOrigin,
}

impl RequestKey {
    /// The key for a request (pure; `now_unix` and `window` only matter for
    /// derived keys).
    pub fn for_request(
        action: Action,
        request: &PasscodeRequest,
        caller: &Caller,
        now_unix: i64,
        window: Duration,
    ) -> RequestKey {
        let device = request.device.describe();
        let fingerprint = hex_sha256(&[action.event_action(), &device]);
        let scope = action.event_action();
        let (id, origin) = if let Some(key) = &request.idempotency_key {
            (format!("{scope}#key#{key}"), KeyOrigin::IdempotencyKey)
        } else if let Some(event_id) = &caller.event_id {
            (format!("{scope}#event#{event_id}"), KeyOrigin::EventId)
        } else {
            let window = window.as_secs().max(1) as i64;
            let bucket = now_unix.div_euclid(window).to_string();
            let field = |v: &Option<String>| v.clone().unwrap_or_default();
            let mut fields = vec![
                scope.to_string(),
                device.clone(),
                caller.kind.clone(),
                field(&caller.principal),
                field(&caller.user),
                field(&caller.requested_by),
                bucket,
            ];
            // A request that replaces a pending action is another request
            // than the one that started it, even from the same caller in the
            // same window: otherwise it would only get the first answer back.
            if request.replace_pending {
                fields.push("replacePending".to_string());
            }
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let hash = hex_sha256(&fields);
            (format!("{scope}#auto#{hash}"), KeyOrigin::Derived)
        };
        RequestKey {
            id,
            fingerprint,
            origin,
        }
    }

    fn describe(&self) -> &'static str {
        match self.origin {
            KeyOrigin::IdempotencyKey => "A request with the same idempotencyKey",
            KeyOrigin::EventId => "The same EventBridge event",
            KeyOrigin::Derived => "The same request (same device, same caller)",
        }
    }
}

/// Fields separated by a byte that cannot occur in them, so that
/// ("ab","c") and ("a","bc") hash differently.
pub(crate) fn hex_sha256(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update(field.as_bytes());
        hasher.update([0u8]);
    }
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// What the conditional put found.
#[derive(Debug)]
pub enum Claim {
    /// This invocation owns the request: run it, then `complete` or `release`.
    Owned,
    /// The request already ran: its outcome, and the request id that ran it.
    Completed {
        outcome: Box<Outcome>,
        request_id: String,
    },
    /// Another invocation is running it; it stops counting after `retry_after`.
    InProgress { retry_after: Duration },
}

pub struct IdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    ttl: Duration,
    window: Duration,
}

impl IdempotencyStore {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: String,
        ttl: Duration,
        window: Duration,
    ) -> IdempotencyStore {
        IdempotencyStore {
            client,
            table,
            ttl,
            window,
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Claims `key` for the invocation `request_id`, which must finish by
    /// `deadline` (the same deadline its Graph calls work to). One DynamoDB call.
    pub async fn claim(
        &self,
        key: &RequestKey,
        request_id: &str,
        deadline: &Deadline,
    ) -> Result<Claim, ServiceError> {
        let now = OffsetDateTime::now_utc();
        let now_s = now.unix_timestamp();
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let expiration = now_s + self.ttl.as_secs() as i64;
        // A deadline already passed still blocks for a moment.
        let remaining_ms = deadline.remaining().as_millis().max(1000) as i64;
        let in_progress_until = now_ms + remaining_ms;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ID, s(&key.id))
            .item(STATUS, s(IN_PROGRESS))
            .item(EXPIRATION, n(expiration))
            .item(IN_PROGRESS_UNTIL, n(in_progress_until))
            .item(FINGERPRINT, s(&key.fingerprint))
            .item(REQUEST_ID, s(request_id))
            .condition_expression(
                "attribute_not_exists(#id) OR #exp < :now OR (#status = :inProgress AND #until < :nowMs)",
            )
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#exp", EXPIRATION)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#until", IN_PROGRESS_UNTIL)
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_values(":nowMs", n(now_ms))
            .expression_attribute_values(":inProgress", s(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let existing = match put {
            Ok(_) => return Ok(Claim::Owned),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                match e.into_err() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        c.item.unwrap_or_default()
                    }
                    _ => HashMap::new(),
                }
            }
            Err(e) => return Err(table_unavailable(&self.table, "PutItem", &e)),
        };
        existing_claim(key, &existing, now_ms)
    }

    /// Stores the outcome of the request this invocation owns. A failure
    /// only costs protection (the item expires at the deadline, then the
    /// `deviceActionResults` check stands alone), so it is logged, not raised.
    pub async fn complete(&self, key: &RequestKey, request_id: &str, outcome: &Outcome) {
        let Ok(json) = serde_json::to_string(outcome) else {
            return;
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ID, s(&key.id))
            .update_expression("SET #status = :completed, #outcome = :outcome")
            .condition_expression("#requestId = :me")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#outcome", OUTCOME)
            .expression_attribute_names("#requestId", REQUEST_ID)
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":outcome", s(&json))
            .expression_attribute_values(":me", s(request_id))
            .send()
            .await;
        let then = "repeats of this request fall back to the deviceActionResults check";
        warn_on_failure(result, key, "could not store the outcome", then);
    }

    /// Gives the request up after it ended without sending anything, so a
    /// retry can run it. Only this invocation's own claim is deleted.
    pub async fn release(&self, key: &RequestKey, request_id: &str) {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(ID, s(&key.id))
            .condition_expression("#requestId = :me")
            .expression_attribute_names("#requestId", REQUEST_ID)
            .expression_attribute_values(":me", s(request_id))
            .send()
            .await;
        let then = "retries wait until it expires";
        warn_on_failure(result, key, "could not release the record", then);
    }

}

/// The error for a write to the idempotency table (a request record or a
/// device lease) that failed before anything was sent.
pub(crate) fn table_unavailable<E: ProvideErrorMetadata, R>(
    table: &str,
    call: &str,
    e: &SdkError<E, R>,
) -> ServiceError {
    let detail = error_text(e);
    tracing::warn!(table = %table, "DynamoDB {call} failed: {detail}");
    let code = match e {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    };
    match code {
        Some("ResourceNotFoundException") => ServiceError::config(format!(
            "The idempotency table {:?} does not exist in this region. Deploy it (template.yaml) or unset IDEMPOTENCY_TABLE. Nothing was sent.",
            table
        )),
        Some("AccessDeniedException") => ServiceError::config(format!(
            "The function's role may not write to the idempotency table {:?} (needs dynamodb:PutItem, UpdateItem, DeleteItem). Nothing was sent.",
            table
        )),
        _ => ServiceError::new(
            ErrorCode::IdempotencyUnavailable,
            format!(
                "The idempotency table could not be reached ({detail}), so the request was not run. Nothing was sent; retry the request."
            ),
        ),
    }
}

/// Logs a record write whose failure only costs protection: the request
/// itself has already been decided, so nothing is raised.
fn warn_on_failure<T, E: ProvideErrorMetadata, R>(
    result: Result<T, SdkError<E, R>>,
    key: &RequestKey,
    what: &str,
    then: &str,
) {
    if let Err(e) = result {
        tracing::warn!(key = %key.id, "idempotency table: {what} ({}); {then}", error_text(&e));
    }
}

/// Reads the item that made the conditional put fail.
fn existing_claim(
    key: &RequestKey,
    item: &HashMap<String, AttributeValue>,
    now_ms: i64,
) -> Result<Claim, ServiceError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    if text(FINGERPRINT).is_some_and(|f| f != key.fingerprint) {
        return Err(ServiceError::new(
            ErrorCode::IdempotencyKeyReused,
            "This idempotencyKey was already used for a request on another device within the last hours. Use a new idempotencyKey for each new request.",
        ));
    }
    if text(STATUS).as_deref() == Some(COMPLETED)
        && let Some(outcome) =
            text(OUTCOME).and_then(|json| serde_json::from_str::<Outcome>(&json).ok())
    {
        return Ok(Claim::Completed {
            outcome: Box::new(outcome),
            request_id: text(REQUEST_ID).unwrap_or_default(),
        });
    }
    // In progress, or a record that cannot be read (treated the same:
    // it expires, and guessing could send a second passcode).
    let until = item
        .get(IN_PROGRESS_UNTIL)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(now_ms + 1000);
    let wait_ms = (until - now_ms).clamp(1000, 15 * 60 * 1000) as u64;
    Ok(Claim::InProgress {
        retry_after: Duration::from_millis(wait_ms.div_ceil(1000) * 1000),
    })
}

/// The error for a key another invocation holds.
pub fn in_progress_error(key: &RequestKey, retry_after: Duration) -> ServiceError {
    let mut e = ServiceError::new(
        ErrorCode::RequestInProgress,
        format!(
            "{} is being handled right now. Nothing was sent again; retry in {} seconds to get its result.",
            key.describe(),
            retry_after.as_secs()
        ),
    );
    e.retry_after = Some(retry_after);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::DeviceRef;

    fn request(serial: &str, key: Option<&str>) -> PasscodeRequest {
        PasscodeRequest {
            device: DeviceRef::SerialNumber(serial.into()),
            reason: Some("locked out".into()),
            ticket: None,
            requested_by: None,
            dry_run: false,
            replace_pending: false,
            idempotency_key: key.map(str::to_string),
        }
    }

    fn iam(arn: &str) -> Caller {
        Caller {
            kind: "iam".into(),
            principal: Some(arn.into()),
            ..Default::default()
        }
    }

    const WINDOW: Duration = Duration::from_secs(300);

    #[test]
    fn an_explicit_key_wins_then_the_event_id_then_a_derived_hash() {
        let mut caller = iam("arn:aws:iam::1:user/a");
        let key = RequestKey::for_request(
            Action::ResetPasscode,
            &request("SN1", Some("INC1:reset")),
            &caller,
            0,
            WINDOW,
        );
        assert_eq!(key.id, "resetPasscode#key#INC1:reset");
        assert_eq!(key.origin, KeyOrigin::IdempotencyKey);

        caller.event_id = Some("ev-1".into());
        let key = RequestKey::for_request(
            Action::RemovePasscode,
            &request("SN1", None),
            &caller,
            0,
            WINDOW,
        );
        assert_eq!(key.id, "removePasscode#event#ev-1");

        caller.event_id = None;
        let key = RequestKey::for_request(
            Action::ResetPasscode,
            &request("SN1", None),
            &caller,
            0,
            WINDOW,
        );
        assert!(key.id.starts_with("resetPasscode#auto#"), "{}", key.id);
        assert_eq!(key.origin, KeyOrigin::Derived);
    }

    #[test]
    fn derived_keys_match_within_a_window_and_differ_otherwise() {
        let caller = iam("arn:aws:iam::1:user/a");
        let key = |serial: &str, caller: &Caller, now: i64, action: Action| {
            RequestKey::for_request(action, &request(serial, None), caller, now, WINDOW).id
        };
        let base = key("SN1", &caller, 600, Action::ResetPasscode);
        assert_eq!(base, key("SN1", &caller, 899, Action::ResetPasscode));
        assert_ne!(
            base,
            key("SN1", &caller, 900, Action::ResetPasscode),
            "next window"
        );
        assert_ne!(
            base,
            key("SN2", &caller, 600, Action::ResetPasscode),
            "device"
        );
        assert_ne!(
            base,
            key(
                "SN1",
                &iam("arn:aws:iam::1:user/b"),
                600,
                Action::ResetPasscode
            ),
            "caller"
        );
        assert_ne!(
            base,
            key("SN1", &caller, 600, Action::RemovePasscode),
            "action"
        );
        let mut replacing = request("SN1", None);
        replacing.replace_pending = true;
        let replace = |now| {
            RequestKey::for_request(Action::ResetPasscode, &replacing, &caller, now, WINDOW).id
        };
        assert_ne!(base, replace(600), "replacePending is another request");
        assert_eq!(replace(600), replace(899), "and is itself deduplicated");
    }

    #[test]
    fn the_fingerprint_covers_action_and_device_only() {
        let caller = iam("arn:aws:iam::1:user/a");
        let fp = |serial: &str, action: Action, key: &str| {
            RequestKey::for_request(action, &request(serial, Some(key)), &caller, 0, WINDOW)
                .fingerprint
        };
        let base = fp("SN1", Action::ResetPasscode, "k1");
        assert_eq!(base, fp("SN1", Action::ResetPasscode, "k2"));
        assert_ne!(base, fp("SN2", Action::ResetPasscode, "k1"));
        assert_ne!(base, fp("SN1", Action::RemovePasscode, "k1"));
        assert_eq!(base.len(), 64);
    }

    fn item(fields: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn some_key() -> RequestKey {
        let caller = iam("arn:aws:iam::1:user/a");
        RequestKey::for_request(
            Action::ResetPasscode,
            &request("SN1", Some("k")),
            &caller,
            0,
            WINDOW,
        )
    }

    #[test]
    fn a_completed_record_is_replayed() {
        let key = some_key();
        let outcome = Outcome::AlreadyPending {
            device: Default::default(),
            pending_since: Some("2026-11-26T05:00:00Z".into()),
            notice: None,
        };
        let record = item(&[
            (STATUS, s(COMPLETED)),
            (FINGERPRINT, s(&key.fingerprint)),
            (REQUEST_ID, s("first")),
            (OUTCOME, s(&serde_json::to_string(&outcome).unwrap())),
        ]);
        match existing_claim(&key, &record, 0).unwrap() {
            Claim::Completed {
                outcome: stored,
                request_id,
            } => {
                assert_eq!(*stored, outcome);
                assert_eq!(request_id, "first");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_running_or_unreadable_record_means_in_progress() {
        let key = some_key();
        let running = item(&[
            (STATUS, s(IN_PROGRESS)),
            (FINGERPRINT, s(&key.fingerprint)),
            (IN_PROGRESS_UNTIL, n(10_500)),
        ]);
        match existing_claim(&key, &running, 1_000).unwrap() {
            Claim::InProgress { retry_after } => assert_eq!(retry_after, Duration::from_secs(10)),
            other => panic!("{other:?}"),
        }
        let broken = item(&[(STATUS, s(COMPLETED)), (OUTCOME, s("{not json"))]);
        assert!(matches!(
            existing_claim(&key, &broken, 1_000).unwrap(),
            Claim::InProgress { .. }
        ));
    }

    #[test]
    fn a_key_reused_for_another_device_is_refused() {
        let key = some_key();
        let record = item(&[(STATUS, s(COMPLETED)), (FINGERPRINT, s("other"))]);
        let err = existing_claim(&key, &record, 0).unwrap_err();
        assert_eq!(err.code, ErrorCode::IdempotencyKeyReused);
        assert!(!err.transient);
    }

    #[test]
    fn hashed_fields_cannot_run_into_each_other() {
        assert_ne!(hex_sha256(&["ab", "c"]), hex_sha256(&["a", "bc"]));
    }
}
