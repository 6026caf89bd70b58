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
//!
//! What the request inside says is up to the function: a [`RequestReader`]
//! turns an API body or an event's `detail` into its request. The single
//! device actions read a [`PasscodeRequest`] ([`single`]); the bulk
//! function reads its own.

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
mod single;
mod sqs;
#[cfg(test)]
pub(crate) mod test_events;

#[cfg(any(test, feature = "fuzzing"))]
pub use crate::origin::MAX_CALLER_FIELD_CHARS;
pub use crate::origin::{Caller, Source};
pub(crate) use route::{RouteParams, Routes};
pub use sqs::{QueuedRequest, messages as queued_requests};
#[cfg(feature = "bulk")]
pub(crate) use sqs::is_batch_id;

use crate::action::Action;
use crate::error::ServiceError;
use crate::request::PasscodeRequest;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

/// What a function reads from the request inside an event.
pub(crate) trait RequestReader {
    type Request;
    /// The function's API routes.
    fn routes(&self) -> Routes;
    /// The EventBridge `detail-type` it accepts.
    fn detail_type(&self) -> &'static str;
    /// The largest API body it reads.
    fn max_body_bytes(&self) -> usize {
        crate::request::MAX_BODY_BYTES
    }
    /// An API call on one of [`Self::routes`], with its body.
    fn read_api(
        &self,
        params: &RouteParams,
        body: Map<String, Value>,
    ) -> Result<Self::Request, ServiceError>;
    /// An EventBridge `detail` or a direct payload.
    fn read_detail(&self, detail: &Map<String, Value>) -> Result<Self::Request, ServiceError>;
    /// The validated `requestedBy` of an event or direct request.
    fn requested_by(request: &Self::Request) -> Option<String>;
}

/// A recognised invocation.
#[derive(Debug)]
pub struct Parsed<R> {
    pub source: Source,
    pub caller: Caller,
    /// The validated request, or why it is invalid.
    pub request: Result<R, ServiceError>,
}

/// An invocation of a single-device function.
pub type Incoming = Parsed<PasscodeRequest>;

/// Splits an event into source, caller and request. Never fails: an event it
/// cannot read becomes an invalid request of the most likely source.
pub fn parse_event(action: Action, event: &Value) -> Incoming {
    read(&action, event)
}

/// [`parse_event`] for any function's reader.
pub(crate) fn read<R: RequestReader>(reader: &R, event: &Value) -> Parsed<R::Request> {
    let mut parsed = read_event(reader, event);
    parsed.finish::<R>();
    parsed
}

impl<T> Parsed<T> {
    /// Who is behind an EventBridge / direct / queued request is the
    /// validated `requestedBy` (API requests refuse the field), never the
    /// raw text; caller fields are clipped for the audit.
    fn finish<R: RequestReader<Request = T>>(&mut self) {
        if let Ok(request) = &self.request {
            self.caller.requested_by = R::requested_by(request);
        }
        self.caller.limit_lengths();
    }
}

fn read_event<R: RequestReader>(reader: &R, event: &Value) -> Parsed<R::Request> {
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
            Ok(req) => api_v2::parse(reader, req, query),
            Err(_) => invalid(
                Source::ApiV2,
                Caller::unknown(),
                "the API Gateway event could not be read",
            ),
        };
    }
    if obj.contains_key("httpMethod") && obj.contains_key("requestContext") {
        return match serde_json::from_value::<ApiGatewayProxyRequest>(without_headers(obj)) {
            Ok(req) => api_v1::parse(reader, req),
            Err(_) => invalid(
                Source::ApiV1,
                Caller::unknown(),
                "the API Gateway event could not be read",
            ),
        };
    }
    if obj.contains_key("detail-type") && obj.contains_key("detail") {
        return match serde_json::from_value::<EventBridgeEvent<Value>>(event.clone()) {
            Ok(ev) => eventbridge::parse(reader, ev),
            Err(_) => invalid(
                Source::EventBridge,
                Caller::unknown(),
                "the EventBridge event could not be read",
            ),
        };
    }
    direct::parse(reader, obj)
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

fn invalid<T>(source: Source, caller: Caller, message: &str) -> Parsed<T> {
    Parsed {
        source,
        caller,
        request: Err(ServiceError::invalid(message)),
    }
}
