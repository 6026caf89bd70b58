//! EventBridge events: `detail-type` names the request, `detail` carries it
//! together with the `action` it asks for.

use super::{Parsed, RequestReader};
use crate::error::ServiceError;
use crate::origin::{Caller, Source};
use crate::request::clip;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

pub(super) fn parse<R: RequestReader>(reader: &R, ev: EventBridgeEvent<Value>) -> Parsed<R::Request> {
    let caller = Caller::eventbridge(ev.source.clone(), ev.id.clone());
    let expected = reader.detail_type();
    let request = if ev.detail_type != expected {
        Err(ServiceError::invalid(format!(
            "detail-type must be {expected:?}, got {:?}",
            clip(&ev.detail_type)
        )))
    } else {
        match &ev.detail {
            Value::Object(detail) => reader.read_detail(detail),
            _ => Err(ServiceError::invalid(
                "the event's detail must be a JSON object",
            )),
        }
    };
    Parsed {
        source: Source::EventBridge,
        caller,
        request,
    }
}

#[cfg(test)]
mod tests {
    use crate::action::Action;
    use super::super::parse_event;
    use super::super::test_events::{ID, assert_eventbridge_caller, eventbridge};
    use super::*;
    use crate::request::DeviceRef;
    use serde_json::json;

    #[test]
    fn request_and_caller() {
        let detail = json!({"action": "resetPasscode", "device": {"imei": "350000000000001"}, "reason": "r",
                            "requestedBy": "agent@contoso.com", "ticket": "INC1"});
        let inc = parse_event(Action::ResetPasscode, &eventbridge(detail));
        assert_eq!(inc.source, Source::EventBridge);
        assert_eventbridge_caller(&inc.caller, "com.contoso.helpdesk", "ev-1", "agent@contoso.com");
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
