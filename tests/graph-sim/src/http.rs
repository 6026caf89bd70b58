//! Request/response plumbing shared by the Graph, token and control handlers,
//! and the two error body shapes the clients must parse.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{HeaderMap, Method, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::profile::Profile;
use crate::timefmt;

pub(crate) type Body = Full<Bytes>;

/// Content type Graph sends with JSON payloads.
const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A fully read request with the identifiers assigned to it.
pub(crate) struct SimRequest {
    pub method: Method,
    pub path: String,
    pub raw_query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `request-id` of the answer (new GUID per request).
    pub request_id: String,
    /// Caller's `client-request-id`, or a new GUID when absent.
    pub client_request_id: String,
    pub received: OffsetDateTime,
}

impl SimRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query string percent-decoded for the log, with any parameter that
    /// could carry a credential blanked out.
    pub(crate) fn logged_query(&self) -> String {
        let Some(raw) = self.raw_query.as_deref() else {
            return String::new();
        };
        form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let sensitive = [
                    "secret",
                    "assertion",
                    "token",
                    "password",
                    "code",
                    "passcode",
                ]
                .iter()
                .any(|s| lower.contains(s))
                    && !lower.contains("skiptoken");
                if sensitive {
                    format!("{k}=[redacted]")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A JSON response with `content_type`.
pub(crate) fn json_with(
    status: StatusCode,
    body: &Value,
    content_type: &'static str,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A plain JSON response (control API).
pub(crate) fn json(status: StatusCode, body: &Value) -> Response<Body> {
    json_with(status, body, "application/json")
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// A Graph success payload.
pub(crate) fn graph_json(status: StatusCode, body: &Value) -> Response<Body> {
    json_with(status, body, GRAPH_JSON)
}

fn set_header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// Correlation headers Graph puts on every answer: a fresh `request-id` and
/// the caller's `client-request-id` echoed back.
pub(crate) fn add_graph_headers(resp: &mut Response<Body>, req: &SimRequest) {
    set_header(resp, "request-id", &req.request_id);
    set_header(resp, "client-request-id", &req.client_request_id);
}

/// A Graph error (`{"error":{"code","message","innerError"}}`).
#[derive(Debug, Clone)]
pub(crate) struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
    /// Add a `WWW-Authenticate` challenge (401s).
    pub challenge: bool,
}

impl GraphError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> GraphError {
        GraphError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            challenge: false,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// The error as `profile` spells it: with or without `innerError`, an
    /// Intune JSON-in-a-string `message` on server errors, and the
    /// `Retry-After` spelling (see [`Profile`]).
    pub(crate) fn into_response(self, req: &SimRequest, profile: Profile) -> Response<Body> {
        let message = if self.status.is_server_error() && profile.intune_server_errors() {
            intune_message(&req.request_id, req.path.trim_start_matches('/'))
        } else {
            self.message
        };
        let mut error = json!({ "code": self.code, "message": message });
        if profile.graph_inner_error(self.status) {
            error["innerError"] = json!({
                "date": timefmt::inner_error_date(req.received),
                "request-id": req.request_id,
                "client-request-id": req.client_request_id,
            });
        }
        let body = json!({ "error": error });
        let mut resp = json_with(self.status, &body, "application/json");
        add_graph_headers(&mut resp, req);
        if let Some(secs) = self.retry_after {
            set_retry_after(&mut resp, profile, secs, req.received);
        }
        if self.challenge {
            set_header(
                &mut resp,
                "www-authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            );
        }
        resp
    }
}

/// `Retry-After: secs`, spelled as `profile` spells it.
pub(crate) fn set_retry_after(
    resp: &mut Response<Body>,
    profile: Profile,
    secs: u64,
    now: OffsetDateTime,
) {
    let value = profile.retry_after(secs, resp.status(), now);
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
}

/// Intune's error `message`: a JSON document serialised into a string,
/// naming the internal service URL, an operation id and the activity id.
pub(crate) fn intune_message(activity_id: &str, resource: &str) -> String {
    let text = format!(
        "An error has occurred - Operation ID (for customer support): {} - Activity ID: {activity_id} - Url: https://fef.msua06.manage.microsoft.com/DeviceFE/StatelessDeviceFEService/{resource}?api-version=2024-05-13",
        new_guid()
    );
    format!(
        "{{\"_version\": 3, \"Message\": {}, \"CustomApiErrorPhrase\": \"\", \"RetryAfter\": null, \"ErrorSourceService\": \"\", \"HttpHeaders\": \"{{}}\"}}",
        Value::String(text)
    )
}

/// An Entra token endpoint error.
#[derive(Debug, Clone)]
pub(crate) struct EntraError {
    pub status: StatusCode,
    /// OAuth `error` value, the only field clients should branch on.
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    /// Description text after `AADSTS<code>: `.
    pub description: String,
}

impl EntraError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> EntraError {
        EntraError {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    /// 400 with `error`.
    pub(crate) fn bad(
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> EntraError {
        EntraError::new(StatusCode::BAD_REQUEST, error, code, description)
    }

    /// 400 `invalid_request`.
    pub(crate) fn invalid_request(code: u32, description: impl Into<String>) -> EntraError {
        EntraError::bad("invalid_request", code, description)
    }

    /// 401 `invalid_client`.
    pub(crate) fn invalid_client(code: u32, description: impl Into<String>) -> EntraError {
        EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    }

    pub(crate) fn into_response(self, base_url: &str, req: &SimRequest) -> Response<Body> {
        let timestamp = timefmt::entra_timestamp(req.received);
        let trace_id = &req.request_id;
        let correlation_id = &req.client_request_id;
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{base_url}/error?code={}", self.code),
        });
        let mut resp = json_with(self.status, &body, "application/json; charset=utf-8");
        add_entra_headers(&mut resp, req);
        resp
    }
}

/// Headers the token endpoint sends with every answer.
pub(crate) fn add_entra_headers(resp: &mut Response<Body>, req: &SimRequest) {
    set_header(resp, "cache-control", "no-store, no-cache");
    set_header(resp, "pragma", "no-cache");
    set_header(resp, "x-ms-request-id", &req.request_id);
    set_header(resp, "client-request-id", &req.client_request_id);
}
