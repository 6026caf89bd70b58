//! Recognises what invoked the function and takes the request and the
//! caller's identity out of it.
//!
//! Every binary accepts four shapes, told apart by their fields, one module
//! each:
//! * [`api_v2`]: API Gateway HTTP API, payload 2.0 (`version: "2.0"`, `requestContext`),
//! * [`api_v1`]: API Gateway REST API, payload 1.0 (`httpMethod`, `requestContext`),
//! * [`eventbridge`]: EventBridge (`detail-type`, `detail`),
//! * [`direct`]: a direct invocation (e.g. a Step Functions task) whose
//!   payload is the request itself, like an EventBridge `detail`.
//!
//! Both API formats share [`api`] (body, query) and [`route`] (which route
//! API Gateway matched); [`caller`] says who asked.

mod api;
mod api_v1;
mod api_v2;
#[cfg(test)]
mod aws_samples;
mod caller;
mod direct;
mod eventbridge;
#[cfg(test)]
mod limits;
mod route;
mod sqs;
#[cfg(test)]
mod test_events;

#[cfg(any(test, feature = "fuzzing"))]
pub use crate::origin::MAX_CALLER_FIELD_CHARS;
pub use crate::origin::{Caller, Source};
pub use sqs::{QueuedRequest, messages as queued_requests};

use crate::action::Action;
use crate::error::ServiceError;
use crate::request::PasscodeRequest;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

/// A recognised invocation.
#[derive(Debug)]
pub struct Incoming {
    pub source: Source,
    pub caller: Caller,
    /// The validated request, or why it is invalid.
    pub request: Result<PasscodeRequest, ServiceError>,
}

/// Splits an event into source, caller and request. Never fails: an event it
/// cannot read becomes an invalid request of the most likely source.
pub fn parse_event(action: Action, event: &Value) -> Incoming {
    let mut incoming = read_event(action, event);
    incoming.finish();
    incoming
}

impl Incoming {
    /// Who is behind an EventBridge / direct / queued request is the
    /// validated `requestedBy` (API requests refuse the field), never the
    /// raw text; caller fields are clipped for the audit.
    fn finish(&mut self) {
        if let Ok(request) = &self.request {
            self.caller.requested_by = request.requested_by.clone();
        }
        self.caller.limit_lengths();
    }
}

fn read_event(action: Action, event: &Value) -> Incoming {
    let Value::Object(obj) = event else {
        return invalid(
            Source::Direct,
            Caller::direct(),
            "the event is not a JSON object",
        );
    };
    let is_v2 = obj.get("version").and_then(Value::as_str) == Some("2.0")
        && obj.contains_key("requestContext");
    if is_v2 {
        let query = obj.get("queryStringParameters").and_then(Value::as_object);
        return match serde_json::from_value::<ApiGatewayV2httpRequest>(without_headers(obj)) {
            Ok(req) => api_v2::parse(action, req, query),
            Err(_) => invalid(
                Source::ApiV2,
                Caller::unknown(),
                "the API Gateway event could not be read",
            ),
        };
    }
    if obj.contains_key("httpMethod") && obj.contains_key("requestContext") {
        return match serde_json::from_value::<ApiGatewayProxyRequest>(without_headers(obj)) {
            Ok(req) => api_v1::parse(action, req),
            Err(_) => invalid(
                Source::ApiV1,
                Caller::unknown(),
                "the API Gateway event could not be read",
            ),
        };
    }
    if obj.contains_key("detail-type") && obj.contains_key("detail") {
        return match serde_json::from_value::<EventBridgeEvent<Value>>(event.clone()) {
            Ok(ev) => eventbridge::parse(action, ev),
            Err(_) => invalid(
                Source::EventBridge,
                Caller::unknown(),
                "the EventBridge event could not be read",
            ),
        };
    }
    direct::parse(action, obj)
}

/// The event without `headers` / `multiValueHeaders`, for the typed API
/// Gateway structs. Nothing here reads headers, and `http::HeaderMap`
/// *panics* past 32,768 entries (an abort in release builds): a direct
/// invocation shaped like an API event with a huge `headers` object must
/// not get that far.
fn without_headers(obj: &Map<String, Value>) -> Value {
    let mut obj = obj.clone();
    obj.remove("headers");
    obj.remove("multiValueHeaders");
    Value::Object(obj)
}

fn invalid(source: Source, caller: Caller, message: &str) -> Incoming {
    Incoming {
        source,
        caller,
        request: Err(ServiceError::invalid(message)),
    }
}
