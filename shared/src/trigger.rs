//! Recognises what invoked the function and takes the request and the
//! caller's identity out of it.
//!
//! Every binary accepts four shapes, told apart by their fields:
//! * API Gateway HTTP API, payload 2.0 (`version: "2.0"`, `requestContext.http`),
//! * API Gateway REST API, payload 1.0 (`httpMethod`, `requestContext`),
//! * EventBridge (`detail-type`, `detail`),
//! * a direct invocation (e.g. a Step Functions task) whose payload is the
//!   request itself, like an EventBridge `detail`.

use crate::action::{Action, EVENT_DETAIL_TYPE};
use crate::error::ServiceError;
use crate::request::{MAX_BODY_BYTES, ParseRules, PasscodeRequest, clip, parse_request};
use crate::rights::Grants;
use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest,
};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ApiV2,
    ApiV1,
    EventBridge,
    Direct,
}

impl Source {
    pub fn is_api(self) -> bool {
        matches!(self, Source::ApiV2 | Source::ApiV1)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::ApiV2 => "apiGateway.http",
            Source::ApiV1 => "apiGateway.rest",
            Source::EventBridge => "eventBridge",
            Source::Direct => "directInvoke",
        }
    }
}

/// Who asked, for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// `iam`, `jwt`, `lambdaAuthorizer`, `none`, `eventBridge` or `direct`.
    pub kind: String,
    /// IAM principal ARN, JWT subject, or EventBridge source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// A human name when the credentials carry one (JWT `upn`/`preferred_username`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `requestedBy` of an EventBridge / direct request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The rights a JWT grants; `None` for every other kind of caller,
    /// whose rights IAM checked before the function ran.
    #[serde(skip)]
    pub grants: Option<Grants>,
}

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
    incoming.caller.limit_lengths();
    incoming
}

fn read_event(action: Action, event: &Value) -> Incoming {
    let Value::Object(obj) = event else {
        return invalid(
            Source::Direct,
            Caller::direct(None),
            "the event is not a JSON object",
        );
    };
    let is_v2 = obj.get("version").and_then(Value::as_str) == Some("2.0")
        && obj.contains_key("requestContext");
    if is_v2 {
        let query = obj.get("queryStringParameters").and_then(Value::as_object);
        return match serde_json::from_value::<ApiGatewayV2httpRequest>(without_headers(obj)) {
            Ok(req) => from_api_v2(action, req, query),
            Err(_) => invalid(
                Source::ApiV2,
                Caller::unknown(),
                "the API Gateway event could not be read",
            ),
        };
    }
    if obj.contains_key("httpMethod") && obj.contains_key("requestContext") {
        return match serde_json::from_value::<ApiGatewayProxyRequest>(without_headers(obj)) {
            Ok(req) => from_api_v1(action, req),
            Err(_) => invalid(
                Source::ApiV1,
                Caller::unknown(),
                "the API Gateway event could not be read",
            ),
        };
    }
    if obj.contains_key("detail-type") && obj.contains_key("detail") {
        return match serde_json::from_value::<EventBridgeEvent<Value>>(event.clone()) {
            Ok(ev) => from_eventbridge(action, ev),
            Err(_) => invalid(
                Source::EventBridge,
                Caller::unknown(),
                "the EventBridge event could not be read",
            ),
        };
    }
    from_direct(action, obj)
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

/// Longest value of a caller field kept for the audit record and the
/// idempotency key. Claims and authorizer fields come from outside; an ARN
/// or a UPN is far shorter.
pub const MAX_CALLER_FIELD_CHARS: usize = 256;

impl Caller {
    fn direct(requested_by: Option<String>) -> Caller {
        Caller {
            kind: "direct".into(),
            requested_by,
            ..Default::default()
        }
    }

    /// The caller of an event that could not be read at all.
    fn unknown() -> Caller {
        Caller {
            kind: "unknown".into(),
            ..Default::default()
        }
    }

    fn limit_lengths(&mut self) {
        for field in [
            &mut self.principal,
            &mut self.user,
            &mut self.requested_by,
            &mut self.source_ip,
            &mut self.event_id,
        ] {
            if let Some(value) = field
                && let Some((at, _)) = value.char_indices().nth(MAX_CALLER_FIELD_CHARS)
            {
                value.truncate(at);
            }
        }
    }
}

/// What the route tells: method, the `{deviceId}` in the path if any.
struct Route<'a> {
    method: &'a str,
    path: &'a str,
    device_id: Option<String>,
}

/// Checks that the request came in on one of this function's routes.
fn check_route(action: Action, route: &Route<'_>) -> Result<(), ServiceError> {
    let path = route.path.trim_end_matches('/');
    let known = action.routes().iter().any(|(method, template)| {
        method.eq_ignore_ascii_case(route.method) && path_matches(template, path)
    });
    if known {
        return Ok(());
    }
    let routes: Vec<String> = action
        .routes()
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    Err(ServiceError::invalid(format!(
        "{} {} is not a route of {}; use {}",
        clip(route.method),
        clip(route.path),
        action.function_name(),
        routes.join(" or ")
    )))
}

/// `/v1/devices/{deviceId}/x` matches `/v1/devices/<one segment>/x`.
fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

/// The `{deviceId}` segment of a `/v1/devices/{deviceId}/...` path.
fn device_id_from_path(path: &str) -> Option<String> {
    let mut parts = path.trim_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some("devices"), Some(id)) => percent_encoding::percent_decode_str(id)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned()),
        _ => None,
    }
}

/// Body (JSON object, may be empty) plus `reason`/`ticket` from the query
/// string, for the GET status route that has no body.
fn api_body(
    body: Option<&str>,
    base64: bool,
    query: impl Fn(&str) -> Option<String>,
) -> Result<Map<String, Value>, ServiceError> {
    let text: Option<String> = match body {
        None => None,
        Some(b) if b.len() > MAX_BODY_BYTES * 2 => {
            return Err(ServiceError::invalid(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        Some(b) if base64 => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| ServiceError::invalid("the request body is not UTF-8 JSON"))?,
        ),
        Some(b) => Some(b.to_string()),
    };
    let mut map = match text.as_deref().map(str::trim) {
        None | Some("") => Map::new(),
        Some(t) if t.len() > MAX_BODY_BYTES => {
            return Err(ServiceError::invalid(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        Some(t) => match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ServiceError::invalid(
                    "the request body must be a JSON object",
                ));
            }
            Err(e) => {
                return Err(ServiceError::invalid(format!(
                    "the request body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )));
            }
        },
    };
    for name in ["reason", "ticket"] {
        if let Some(value) = query(name)
            && !map.contains_key(name)
        {
            map.insert(name.to_string(), Value::String(value));
        }
    }
    Ok(map)
}

fn api_request(
    action: Action,
    route: Route<'_>,
    body: Result<Map<String, Value>, ServiceError>,
) -> Result<PasscodeRequest, ServiceError> {
    check_route(action, &route)?;
    let body = body?;
    if body.contains_key("action") {
        return Err(ServiceError::invalid(
            "\"action\" is only used in EventBridge events; the route already names the action",
        ));
    }
    let rules = ParseRules {
        reason_required: action.writes(),
        allow_requested_by: false,
    };
    parse_request(&body, route.device_id.as_deref(), rules)
}

fn api_caller(
    authorizer: &ApiGatewayRequestAuthorizer,
    fallback_arn: Option<String>,
    source_ip: Option<String>,
) -> Caller {
    let mut caller = Caller {
        kind: "none".into(),
        source_ip,
        ..Default::default()
    };
    if let Some(iam) = &authorizer.iam
        && iam.user_arn.is_some()
    {
        caller.kind = "iam".into();
        caller.principal = iam.user_arn.clone();
    } else if let Some(jwt) = &authorizer.jwt {
        caller.kind = "jwt".into();
        let claim = |k: &str| jwt.claims.get(k).map(|v| Value::String(v.clone()));
        let mut grants = Grants::from_claims(claim("roles").as_ref(), claim("scp").as_ref());
        grants.scopes.extend(jwt.scopes.iter().flatten().cloned());
        caller.grants = Some(grants);
        caller.principal = jwt.claims.get("sub").cloned();
        caller.user = ["upn", "preferred_username", "email"]
            .iter()
            .find_map(|k| jwt.claims.get(*k).cloned());
    } else if let Some(Value::Object(claims)) = authorizer.fields.get("claims") {
        // REST API with a Cognito / JWT authorizer.
        let claim = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        caller.kind = "jwt".into();
        caller.grants = Some(Grants::from_claims(claims.get("roles"), claims.get("scp")));
        caller.principal = claim("sub");
        caller.user = claim("upn")
            .or_else(|| claim("preferred_username"))
            .or_else(|| claim("email"));
    } else if !authorizer.fields.is_empty() {
        caller.kind = "lambdaAuthorizer".into();
        caller.principal = ["principalId", "sub", "user"].iter().find_map(|k| {
            authorizer
                .fields
                .get(*k)
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    } else if fallback_arn.is_some() {
        caller.kind = "iam".into();
        caller.principal = fallback_arn;
    }
    caller
}

/// `query` is the event's own `queryStringParameters`: payload 2.0 joins a
/// repeated parameter's values with commas, and the typed struct splits
/// every value at its commas again, which would cut a `reason` of
/// "locked out, on the phone" to "locked out". The values are read as API
/// Gateway sent them instead (a repeated parameter stays comma-joined).
fn from_api_v2(
    action: Action,
    req: ApiGatewayV2httpRequest,
    query: Option<&Map<String, Value>>,
) -> Incoming {
    let ctx = &req.request_context;
    let path = req
        .raw_path
        .clone()
        .or_else(|| ctx.http.path.clone())
        .unwrap_or_default();
    let device_id = req
        .path_parameters
        .get("deviceId")
        .cloned()
        .or_else(|| device_id_from_path(&path));
    let caller = api_caller(
        ctx.authorizer
            .as_ref()
            .unwrap_or(&ApiGatewayRequestAuthorizer::default()),
        None,
        ctx.http.source_ip.clone(),
    );
    let body = api_body(req.body.as_deref(), req.is_base64_encoded, |k| {
        query
            .and_then(|q| q.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let route = Route {
        method: ctx.http.method.as_str(),
        path: &path,
        device_id,
    };
    Incoming {
        source: Source::ApiV2,
        caller,
        request: api_request(action, route, body),
    }
}

fn from_api_v1(action: Action, req: ApiGatewayProxyRequest) -> Incoming {
    let ctx = &req.request_context;
    let path = req.path.clone().unwrap_or_default();
    let device_id = req
        .path_parameters
        .get("deviceId")
        .cloned()
        .or_else(|| device_id_from_path(&path));
    let caller = api_caller(
        &ctx.authorizer,
        ctx.identity.user_arn.clone(),
        ctx.identity.source_ip.clone(),
    );
    let body = api_body(req.body.as_deref(), req.is_base64_encoded, |k| {
        req.query_string_parameters.first(k).map(str::to_string)
    });
    let route = Route {
        method: req.http_method.as_str(),
        path: &path,
        device_id,
    };
    Incoming {
        source: Source::ApiV1,
        caller,
        request: api_request(action, route, body),
    }
}

/// The request inside an EventBridge `detail` or a direct payload.
fn event_request(
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

fn from_eventbridge(action: Action, ev: EventBridgeEvent<Value>) -> Incoming {
    let requested_by = requested_by(&ev.detail);
    let caller = Caller {
        kind: "eventBridge".into(),
        principal: Some(ev.source.clone()),
        requested_by,
        event_id: ev.id.clone(),
        ..Default::default()
    };
    let request = if ev.detail_type != EVENT_DETAIL_TYPE {
        Err(ServiceError::invalid(format!(
            "detail-type must be {EVENT_DETAIL_TYPE:?}, got {:?}",
            clip(&ev.detail_type)
        )))
    } else {
        match &ev.detail {
            Value::Object(detail) => event_request(action, detail),
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

fn from_direct(action: Action, payload: &Map<String, Value>) -> Incoming {
    let caller = Caller::direct(requested_by(&Value::Object(payload.clone())));
    Incoming {
        source: Source::Direct,
        caller,
        request: event_request(action, payload),
    }
}

fn requested_by(detail: &Value) -> Option<String> {
    detail
        .get("requestedBy")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(256).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::request::DeviceRef;
    use serde_json::json;

    const ID: &str = "11111111-0000-4000-8000-000000000001";

    fn v2(method: &str, path: &str, device: Option<&str>, body: Option<Value>) -> Value {
        json!({
            "version": "2.0",
            "routeKey": format!("{method} {path}"),
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "pathParameters": device.map(|d| json!({"deviceId": d})),
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "x", "requestId": "r",
                "routeKey": "x", "stage": "$default", "time": "26/Nov/2026:05:00:00 +0000", "timeEpoch": 0,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "curl"},
                "authorizer": {"iam": {"accessKey": "AKIA", "accountId": "123456789012", "callerId": "AID",
                    "principalOrgId": null, "userArn": "arn:aws:iam::123456789012:user/helpdesk", "userId": "AID"}}
            },
            "body": body.map(|b| b.to_string()),
            "isBase64Encoded": false
        })
    }

    fn v1(method: &str, path: &str, device: Option<&str>, body: Option<Value>) -> Value {
        json!({
            "resource": path, "path": path, "httpMethod": method,
            "headers": {}, "multiValueHeaders": {}, "queryStringParameters": null,
            "pathParameters": device.map(|d| json!({"deviceId": d})),
            "requestContext": {"accountId": "123456789012", "resourceId": "x", "stage": "prod", "requestId": "r",
                "httpMethod": method, "resourcePath": path, "path": path,
                "identity": {"sourceIp": "192.0.2.2", "userArn": "arn:aws:iam::123456789012:role/snow", "caller": "AROA"}},
            "body": body.map(|b| b.to_string()),
            "isBase64Encoded": false
        })
    }

    fn eventbridge(detail: Value) -> Value {
        json!({"version": "0", "id": "ev-1", "detail-type": "Passcode Action Requested", "source": "com.contoso.helpdesk",
               "account": "123456789012", "time": "2026-11-26T05:00:00Z", "region": "us-east-1", "resources": [], "detail": detail})
    }

    #[test]
    fn caller_fields_are_bounded_and_unreadable_events_say_so() {
        let mut event = eventbridge(json!({"action": "resetPasscode", "device": {"id": ID},
            "reason": "r", "requestedBy": "é".repeat(10_000)}));
        event["source"] = json!("s".repeat(100_000));
        let inc = parse_event(Action::ResetPasscode, &event);
        assert_eq!(
            inc.caller.principal.as_deref().map(str::len),
            Some(MAX_CALLER_FIELD_CHARS)
        );
        assert_eq!(
            inc.caller
                .requested_by
                .as_deref()
                .map(|v| v.chars().count()),
            Some(MAX_CALLER_FIELD_CHARS)
        );
        let mut broken = v2("POST", "/v1/reset-passcode", None, None);
        broken["requestContext"]["http"] = json!(42);
        let inc = parse_event(Action::ResetPasscode, &broken);
        assert_eq!(inc.caller.kind, "unknown");
        assert!(inc.request.is_err());
    }

    #[test]
    fn api_v2_path_form_with_iam_caller() {
        let path = format!("/v1/devices/{ID}/reset-passcode");
        let inc = parse_event(
            Action::ResetPasscode,
            &v2(
                "POST",
                &path,
                Some(ID),
                Some(json!({"reason": "locked out"})),
            ),
        );
        assert_eq!(inc.source, Source::ApiV2);
        assert_eq!(inc.caller.kind, "iam");
        assert_eq!(
            inc.caller.principal.as_deref(),
            Some("arn:aws:iam::123456789012:user/helpdesk")
        );
        assert_eq!(inc.request.unwrap().device, DeviceRef::Id(ID.into()));
    }

    #[test]
    fn api_v2_body_form_and_base64_body() {
        let mut ev = v2("POST", "/v1/remove-passcode", None, None);
        let body =
            json!({"device": {"serialNumber": "F2LXK0AAAA10"}, "reason": "forgot"}).to_string();
        ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
        ev["isBase64Encoded"] = json!(true);
        let inc = parse_event(Action::RemovePasscode, &ev);
        assert_eq!(
            inc.request.unwrap().device,
            DeviceRef::SerialNumber("F2LXK0AAAA10".into())
        );
    }

    #[test]
    fn api_v2_jwt_caller() {
        let mut ev = v2(
            "POST",
            "/v1/reset-passcode",
            None,
            Some(json!({"device": {"id": ID}, "reason": "r"})),
        );
        ev["requestContext"]["authorizer"] =
            json!({"jwt": {"claims": {"sub": "abc", "upn": "agent@contoso.com"}, "scopes": null}});
        let inc = parse_event(Action::ResetPasscode, &ev);
        assert_eq!(inc.caller.kind, "jwt");
        assert_eq!(inc.caller.user.as_deref(), Some("agent@contoso.com"));
    }

    #[test]
    fn api_v1_path_form() {
        let path = format!("/v1/devices/{ID}/reset-windows-pin");
        let inc = parse_event(
            Action::ResetWindowsPin,
            &v1(
                "POST",
                &path,
                Some(ID),
                Some(json!({"reason": "r", "dryRun": true})),
            ),
        );
        assert_eq!(inc.source, Source::ApiV1);
        assert_eq!(
            inc.caller.principal.as_deref(),
            Some("arn:aws:iam::123456789012:role/snow")
        );
        let req = inc.request.unwrap();
        assert!(req.dry_run);
        assert_eq!(req.device, DeviceRef::Id(ID.into()));
    }

    #[test]
    fn status_get_takes_reason_from_the_query() {
        let path = format!("/v1/devices/{ID}/passcode-status");
        let mut ev = v2("GET", &path, Some(ID), None);
        ev["queryStringParameters"] = json!({"reason": "caller on the phone", "ticket": "INC9"});
        let req = parse_event(Action::Status, &ev).request.unwrap();
        assert_eq!(req.reason.as_deref(), Some("caller on the phone"));
        assert_eq!(req.ticket.as_deref(), Some("INC9"));
    }

    /// Found by the `api_body` fuzz target: payload 2.0 lost everything
    /// after the first comma of a query value.
    #[test]
    fn query_values_keep_their_commas() {
        let path = format!("/v1/devices/{ID}/passcode-status");
        let query = json!({"reason": "locked out, on the phone", "ticket": "INC1,INC2"});
        let mut ev = v2("GET", &path, Some(ID), None);
        ev["queryStringParameters"] = query.clone();
        let req = parse_event(Action::Status, &ev).request.unwrap();
        assert_eq!(req.reason.as_deref(), Some("locked out, on the phone"));
        assert_eq!(req.ticket.as_deref(), Some("INC1,INC2"));
        let mut ev = v1("GET", &path, Some(ID), None);
        ev["queryStringParameters"] = query;
        assert_eq!(parse_event(Action::Status, &ev).request.unwrap(), req);
    }

    #[test]
    fn wrong_route_method_and_bad_bodies_are_invalid() {
        let cases = [
            (
                v2("POST", "/v1/devices/x/remove-passcode", Some("x"), None),
                "not a route of reset-passcode",
            ),
            (v2("GET", "/v1/reset-passcode", None, None), "not a route"),
            (
                v2("POST", "/v1/reset-passcode", None, Some(json!([1]))),
                "JSON object",
            ),
            (
                v2(
                    "POST",
                    "/v1/reset-passcode",
                    None,
                    Some(json!({"device": {"id": ID}, "reason": "r", "action": "status"})),
                ),
                "only used in EventBridge",
            ),
            (
                v2(
                    "POST",
                    "/v1/reset-passcode",
                    None,
                    Some(json!({"device": {"id": ID}, "reason": "r", "requestedBy": "me"})),
                ),
                "only accepted from EventBridge",
            ),
        ];
        for (ev, expected) in cases {
            let err = parse_event(Action::ResetPasscode, &ev).request.unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest);
            assert!(err.message.contains(expected), "{}", err.message);
        }
        let mut ev = v2("POST", "/v1/reset-passcode", None, None);
        ev["body"] = json!("{not json");
        let err = parse_event(Action::ResetPasscode, &ev).request.unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        ev["body"] = json!(format!("{{\"reason\": \"{}\"}}", "x".repeat(40_000)));
        let err = parse_event(Action::ResetPasscode, &ev).request.unwrap_err();
        assert!(err.message.contains("larger than"), "{}", err.message);
    }

    #[test]
    fn eventbridge_request_and_caller() {
        let detail = json!({"action": "resetPasscode", "device": {"imei": "350000000000001"}, "reason": "r",
                            "requestedBy": "agent@contoso.com", "ticket": "INC1"});
        let inc = parse_event(Action::ResetPasscode, &eventbridge(detail));
        assert_eq!(inc.source, Source::EventBridge);
        assert_eq!(
            inc.caller.principal.as_deref(),
            Some("com.contoso.helpdesk")
        );
        assert_eq!(
            inc.caller.requested_by.as_deref(),
            Some("agent@contoso.com")
        );
        assert_eq!(inc.caller.event_id.as_deref(), Some("ev-1"));
        assert_eq!(
            inc.request.unwrap().device,
            DeviceRef::Imei("350000000000001".into())
        );
    }

    #[test]
    fn eventbridge_wrong_action_or_detail_type_is_invalid() {
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

    #[test]
    fn direct_invocation_is_the_request_itself() {
        let inc = parse_event(
            Action::Status,
            &json!({"action": "status", "device": {"serialNumber": "A1"}}),
        );
        assert_eq!(inc.source, Source::Direct);
        assert!(inc.request.is_ok());
        let inc = parse_event(Action::Status, &json!("hello"));
        assert_eq!(inc.source, Source::Direct);
        assert!(inc.request.is_err());
    }

    #[test]
    fn paths_match_templates_segment_by_segment() {
        assert!(path_matches(
            "/v1/devices/{deviceId}/reset-passcode",
            "/v1/devices/abc/reset-passcode"
        ));
        assert!(!path_matches(
            "/v1/devices/{deviceId}/reset-passcode",
            "/v1/devices//reset-passcode"
        ));
        assert!(!path_matches(
            "/v1/devices/{deviceId}/reset-passcode",
            "/v1/devices/a/b/reset-passcode"
        ));
        assert_eq!(
            device_id_from_path("/v1/devices/a%2Db/reset-passcode"),
            Some("a-b".into())
        );
    }

    // ---- Limits: hostile or broken events end as a 400, in bounded time. ----

    fn v2_body(body: &str) -> Value {
        let mut ev = v2("POST", "/v1/reset-passcode", None, None);
        ev["body"] = json!(body);
        ev
    }

    fn invalid_message(action: Action, ev: &Value) -> String {
        let err = parse_event(action, ev).request.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        err.message
    }

    #[test]
    fn bodies_over_16_kib_are_refused_even_at_6_mb() {
        let valid = |pad: usize| {
            json!({"device": {"id": ID}, "reason": "r", "ticket": "x".repeat(pad)}).to_string()
        };
        // Exactly at the limit the body is read (and the ticket is too long).
        let at_limit = valid(MAX_BODY_BYTES - valid(0).len());
        assert_eq!(at_limit.len(), MAX_BODY_BYTES);
        let msg = invalid_message(Action::ResetPasscode, &v2_body(&at_limit));
        assert!(msg.contains("\"ticket\" is longer"), "{msg}");
        let over = valid(MAX_BODY_BYTES + 1 - valid(0).len());
        let msg = invalid_message(Action::ResetPasscode, &v2_body(&over));
        assert!(msg.contains("larger than 16384 bytes"), "{msg}");
        // 6 MB, the most Lambda accepts, plain and base64: refused before parsing.
        let huge = valid(6 * 1024 * 1024);
        let started = std::time::Instant::now();
        let msg = invalid_message(Action::ResetPasscode, &v2_body(&huge));
        assert!(msg.contains("larger than"), "{msg}");
        let mut ev = v1("POST", "/v1/reset-passcode", None, None);
        ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&huge));
        ev["isBase64Encoded"] = json!(true);
        let msg = invalid_message(Action::ResetPasscode, &ev);
        assert!(msg.contains("larger than"), "{msg}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn deeply_nested_bodies_are_invalid_json() {
        // 100,000 `[` is over the size limit before nesting matters.
        let msg = invalid_message(Action::ResetPasscode, &v2_body(&"[".repeat(100_000)));
        assert!(msg.contains("larger than"), "{msg}");
        // Within the size limit, serde_json stops at 128 levels.
        for body in [
            "[".repeat(16_000),
            format!("{{\"reason\": {}", "[".repeat(16_000)),
            format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)),
        ] {
            let msg = invalid_message(Action::ResetPasscode, &v2_body(&body));
            assert!(msg.contains("not valid JSON"), "{msg}");
        }
        // Nesting within serde_json's limit (128) is read and then refused.
        let body = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let msg = invalid_message(Action::ResetPasscode, &v2_body(&body));
        assert!(msg.contains("must be a JSON object"), "{msg}");
    }

    /// Lambda's runtime parses the payload with serde_json before `handle`
    /// runs, with serde_json's default recursion limit of 128. A deeper event
    /// never reaches `parse_event`: the runtime reports an invocation error.
    #[test]
    fn deeply_nested_events_stop_in_the_runtime_parser() {
        let deep = "[".repeat(100_000);
        let err = serde_json::from_slice::<Value>(deep.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
        // The deepest event the runtime accepts is handled normally.
        let text = format!(
            "{{\"action\":\"status\",\"device\":{{\"id\":\"{ID}\"}},\"x\":{}1{}}}",
            "[".repeat(126),
            "]".repeat(126)
        );
        let ev: Value = serde_json::from_str(&text).unwrap();
        let msg = invalid_message(Action::Status, &ev);
        assert!(msg.contains("unknown field \"x\""), "{msg}");
        for deep_in in ["detail", "requestContext", "body"] {
            let mut ev = match deep_in {
                "detail" => eventbridge(json!({})),
                _ => v2("POST", "/v1/reset-passcode", None, None),
            };
            let nested: Value =
                serde_json::from_str(&format!("{}{}", "[".repeat(120), "]".repeat(120))).unwrap();
            if deep_in == "requestContext" {
                ev["requestContext"]["authorizer"]["lambda"] = json!({"x": nested});
            } else {
                ev[deep_in] = nested;
            }
            let inc = parse_event(Action::ResetPasscode, &ev);
            assert!(inc.request.is_err(), "{deep_in}");
        }
    }

    #[test]
    fn non_utf8_base64_bodies_are_invalid() {
        let mut ev = v2("POST", "/v1/reset-passcode", None, None);
        ev["isBase64Encoded"] = json!(true);
        for bytes in [
            &b"{\"reason\": \"\xff\xfe\"}"[..],
            b"\xc0\xaf",
            b"{\"device\": {\"id\": \"\xed\xa0\x80\"}}", // a lone surrogate
        ] {
            ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            let msg = invalid_message(Action::ResetPasscode, &ev);
            assert!(msg.contains("not UTF-8 JSON"), "{msg}");
        }
        ev["body"] = json!("not base64!");
        let msg = invalid_message(Action::ResetPasscode, &ev);
        assert!(msg.contains("not UTF-8 JSON"), "{msg}");
    }

    /// `http::HeaderMap` panics past 32,768 entries; with `panic = "abort"`
    /// that killed the process on a direct invocation shaped like an API
    /// event. Headers are now dropped before the typed parse.
    #[test]
    fn huge_header_maps_do_not_panic() {
        let many: Map<String, Value> = (0..40_000)
            .map(|i| (format!("x-h{i}"), json!("v")))
            .collect();
        let many_multi: Map<String, Value> = (0..40_000)
            .map(|i| (format!("x-h{i}"), json!(["v"])))
            .collect();
        let body = json!({"device": {"id": ID}, "reason": "r"});
        let mut ev = v2("POST", "/v1/reset-passcode", None, Some(body.clone()));
        ev["headers"] = Value::Object(many.clone());
        assert!(parse_event(Action::ResetPasscode, &ev).request.is_ok());
        let mut ev = v1("POST", "/v1/reset-passcode", None, Some(body.clone()));
        ev["headers"] = Value::Object(many);
        ev["multiValueHeaders"] = Value::Object(many_multi);
        assert!(parse_event(Action::ResetPasscode, &ev).request.is_ok());
        let mut ev = v1("POST", "/v1/reset-passcode", None, Some(body));
        ev["multiValueHeaders"] = json!({"x-one": vec!["v"; 40_000]});
        ev["headers"] = json!({"bad header name": "\u{0}"});
        assert!(parse_event(Action::ResetPasscode, &ev).request.is_ok());
    }

    #[test]
    fn huge_numbers_of_query_parameters_are_fine() {
        let path = format!("/v1/devices/{ID}/passcode-status");
        let params: Map<String, Value> = (0..100_000)
            .map(|i| (format!("p{i}"), json!("v")))
            .collect();
        let started = std::time::Instant::now();
        let mut ev = v2("GET", &path, Some(ID), None);
        ev["queryStringParameters"] = Value::Object(params.clone());
        ev["queryStringParameters"]["reason"] = json!("on the phone");
        let req = parse_event(Action::Status, &ev).request.unwrap();
        assert_eq!(req.reason.as_deref(), Some("on the phone"));
        // REST API: the single-value map is read; the multi-value one is not.
        let mut ev = v1("GET", &path, Some(ID), None);
        ev["queryStringParameters"] = Value::Object(params);
        ev["queryStringParameters"]["ticket"] = json!("INC9");
        ev["multiValueQueryStringParameters"] = json!({"reason": vec!["x"; 100_000]});
        let req = parse_event(Action::Status, &ev).request.unwrap();
        assert_eq!(req.ticket.as_deref(), Some("INC9"));
        assert_eq!(req.reason, None);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn echoed_values_are_clipped() {
        let long = "p".repeat(1_000_000);
        let mut ev = v2("POST", &format!("/v1/{long}"), None, None);
        ev["requestContext"]["http"]["method"] = json!("PATCH");
        let mut cases = vec![ev];
        cases.push(json!({"action": "status", "device": {"id": ID}, long.as_str(): 1}));
        cases.push(json!({"action": long, "device": {"id": ID}}));
        cases.push(json!({"action": "status", "device": {"\u{1}".repeat(100_000): 1}}));
        let mut ev = eventbridge(json!({"action": "status", "device": {"id": ID}}));
        ev["detail-type"] = json!(long);
        cases.push(ev);
        for ev in cases {
            let msg = invalid_message(Action::Status, &ev);
            assert!(msg.len() < 1024, "{} bytes: {}", msg.len(), &msg[..200]);
            assert!(msg.contains('…'), "{msg}");
        }
    }
}
