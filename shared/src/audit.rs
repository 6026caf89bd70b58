//! One audit record per invocation: who asked, why, for which device, and
//! how it ended.
//!
//! Intune's own audit log names the app, not the person behind the helpdesk
//! tool, so this record is the trail that does. It is one JSON line on
//! stdout (`"type":"audit"`), independent of the log level, ready for a
//! CloudWatch Logs subscription or metric filter. It never holds a secret,
//! token or passcode; `passcodeReturned` records *that* one was handed out.

use crate::action::Action;
use crate::error::ServiceError;
use crate::outcome::Outcome;
use crate::trigger::{Caller, Source};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub time: String,
    pub request_id: &'a str,
    pub function: &'static str,
    pub action: &'static str,
    pub source: &'static str,
    pub caller: &'a Caller,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<&'a str>,
    pub dry_run: bool,
    /// The caller asked to replace a pending passcode action.
    pub replace_pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<&'a str>,
    /// How the caller named the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_name: Option<&'a str>,
    /// `accepted`, `alreadyPending`, `dryRun`, `status`, `replayed`,
    /// `rejected` or `failed`.
    pub outcome: &'static str,
    /// For `replayed`: the request whose outcome was answered again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_request_id: Option<&'a str>,
    pub passcode_returned: bool,
    /// A pending passcode action was replaced by this request's.
    pub replaced_pending: bool,
    pub duration_ms: u64,
}

pub struct AuditInput<'a> {
    pub action: Action,
    pub request_id: &'a str,
    pub source: Source,
    pub caller: &'a Caller,
    pub request: Option<&'a crate::request::PasscodeRequest>,
    pub result: &'a Result<Outcome, ServiceError>,
    pub passcode_returned: bool,
    pub duration: std::time::Duration,
}

pub fn record<'a>(input: &'a AuditInput<'a>) -> AuditRecord<'a> {
    let request = input.request;
    let (outcome, error_code, graph_request_id) = match input.result {
        Ok(o) => (o.name(), None, o.graph_request_id()),
        Err(e) => (
            if e.transient { "failed" } else { "rejected" },
            Some(e.code.as_str()),
            e.graph_request_id.as_deref(),
        ),
    };
    let device = input.result.as_ref().ok().map(|o| o.device());
    AuditRecord {
        kind: "audit",
        time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        request_id: input.request_id,
        function: input.action.function_name(),
        action: input.action.event_action(),
        source: input.source.as_str(),
        caller: input.caller,
        reason: request.and_then(|r| r.reason.as_deref()),
        ticket: request.and_then(|r| r.ticket.as_deref()),
        dry_run: request.is_some_and(|r| r.dry_run),
        replace_pending: request.is_some_and(|r| r.replace_pending),
        idempotency_key: request.and_then(|r| r.idempotency_key.as_deref()),
        device_ref: request.map(|r| r.device.describe()),
        device_id: device.map(|d| d.id.as_str()),
        device_name: device.map(|d| d.device_name.as_str()),
        outcome,
        replay_of: match input.result {
            Ok(Outcome::Replayed {
                original_request_id,
                ..
            }) => Some(original_request_id.as_str()),
            _ => None,
        },
        error_code,
        graph_request_id,
        passcode_returned: input.passcode_returned,
        replaced_pending: input.result.as_ref().is_ok_and(Outcome::replaced_pending),
        duration_ms: input.duration.as_millis() as u64,
    }
}

/// Writes the record as one line on stdout.
pub fn emit(record: &AuditRecord<'_>) {
    if let Ok(mut line) = serde_json::to_vec(record) {
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&line);
        let _ = out.flush();
    }
}
