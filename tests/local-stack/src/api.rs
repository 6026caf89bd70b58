//! A small stand-in for API Gateway (HTTP API, payload 2.0) and for an
//! EventBridge rule, in front of running function processes.
//!
//! * `METHOD /v1/...` for every route in [`Action::routes`]: the request
//!   becomes an HTTP API event, the function's answer becomes the response.
//!   The caller is IAM user `local-admin` unless an `X-Local-Caller` header
//!   says otherwise: an ARN (IAM), a bare name (IAM user of that name),
//!   `jwt:<sub>` or `jwt:<sub>:<upn>` (JWT authorizer), or `anonymous`.
//! * `POST /events` with one PutEvents entry (`detail-type`, `source`,
//!   `detail`): routed by `detail.action`, answered with the function's
//!   result, or 502 and `{"errorType","errorMessage"}` for an invocation error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use passcode_core::Action;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::events::{self, Caller};
use crate::runtime::{FunctionProcess, InvokeOutcome};

/// API Gateway's maximum integration timeout.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CALLER: &str = "arn:aws:iam::000000000000:user/local-admin";

type Functions = Arc<HashMap<Action, Arc<FunctionProcess>>>;

/// The running front; dropping it stops serving.
pub struct ApiFront {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ApiFront {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ApiFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the routes of the actions in `functions` on `bind` (port 0 for any).
pub async fn serve_api(
    bind: SocketAddr,
    functions: HashMap<Action, Arc<FunctionProcess>>,
) -> anyhow::Result<ApiFront> {
    let app = Router::new()
        .route("/events", post(put_event))
        .fallback(http_route)
        .with_state(Arc::new(functions));
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding the API front to {bind}"))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("[api] server stopped: {error}");
        }
    });
    Ok(ApiFront { addr, task })
}

/// A matched route: which function, its template and the `{deviceId}` value.
struct RouteMatch {
    action: Action,
    template: &'static str,
    device_param: Option<(&'static str, String)>,
}

fn match_route(method: &Method, path: &str, functions: &Functions) -> Option<RouteMatch> {
    for action in Action::ALL {
        if !functions.contains_key(&action) {
            continue;
        }
        for (route_method, template) in action.routes() {
            if *route_method != method.as_str() {
                continue;
            }
            if let Some(device_param) = match_template(template, path) {
                return Some(RouteMatch {
                    action,
                    template,
                    device_param,
                });
            }
        }
    }
    None
}

/// `Some(None)` for a literal match, `Some(Some((name, value)))` when a
/// `{name}` segment captured `value`.
fn match_template(template: &'static str, path: &str) -> Option<Option<(&'static str, String)>> {
    let wanted: Vec<&'static str> = template.split('/').collect();
    let got: Vec<&str> = path.split('/').collect();
    if wanted.len() != got.len() {
        return None;
    }
    let mut captured = None;
    for (w, g) in wanted.into_iter().zip(got) {
        if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            if g.is_empty() {
                return None;
            }
            captured = Some((name, percent_decode(g)));
        } else if w != g {
            return None;
        }
    }
    Some(captured)
}

async fn http_route(
    axum::extract::State(functions): axum::extract::State<Functions>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Some(route) = match_route(&method, path, &functions) else {
        return gateway_message(StatusCode::NOT_FOUND, "Not Found");
    };
    let function = &functions[&route.action];
    let caller = caller_from(&headers);
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(name), percent_decode(value))
                })
                .collect()
        })
        .unwrap_or_default();
    let query_refs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let device_param = route
        .device_param
        .as_ref()
        .map(|(name, value)| (*name, value.as_str()));

    let mut event = events::with_query(
        events::api_v2(method.as_str(), path, device_param, None, &caller),
        &query_refs,
    );
    // Known exactly here, whatever encoding the path used.
    let route_key = format!("{method} {}", route.template);
    event["routeKey"] = route_key.as_str().into();
    event["requestContext"]["routeKey"] = route_key.into();
    // The real request's headers replace the made-up ones; HTTP APIs lower-case names.
    for (name, value) in &headers {
        if name.as_str() == "x-local-caller" {
            continue;
        }
        if let Ok(value) = value.to_str() {
            event["headers"][name.as_str()] = value.into();
        }
    }
    if !body.is_empty() {
        match std::str::from_utf8(&body) {
            Ok(text) => event["body"] = text.into(),
            Err(_) => {
                event["body"] = base64::engine::general_purpose::STANDARD
                    .encode(&body)
                    .into();
                event["isBase64Encoded"] = true.into();
            }
        }
    }
    let gateway_request_id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let invocation = function.invoke(event, INVOKE_TIMEOUT).await;
    let mut response = match invocation.outcome {
        InvokeOutcome::Response(answer) => proxy_response(answer),
        InvokeOutcome::Timeout => {
            eprintln!("[api] {} timed out", function.name());
            gateway_message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        other => {
            eprintln!("[api] {} failed: {other:?}", function.name());
            gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    if let Ok(value) = HeaderValue::from_str(&gateway_request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    response
}

/// `X-Local-Caller`, as described in the module docs.
fn caller_from(headers: &HeaderMap) -> Caller {
    let Some(value) = headers.get("x-local-caller").and_then(|v| v.to_str().ok()) else {
        return Caller::iam(DEFAULT_CALLER);
    };
    let value = value.trim();
    if value.eq_ignore_ascii_case("anonymous") {
        Caller::Anonymous
    } else if let Some(rest) = value.strip_prefix("jwt:") {
        match rest.split_once(':') {
            Some((sub, upn)) => Caller::jwt(sub, Some(upn)),
            None => Caller::jwt(rest, None),
        }
    } else if value.starts_with("arn:") {
        Caller::iam(value)
    } else {
        Caller::iam(format!("arn:aws:iam::000000000000:user/{value}"))
    }
}

/// Turns a payload-2.0 answer into HTTP. Like HTTP APIs, an answer without
/// `statusCode` is sent as a 200 JSON body.
fn proxy_response(answer: Value) -> Response {
    let Some(status) = answer.get("statusCode").and_then(Value::as_u64) else {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            answer.to_string(),
        )
            .into_response();
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match answer.get("body") {
        Some(Value::String(text)) => {
            if answer.get("isBase64Encoded") == Some(&Value::Bool(true)) {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap_or_else(|_| text.clone().into_bytes())
            } else {
                text.clone().into_bytes()
            }
        }
        Some(Value::Null) | None => Vec::new(),
        Some(other) => other.to_string().into_bytes(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(map) = answer.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&text),
            ) {
                headers.insert(name, value);
            }
        }
    }
    if let Some(cookies) = answer.get("cookies").and_then(Value::as_array) {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                headers.append("set-cookie", value);
            }
        }
    }
    response
}

async fn put_event(
    axum::extract::State(functions): axum::extract::State<Functions>,
    body: Bytes,
) -> Response {
    let entry: Value = match serde_json::from_slice(&body) {
        Ok(entry) => entry,
        Err(error) => {
            return gateway_message(
                StatusCode::BAD_REQUEST,
                &format!("body is not JSON: {error}"),
            );
        }
    };
    let detail = entry.get("detail").cloned().unwrap_or(Value::Null);
    let Some(action_name) = detail.get("action").and_then(Value::as_str) else {
        return gateway_message(StatusCode::BAD_REQUEST, "detail.action is required");
    };
    let Some(action) = Action::from_event_action(action_name) else {
        return gateway_message(
            StatusCode::BAD_REQUEST,
            &format!("no rule matches detail.action {action_name:?}"),
        );
    };
    let Some(function) = functions.get(&action) else {
        return gateway_message(StatusCode::NOT_FOUND, "function not running");
    };
    let text = |name: &str, default: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let event = events::eventbridge_with(
        &text("source", "com.example.helpdesk"),
        &text("detail-type", passcode_core::action::EVENT_DETAIL_TYPE),
        &uuid::Uuid::new_v4().to_string(),
        &detail,
    );

    let invocation = function.invoke(event, INVOKE_TIMEOUT).await;
    let (error_type, error_message) = match invocation.outcome {
        InvokeOutcome::Response(result) => {
            return (StatusCode::OK, axum::Json(result)).into_response();
        }
        InvokeOutcome::Error {
            error_type,
            error_message,
        } => (error_type, error_message),
        InvokeOutcome::Timeout => (
            "Sandbox.Timedout".to_owned(),
            format!(
                "Task timed out after {:.2} seconds",
                INVOKE_TIMEOUT.as_secs_f64()
            ),
        ),
        InvokeOutcome::Crashed(message) => {
            eprintln!("[api] {} crashed: {message}", function.name());
            let first_line = message.lines().next().unwrap_or_default().to_owned();
            ("Runtime.ExitError".to_owned(), first_line)
        }
    };
    (
        StatusCode::BAD_GATEWAY,
        axum::Json(json!({"errorType": error_type, "errorMessage": error_message})),
    )
        .into_response()
}

fn gateway_message(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_segments() {
        let template = "/v1/devices/{deviceId}/reset-passcode";
        assert_eq!(
            match_template(template, "/v1/devices/abc/reset-passcode"),
            Some(Some(("deviceId", "abc".to_owned())))
        );
        assert_eq!(
            match_template(template, "/v1/devices//reset-passcode"),
            None
        );
        assert_eq!(
            match_template(template, "/v1/devices/abc/reset-passcode/x"),
            None
        );
        assert_eq!(
            match_template("/v1/reset-passcode", "/v1/reset-passcode"),
            Some(None)
        );
    }

    #[test]
    fn caller_header_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(caller_from(&headers), Caller::iam(DEFAULT_CALLER));
        headers.insert(
            "x-local-caller",
            HeaderValue::from_static("jwt:abc:kim@contoso.com"),
        );
        assert_eq!(
            caller_from(&headers),
            Caller::jwt("abc", Some("kim@contoso.com"))
        );
        headers.insert("x-local-caller", HeaderValue::from_static("helpdesk"));
        assert_eq!(
            caller_from(&headers),
            Caller::iam("arn:aws:iam::000000000000:user/helpdesk")
        );
        headers.insert("x-local-caller", HeaderValue::from_static("anonymous"));
        assert_eq!(caller_from(&headers), Caller::Anonymous);
    }

    #[test]
    fn proxy_answers_become_http() {
        let response = proxy_response(json!({
            "statusCode": 422,
            "headers": {"content-type": "application/json", "x-request-id": "r-1"},
            "body": "{\"error\":{}}",
            "isBase64Encoded": false,
        }));
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()["x-request-id"], "r-1");
        let plain = proxy_response(json!({"outcome": "accepted"}));
        assert_eq!(plain.status(), StatusCode::OK);
    }
}
