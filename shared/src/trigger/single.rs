//! The request of the single-device functions: one device, from an API
//! call (the route may name it) or an event's `detail` (which names the
//! action).

use super::{RequestReader, RouteParams, Routes};
use crate::action::{Action, EVENT_DETAIL_TYPE};
use crate::error::ServiceError;
use crate::request::{ParseRules, PasscodeRequest, clip, parse_request};
use serde_json::{Map, Value};

impl RequestReader for Action {
    type Request = PasscodeRequest;

    fn routes(&self) -> Routes {
        self.route_table()
    }

    fn detail_type(&self) -> &'static str {
        EVENT_DETAIL_TYPE
    }

    fn read_api(
        &self,
        params: &RouteParams,
        body: Map<String, Value>,
    ) -> Result<PasscodeRequest, ServiceError> {
        let rules = ParseRules {
            reason_required: self.writes(),
            allow_requested_by: false,
        };
        parse_request(&body, params.get("deviceId"), rules)
    }

    /// It must name this function's action, and may say who is behind it
    /// (`requestedBy`).
    fn read_detail(&self, detail: &Map<String, Value>) -> Result<PasscodeRequest, ServiceError> {
        let action = *self;
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

    fn requested_by(request: &PasscodeRequest) -> Option<String> {
        request.requested_by.clone()
    }
}
