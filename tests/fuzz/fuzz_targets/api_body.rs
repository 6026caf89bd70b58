//! API Gateway events built around fuzzed parts, so that the body, path and
//! query parsers are reached on every input rather than only after the
//! fuzzer has guessed a whole API Gateway envelope.
//!
//! Besides the checks every event gets, two differential properties:
//! * payload 1.0 (REST API) and 2.0 (HTTP API) envelopes around the same
//!   method, path, body and query give the same request or the same error;
//! * a body sent base64-encoded (`isBase64Encoded`) reads like the plain one.
#![no_main]

mod common;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use common::inputs::{ApiV2, Key, Text};
use libfuzzer_sys::fuzz_target;
use passcode_core::Action;
use passcode_core::request::{DEVICE_REF_FIELDS, MAX_BODY_BYTES};
use passcode_core::trigger::{Source, parse_event};
use serde_json::{Map, Value, json};

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(i64),
    Text(Text),
    Array(Vec<Text>),
}

impl Json {
    fn get(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Number(n) => json!(n),
            Json::Text(t) => json!(t.get()),
            Json::Array(items) => items.iter().map(|t| json!(t.get())).collect(),
        }
    }
}

const BODY_KEYS: &[&str] = &[
    "reason",
    "ticket",
    "dryRun",
    "idempotencyKey",
    "requestedBy",
    "action",
];

#[derive(Arbitrary, Debug)]
enum Body {
    None,
    Raw(String),
    Object {
        device: Option<Vec<(Key, Json)>>,
        fields: Vec<(Key, Json)>,
    },
}

#[derive(Arbitrary, Debug)]
enum Path {
    /// `/v1/<function>` of the action under test.
    Collection,
    /// `/v1/devices/{deviceId}/<function>`, on that route (the id in
    /// `pathParameters`) or through a `/{proxy+}` catch-all (only in the path).
    Device {
        id: Text,
        in_parameters: bool,
    },
    Any(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    action: u8,
    method: Option<String>,
    path: Path,
    trailing_slash: bool,
    body: Body,
    query: Vec<(Key, Text)>,
}

fn body_text(body: &Body) -> Option<String> {
    match body {
        Body::None => None,
        Body::Raw(text) => Some(text.clone()),
        Body::Object { device, fields } => {
            let mut map = Map::new();
            if let Some(device) = device {
                let d: Map<String, Value> = device
                    .iter()
                    .map(|(k, v)| (k.get(DEVICE_REF_FIELDS), v.get()))
                    .collect();
                map.insert("device".into(), Value::Object(d));
            }
            for (k, v) in fields {
                map.insert(k.get(BODY_KEYS), v.get());
            }
            Some(Value::Object(map).to_string())
        }
    }
}

struct Parts {
    method: String,
    path: String,
    /// The route API Gateway matched: ours with `{deviceId}` = `path_id`,
    /// or (`None`) the catch-all `/{proxy+}` with the whole path as `proxy`.
    route: Option<&'static str>,
    path_id: Option<String>,
    body: Option<String>,
    query: Map<String, Value>,
}

/// The route template and path parameters API Gateway reports: the same
/// for both payload formats, so their answers can be compared.
fn route(p: &Parts) -> (String, Value) {
    match (p.route, &p.path_id) {
        (Some(template), Some(id)) => (template.to_string(), json!({"deviceId": id})),
        _ => (
            "/{proxy+}".to_string(),
            json!({"proxy": p.path.strip_prefix('/').unwrap_or(&p.path)}),
        ),
    }
}

fn v2(p: &Parts, base64: bool) -> Value {
    let (template, params) = route(p);
    ApiV2 {
        method: &p.method,
        template: &template,
        path: &p.path,
        params,
        query: &p.query,
        body: body(p, base64),
        base64,
    }
    .event()
}

fn v1(p: &Parts, base64: bool) -> Value {
    let (template, params) = route(p);
    json!({
        "resource": template, "path": p.path, "httpMethod": p.method,
        "headers": {}, "multiValueHeaders": {},
        "queryStringParameters": p.query,
        "pathParameters": params,
        "requestContext": {"accountId": "123456789012", "resourceId": "x", "stage": "prod", "requestId": "r",
            "httpMethod": p.method, "resourcePath": template, "path": format!("/prod{}", p.path),
            "identity": {"sourceIp": "192.0.2.2", "userArn": "arn:aws:iam::123456789012:role/snow"}},
        "body": body(p, base64),
        "isBase64Encoded": base64
    })
}

fn body(p: &Parts, base64: bool) -> Option<String> {
    p.body.as_ref().map(|b| {
        if base64 {
            base64::engine::general_purpose::STANDARD.encode(b)
        } else {
            b.clone()
        }
    })
}

fn run(data: &[u8]) -> arbitrary::Result<()> {
    let input = Input::arbitrary_take_rest(Unstructured::new(data))?;
    let action = Action::ALL[input.action as usize % 4];
    let (default_method, collection) = action.routes()[1];
    let (_, device_route) = action.routes()[0];
    let (path, route, path_id) = match &input.path {
        Path::Collection => (collection.to_string(), None, None),
        Path::Device { id, in_parameters } => {
            let id = id.get();
            let path = device_route.replace("{deviceId}", &id);
            match in_parameters {
                true => (path, Some(device_route), Some(id)),
                false => (path, None, None),
            }
        }
        // API Gateway paths start with a slash.
        Path::Any(p) if p.starts_with('/') => (p.clone(), None, None),
        Path::Any(p) => (format!("/{p}"), None, None),
    };
    let parts = Parts {
        method: input
            .method
            .clone()
            .unwrap_or_else(|| action.routes()[0].0.to_string().max(default_method.into())),
        path: if input.trailing_slash {
            path + "/"
        } else {
            path
        },
        route,
        path_id,
        body: body_text(&input.body),
        query: input
            .query
            .iter()
            .map(|(k, v)| (k.get(&["reason", "ticket"]), json!(v.get())))
            .collect(),
    };

    let mut results = Vec::new();
    for (make, source) in [
        (v2 as fn(&Parts, bool) -> Value, Source::ApiV2),
        (v1, Source::ApiV1),
    ] {
        let plain = parse_event(action, &make(&parts, false));
        assert_eq!(plain.source, source);
        common::check_incoming(action, &plain);
        let unreadable = plain
            .request
            .as_ref()
            .is_err_and(|e| e.message == "the API Gateway event could not be read");
        if !unreadable {
            assert_eq!(plain.caller.kind, "iam");
        }
        let encoded = parse_event(action, &make(&parts, true));
        common::check_incoming(action, &encoded);
        if parts
            .body
            .as_ref()
            .is_some_and(|b| b.len() <= MAX_BODY_BYTES)
        {
            assert_eq!(
                plain.request, encoded.request,
                "base64 body reads differently"
            );
        }
        results.push(plain.request);
    }
    assert_eq!(results[0], results[1], "payload 1.0 and 2.0 differ");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
