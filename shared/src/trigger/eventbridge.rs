//! EventBridge events: `detail-type` names the request, `detail` carries it
//! together with the `action` it asks for.

use crate::origin::Caller;
use super::Incoming;
use crate::origin::Source;
use crate::action::{Action, EVENT_DETAIL_TYPE};
use crate::error::ServiceError;
use crate::request::{ParseRules, PasscodeRequest, clip, parse_request};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

pub(super) fn parse(action: Action, ev: EventBridgeEvent<Value>) -> Incoming {
    let caller = Caller::eventbridge(ev.source.clone(), ev.id.clone());
    let request = if ev.detail_type != EVENT_DETAIL_TYPE {
        Err(ServiceError::invalid(format!(
            "detail-type must be {EVENT_DETAIL_TYPE:?}, got {:?}",
            clip(&ev.detail_type)
        )))
    } else {
        match &ev.detail {
            Value::Object(detail) => detail_request(action, detail),
            _ => Err(ServiceError::invalid(
                "the event's detail must be a JSON object",
            )),
        }
    };
    Incoming {
        source: Source::EventBridge,
        caller,
        request,
    }
}

/// The request inside an EventBridge `detail` or a direct payload: it must
/// name this function's action, and may say who is behind it
/// (`requestedBy`).
pub(super) fn detail_request(
    action: Action,
    detail: &Map<String, Value>,
) -> Result<PasscodeRequest, ServiceError> {
    match detail.get("action").and_then(Value::as_str) {
        Some(name) if name == action.event_action() => {}
        Some(name) => {
            return Err(ServiceError::invalid(format!(
                "this function handles action {:?}, the event asks for {:?}",
                action.event_action(),
                clip(name)
            )));
        }
        None => {
            return Err(ServiceError::invalid(format!(
                "\"action\" is required in the event; this function handles {:?}",
                action.event_action()
            )));
        }
    }
    let rules = ParseRules {
        reason_required: action.writes(),
        allow_requested_by: true,
    };
    parse_request(detail, None, rules)
}

#[cfg(test)]
mod tests {
    use super::super::parse_event;
    use super::super::test_events::{ID, eventbridge};
    use super::*;
    use crate::request::DeviceRef;
    use serde_json::json;

    #[test]
    fn request_and_caller() {
        let detail = json!({"action": "resetPasscode", "device": {"imei": "350000000000001"}, "reason": "r",
                            "requestedBy": "agent@contoso.com", "ticket": "INC1"});
        let inc = parse_event(Action::ResetPasscode, &eventbridge(detail));
        assert_eq!(inc.source, Source::EventBridge);
        assert_eq!(inc.caller.kind, "eventBridge");
        assert_eq!(
            inc.caller.principal.as_deref(),
            Some("com.contoso.helpdesk")
        );
        assert_eq!(
            inc.caller.requested_by.as_deref(),
            Some("agent@contoso.com")
        );
        assert_eq!(inc.caller.event_id.as_deref(), Some("ev-1"));
        let request = inc.request.unwrap();
        assert_eq!(request.device, DeviceRef::Imei("350000000000001".into()));
        assert_eq!(request.requested_by, inc.caller.requested_by);
    }

    /// The caller's `requestedBy` is the validated one: an invalid request
    /// records none, a trimmed one is recorded trimmed.
    #[test]
    fn requested_by_comes_from_the_validated_request() {
        let detail = json!({"action": "resetPasscode", "device": {"id": ID}, "reason": "r",
                            "requestedBy": "  agent@contoso.com \t"});
        let inc = parse_event(Action::ResetPasscode, &eventbridge(detail));
        assert_eq!(
            inc.caller.requested_by.as_deref(),
            Some("agent@contoso.com")
        );
        let detail = json!({"action": "resetPasscode", "device": {"id": "not-a-guid"}, "reason": "r",
                            "requestedBy": "agent@contoso.com"});
        let inc = parse_event(Action::ResetPasscode, &eventbridge(detail));
        assert!(inc.request.is_err());
        assert_eq!(inc.caller.requested_by, None);
    }

    #[test]
    fn wrong_action_or_detail_type_is_invalid() {
        let inc = parse_event(
            Action::ResetPasscode,
            &eventbridge(json!({"action": "removePasscode", "device": {"id": ID}, "reason": "r"})),
        );
        assert!(
            inc.request
                .unwrap_err()
                .message
                .contains("handles action \"resetPasscode\"")
        );
        let mut ev =
            eventbridge(json!({"action": "resetPasscode", "device": {"id": ID}, "reason": "r"}));
        ev["detail-type"] = json!("Something Else");
        assert!(
            parse_event(Action::ResetPasscode, &ev)
                .request
                .unwrap_err()
                .message
                .contains("detail-type")
        );
    }
}
