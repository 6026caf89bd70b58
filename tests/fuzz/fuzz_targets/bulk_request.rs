//! The bulk function's request reader (`bulk::read_event`, what
//! `bulk-passcode` reads each invocation with) on events built around
//! fuzzed parts, so that the reader is reached on every input: API Gateway
//! 2.0 calls on `POST /v1/bulk/{action}` and `GET /v1/bulk/{action}/{batchId}`,
//! EventBridge events (`Passcode Bulk Action Requested`) and direct
//! invocations carrying the same body, and a fuzzed `BULK_MAX_DEVICES`.
//!
//! Properties, for every input:
//! * a refusal is `invalidRequest` with a short message, answered with a
//!   400 (API) or `rejected` (events);
//! * an accepted batch names 1 to `max_devices` devices (each meeting the
//!   identifier rules, each the reference its list element names) or every
//!   device of one valid user; its reason is 1 to 500 characters; its
//!   `expectedCount` is the JSON number given; its flags are the ones given;
//! * a list longer than `max_devices` is always refused;
//! * the API and EventBridge read the same body to the same request or the
//!   same error (`requestedBy` aside: only events accept it, so the API
//!   reads the body without it), EventBridge and direct invocations alike,
//!   and progress calls by route and by event alike;
//! * a list whose first invalid element is `devices[i]` is refused saying
//!   `devices[i]:` and that element's own error.
#![no_main]

mod common;

use arbitrary::{Arbitrary, Unstructured};
use common::inputs::{ApiV2, Key, Text};
use libfuzzer_sys::fuzz_target;
use passcode_core::Action;
use passcode_core::action::BULK_DETAIL_TYPE;
use passcode_core::bulk::{
    BulkCall, BulkRequest, MAX_BULK_BODY_BYTES, SUBMIT_FIELDS, Targets, read_event,
};
use passcode_core::error::ServiceError;
use passcode_core::request::{DEVICE_REF_FIELDS, DeviceRef, ParseRules, parse_request};
use passcode_core::response::render_answer;
use passcode_core::trigger::{Parsed, Source};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Count(u16),
    Big(u64),
    Float(f64),
    Text(Text),
    Array(Vec<Text>),
    Object(Vec<(Key, Text)>),
}

impl Json {
    fn get(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Int(n) => json!(n),
            Json::Count(n) => json!(n),
            Json::Big(n) => json!(n),
            // NaN and infinities become null, as serde_json writes them.
            Json::Float(f) => json!(f),
            Json::Text(t) => json!(t.get()),
            Json::Array(items) => items.iter().map(|t| json!(t.get())).collect(),
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.get(DEVICE_REF_FIELDS), json!(v.get())))
                    .collect(),
            ),
        }
    }
}

/// Whole device objects that pass validation, to make long valid lists.
const VALID_DEVICES: &[(&str, &str)] = &[
    ("id", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ("serialNumber", "R58N10AE001"),
    ("imei", "35 209900 176148 1"),
    ("azureAdDeviceId", "11111111-0000-4000-8000-000000000001"),
    ("userPrincipalName", "o'brien@contoso.com"),
];

#[derive(Arbitrary, Debug)]
enum Device {
    Valid(u8),
    /// One way of naming it, with a known or arbitrary value.
    One(Key, Text),
    Fields(Vec<(Key, Json)>),
    Other(Json),
}

impl Device {
    fn get(&self) -> Value {
        match self {
            Device::Valid(i) => {
                let (k, v) = VALID_DEVICES[*i as usize % VALID_DEVICES.len()];
                json!({ k: v })
            }
            Device::One(k, v) => json!({ k.get(DEVICE_REF_FIELDS): v.get() }),
            Device::Fields(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.get(DEVICE_REF_FIELDS), v.get()))
                    .collect(),
            ),
            Device::Other(v) => v.get(),
        }
    }
}

/// How many copies of a device a list has.
#[derive(Arbitrary, Debug)]
enum Count {
    Few(u8),
    /// Two below the cap to two above it.
    AroundMax(u8),
    /// Up to 1,100, past any cap.
    Any(u16),
}

impl Count {
    fn get(&self, max: usize) -> usize {
        match self {
            Count::Few(n) => *n as usize % 8,
            Count::AroundMax(n) => (max + *n as usize % 5).saturating_sub(2),
            Count::Any(n) => *n as usize % 1101,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Devices {
    List(Vec<Device>),
    /// Copies of one device, one of them replaced by `other`.
    Repeat {
        device: Device,
        count: Count,
        other: Option<(u16, Device)>,
    },
    NotAList(Json),
}

impl Devices {
    fn get(&self, max: usize) -> Value {
        match self {
            Devices::List(items) => items.iter().map(Device::get).collect(),
            Devices::Repeat {
                device,
                count,
                other,
            } => {
                let count = count.get(max);
                let mut items = vec![device.get(); count];
                if let Some((at, other)) = other
                    && count > 0
                {
                    items[*at as usize % count] = other.get();
                }
                Value::Array(items)
            }
            Devices::NotAList(v) => v.get(),
        }
    }
}

/// Every field name a bulk body or detail may carry (a new batch's, then
/// the event-only and progress ones), and one it may not.
static BODY_KEYS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    [
        SUBMIT_FIELDS,
        &["requestedBy", "batchId", "action", "device"],
    ]
    .concat()
});

/// A typical valid value of each field.
fn usual(name: &str) -> Value {
    match name {
        "devices" => json!([{"serialNumber": "R58N10AE001"}, {"imei": "350000000000001"}]),
        "userPrincipalName" => json!("o'brien@contoso.com"),
        "allDevices" | "dryRun" | "replacePending" => json!(true),
        "reason" => json!("lost shipment"),
        "ticket" => json!("INC0012345"),
        "idempotencyKey" => json!("INC1:reset"),
        "expectedCount" => json!(2),
        "requestedBy" => json!("soar@contoso.com"),
        "batchId" => json!("0f3a-9c2e"),
        "action" => json!("resetPasscode"),
        _ => json!("x"),
    }
}

/// What a valid body starts from.
#[derive(Arbitrary, Debug)]
enum Base {
    Devices(Devices),
    AllOfUser,
    Empty,
}

/// A change to the body: a field set to its usual value or to any JSON,
/// or removed.
#[derive(Arbitrary, Debug)]
enum Edit {
    Usual(Key),
    Set(Key, Json),
    Devices(Devices),
    Remove(Key),
}

/// A valid body (or none) and changes to it, so that accepted requests
/// are common and each refusal has few causes.
#[derive(Arbitrary, Debug)]
struct Body {
    base: Base,
    edits: Vec<Edit>,
}

impl Body {
    fn get(&self, max: usize) -> Map<String, Value> {
        let base = match &self.base {
            Base::Devices(devices) => {
                json!({"devices": devices.get(max), "reason": "lost shipment"})
            }
            Base::AllOfUser => {
                json!({"userPrincipalName": "o'brien@contoso.com", "allDevices": true,
                                      "reason": "lost shipment"})
            }
            Base::Empty => json!({}),
        };
        let Value::Object(mut map) = base else {
            unreachable!()
        };
        for edit in &self.edits {
            match edit {
                Edit::Usual(k) => {
                    let k = k.get(&BODY_KEYS);
                    map.insert(k.clone(), usual(&k));
                }
                Edit::Set(k, v) => {
                    map.insert(k.get(&BODY_KEYS), v.get());
                }
                Edit::Devices(devices) => {
                    map.insert("devices".into(), devices.get(max));
                }
                Edit::Remove(k) => {
                    map.remove(&k.get(&BODY_KEYS));
                }
            }
        }
        map
    }
}

/// `BULK_MAX_DEVICES`, 1 to 1,000; often small so that lists reach it.
#[derive(Arbitrary, Debug)]
enum Max {
    Small(u8),
    Any(u16),
}

impl Max {
    fn get(&self) -> usize {
        match self {
            Max::Small(n) => 1 + *n as usize % 8,
            Max::Any(n) => 1 + *n as usize % 1000,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    max: Max,
    remove: bool,
    /// The route's `{action}`; `None`: the action's own.
    segment: Option<Text>,
    batch_id: Text,
    body: Body,
    /// `reason` / `ticket` (or anything) in the query string.
    query: Vec<(Key, Text)>,
    /// `None`: the bulk detail-type.
    detail_type: Option<String>,
}

/// An HTTP API (payload 2.0) call on one of the bulk routes, IAM caller.
fn api(
    method: &str,
    params: &Map<String, Value>,
    body: Option<&str>,
    query: &Map<String, Value>,
) -> Value {
    let (template, path) = match params.get("batchId").and_then(Value::as_str) {
        Some(batch_id) => (
            "/v1/bulk/{action}/{batchId}",
            format!(
                "/v1/bulk/{}/{batch_id}",
                params["action"].as_str().unwrap_or_default()
            ),
        ),
        None => (
            "/v1/bulk/{action}",
            format!("/v1/bulk/{}", params["action"].as_str().unwrap_or_default()),
        ),
    };
    ApiV2 {
        method,
        template,
        path: &path,
        params: Value::Object(params.clone()),
        query,
        body: body.map(str::to_string),
        base64: false,
    }
    .event()
}

fn eventbridge(detail_type: &str, detail: &Map<String, Value>) -> Value {
    json!({"version": "0", "id": "ev-1", "detail-type": detail_type, "source": "com.contoso.soar",
           "account": "123456789012", "time": "2026-11-26T05:00:00Z", "region": "eu-west-1",
           "resources": [], "detail": detail})
}

/// What one list element reads as on its own: the single-device request's
/// `device`, whose rules bulk references share.
fn element(item: &Value) -> Result<DeviceRef, ServiceError> {
    let body = Map::from_iter([("device".to_string(), item.clone())]);
    let rules = ParseRules {
        reason_required: false,
        allow_requested_by: false,
    };
    parse_request(&body, None, rules).map(|r| r.device)
}

/// What a list must read as under `max`: refused when empty or too long,
/// else refused at its first invalid element, else its references.
fn expected_list(items: &[Value], max: usize) -> Result<Vec<DeviceRef>, String> {
    if items.is_empty() || items.len() > max {
        return Err(String::new());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            element(item).map_err(|e| format!("devices[{i}]: {}; nothing was done", e.message))
        })
        .collect()
}

/// What every read must satisfy. `body` is the submit body it read (with
/// the query's fields), when it was a submit.
fn check(parsed: &Parsed<BulkCall>, max: usize, body: Option<&Map<String, Value>>) {
    if let Some(by) = &parsed.caller.requested_by {
        assert!(by.chars().count() <= 256, "requestedBy is capped");
    }
    let e = match &parsed.request {
        Ok(BulkCall::Submit(request)) => {
            check_submit(request, max, body);
            if parsed.source.is_api() {
                assert_eq!(
                    request.requested_by, None,
                    "API callers have no requestedBy"
                );
            }
            assert_eq!(parsed.caller.requested_by, request.requested_by);
            return;
        }
        Ok(BulkCall::Progress { action, batch_id }) => {
            assert!(action.bulk_capable());
            assert!((1..=64).contains(&batch_id.len()), "{batch_id:?}");
            assert!(
                batch_id
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || c == '-'),
                "{batch_id:?}"
            );
            return;
        }
        Err(e) => e,
    };
    common::check_invalid(e);
    let answer = render_answer(parsed.source, "bulk", "fuzz-request-id", Err(e))
        .unwrap_or_else(|d| panic!("invalidRequest became an invocation error: {d:?}"));
    common::check_error_answer(parsed.source, e, &answer);
    // Fields are named as the bulk body has them: a device's own fields
    // only after the `devices[i]: ` of their element.
    assert!(
        !e.message.starts_with("device.") && !e.message.starts_with("\"device\""),
        "{}",
        e.message
    );
    // A refusal that names an element names the first invalid one.
    if let Some(Value::Array(items)) = body.and_then(|b| b.get("devices"))
        && items.len() <= max
        && e.message.starts_with("devices[")
    {
        let first_bad = expected_list(items, max).expect_err("a valid list refused per element");
        assert_eq!(e.message, first_bad, "not the first invalid element");
    }
}

fn check_submit(r: &BulkRequest, max: usize, body: Option<&Map<String, Value>>) {
    assert!(r.action.bulk_capable());
    let reason = r.reason.as_deref().expect("a batch has a reason");
    assert!((1..=500).contains(&reason.chars().count()));
    common::check_text(Some(reason), 500);
    common::check_text(r.ticket.as_deref(), 100);
    common::check_text(r.requested_by.as_deref(), 256);
    common::check_idempotency_key(r.idempotency_key.as_deref());
    match &r.targets {
        Targets::Devices(refs) => {
            assert!(
                (1..=max).contains(&refs.len()),
                "{} devices, cap {max}",
                refs.len()
            );
            refs.iter().for_each(common::check_device);
        }
        Targets::AllOfUser(upn) => common::check_device(&DeviceRef::User {
            user_principal_name: upn.clone(),
            device_name: None,
        }),
    }
    let Some(body) = body else { return };
    match (&r.targets, body.get("devices")) {
        (Targets::Devices(refs), Some(Value::Array(items))) => {
            assert_eq!(
                expected_list(items, max),
                Ok(refs.clone()),
                "the references are not the list's"
            );
        }
        (Targets::AllOfUser(upn), None) => {
            assert_eq!(body.get("allDevices"), Some(&json!(true)));
            let given = body["userPrincipalName"]
                .as_str()
                .expect("the user is a string");
            assert_eq!(given.trim(), upn);
        }
        (targets, devices) => panic!("{targets:?} read from devices {devices:?}"),
    }
    match (r.expected_count, body.get("expectedCount")) {
        (None, None | Some(Value::Null)) => {}
        (Some(n), Some(given)) => assert_eq!(&json!(n), given, "expectedCount"),
        (read, given) => panic!("expectedCount {given:?} read as {read:?}"),
    }
    for (flag, name) in [(r.dry_run, "dryRun"), (r.replace_pending, "replacePending")] {
        assert_eq!(flag, body.get(name) == Some(&json!(true)), "{name}");
    }
    let reason_given = body["reason"].as_str().expect("the reason is a string");
    assert_eq!(reason_given.trim(), reason);
}

/// An event's request with the field only events accept left out.
fn without_requested_by(
    request: &Result<BulkCall, ServiceError>,
) -> Result<BulkCall, ServiceError> {
    match request {
        Ok(BulkCall::Submit(r)) => Ok(BulkCall::Submit(BulkRequest {
            requested_by: None,
            ..r.clone()
        })),
        other => other.clone(),
    }
}

fn run(data: &[u8]) -> arbitrary::Result<()> {
    let input = Input::arbitrary_take_rest(Unstructured::new(data))?;
    let max = input.max.get();
    let action = if input.remove {
        Action::RemovePasscode
    } else {
        Action::ResetPasscode
    };
    let segment = input
        .segment
        .as_ref()
        .map_or_else(|| action.function_name().to_string(), Text::get);
    let own_route = segment == action.function_name();
    let detail_type = input.detail_type.as_deref().unwrap_or(BULK_DETAIL_TYPE);
    let query: Map<String, Value> = input
        .query
        .iter()
        .map(|(k, v)| (k.get(&["reason", "ticket"]), json!(v.get())))
        .collect();
    let body = input.body.get(max);
    let text = Value::Object(body.clone()).to_string();
    // The body as the API reads it: `reason` / `ticket` from the query
    // when the body has none.
    let mut read_body = body.clone();
    for name in ["reason", "ticket"] {
        if let Some(value) = query.get(name).filter(|v| v.is_string())
            && !read_body.contains_key(name)
        {
            read_body.insert(name.into(), value.clone());
        }
    }

    // A new batch through the API.
    let params = Map::from_iter([("action".to_string(), json!(segment))]);
    let by_api = read_event(max, &api("POST", &params, Some(&text), &query));
    assert_eq!(by_api.source, Source::ApiV2);
    check(&by_api, max, Some(&read_body));
    if let Ok(call) = &by_api.request {
        assert_eq!(
            call.action().function_name(),
            segment,
            "not the route's action"
        );
    }

    // The same body as an event's detail, and as a direct invocation.
    let mut detail = read_body.clone();
    detail.insert("action".into(), json!(action.event_action()));
    let by_event = read_event(max, &eventbridge(detail_type, &detail));
    assert_eq!(by_event.source, Source::EventBridge);
    let submit = !detail.contains_key("batchId");
    check(&by_event, max, submit.then_some(&read_body));
    if let Ok(call) = &by_event.request {
        assert_eq!(call.action(), action, "not the event's action");
    }
    let direct = read_event(max, &Value::Object(detail.clone()));
    if direct.source == Source::Direct {
        check(&direct, max, submit.then_some(&read_body));
        if detail_type == BULK_DETAIL_TYPE {
            assert_eq!(
                by_event.request, direct.request,
                "EventBridge and direct differ"
            );
        }
    }

    // Too long a list is refused, whoever sends it.
    if let Some(Value::Array(items)) = body.get("devices")
        && items.len() > max
    {
        assert!(
            by_api.request.is_err(),
            "{} devices accepted, cap {max}",
            items.len()
        );
        assert!(
            by_event.request.is_err(),
            "{} devices accepted, cap {max}",
            items.len()
        );
    }

    // API and EventBridge read the same body alike.
    let comparable = own_route
        && detail_type == BULK_DETAIL_TYPE
        && !body.contains_key("action")
        && !body.contains_key("batchId")
        && text.len() <= MAX_BULK_BODY_BYTES;
    if comparable {
        if body.contains_key("requestedBy") {
            assert!(by_api.request.is_err(), "the API took requestedBy");
            let mut rest = body.clone();
            rest.remove("requestedBy");
            let rest = Value::Object(rest).to_string();
            let api_rest = read_event(max, &api("POST", &params, Some(&rest), &query));
            match (&api_rest.request, &by_event.request) {
                // `requestedBy` is read after everything but the flags.
                (Ok(_) | Err(_), Err(e)) if e.message.contains("\"requestedBy\"") => {
                    if let Err(api_error) = &api_rest.request {
                        assert!(
                            api_error.message.contains("\"dryRun\"")
                                || api_error.message.contains("\"replacePending\""),
                            "the API refused {:?}, the event {:?}",
                            api_error.message,
                            e.message
                        );
                    }
                }
                (api_request, _) => assert_eq!(
                    api_request,
                    &without_requested_by(&by_event.request),
                    "API and EventBridge differ"
                ),
            }
        } else {
            assert_eq!(
                by_api.request, by_event.request,
                "API and EventBridge differ"
            );
        }
    }

    // Only the list can be wrong: the first invalid element is named, or
    // the list is taken as it is.
    if let Some(Value::Array(items)) = body.get("devices") {
        let clean = json!({"devices": items, "reason": "locked out"}).to_string();
        let own = Map::from_iter([("action".to_string(), json!(action.function_name()))]);
        let read = read_event(max, &api("POST", &own, Some(&clean), &Map::new()));
        match (expected_list(items, max), &read.request) {
            (Ok(refs), Ok(BulkCall::Submit(r))) => {
                assert_eq!(r.targets, Targets::Devices(refs))
            }
            (Err(expected), Err(e)) if expected.is_empty() => {
                assert!(!e.message.starts_with("devices["), "{}", e.message)
            }
            (Err(expected), Err(e)) => assert_eq!(e.message, expected),
            (expected, got) => panic!("list read as {got:?}, expected {expected:?}"),
        }
    }

    // Progress, by route and by event.
    let batch_id = input.batch_id.get();
    let mut params = params;
    params.insert("batchId".into(), json!(batch_id));
    let by_route = read_event(max, &api("GET", &params, None, &query));
    check(&by_route, max, None);
    let progress = Map::from_iter([
        ("action".to_string(), json!(action.event_action())),
        ("batchId".to_string(), json!(batch_id)),
    ]);
    let by_event = read_event(max, &eventbridge(detail_type, &progress));
    check(&by_event, max, None);
    if let Ok(BulkCall::Progress {
        action: read,
        batch_id: id,
    }) = &by_route.request
    {
        assert_eq!(read.function_name(), segment, "not the route's action");
        assert_eq!(*id, batch_id.to_ascii_lowercase());
    }
    if own_route && detail_type == BULK_DETAIL_TYPE {
        assert_eq!(
            by_route.request, by_event.request,
            "progress by route and by event differ"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
