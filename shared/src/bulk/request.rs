//! What a bulk call asks for: a new batch (or its preview) for many
//! devices, or the progress of a batch. API calls name the action in the
//! route (`POST /v1/bulk/reset-passcode`); events and direct invocations
//! in `action`, like the single-device requests.

use crate::action::{Action, BULK_DETAIL_TYPE, BULK_FUNCTION, BULK_ROUTES};
use crate::error::ServiceError;
use crate::request::{
    DeviceRef, MAX_REASON_CHARS, clip, idempotency_key, optional_flag, optional_text, parse_device,
    validate_upn,
};
use crate::trigger::{RequestReader, RouteParams, Routes};
use serde_json::{Map, Value};

/// Largest bulk body: 1,000 references of about a hundred bytes, with room.
pub const MAX_BULK_BODY_BYTES: usize = 256 * 1024;

/// Fields of a new batch.
pub const SUBMIT_FIELDS: &[&str] = &[
    "devices",
    "userPrincipalName",
    "allDevices",
    "reason",
    "ticket",
    "idempotencyKey",
    "dryRun",
    "replacePending",
    "expectedCount",
];

/// Which devices a batch is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// The caller's references, each as in the single-device API.
    Devices(Vec<DeviceRef>),
    /// Every device enrolled by this user.
    AllOfUser(String),
}

/// A new batch, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRequest {
    pub action: Action,
    pub targets: Targets,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub requested_by: Option<String>,
    pub idempotency_key: Option<String>,
    pub dry_run: bool,
    pub replace_pending: bool,
    /// How many devices the caller expects to be sent.
    pub expected_count: Option<u32>,
}

/// A bulk call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkCall {
    Submit(BulkRequest),
    Progress { action: Action, batch_id: String },
}

impl BulkCall {
    pub fn action(&self) -> Action {
        match self {
            BulkCall::Submit(request) => request.action,
            BulkCall::Progress { action, .. } => *action,
        }
    }
}

/// Reads bulk calls from API calls, events and direct invocations.
/// `max_devices` is the per-request cap: a longer list is refused before
/// anything is looked up.
pub struct BulkReader {
    pub max_devices: usize,
}

impl RequestReader for BulkReader {
    type Request = BulkCall;

    fn routes(&self) -> Routes {
        Routes {
            function: BULK_FUNCTION,
            routes: &BULK_ROUTES,
        }
    }

    fn detail_type(&self) -> &'static str {
        BULK_DETAIL_TYPE
    }

    fn max_body_bytes(&self) -> usize {
        MAX_BULK_BODY_BYTES
    }

    fn read_api(&self, params: &RouteParams, body: Map<String, Value>) -> Result<BulkCall, ServiceError> {
        let action = route_action(params.get("action").unwrap_or_default())?;
        match params.get("batchId") {
            Some(batch_id) => Ok(BulkCall::Progress {
                action,
                batch_id: batch_id_of(batch_id)?,
            }),
            None => self.submit(action, &body, false).map(BulkCall::Submit),
        }
    }

    fn read_detail(&self, detail: &Map<String, Value>) -> Result<BulkCall, ServiceError> {
        let action = match detail.get("action").and_then(Value::as_str) {
            Some(name) => Action::from_event_action(name)
                .filter(|a| a.bulk_capable())
                .ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "\"action\" must be \"resetPasscode\" or \"removePasscode\", got {:?}",
                        clip(name)
                    ))
                })?,
            None => {
                return Err(ServiceError::invalid(
                    "\"action\" is required: \"resetPasscode\" or \"removePasscode\"",
                ));
            }
        };
        let mut fields = detail.clone();
        fields.remove("action");
        if let Some(batch_id) = fields.remove("batchId") {
            let batch_id = batch_id
                .as_str()
                .ok_or_else(|| ServiceError::invalid("\"batchId\" must be a string"))?;
            if let Some(other) = fields.keys().find(|k| *k != "requestedBy") {
                return Err(ServiceError::invalid(format!(
                    "a progress request has only \"action\" and \"batchId\"; remove {:?}",
                    clip(other)
                )));
            }
            return Ok(BulkCall::Progress {
                action,
                batch_id: batch_id_of(batch_id)?,
            });
        }
        self.submit(action, &fields, true).map(BulkCall::Submit)
    }

    fn requested_by(call: &BulkCall) -> Option<String> {
        match call {
            BulkCall::Submit(request) => request.requested_by.clone(),
            BulkCall::Progress { .. } => None,
        }
    }
}

impl BulkReader {
    fn submit(
        &self,
        action: Action,
        body: &Map<String, Value>,
        from_event: bool,
    ) -> Result<BulkRequest, ServiceError> {
        let allowed = |k: &str| SUBMIT_FIELDS.contains(&k) || (from_event && k == "requestedBy");
        if let Some(unknown) = body.keys().find(|k| !allowed(k)) {
            let hint = if unknown == "requestedBy" {
                "\"requestedBy\" is only accepted from EventBridge; API callers are identified by their credentials".to_string()
            } else {
                format!("allowed fields are {}", SUBMIT_FIELDS.join(", "))
            };
            return Err(ServiceError::invalid(format!(
                "unknown field {:?}; {hint}",
                clip(unknown)
            )));
        }
        let targets = self.targets(body)?;
        let reason = optional_text(body, "reason", MAX_REASON_CHARS)?.ok_or_else(|| {
            ServiceError::invalid(
                "\"reason\" is required (1 to 500 characters): say why these passcodes are being changed, for the audit trail",
            )
        })?;
        let idempotency_key = idempotency_key(body)?;
        let expected_count = match body.get("expectedCount") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        ServiceError::invalid("\"expectedCount\" must be a whole number of devices")
                    })?,
            ),
        };
        Ok(BulkRequest {
            action,
            targets,
            reason: Some(reason),
            ticket: optional_text(body, "ticket", 100)?,
            requested_by: optional_text(body, "requestedBy", 256)?,
            idempotency_key,
            dry_run: optional_flag(body, "dryRun")?,
            replace_pending: optional_flag(body, "replacePending")?,
            expected_count,
        })
    }

    fn targets(&self, body: &Map<String, Value>) -> Result<Targets, ServiceError> {
        let all = optional_flag(body, "allDevices")?;
        match (body.get("devices"), body.get("userPrincipalName"), all) {
            (Some(list), None, false) => {
                let Value::Array(items) = list else {
                    return Err(ServiceError::invalid(
                        "\"devices\" must be a list of devices, e.g. [{\"serialNumber\": \"R58N10AE001\"}]",
                    ));
                };
                if items.is_empty() {
                    return Err(ServiceError::invalid("\"devices\" is empty: name at least one device"));
                }
                if items.len() > self.max_devices {
                    return Err(ServiceError::invalid(format!(
                        "{} devices in one request; at most {} are allowed (BULK_MAX_DEVICES). Split the list into several requests.",
                        items.len(),
                        self.max_devices
                    )));
                }
                let refs = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        parse_device(item).map_err(|e| {
                            ServiceError::invalid(format!("devices[{i}]: {}; nothing was done", e.message))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Targets::Devices(refs))
            }
            // validate_upn names the single-device field; this one is the body's own.
            (None, Some(Value::String(upn)), true) => validate_upn(upn).map(Targets::AllOfUser).map_err(|_| {
                ServiceError::invalid(
                    "\"userPrincipalName\" must look like user@contoso.com (ASCII letters, digits and symbols, no spaces, at most 256 characters)",
                )
            }),
            (None, Some(_), true) => Err(ServiceError::invalid("\"userPrincipalName\" must be a string")),
            (None, Some(_), false) => Err(ServiceError::invalid(
                "\"userPrincipalName\" needs \"allDevices\": true, so that every device of the user is meant; for one device use the single-device API",
            )),
            (Some(_), _, _) | (_, _, true) => Err(ServiceError::invalid(
                "give either \"devices\" (a list) or \"userPrincipalName\" with \"allDevices\": true, not both",
            )),
            (None, None, false) => Err(ServiceError::invalid(
                "name the devices: \"devices\": [{\"serialNumber\": ...}, ...] or \"userPrincipalName\" with \"allDevices\": true",
            )),
        }
    }
}

/// `reset-passcode` / `remove-passcode` of the route.
fn route_action(segment: &str) -> Result<Action, ServiceError> {
    Action::ALL
        .into_iter()
        .find(|a| a.bulk_capable() && a.function_name() == segment)
        .ok_or_else(|| {
            ServiceError::invalid(format!(
                "bulk requests are for reset-passcode or remove-passcode, not {:?}",
                clip(segment)
            ))
        })
}

fn batch_id_of(value: &str) -> Result<String, ServiceError> {
    if crate::trigger::is_batch_id(value) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(ServiceError::invalid(format!(
            "{:?} is not a batch id (the \"batchId\" of a bulk answer)",
            clip(value)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::{read, test_events};
    use serde_json::json;

    const READER: BulkReader = BulkReader { max_devices: 3 };

    fn api(method: &str, path: &str, template: &str, params: Value, body: Option<Value>) -> Value {
        let mut ev = test_events::v2(method, path, None, body);
        ev["routeKey"] = json!(format!("{method} {template}"));
        ev["requestContext"]["routeKey"] = ev["routeKey"].clone();
        ev["pathParameters"] = params;
        ev
    }

    fn submit(body: Value) -> Result<BulkCall, ServiceError> {
        let ev = api("POST", "/v1/bulk/reset-passcode", "/v1/bulk/{action}", json!({"action": "reset-passcode"}), Some(body));
        read(&READER, &ev).request
    }

    #[test]
    fn a_list_of_references_in_every_form() {
        let call = submit(json!({"devices": [{"serialNumber": "R58N10AE001"}, {"imei": "350000000000001"},
                                             {"userPrincipalName": "a@contoso.com", "deviceName": "Kiosk 1"}],
                                 "reason": "lost shipment", "ticket": "INC9", "expectedCount": 3}))
        .unwrap();
        let BulkCall::Submit(request) = call else { panic!("{call:?}") };
        assert_eq!(request.action, Action::ResetPasscode);
        assert!(matches!(&request.targets, Targets::Devices(refs) if refs.len() == 3));
        assert_eq!(request.expected_count, Some(3));
        assert!(!request.dry_run);
    }

    #[test]
    fn bad_lists_change_nothing_and_say_why() {
        for (body, says) in [
            (json!({"devices": [{"id": "x"}], "reason": "r"}), "devices[0]:"),
            (json!({"devices": [], "reason": "r"}), "is empty"),
            (json!({"devices": [{"id": "11111111-0000-4000-8000-000000000001"}]}), "\"reason\" is required"),
            (json!({"devices": [{}, {}, {}, {}], "reason": "r"}), "at most 3 are allowed"),
            (json!({"userPrincipalName": "a@contoso.com", "reason": "r"}), "needs \"allDevices\""),
            (json!({"devices": [], "userPrincipalName": "a@contoso.com", "allDevices": true, "reason": "r"}), "not both"),
            (json!({"devices": [{"serialNumber": "A"}], "reason": "r", "expectedCount": -1}), "whole number"),
            (json!({"devices": [{"serialNumber": "A"}], "reason": "r", "requestedBy": "x"}), "only accepted from EventBridge"),
        ] {
            let err = submit(body.clone()).unwrap_err();
            assert!(err.message.contains(says), "{body}: {}", err.message);
        }
    }

    #[test]
    fn a_bad_user_is_named_as_the_body_names_it() {
        let err = submit(json!({"userPrincipalName": "not a user", "allDevices": true, "reason": "r"})).unwrap_err();
        assert!(err.message.starts_with("\"userPrincipalName\" must look like"), "{}", err.message);
    }

    #[test]
    fn progress_by_route_and_by_event() {
        let ev = api("GET", "/v1/bulk/remove-passcode/0F3A", "/v1/bulk/{action}/{batchId}",
                     json!({"action": "remove-passcode", "batchId": "0F3A"}), None);
        let call = read(&READER, &ev).request.unwrap();
        assert_eq!(call, BulkCall::Progress { action: Action::RemovePasscode, batch_id: "0f3a".into() });
        let ev = api("POST", "/v1/bulk/reset-windows-pin", "/v1/bulk/{action}", json!({"action": "reset-windows-pin"}), None);
        assert!(read(&READER, &ev).request.unwrap_err().message.contains("not \"reset-windows-pin\""));
        let direct = json!({"action": "resetPasscode", "batchId": "0f3a"});
        assert!(matches!(read(&READER, &direct).request, Ok(BulkCall::Progress { .. })));
    }

    #[test]
    fn events_carry_the_action_and_who_asked() {
        let mut ev = test_events::eventbridge(json!({"action": "removePasscode", "userPrincipalName": "a@contoso.com",
                                                     "allDevices": true, "reason": "compromised", "requestedBy": "soar"}));
        ev["detail-type"] = json!(BULK_DETAIL_TYPE);
        let parsed = read(&READER, &ev);
        assert_eq!(parsed.caller.requested_by.as_deref(), Some("soar"));
        let BulkCall::Submit(request) = parsed.request.unwrap() else { panic!() };
        assert_eq!(request.targets, Targets::AllOfUser("a@contoso.com".into()));
        let ev = test_events::eventbridge(json!({"action": "removePasscode"}));
        assert!(read(&READER, &ev).request.unwrap_err().message.contains(BULK_DETAIL_TYPE));
    }
}
