//! One sender per device at a time, across execution environments.
//!
//! The idempotency record makes one *request* run once. Two different
//! requests for the same device (two agents, a ticket rule and a queued
//! batch, two senders of a queue message) have different keys, and the
//! `deviceActionResults` check alone is not atomic: both read "nothing
//! pending" and both POST, and the user gets two passcodes. So a write
//! takes the device's lease, an item `device#<managed device id>` in the
//! idempotency table, before that check and holds it until the POST has an
//! answer:
//!
//! - taking is one conditional update: it succeeds when no live lease is
//!   held (`inProgressUntilMs` is the holder's deadline, so a lease whose
//!   Lambda died stops counting at that deadline, as request records do);
//! - a request that finds the lease held waits for it (polling within its
//!   own deadline), then makes the pending check like any other;
//! - the holder that sent a POST records when (`sentAtMs`) as it lets go.
//!   Whether Intune lists a new action in `deviceActionResults` at once is
//!   not documented, so the next holder counts that send as pending until
//!   Graph shows an entry at least as new (see `handler::pending_reset`).
//!
//! When the POST's outcome is unknown the lease is kept until the holder's
//! deadline, the same rule as the request record.

use crate::aws::error_text;
use crate::dynamo::{Item, n, number, s};
use crate::error::{ErrorCode, ServiceError};
use crate::idempotency::table_unavailable;
use crate::retry::{self, Attempt, Deadline, Failed, RetryPolicy};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::time::Duration;
use time::OffsetDateTime;

const ID: &str = "id";
const OWNER: &str = "owner";
const HELD_UNTIL: &str = "inProgressUntilMs";
const SENT_AT: &str = "sentAtMs";
const EXPIRATION: &str = "expiration";

/// Polls while another request holds the lease. A POST takes well under a
/// second, so a short interval answers the waiting request soon after.
const WAITING: RetryPolicy = RetryPolicy {
    max_attempts: 40,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_millis(400),
    answer_margin: Duration::from_secs(2),
    min_call_time: Duration::from_millis(250),
};

pub struct DeviceLeases {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// How long a send is remembered: the handler's pending window.
    remember: Duration,
}

/// A lease this invocation holds.
#[derive(Debug)]
pub struct Lease {
    id: String,
    owner: String,
    /// When the previous holder sent its POST, if it did within `remember`.
    pub last_sent: Option<OffsetDateTime>,
}

/// How the holder's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Sent,
    NothingSent,
    /// The POST may have reached Intune: keep the lease until the deadline.
    OutcomeUnknown,
}

/// Why one attempt to take the lease did not get it.
enum NotTaken {
    Held { until_ms: i64 },
    Unavailable(ServiceError),
}

impl std::fmt::Display for NotTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotTaken::Held { .. } => f.write_str("another request is sending to this device"),
            NotTaken::Unavailable(e) => f.write_str(&e.message),
        }
    }
}

impl DeviceLeases {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, remember: Duration) -> DeviceLeases {
        DeviceLeases {
            client,
            table,
            remember,
        }
    }

    /// Takes the device's lease for the invocation `owner`, waiting while
    /// another request holds it. Nothing has been sent when this fails.
    pub async fn take(
        &self,
        device_id: &str,
        owner: &str,
        deadline: &Deadline,
    ) -> Result<Lease, ServiceError> {
        let id = format!("device#{}", device_id.to_ascii_lowercase());
        let attempt = |_timeout| async {
            match self.take_once(&id, owner, deadline).await {
                Ok(last_sent) => Attempt::Done(last_sent),
                Err(held @ NotTaken::Held { .. }) => Attempt::Retry {
                    error: held,
                    hint: None,
                },
                Err(unavailable) => Attempt::Stop(unavailable),
            }
        };
        match retry::run("device lease", &WAITING, deadline, attempt).await {
            Ok(last_sent) => Ok(Lease {
                id,
                owner: owner.to_string(),
                last_sent,
            }),
            Err(Failed::Error {
                error: NotTaken::Held { until_ms },
                ..
            }) => Err(busy(until_ms)),
            Err(Failed::Error {
                error: NotTaken::Unavailable(e),
                ..
            }) => Err(e),
            // Not even one attempt fitted: too little time is left to send.
            Err(Failed::OutOfTime | Failed::OutcomeUnknown(_)) => Err(ServiceError::new(
                ErrorCode::GraphUnavailable,
                "ran out of time before the device could be claimed; nothing was sent, retry later",
            )),
        }
    }

    /// One conditional update; the previous holder's send time on success.
    async fn take_once(
        &self,
        id: &str,
        owner: &str,
        deadline: &Deadline,
    ) -> Result<Option<OffsetDateTime>, NotTaken> {
        let now_ms = crate::clock::real_now_ms();
        let held_until = now_ms + deadline.remaining().as_millis().max(1000) as i64;
        let expiration = now_ms / 1000 + self.remember.as_secs() as i64 + 3600;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ID, s(id))
            .update_expression("SET #owner = :me, #until = :until, #exp = :exp")
            .condition_expression("attribute_not_exists(#until) OR #until < :now")
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#until", HELD_UNTIL)
            .expression_attribute_names("#exp", EXPIRATION)
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(held_until))
            .expression_attribute_values(":exp", n(expiration))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(self.sent_at(&out.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let until_ms = match e.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item.as_ref().and_then(|item| number(item, HELD_UNTIL))
                    }
                    _ => None,
                };
                Err(NotTaken::Held {
                    until_ms: until_ms.unwrap_or(now_ms + 1000),
                })
            }
            Err(e) => Err(NotTaken::Unavailable(table_unavailable(
                &self.table,
                "UpdateItem (device lease)",
                &e,
            ))),
        }
    }

    /// The previous holder's send, if it is recent enough to matter. Read
    /// on the functions' clock, the one Intune's dates are compared with.
    fn sent_at(&self, item: &Item) -> Option<OffsetDateTime> {
        let ms = number(item, SENT_AT)?;
        let sent = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok()?;
        (crate::clock::now() - sent <= self.remember).then_some(sent)
    }

    /// Lets the lease go, recording the send if there was one. A failure
    /// only delays the next request until the holder's deadline (and, for
    /// a send, leaves Intune's own list as the only record), so it is
    /// logged, not raised.
    pub async fn finish(&self, lease: Lease, ending: Ending) {
        let update = match ending {
            Ending::OutcomeUnknown => return,
            Ending::Sent => self
                .release()
                .update_expression("SET #until = :zero, #sent = :sent")
                .expression_attribute_names("#sent", SENT_AT)
                .expression_attribute_values(":sent", n(crate::clock::now_ms())),
            Ending::NothingSent => self
                .release()
                .update_expression("SET #until = :zero"),
        };
        let result = update
            .key(ID, s(&lease.id))
            .expression_attribute_values(":me", s(&lease.owner))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(lease = %lease.id, "the device lease could not be released ({}); the next request for the device waits until it expires", error_text(&e));
        }
    }

    /// The release's common part: only the holder lets go.
    fn release(&self) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#until", HELD_UNTIL)
            .expression_attribute_values(":zero", n(0))
    }
}

/// The answer when the holder is still busy at the end of the wait.
fn busy(until_ms: i64) -> ServiceError {
    let wait_s = ((until_ms - crate::clock::real_now_ms()).max(1000) as u64).div_ceil(1000);
    let mut e = ServiceError::new(
        ErrorCode::RequestInProgress,
        format!(
            "Another request is sending a passcode action to this device right now. Nothing was sent; retry in {wait_s} seconds to see that action as pending."
        ),
    );
    e.retry_after = Some(Duration::from_secs(wait_s));
    e
}
