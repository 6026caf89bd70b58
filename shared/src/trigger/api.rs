//! What both API Gateway payload formats share: the body (plain or base64,
//! size-capped), `reason`/`ticket` from the query string, and the request
//! built from them once the route is known.

use super::RequestReader;
use super::route::{self, ApiRoute};
use crate::error::ServiceError;
use base64::Engine;
use serde_json::{Map, Value};

/// Body (JSON object, may be empty) plus `reason`/`ticket` from the query
/// string, for the GET status route that has no body.
pub(super) fn api_body(
    body: Option<&str>,
    base64: bool,
    max_bytes: usize,
    query: impl Fn(&str) -> Option<String>,
) -> Result<Map<String, Value>, ServiceError> {
    let text: Option<String> = match body {
        None => None,
        Some(b) if b.len() > max_bytes * 2 => {
            return Err(ServiceError::invalid(format!(
                "the request body is larger than {max_bytes} bytes"
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
        Some(t) if t.len() > max_bytes => {
            return Err(ServiceError::invalid(format!(
                "the request body is larger than {max_bytes} bytes"
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

/// The request of an API call: the route first (a wrong route is the
/// clearest error), then the body.
pub(super) fn api_request<R: RequestReader>(
    reader: &R,
    route: &ApiRoute<'_>,
    body: Result<Map<String, Value>, ServiceError>,
) -> Result<R::Request, ServiceError> {
    let params = route::resolve(reader.routes(), route)?;
    let body = body?;
    if body.contains_key("action") {
        return Err(ServiceError::invalid(
            "\"action\" is only used in EventBridge events; the route already names the action",
        ));
    }
    reader.read_api(&params, body)
}
