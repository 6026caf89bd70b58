//! Events at the edges: oversized, deeply nested, non-UTF-8 or huge
//! events, and values echoed back, end as a short 400 in bounded time and
//! leave bounded caller fields.

use super::test_events::{ID, eventbridge, v1, v2};
use super::*;
use crate::error::ErrorCode;
use crate::request::MAX_BODY_BYTES;
use base64::Engine;
use serde_json::json;

#[test]
fn caller_fields_are_bounded_and_unreadable_events_say_so() {
    let mut event = eventbridge(json!({"action": "resetPasscode", "device": {"id": ID},
        "reason": "r", "requestedBy": "é".repeat(MAX_CALLER_FIELD_CHARS)}));
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
    // A longer `requestedBy` makes the request invalid, and is not recorded.
    event["detail"]["requestedBy"] = json!("é".repeat(10_000));
    let inc = parse_event(Action::ResetPasscode, &event);
    assert!(inc.request.is_err());
    assert_eq!(inc.caller.requested_by, None);
    let mut jwt = v2("POST", "/v1/reset-passcode", None, None);
    jwt["requestContext"]["authorizer"] =
        json!({"jwt": {"claims": {"sub": "s".repeat(1000), "azp": "a".repeat(1000)}}});
    let caller = parse_event(Action::ResetPasscode, &jwt).caller;
    assert_eq!(caller.app_id.map(|v| v.len()), Some(MAX_CALLER_FIELD_CHARS));
    let mut broken = v2("POST", "/v1/reset-passcode", None, None);
    broken["requestContext"]["http"] = json!(42);
    let inc = parse_event(Action::ResetPasscode, &broken);
    assert_eq!(inc.caller.kind, "unknown");
    assert!(inc.request.is_err());
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
