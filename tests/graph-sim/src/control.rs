//! The `/_sim/...` control API: reseeding, credentials, settings, device
//! state, action outcomes, fault injection and the request log. No auth;
//! the simulator only listens on loopback.

use hyper::{Method, Response, StatusCode};
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::device::{self, ACTION_STATES};
use crate::faults::{ArmedFault, FaultRule};
use crate::http::{self, Body};
use crate::seed;
use crate::state::{RegisteredCert, Settings, Sim, State, WriteLimit};
use crate::timefmt;

type Reply = Result<Value, (StatusCode, String)>;

fn bad(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.into())
}

fn missing(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, message.into())
}

fn parse_body(body: &[u8]) -> Result<Value, (StatusCode, String)> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

pub(crate) fn handle(sim: &Sim, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    let segments: Vec<&str> = path
        .trim_start_matches("/_sim")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let reply = route(sim, method, &segments, body);
    match reply {
        Ok(value) => http::json(StatusCode::OK, &value),
        Err((status, message)) => http::json(status, &json!({ "error": message })),
    }
}

fn route(sim: &Sim, method: &Method, segments: &[&str], body: &[u8]) -> Reply {
    let m = method.as_str();
    match (m, segments) {
        ("GET", ["health"]) => Ok(json!({ "status": "ok", "profile": sim.profile.as_str() })),
        ("GET", ["violations"]) => serde_json::to_value(sim.violations())
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        ("DELETE", ["violations"]) => {
            sim.clear_violations();
            Ok(json!({ "cleared": true }))
        }
        ("POST", ["reset"]) => {
            *sim.lock() = State::seeded(sim.profile);
            Ok(json!({ "status": "reset" }))
        }
        ("GET", ["clock"]) => Ok(json!({ "offsetSeconds": sim.clock_offset() })),
        ("PUT", ["clock"]) => {
            let offset = parse_body(body)?
                .get("offsetSeconds")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("offsetSeconds (whole seconds) is required"))?;
            sim.set_clock_offset(offset);
            Ok(json!({ "offsetSeconds": offset }))
        }
        ("GET", ["app"]) => Ok(app_summary(sim)),
        ("PUT", ["app"]) => put_app(sim, &parse_body(body)?),
        ("POST", ["tokens", "expire"]) => {
            let mut state = sim.lock();
            for token in state.tokens.values_mut() {
                token.force_expired = true;
            }
            Ok(json!({ "expired": state.tokens.len() }))
        }
        // Lets a test prove that no issued token ever shows up in a log.
        ("GET", ["tokens"]) => Ok(Value::Array(
            sim.lock()
                .tokens
                .keys()
                .cloned()
                .map(Value::String)
                .collect(),
        )),
        ("GET", ["settings"]) => Ok(settings_json(&sim.lock().settings)),
        ("PUT", ["settings"]) => put_settings(sim, &parse_body(body)?),
        ("GET", ["devices"]) => {
            let state = sim.lock();
            Ok(Value::Array(
                state.devices.values().cloned().map(Value::Object).collect(),
            ))
        }
        ("POST", ["devices"]) => put_device(sim, &parse_body(body)?),
        ("GET", ["devices", id]) => sim
            .lock()
            .devices
            .get(&id.to_ascii_lowercase())
            .cloned()
            .map(Value::Object)
            .ok_or_else(|| missing(format!("no device with id {id}"))),
        ("POST", ["devices", id, "actions", action]) => {
            advance_action(sim, id, action, &parse_body(body)?)
        }
        ("GET", ["faults"]) => {
            let state = sim.lock();
            Ok(Value::Array(
                state
                    .faults
                    .iter()
                    .map(|a| {
                        let mut v = serde_json::to_value(&a.rule).unwrap_or(Value::Null);
                        v["remaining"] = json!(a.remaining);
                        v
                    })
                    .collect(),
            ))
        }
        ("POST", ["faults"]) => {
            let rule: FaultRule = serde_json::from_slice(body)
                .map_err(|e| bad(format!("invalid fault rule: {e}")))?;
            if rule.times == 0 {
                return Err(bad("times must be at least 1"));
            }
            let mut state = sim.lock();
            state.faults.push(ArmedFault::new(rule));
            Ok(json!({ "armed": state.faults.len() }))
        }
        ("DELETE", ["faults"]) => {
            sim.lock().faults.clear();
            Ok(json!({ "armed": 0 }))
        }
        ("GET", ["requests"]) => {
            let state = sim.lock();
            let mut log = state.log.clone();
            log.sort_by_key(|r| r.seq);
            serde_json::to_value(log)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        ("DELETE", ["requests"]) => {
            sim.lock().log.clear();
            Ok(json!({ "cleared": true }))
        }
        _ => Err(missing(format!(
            "no control endpoint {m} /_sim/{}",
            segments.join("/")
        ))),
    }
}

/// What the app registration currently accepts, without the secrets.
fn app_summary(sim: &Sim) -> Value {
    let state = sim.lock();
    json!({
        "tenantId": seed::TENANT_ID,
        "clientId": seed::CLIENT_ID,
        "secretCount": state.app.secrets.len(),
        "certificateThumbprintSha256": state.app.certificate.as_ref().map(|c| c.x5t_s256.clone()),
        "roles": state.app.roles,
    })
}

/// `body` as a JSON object, or 400 with `error`.
fn json_object<'b>(
    body: &'b Value,
    error: &str,
) -> Result<&'b Map<String, Value>, (StatusCode, String)> {
    body.as_object().ok_or_else(|| bad(error))
}

fn string_list(value: &Value, name: &str) -> Result<Vec<String>, (StatusCode, String)> {
    value
        .as_array()
        .and_then(|list| {
            list.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| bad(format!("{name} must be an array of strings")))
}

/// Replace the app's credentials and roles. Fields that are absent keep
/// their value; `certificatePem: null` removes the certificate.
fn put_app(sim: &Sim, body: &Value) -> Reply {
    let obj = json_object(body, "body must be an object")?;
    for key in obj.keys() {
        if !["secrets", "certificatePem", "roles"].contains(&key.as_str()) {
            return Err(bad(format!("unknown field {key}")));
        }
    }
    let secrets = obj
        .get("secrets")
        .map(|v| string_list(v, "secrets"))
        .transpose()?;
    let certificate = match obj.get("certificatePem") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(pem)) => Some(Some(RegisteredCert::from_pem(pem).map_err(bad)?)),
        Some(_) => return Err(bad("certificatePem must be a string or null")),
    };
    let roles = obj
        .get("roles")
        .map(|v| string_list(v, "roles"))
        .transpose()?;
    {
        let mut state = sim.lock();
        if let Some(secrets) = secrets {
            state.app.secrets = secrets;
        }
        if let Some(certificate) = certificate {
            state.app.certificate = certificate;
        }
        if let Some(roles) = roles {
            state.app.roles = roles;
        }
    }
    Ok(app_summary(sim))
}

fn settings_json(settings: &Settings) -> Value {
    serde_json::to_value(settings).unwrap_or(Value::Null)
}

fn put_settings(sim: &Sim, body: &Value) -> Reply {
    let obj = json_object(body, "body must be an object")?;
    let mut next = sim.lock().settings.clone();
    for (key, value) in obj {
        match key.as_str() {
            "pageSize" => {
                next.page_size = value
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("pageSize must be an integer >= 1"))?
                    as usize;
            }
            "silentFilterMode" => {
                next.silent_filter_mode = value
                    .as_bool()
                    .ok_or_else(|| bad("silentFilterMode must be a boolean"))?;
            }
            "tokenLifetimeSeconds" => {
                next.token_lifetime_seconds = value
                    .as_u64()
                    .ok_or_else(|| bad("tokenLifetimeSeconds must be a non-negative integer"))?;
            }
            "writeLimit" => {
                next.write_limit = if value.is_null() {
                    None
                } else {
                    let limit: WriteLimit = serde_json::from_value(value.clone())
                        .map_err(|e| bad(format!("writeLimit: {e}")))?;
                    if limit.window_seconds == 0 {
                        return Err(bad("writeLimit.windowSeconds must be at least 1"));
                    }
                    Some(limit)
                };
            }
            "actionListingDelaySeconds" => {
                next.action_listing_delay_seconds = value.as_u64().ok_or_else(|| {
                    bad("actionListingDelaySeconds must be a non-negative integer")
                })?;
            }
            other => return Err(bad(format!("unknown setting {other}"))),
        }
    }
    let mut state = sim.lock();
    state.settings = next.clone();
    Ok(settings_json(&next))
}

/// Add or replace a device; absent properties take template defaults.
fn put_device(sim: &Sim, body: &Value) -> Reply {
    let obj = json_object(body, "device must be a JSON object")?;
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("device needs a string id"))?
        .to_string();
    let mut device = device::from_patch(obj);
    sim.profile.respell_device(&mut device);
    sim.lock()
        .devices
        .insert(id.to_ascii_lowercase(), device.clone());
    Ok(Value::Object(device))
}

/// Move the latest entry of `action` to a new state, as the device checking
/// in would. A finished Android reset gets a passcode if none is given,
/// because the admin is shown a new one.
fn advance_action(sim: &Sim, id: &str, action: &str, body: &Value) -> Reply {
    let obj = json_object(body, "body must be an object")?;
    let new_state = obj
        .get("state")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("state is required"))?;
    if !ACTION_STATES.contains(&new_state) {
        return Err(bad(format!(
            "state must be one of {}",
            ACTION_STATES.join(", ")
        )));
    }
    let passcode = match obj.get("passcode") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => return Err(bad("passcode must be a string")),
    };
    let error_code = obj.get("errorCode").and_then(Value::as_i64);

    let mut state = sim.lock();
    let device = state
        .devices
        .get_mut(&id.to_ascii_lowercase())
        .ok_or_else(|| missing(format!("no device with id {id}")))?;
    // `Android`, `AndroidEnterprise`, `AndroidForWork`, `android`, ...
    let is_android = device::str_prop(device, "operatingSystem")
        .to_ascii_lowercase()
        .starts_with("android");
    let entry = device
        .get_mut("deviceActionResults")
        .and_then(Value::as_array_mut)
        .and_then(|list| {
            list.iter_mut().rev().find(|e| {
                e.get("actionName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(action))
            })
        })
        .ok_or_else(|| missing(format!("device {id} has no {action} entry")))?;
    let entry: &mut Map<String, Value> = entry.as_object_mut().ok_or_else(|| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt entry".to_string(),
        )
    })?;
    entry.insert("actionState".into(), json!(new_state));
    entry.insert(
        "lastUpdatedDateTime".into(),
        json!(timefmt::graph_timestamp(sim.now())),
    );
    let is_reset = entry.get("actionName").and_then(Value::as_str) == Some("resetPasscode");
    let passcode = passcode.or_else(|| {
        (is_reset && is_android && new_state == "done").then(|| {
            let n: u32 = rand::thread_rng().gen_range(0..100_000_000);
            format!("{n:08}")
        })
    });
    if let Some(passcode) = passcode {
        let field = if entry.get("actionName").and_then(Value::as_str) == Some("remoteLock") {
            "unlockPin"
        } else {
            "passcode"
        };
        entry.insert(field.into(), json!(passcode));
    }
    if let Some(code) = error_code {
        entry.insert("errorCode".into(), json!(code));
    }
    Ok(Value::Object(entry.clone()))
}
