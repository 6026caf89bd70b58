//! What each trigger gets back.
//!
//! * API Gateway (both payload versions): `{statusCode, headers, body}` with
//!   the JSON contract of the README.
//! * EventBridge / direct invocation: the result object itself (it goes to
//!   the OnSuccess destination); a request that can never succeed is a normal
//!   `{"outcome": "rejected"}` result, a transient failure is an invocation
//!   error so Lambda retries it and, in the end, sends it to OnFailure.

use crate::action::Action;
use crate::device::DeviceSummary;
use crate::error::{ErrorCode, ServiceError};
use crate::sensitive::Sensitive;
use crate::trigger::Source;
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How one action on one device went (for `passcode-status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionStatus {
    pub action: String,
    pub state: String,
    pub started_at: Option<String>,
    pub updated_at: Option<String>,
    /// What the state means for the agent, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// How a request ended. Serialized only into the idempotency record, which
/// holds write outcomes only: a revealed passcode is never serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Outcome {
    /// The action was sent; Intune runs it when the device checks in.
    Accepted {
        device: DeviceSummary,
        graph_request_id: Option<String>,
    },
    /// A `resetPasscode` is still pending: nothing was sent.
    AlreadyPending {
        device: DeviceSummary,
        pending_since: Option<String>,
    },
    /// Nothing was sent; says what would have happened.
    DryRun {
        device: DeviceSummary,
        would_send: bool,
    },
    Status {
        device: DeviceSummary,
        actions: Vec<ActionStatus>,
    },
    /// The new passcode of a finished Android reset (`reveal-passcode`).
    Revealed {
        device: DeviceSummary,
        #[serde(skip)]
        passcode: Sensitive,
        completed_at: Option<String>,
        expires_at: String,
    },
    /// A repeat of a finished request (same idempotency key): the first
    /// request's outcome, answered again. Nothing was done now.
    Replayed {
        original: Box<Outcome>,
        original_request_id: String,
    },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::AlreadyPending { .. } => "alreadyPending",
            Outcome::DryRun { .. } => "dryRun",
            Outcome::Status { .. } => "status",
            Outcome::Revealed { .. } => "revealed",
            Outcome::Replayed { .. } => "replayed",
        }
    }

    pub fn device(&self) -> &DeviceSummary {
        match self {
            Outcome::Accepted { device, .. }
            | Outcome::AlreadyPending { device, .. }
            | Outcome::DryRun { device, .. }
            | Outcome::Status { device, .. }
            | Outcome::Revealed { device, .. } => device,
            Outcome::Replayed { original, .. } => original.device(),
        }
    }

    pub fn graph_request_id(&self) -> Option<&str> {
        match self {
            Outcome::Accepted {
                graph_request_id, ..
            } => graph_request_id.as_deref(),
            Outcome::Replayed { original, .. } => original.graph_request_id(),
            _ => None,
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Outcome::Accepted { .. } => 202,
            Outcome::Replayed { original, .. } => original.http_status(),
            _ => 200,
        }
    }

    fn body(&self, action: Action, request_id: &str) -> Value {
        // A replay answers like the first request did, so callers that
        // branch on `outcome` need no special case, and says it is a replay.
        if let Outcome::Replayed {
            original,
            original_request_id,
        } = self
        {
            let mut body = original.body(action, request_id);
            body["replayed"] = json!(true);
            body["originalRequestId"] = json!(original_request_id);
            body["message"] = json!(format!(
                "{} This is the answer of an earlier request with the same idempotency key; nothing was sent again.",
                body["message"].as_str().unwrap_or_default()
            ));
            return body;
        }
        let mut body = json!({
            "outcome": self.name(),
            "action": action.event_action(),
            "device": self.device(),
            "requestId": request_id,
        });
        match self {
            Outcome::Accepted {
                graph_request_id, ..
            } => {
                body["graphRequestId"] = json!(graph_request_id);
                body["message"] = json!(
                    "Intune accepted the action; it runs when the device next checks in. Follow it with passcode-status."
                );
            }
            Outcome::AlreadyPending { pending_since, .. } => {
                body["pendingSince"] = json!(pending_since);
                body["message"] = json!(
                    "A passcode action for this device is still pending in Intune, so nothing was sent again."
                );
            }
            Outcome::DryRun { would_send, .. } => {
                body["wouldSend"] = json!(would_send);
                body["message"] = json!(if *would_send {
                    "Dry run: the device is eligible and the action would be sent. Nothing was sent."
                } else {
                    "Dry run: a passcode action is already pending, so nothing would be sent."
                });
            }
            Outcome::Status { actions, .. } => {
                body["actions"] = json!(actions);
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
                body["message"] = json!(
                    "The new passcode Intune set on the device. Give it to the user over a channel you trust; it is also shown in the Intune admin center until expiresAt."
                );
            }
            Outcome::Replayed { .. } => {}
        }
        body
    }
}

/// The answer for the trigger.
pub fn render(
    source: Source,
    action: Action,
    request_id: &str,
    result: &Result<Outcome, ServiceError>,
) -> Result<Value, Diagnostic> {
    if source.is_api() {
        return Ok(match result {
            Ok(outcome) => api_response(
                outcome.http_status(),
                &outcome.body(action, request_id),
                None,
            ),
            Err(e) => api_response(
                e.code.http_status(),
                &error_body(e, request_id),
                e.retry_after,
            ),
        });
    }
    match result {
        Ok(outcome) => Ok(outcome.body(action, request_id)),
        Err(e) if e.transient => Err(Diagnostic {
            error_type: e.code.error_type().to_string(),
            error_message: e.message.clone(),
        }),
        Err(e) => {
            let mut body = error_body(e, request_id);
            body["outcome"] = json!("rejected");
            body["action"] = json!(action.event_action());
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
        });
        let v = render(Source::ApiV2, Action::ResetPasscode, "r1", &ok).unwrap();
        assert_eq!(v["statusCode"], 202);
        let body = body_of(&v);
        assert_eq!(body["outcome"], "accepted");
        assert_eq!(body["action"], "resetPasscode");
        assert_eq!(body["device"]["id"], "d1");
        assert_eq!(body["requestId"], "r1");
        assert_eq!(body["graphRequestId"], "g1");

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
        });
        let v = render(Source::Direct, Action::ResetPasscode, "r", &ok).unwrap();
        assert_eq!(v["outcome"], "dryRun");
        assert_eq!(v["wouldSend"], true);
    }
}
