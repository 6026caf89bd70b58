//! What each trigger gets back.
//!
//! * API Gateway (both payload versions): `{statusCode, headers, body}` with
//!   the JSON contract of the README.
//! * EventBridge / direct invocation: the result object itself (it goes to
//!   the OnSuccess destination); a request that can never succeed is a normal
//!   `{"outcome": "rejected"}` result, a transient failure is an invocation
//!   error so Lambda retries it and, in the end, sends it to OnFailure.

use crate::action::Action;
use crate::error::{ErrorCode, ServiceError};
use crate::outcome::Outcome;
use crate::origin::Source;
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

/// The JSON answer for an outcome, the same for every trigger.
fn outcome_body(outcome: &Outcome, action: Action, request_id: &str) -> Value {
    // A replay answers like the first request did, so callers that branch
    // on `outcome` need no special case, and says it is a replay.
    if let Outcome::Replayed {
        original,
        original_request_id,
    } = outcome
    {
        let mut body = outcome_body(original, action, request_id);
        body["replayed"] = json!(true);
        body["originalRequestId"] = json!(original_request_id);
        body["message"] = json!(format!(
            "{} This is the answer of an earlier request with the same idempotency key; nothing was sent again.",
            body["message"].as_str().unwrap_or_default()
        ));
        return body;
    }
    let mut body = json!({
        "outcome": outcome.name(),
        "action": action.event_action(),
        "device": outcome.device(),
        "requestId": request_id,
    });
    match outcome {
        Outcome::Accepted {
            graph_request_id,
            replaced,
            ..
        } => {
            body["graphRequestId"] = json!(graph_request_id);
            if let Some(pending) = replaced {
                body["replacedPending"] = json!(true);
                body["replacedPendingSince"] = json!(pending.since);
            }
        }
        Outcome::AlreadyPending { pending_since, .. } => {
            body["pendingSince"] = json!(pending_since);
        }
        Outcome::DryRun { would_send, .. } => {
            body["wouldSend"] = json!(would_send);
        }
        Outcome::Status {
            actions, tracking, ..
        } => {
            body["actions"] = json!(actions);
            if let Some(tracking) = tracking {
                body["tracking"] = json!(tracking);
            }
        }
        Outcome::Revealed {
            passcode,
            completed_at,
            expires_at,
            ..
        } => {
            body["passcode"] = json!(passcode.expose());
            body["completedAt"] = json!(completed_at);
            body["expiresAt"] = json!(expires_at);
        }
        Outcome::Replayed { .. } => {}
    }
    if let Some(message) = outcome.message() {
        body["message"] = json!(message);
    }
    body
}

/// The answer for the trigger.
pub fn render(
    source: Source,
    action: Action,
    request_id: &str,
    result: &Result<Outcome, ServiceError>,
) -> Result<Value, Diagnostic> {
    let answer = result
        .as_ref()
        .map(|outcome| (outcome.http_status(), outcome_body(outcome, action, request_id)));
    render_answer(source, action.event_action(), request_id, answer)
}

/// The answer for the trigger, from an HTTP status and a JSON body (or an
/// error).
pub fn render_answer(
    source: Source,
    action: &str,
    request_id: &str,
    answer: Result<(u16, Value), &ServiceError>,
) -> Result<Value, Diagnostic> {
    if source.is_api() {
        return Ok(match answer {
            Ok((status, body)) => api_response(status, &body, None),
            Err(e) => api_response(
                e.code.http_status(),
                &error_body(e, request_id),
                e.retry_after,
            ),
        });
    }
    match answer {
        Ok((_, body)) => Ok(body),
        Err(e) if e.transient => Err(Diagnostic {
            error_type: e.code.error_type().to_string(),
            error_message: e.message.clone(),
        }),
        Err(e) => {
            let mut body = error_body(e, request_id);
            body["outcome"] = json!("rejected");
            body["action"] = json!(action);
            Ok(body)
        }
    }
}

fn error_body(e: &ServiceError, request_id: &str) -> Value {
    let mut error = json!({
        "code": e.code.as_str(),
        "message": e.message,
        "requestId": request_id,
    });
    if let Some(id) = &e.graph_request_id {
        error["graphRequestId"] = json!(id);
    }
    if e.code == ErrorCode::AmbiguousDevice {
        error["candidates"] = json!(e.candidates);
    }
    if let Some(wait) = e.retry_after {
        error["retryAfterSeconds"] = json!(wait.as_secs());
    }
    json!({ "error": error })
}

fn api_response(status: u16, body: &Value, retry_after: Option<std::time::Duration>) -> Value {
    let mut headers = json!({
        "content-type": "application/json",
        // Answers may carry a passcode: never cache them anywhere.
        "cache-control": "no-store",
    });
    if let Some(wait) = retry_after {
        headers["retry-after"] = json!(wait.as_secs().max(1).to_string());
    }
    json!({
        "statusCode": status,
        "headers": headers,
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceSummary;
    use crate::outcome::PendingAction;
    use std::time::Duration;

    fn device() -> DeviceSummary {
        DeviceSummary {
            id: "d1".into(),
            device_name: "KIOSK".into(),
            operating_system: "Android".into(),
            os_version: "13".into(),
            enrollment_type: "androidEnterpriseDedicatedDevice".into(),
            ownership: "company".into(),
            user_principal_name: String::new(),
            last_sync_date_time: None,
        }
    }

    fn body_of(v: &Value) -> Value {
        serde_json::from_str(v["body"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn api_success_and_error_shapes() {
        let ok = Ok(Outcome::Accepted {
            device: device(),
            graph_request_id: Some("g1".into()),
            replaced: None,
            notice: None,
        });
        let v = render(Source::ApiV2, Action::ResetPasscode, "r1", &ok).unwrap();
        assert_eq!(v["statusCode"], 202);
        let body = body_of(&v);
        assert_eq!(body["outcome"], "accepted");
        assert_eq!(body["action"], "resetPasscode");
        assert_eq!(body["device"]["id"], "d1");
        assert_eq!(body["requestId"], "r1");
        assert_eq!(body["graphRequestId"], "g1");
        assert!(body.get("replacedPending").is_none());

        let replaced = Ok(Outcome::Accepted {
            device: device(),
            graph_request_id: Some("g2".into()),
            replaced: Some(PendingAction {
                since: Some("2026-11-26T05:00:00Z".into()),
            }),
            notice: None,
        });
        let body = body_of(&render(Source::ApiV2, Action::ResetPasscode, "r1", &replaced).unwrap());
        assert_eq!(body["replacedPending"], true);
        assert_eq!(body["replacedPendingSince"], "2026-11-26T05:00:00Z");
        assert!(body["message"].as_str().unwrap().contains("superseded"));

        let mut err = ServiceError::new(ErrorCode::Throttled, "slow down");
        err.retry_after = Some(Duration::from_secs(7));
        let v = render(Source::ApiV1, Action::ResetPasscode, "r2", &Err(err)).unwrap();
        assert_eq!(v["statusCode"], 429);
        assert_eq!(v["headers"]["retry-after"], "7");
        let body = body_of(&v);
        assert_eq!(body["error"]["code"], "throttled");
        assert_eq!(body["error"]["requestId"], "r2");
    }

    #[test]
    fn a_replay_answers_like_the_original_and_says_so() {
        let original = Outcome::Accepted {
            device: device(),
            graph_request_id: Some("g1".into()),
            replaced: None,
            notice: None,
        };
        let stored = serde_json::to_string(&original).unwrap();
        let restored: Outcome = serde_json::from_str(&stored).unwrap();
        assert_eq!(restored, original);
        let replay = Ok(Outcome::Replayed {
            original: Box::new(restored),
            original_request_id: "r1".into(),
        });
        let v = render(Source::ApiV2, Action::ResetPasscode, "r2", &replay).unwrap();
        assert_eq!(v["statusCode"], 202);
        let body = body_of(&v);
        assert_eq!(body["outcome"], "accepted");
        assert_eq!(body["replayed"], true);
        assert_eq!(body["requestId"], "r2");
        assert_eq!(body["originalRequestId"], "r1");
        assert_eq!(body["graphRequestId"], "g1");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("nothing was sent again")
        );
        assert_eq!(replay.as_ref().unwrap().name(), "replayed");
    }

    #[test]
    fn eventbridge_rejects_permanent_and_fails_transient() {
        let err = ServiceError::new(ErrorCode::DeviceNotFound, "none");
        let v = render(Source::EventBridge, Action::RemovePasscode, "r", &Err(err)).unwrap();
        assert_eq!(v["outcome"], "rejected");
        assert_eq!(v["error"]["code"], "deviceNotFound");
        let err = ServiceError::new(ErrorCode::GraphUnavailable, "down");
        let d = render(Source::EventBridge, Action::RemovePasscode, "r", &Err(err)).unwrap_err();
        assert_eq!(d.error_type, "GraphUnavailable");
        let ok = Ok(Outcome::DryRun {
            device: device(),
            would_send: true,
            would_replace: None,
            notice: None,
        });
        let v = render(Source::Direct, Action::ResetPasscode, "r", &ok).unwrap();
        assert_eq!(v["outcome"], "dryRun");
        assert_eq!(v["wouldSend"], true);
    }
}
