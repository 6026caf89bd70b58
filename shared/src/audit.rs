//! One audit record per invocation: who asked, why, for which device, and
//! how it ended.
//!
//! Intune's own audit log names the app, not the person behind the helpdesk
//! tool, so this record is the trail that does. It is one JSON line on
//! stdout (`"type":"audit"`), independent of the log level, ready for a
//! CloudWatch Logs subscription or metric filter. It never holds a secret,
//! token or passcode; `passcodeReturned` records *that* one was handed out.
//!
//! The same line is a CloudWatch Embedded Metric Format document: its `_aws`
//! block tells CloudWatch to turn `durationMs`, `graphCalls`, `graphRetries`
//! and `graphThrottledWaits` into metrics in the namespace `METRICS_NAMESPACE`
//! (default `IntunePasscode`), per `function` and `outcome`, and for errors
//! also per `errorCode`. No extra call, no extra dependency.

use crate::action::Action;
use crate::error::ServiceError;
use crate::metrics::{self, GraphCounts};
use crate::outcome::Outcome;
use crate::origin::{Caller, Source};
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
    pub graph_calls: u32,
    pub graph_retries: u32,
    pub graph_throttled_waits: u32,
    /// Embedded Metric Format directive over the fields above.
    #[serde(rename = "_aws")]
    pub metrics: MetricDirectives<'a>,
}

/// The `_aws` member of an Embedded Metric Format document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDirectives<'a> {
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub cloud_watch_metrics: [MetricDirective<'a>; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDirective<'a> {
    pub namespace: &'a str,
    /// Each inner list names top-level fields of the record.
    pub dimensions: Vec<&'static [&'static str]>,
    pub metrics: &'static [MetricDefinition],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDefinition {
    pub name: &'static str,
    pub unit: &'static str,
}

/// Every metric of the record; each name is a top-level field.
pub const METRICS: &[MetricDefinition] = &[
    MetricDefinition {
        name: "durationMs",
        unit: "Milliseconds",
    },
    MetricDefinition {
        name: "graphCalls",
        unit: "Count",
    },
    MetricDefinition {
        name: "graphRetries",
        unit: "Count",
    },
    MetricDefinition {
        name: "graphThrottledWaits",
        unit: "Count",
    },
];

const BY_OUTCOME: &[&str] = &["function", "outcome"];
const BY_ERROR_CODE: &[&str] = &["function", "outcome", "errorCode"];

fn metric_directives<'a>(
    namespace: &'a str,
    now: time::OffsetDateTime,
    has_error_code: bool,
) -> MetricDirectives<'a> {
    let mut dimensions = vec![BY_OUTCOME];
    // A dimension set must only name fields the record has.
    if has_error_code {
        dimensions.push(BY_ERROR_CODE);
    }
    MetricDirectives {
        timestamp: (now.unix_timestamp_nanos() / 1_000_000) as i64,
        cloud_watch_metrics: [MetricDirective {
            namespace,
            dimensions,
            metrics: METRICS,
        }],
    }
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
    /// `METRICS_NAMESPACE` (see `config`).
    pub metrics_namespace: &'a str,
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
    let now = time::OffsetDateTime::now_utc();
    let graph: GraphCounts = metrics::graph_counts();
    AuditRecord {
        kind: "audit",
        time: now
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
        graph_calls: graph.calls,
        graph_retries: graph.retries,
        graph_throttled_waits: graph.throttled_waits,
        metrics: metric_directives(input.metrics_namespace, now, error_code.is_some()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::Value;

    fn audit_line(result: &Result<Outcome, ServiceError>) -> Value {
        let caller = Caller::default();
        let input = AuditInput {
            action: Action::ResetPasscode,
            request_id: "req-1",
            source: Source::EventBridge,
            caller: &caller,
            request: None,
            result,
            passcode_returned: false,
            duration: std::time::Duration::from_millis(42),
            metrics_namespace: "Test/Namespace",
        };
        serde_json::to_value(record(&input)).unwrap()
    }

    /// Checks a line as CloudWatch reads an EMF document: a `_aws` block
    /// with a millisecond timestamp, and every metric and dimension it names
    /// present as a top-level field (metrics as numbers).
    fn assert_emf(line: &Value) {
        let aws = &line["_aws"];
        assert!(aws["Timestamp"].as_i64().unwrap() > 1_600_000_000_000);
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let directive = &directives[0];
        assert_eq!(directive["Namespace"], "Test/Namespace");
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "metric {name} is a number");
            assert!(metric["Unit"].is_string());
        }
        for set in directive["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                let key = key.as_str().unwrap();
                assert!(line[key].is_string(), "dimension {key} is a field");
            }
        }
    }

    #[test]
    fn error_line_is_emf_with_error_code_dimension() {
        let line = audit_line(&Err(ServiceError::new(
            ErrorCode::Throttled,
            "Graph is throttling",
        )));
        assert_emf(&line);
        assert_eq!(line["durationMs"], 42);
        assert_eq!(line["graphCalls"], 0);
        let dims = &line["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        assert_eq!(
            dims,
            &serde_json::json!([
                ["function", "outcome"],
                ["function", "outcome", "errorCode"]
            ])
        );
        assert_eq!(line["errorCode"], "throttled");
    }

    #[tokio::test]
    async fn counts_of_the_invocation_reach_the_line() {
        let line = metrics::counting(async {
            metrics::graph_call_sent();
            metrics::graph_retry(true);
            metrics::graph_call_sent();
            audit_line(&Err(ServiceError::config("no secret")))
        })
        .await;
        assert_emf(&line);
        assert_eq!(line["graphCalls"], 2);
        assert_eq!(line["graphRetries"], 1);
        assert_eq!(line["graphThrottledWaits"], 1);
    }
}
