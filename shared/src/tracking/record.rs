//! One accepted passcode action as the action log keeps it, and how it is
//! written to and read from its DynamoDB item.

use crate::clock;
use crate::dynamo::{Item, n, number, s, text};
use crate::origin::Caller;
use serde::{Deserialize, Serialize};

/// Item attributes. `deviceId` + `actionKey` is the table's key;
/// `openPartition` + `nextPollAtMs` the sparse index of open actions.
pub(crate) const DEVICE_ID: &str = "deviceId";
pub(crate) const ACTION_KEY: &str = "actionKey";
pub(crate) const OPEN_PARTITION: &str = "openPartition";
pub(crate) const NEXT_POLL_AT_MS: &str = "nextPollAtMs";
pub(crate) const LEASE_OWNER: &str = "leaseOwner";
pub(crate) const LEASE_UNTIL_MS: &str = "leaseUntilMs";
pub(crate) const POLLS: &str = "polls";
pub(crate) const LAST_POLLED_AT: &str = "lastPolledAt";
pub(crate) const FINAL_STATE: &str = "finalState";
pub(crate) const FINAL_AT: &str = "finalAt";
pub(crate) const INTUNE_ERROR_CODE: &str = "intuneErrorCode";
pub(crate) const EXPIRATION: &str = "expiration";
/// The one value of `openPartition`: every open action sits in one index
/// partition, ordered by when it is next due.
pub(crate) const OPEN: &str = "open";

/// Records are deleted by DynamoDB's TTL this long after acceptance: long
/// after the last event, long enough for a status query a month later.
const KEEP_FOR_DAYS: i64 = 90;

/// An action Intune accepted, with how far tracking has followed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionRecord {
    pub device_id: String,
    pub device_name: Option<String>,
    /// `resetPasscode`, `removePasscode` or `resetWindowsPin`.
    pub action: String,
    /// The Lambda request id of the invocation that sent it.
    pub request_id: String,
    pub graph_request_id: Option<String>,
    pub accepted_at_ms: i64,
    pub ticket: Option<String>,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
    /// Who asked, as the audit names them (kind, principal, user, app,
    /// `requestedBy`, the EventBridge event or SQS message); copied into
    /// every result event so a ticketing rule can match it to its request.
    pub caller: Caller,
    pub tracking: Tracking,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracking {
    /// `None` once a final state was reported.
    pub next_poll_at_ms: Option<i64>,
    pub polls: i64,
    pub last_polled_at: Option<String>,
    pub final_state: Option<String>,
    pub final_at: Option<String>,
    pub intune_error_code: Option<i64>,
}

/// `action` of the record a bulk batch leaves for the tracker: its
/// "device" is `bulk#<batchId>`, and it is reported once every device of
/// the batch is settled (`Passcode Bulk Action Completed`).
pub const BATCH_ACTION: &str = "bulkBatch";

/// The sort key: acceptance time first, so a device's actions read
/// newest first, then the request id, which makes it unique.
pub fn action_key(accepted_at_ms: i64, request_id: &str) -> String {
    format!(
        "{}#{request_id}",
        clock::format(clock::from_unix_ms(accepted_at_ms))
    )
}

impl ActionRecord {
    pub fn action_key(&self) -> String {
        action_key(self.accepted_at_ms, &self.request_id)
    }

    /// Stable across runs and retries: consumers deduplicate events on it.
    pub fn tracking_id(&self) -> String {
        format!("{}/{}", self.device_id, self.action_key())
    }

    pub fn accepted_at(&self) -> String {
        clock::format(clock::from_unix_ms(self.accepted_at_ms))
    }

    /// The item a write function puts when Intune accepted the action: open,
    /// first poll due `first_poll_ms` from acceptance.
    pub fn to_new_item(&self, first_poll_ms: i64) -> Item {
        let mut item = Item::new();
        let mut put = |name: &str, value| {
            item.insert(name.to_string(), value);
        };
        put(DEVICE_ID, s(&self.device_id));
        put(ACTION_KEY, s(&self.action_key()));
        put("action", s(&self.action));
        put("requestId", s(&self.request_id));
        put("acceptedAtMs", n(self.accepted_at_ms));
        put("acceptedAt", s(&self.accepted_at()));
        put(OPEN_PARTITION, s(OPEN));
        put(NEXT_POLL_AT_MS, n(self.accepted_at_ms + first_poll_ms));
        put(POLLS, n(0));
        put(
            EXPIRATION,
            n(self.accepted_at_ms / 1000 + KEEP_FOR_DAYS * 86_400),
        );
        put("callerKind", s(&self.caller.kind));
        let optional = [
            ("deviceName", &self.device_name),
            ("graphRequestId", &self.graph_request_id),
            ("ticket", &self.ticket),
            ("reason", &self.reason),
            ("idempotencyKey", &self.idempotency_key),
            ("eventId", &self.caller.event_id),
            ("callerPrincipal", &self.caller.principal),
            ("callerUser", &self.caller.user),
            ("callerAppId", &self.caller.app_id),
            ("requestedBy", &self.caller.requested_by),
            ("batchId", &self.caller.batch_id),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                put(name, s(value));
            }
        }
        item
    }

    /// Reads an item back; `None` when its key or acceptance time is
    /// missing (not an item this project wrote).
    pub fn from_item(item: &Item) -> Option<ActionRecord> {
        let t = |name: &str| text(item, name);
        Some(ActionRecord {
            device_id: t(DEVICE_ID)?,
            device_name: t("deviceName"),
            action: t("action").unwrap_or_default(),
            request_id: t("requestId").unwrap_or_default(),
            graph_request_id: t("graphRequestId"),
            accepted_at_ms: number(item, "acceptedAtMs")?,
            ticket: t("ticket"),
            reason: t("reason"),
            idempotency_key: t("idempotencyKey"),
            caller: Caller {
                kind: t("callerKind").unwrap_or_default(),
                principal: t("callerPrincipal"),
                user: t("callerUser"),
                app_id: t("callerAppId"),
                requested_by: t("requestedBy"),
                event_id: t("eventId"),
                batch_id: t("batchId"),
                ..Caller::default()
            },
            tracking: Tracking {
                next_poll_at_ms: t(OPEN_PARTITION)
                    .and_then(|_| number(item, NEXT_POLL_AT_MS)),
                polls: number(item, POLLS).unwrap_or(0),
                last_polled_at: t(LAST_POLLED_AT),
                final_state: t(FINAL_STATE),
                final_at: t(FINAL_AT),
                intune_error_code: number(item, INTUNE_ERROR_CODE),
            },
        })
    }

    /// What `passcode-status` shows of it.
    pub fn view(&self) -> TrackedAction {
        TrackedAction {
            action: self.action.clone(),
            request_id: self.request_id.clone(),
            accepted_at: self.accepted_at(),
            ticket: self.ticket.clone(),
            tracking: if self.tracking.final_state.is_some() {
                "final"
            } else {
                "open"
            }
            .to_string(),
            polls: self.tracking.polls,
            last_polled_at: self.tracking.last_polled_at.clone(),
            next_poll_at: self
                .tracking
                .next_poll_at_ms
                .map(|ms| clock::format(clock::from_unix_ms(ms))),
            final_state: self.tracking.final_state.clone(),
            final_at: self.tracking.final_at.clone(),
            intune_error_code: self.tracking.intune_error_code,
        }
    }
}

/// One tracked action in a status answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedAction {
    pub action: String,
    pub request_id: String,
    pub accepted_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// `open` while the tracker follows it, `final` once reported.
    pub tracking: String,
    pub polls: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_polled_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intune_error_code: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ActionRecord {
        ActionRecord {
            device_id: "d-1".into(),
            device_name: Some("Lobby kiosk".into()),
            action: "resetPasscode".into(),
            request_id: "req-1".into(),
            graph_request_id: Some("g-1".into()),
            accepted_at_ms: 1_795_000_000_123,
            ticket: Some("INC1".into()),
            reason: Some("locked out".into()),
            idempotency_key: None,
            caller: Caller {
                kind: "eventBridge".into(),
                principal: Some("servicenow".into()),
                requested_by: Some("agent@contoso.com".into()),
                event_id: Some("ev-1".into()),
                ..Default::default()
            },
            tracking: Tracking {
                next_poll_at_ms: Some(1_795_000_060_123),
                ..Default::default()
            },
        }
    }

    #[test]
    fn an_item_reads_back_as_the_record_it_was_written_from() {
        let r = record();
        let item = r.to_new_item(60_000);
        assert_eq!(ActionRecord::from_item(&item), Some(r.clone()));
        assert_eq!(
            text(&item, ACTION_KEY).unwrap(),
            "2026-11-18T11:06:40.123Z#req-1"
        );
        assert_eq!(r.tracking_id(), "d-1/2026-11-18T11:06:40.123Z#req-1");
        assert_eq!(text(&item, OPEN_PARTITION).as_deref(), Some(OPEN));
        assert!(!item.contains_key("idempotencyKey"));
    }

    #[test]
    fn a_closed_item_has_no_next_poll_and_shows_final() {
        let mut item = record().to_new_item(60_000);
        item.remove(OPEN_PARTITION);
        item.insert(FINAL_STATE.into(), s("done"));
        let read = ActionRecord::from_item(&item).unwrap();
        assert_eq!(read.tracking.next_poll_at_ms, None);
        let view = read.view();
        assert_eq!((view.tracking.as_str(), view.final_state.as_deref()), ("final", Some("done")));
        assert_eq!(view.next_poll_at, None);
    }
}
