//! The request a caller sends (API body or EventBridge detail), validated.
//!
//! Validation happens before anything talks to Graph: a bad identifier is a
//! 400 that changes nothing. Identifiers are checked for length and characters
//! first and, where free text is allowed (device names, UPNs), escaped as OData
//! literals when they go into a `$filter`.
//!
//! Unicode look-alikes are decided per field:
//! * GUIDs, serial numbers, IMEIs and idempotency keys are ASCII only, so a
//!   Cyrillic `А` in a serial or fullwidth `３` in an IMEI is a 400. Intune
//!   stores them as ASCII; a look-alike could never match and would only
//!   turn into a confusing `deviceNotFound`.
//! * UPNs are printable ASCII only: Entra ID's username policy allows only
//!   ASCII letters, digits and a few symbols, so any other character
//!   (a zero-width joiner, a Greek `ο`, a no-break space) is a paste
//!   artefact or a spoof and is refused.
//! * Device names and free text (`reason`, `ticket`, `requestedBy`) stay
//!   Unicode: people name phones in every script and with emoji (which use
//!   zero-width joiners). Only control characters are refused. Device names
//!   are compared exactly (case aside) with Intune's record together with the
//!   UPN, so a look-alike can at worst match nothing.
//!
//! Error messages repeat a caller's value at most [`ECHO_CHARS`] characters
//! long, so a huge field name or path can't make a huge answer or log line.

use crate::error::ServiceError;
use serde_json::{Map, Value};
use std::borrow::Cow;

pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const MAX_REASON_CHARS: usize = 500;
/// Most characters of a caller's value that an error message repeats.
pub const ECHO_CHARS: usize = 64;

/// A caller's value as an error message repeats it: cut at [`ECHO_CHARS`]
/// characters, with `…` when something was cut.
pub(crate) fn clip(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(ECHO_CHARS) {
        None => Cow::Borrowed(value),
        Some((at, _)) => Cow::Owned(format!("{}…", &value[..at])),
    }
}

/// How the caller names the device. Each form must resolve to exactly one
/// managed device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRef {
    /// Intune managed device id (GUID).
    Id(String),
    SerialNumber(String),
    Imei(String),
    /// Entra ID `deviceId` (not the Entra object id).
    AzureAdDeviceId(String),
    /// A user's device: the only one, or the one with this name.
    User {
        user_principal_name: String,
        device_name: Option<String>,
    },
}

impl DeviceRef {
    /// Short description for messages and the audit trail, e.g. `serialNumber "R58N10AE001"`.
    pub fn describe(&self) -> String {
        match self {
            DeviceRef::Id(v) => format!("id {v:?}"),
            DeviceRef::SerialNumber(v) => format!("serialNumber {v:?}"),
            DeviceRef::Imei(v) => format!("imei {v:?}"),
            DeviceRef::AzureAdDeviceId(v) => format!("azureAdDeviceId {v:?}"),
            DeviceRef::User {
                user_principal_name,
                device_name: None,
            } => format!("userPrincipalName {user_principal_name:?}"),
            DeviceRef::User {
                user_principal_name,
                device_name: Some(name),
            } => format!("userPrincipalName {user_principal_name:?} and deviceName {name:?}"),
        }
    }

    /// The `$filter` that asks Graph for this device. Graph may ignore it (see
    /// `lookup`), so results are always re-checked with `lookup::matches`.
    ///
    /// Intune stores some identifiers in more than one form, so those ask for
    /// each form with `or` on the same property (the schema documents `eq`
    /// and `or` for `imei` and `serialNumber`, in v1.0 and beta):
    /// * IMEI: Apple devices report it grouped with spaces
    ///   (`35 445506 652132 5`), Android devices as bare digits.
    /// * Serial number: whether Graph's `eq` ignores case is not documented,
    ///   and serials are printed in upper case, so a serial with lower-case
    ///   letters is also asked for in upper case.
    pub fn odata_filter(&self) -> Option<String> {
        let eq = |prop: &str, value: &str| format!("{prop} eq '{}'", odata_escape(value));
        let any_of = |prop: &str, values: &[String]| {
            let mut forms: Vec<String> = Vec::with_capacity(values.len());
            for value in values {
                if !forms.contains(value) {
                    forms.push(value.clone());
                }
            }
            forms
                .iter()
                .map(|v| eq(prop, v))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        match self {
            DeviceRef::Id(_) => None,
            DeviceRef::SerialNumber(v) => {
                Some(any_of("serialNumber", &[v.clone(), v.to_ascii_uppercase()]))
            }
            DeviceRef::Imei(v) => Some(any_of("imei", &[v.clone(), apple_imei_form(v)])),
            DeviceRef::AzureAdDeviceId(v) => Some(eq("azureADDeviceId", v)),
            DeviceRef::User {
                user_principal_name,
                device_name: None,
            } => Some(eq("userPrincipalName", user_principal_name)),
            DeviceRef::User {
                user_principal_name,
                device_name: Some(name),
            } => Some(format!(
                "{} and {}",
                eq("userPrincipalName", user_principal_name),
                eq("deviceName", name)
            )),
        }
    }
}

/// An IMEI the way Apple devices report it to Intune: groups of 2, 6 and 6
/// digits, then the rest (the check digit, or the IMEISV's two version
/// digits), separated by single spaces: `354455066521325` → `35 445506 652132 5`.
pub fn apple_imei_form(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + 3);
    for (i, c) in digits.chars().enumerate() {
        if matches!(i, 2 | 8 | 14) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The digits of an IMEI as Intune stores it, whatever the grouping.
pub fn imei_digits(value: &str) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

/// Doubles single quotes, the only escape an OData string literal has.
pub fn odata_escape(value: &str) -> String {
    value.replace('\'', "''")
}

/// A validated passcode request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasscodeRequest {
    pub device: DeviceRef,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub requested_by: Option<String>,
    pub dry_run: bool,
    /// Send a new passcode action even though one is still pending (the
    /// first passcode is then superseded). Off by default: see `handler`.
    pub replace_pending: bool,
    pub idempotency_key: Option<String>,
}

/// Fields a request object may carry. Anything else is refused, so a typo
/// such as `"serial"` is a clear 400 rather than a silently ignored field.
const REQUEST_FIELDS: &[&str] = &[
    "device",
    "reason",
    "ticket",
    "requestedBy",
    "dryRun",
    "replacePending",
    "idempotencyKey",
    "action",
];
/// Fields of the `device` object: the ways of naming a device.
pub const DEVICE_REF_FIELDS: &[&str] = &[
    "id",
    "serialNumber",
    "imei",
    "azureAdDeviceId",
    "userPrincipalName",
    "deviceName",
];

/// Where the request came from changes a few rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseRules {
    /// `reason` is required for the three write actions.
    pub reason_required: bool,
    /// `requestedBy` is only taken from EventBridge / direct invocations; API
    /// callers are identified from the request context instead.
    pub allow_requested_by: bool,
}

/// Parses and validates a request object. `path_device_id` is the
/// `{deviceId}` of a `/v1/devices/{deviceId}/...` route.
pub fn parse_request(
    body: &Map<String, Value>,
    path_device_id: Option<&str>,
    rules: ParseRules,
) -> Result<PasscodeRequest, ServiceError> {
    if let Some(unknown) = body.keys().find(|k| !REQUEST_FIELDS.contains(&k.as_str())) {
        return Err(ServiceError::invalid(format!(
            "unknown field {:?}; allowed fields are {}",
            clip(unknown),
            REQUEST_FIELDS.join(", ")
        )));
    }
    let device = match (body.get("device"), path_device_id) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid(
                "the device is named twice: give it either in the path or in the body's \"device\", not both",
            ));
        }
        (None, Some(id)) => DeviceRef::Id(validate_guid("deviceId in the path", id)?),
        (Some(value), None) => parse_device(value)?,
        (None, None) => {
            return Err(ServiceError::invalid(
                "\"device\" is required, e.g. {\"device\": {\"serialNumber\": \"R58N10AE001\"}}",
            ));
        }
    };

    let reason = optional_text(body, "reason", MAX_REASON_CHARS)?;
    if rules.reason_required && reason.is_none() {
        return Err(ServiceError::invalid(
            "\"reason\" is required (1 to 500 characters): say why the passcode is being reset, for the audit trail",
        ));
    }
    let ticket = optional_text(body, "ticket", 100)?;
    let requested_by = optional_text(body, "requestedBy", 256)?;
    if requested_by.is_some() && !rules.allow_requested_by {
        return Err(ServiceError::invalid(
            "\"requestedBy\" is only accepted from EventBridge; API callers are identified by their credentials",
        ));
    }
    let dry_run = optional_flag(body, "dryRun")?;
    let replace_pending = optional_flag(body, "replacePending")?;
    let idempotency_key = idempotency_key(body)?;

    Ok(PasscodeRequest {
        device,
        reason,
        ticket,
        requested_by,
        dry_run,
        replace_pending,
        idempotency_key,
    })
}

/// `idempotencyKey`: up to 128 of letters, digits and `- _ . :`.
pub(crate) fn idempotency_key(body: &Map<String, Value>) -> Result<Option<String>, ServiceError> {
    let key = optional_text(body, "idempotencyKey", 128)?;
    if let Some(key) = &key
        && !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(ServiceError::invalid(
            "\"idempotencyKey\" may contain only letters, digits and - _ . :",
        ));
    }
    Ok(key)
}

/// `true` / `false`, absent or null meaning false.
pub(crate) fn optional_flag(body: &Map<String, Value>, name: &str) -> Result<bool, ServiceError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ServiceError::invalid(format!(
            "\"{name}\" must be true or false"
        ))),
    }
}

pub(crate) fn parse_device(value: &Value) -> Result<DeviceRef, ServiceError> {
    let Value::Object(fields) = value else {
        return Err(ServiceError::invalid(
            "\"device\" must be an object such as {\"serialNumber\": \"...\"}",
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !DEVICE_REF_FIELDS.contains(&k.as_str()))
    {
        return Err(ServiceError::invalid(format!(
            "unknown device field {:?}; use one of {}",
            clip(unknown),
            DEVICE_REF_FIELDS.join(", ")
        )));
    }
    let get = |name: &str| -> Result<Option<&str>, ServiceError> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ServiceError::invalid(format!(
                "device.{name} must be a string"
            ))),
        }
    };
    let id = get("id")?;
    let serial = get("serialNumber")?;
    let imei = get("imei")?;
    let aad = get("azureAdDeviceId")?;
    let upn = get("userPrincipalName")?;
    let name = get("deviceName")?;

    let given: Vec<&str> = DEVICE_REF_FIELDS
        .iter()
        .copied()
        .filter(|f| fields.get(*f).is_some_and(|v| !v.is_null()))
        .collect();
    let one_of = "give exactly one of id, serialNumber, imei, azureAdDeviceId, or userPrincipalName (optionally with deviceName)";
    match (id, serial, imei, aad, upn, name) {
        (Some(v), None, None, None, None, None) => {
            Ok(DeviceRef::Id(validate_guid("device.id", v)?))
        }
        (None, Some(v), None, None, None, None) => Ok(DeviceRef::SerialNumber(validate_serial(v)?)),
        (None, None, Some(v), None, None, None) => Ok(DeviceRef::Imei(validate_imei(v)?)),
        (None, None, None, Some(v), None, None) => Ok(DeviceRef::AzureAdDeviceId(validate_guid(
            "device.azureAdDeviceId",
            v,
        )?)),
        (None, None, None, None, Some(u), n) => Ok(DeviceRef::User {
            user_principal_name: validate_upn(u)?,
            device_name: n.map(validate_device_name).transpose()?,
        }),
        (None, None, None, None, None, Some(_)) => Err(ServiceError::invalid(
            "device.deviceName alone is not unique; add device.userPrincipalName, or use id or serialNumber",
        )),
        _ if given.is_empty() => Err(ServiceError::invalid(format!(
            "\"device\" is empty: {one_of}"
        ))),
        _ => Err(ServiceError::invalid(format!(
            "\"device\" names the device in several ways ({}): {one_of}",
            given.join(", ")
        ))),
    }
}

/// Free text (reason, ticket, ...): trimmed, length-limited, no control
/// characters except tab and newline.
pub(crate) fn optional_text(
    body: &Map<String, Value>,
    name: &str,
    max_chars: usize,
) -> Result<Option<String>, ServiceError> {
    let value = match body.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim(),
        Some(_) => {
            return Err(ServiceError::invalid(format!(
                "\"{name}\" must be a string"
            )));
        }
    };
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max_chars {
        return Err(ServiceError::invalid(format!(
            "\"{name}\" is longer than {max_chars} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ServiceError::invalid(format!(
            "\"{name}\" contains control characters"
        )));
    }
    Ok(Some(value.to_string()))
}

/// Intune device ids and Entra device ids are GUIDs; lower-cased so that
/// comparisons and URLs are canonical.
pub fn validate_guid(field: &str, value: &str) -> Result<String, ServiceError> {
    let v = value.trim();
    let groups: Vec<&str> = v.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(ServiceError::invalid(format!(
            "{field} must be a GUID like 0f8fad5b-d9cb-469f-a165-70867728950e"
        )));
    }
    Ok(v.to_ascii_lowercase())
}

fn validate_serial(value: &str) -> Result<String, ServiceError> {
    let v = value.trim();
    let ok = (1..=64).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !ok {
        return Err(ServiceError::invalid(
            "device.serialNumber must be 1 to 64 characters: letters, digits, - _ . /",
        ));
    }
    Ok(v.to_string())
}

/// IMEIs are 15 digits (16 for IMEISV, 14 without the check digit); spaces
/// and dashes as printed on boxes are dropped.
fn validate_imei(value: &str) -> Result<String, ServiceError> {
    let digits: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if !(14..=16).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(ServiceError::invalid(
            "device.imei must be 14 to 16 digits (spaces and dashes are ignored)",
        ));
    }
    Ok(digits)
}

/// Printable ASCII only (see the module notes on look-alikes): no spaces,
/// no zero-width or other invisible characters, no non-Latin letters.
pub(crate) fn validate_upn(value: &str) -> Result<String, ServiceError> {
    let v = value.trim();
    let ok = (3..=256).contains(&v.len())
        && v.matches('@').count() == 1
        && !v.starts_with('@')
        && !v.ends_with('@')
        && v.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(ServiceError::invalid(
            "device.userPrincipalName must look like user@contoso.com (ASCII letters, digits and symbols, no spaces, at most 256 characters)",
        ));
    }
    Ok(v.to_string())
}

fn validate_device_name(value: &str) -> Result<String, ServiceError> {
    let v = value.trim();
    let ok = (1..=128).contains(&v.chars().count()) && !v.chars().any(|c| c.is_control());
    if !ok {
        return Err(ServiceError::invalid(
            "device.deviceName must be 1 to 128 characters without control characters",
        ));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    const WRITE: ParseRules = ParseRules {
        reason_required: true,
        allow_requested_by: false,
    };
    const EVENT: ParseRules = ParseRules {
        reason_required: true,
        allow_requested_by: true,
    };

    fn parse(
        body: Value,
        path: Option<&str>,
        rules: ParseRules,
    ) -> Result<PasscodeRequest, ServiceError> {
        parse_request(body.as_object().unwrap(), path, rules)
    }

    fn device(body: Value) -> Result<DeviceRef, ServiceError> {
        parse(json!({"device": body, "reason": "locked out"}), None, WRITE).map(|r| r.device)
    }

    fn invalid_message(result: Result<impl std::fmt::Debug, ServiceError>) -> String {
        let err = result.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        err.message
    }

    #[test]
    fn every_device_form_parses() {
        let id = "0F8FAD5B-D9CB-469F-A165-70867728950E";
        assert_eq!(
            device(json!({"id": id})).unwrap(),
            DeviceRef::Id(id.to_ascii_lowercase())
        );
        assert_eq!(
            device(json!({"serialNumber": " R58N10AE001 "})).unwrap(),
            DeviceRef::SerialNumber("R58N10AE001".into())
        );
        assert_eq!(
            device(json!({"imei": "35-209900-176148-1"})).unwrap(),
            DeviceRef::Imei("352099001761481".into())
        );
        assert_eq!(
            device(json!({"azureAdDeviceId": id})).unwrap(),
            DeviceRef::AzureAdDeviceId(id.to_ascii_lowercase())
        );
        assert_eq!(
            device(json!({"userPrincipalName": "o'brien@contoso.com"})).unwrap(),
            DeviceRef::User {
                user_principal_name: "o'brien@contoso.com".into(),
                device_name: None
            }
        );
        assert_eq!(
            device(json!({"userPrincipalName": "kim@contoso.com", "deviceName": "Kim's Pixel"}))
                .unwrap(),
            DeviceRef::User {
                user_principal_name: "kim@contoso.com".into(),
                device_name: Some("Kim's Pixel".into())
            }
        );
    }

    #[test]
    fn path_device_is_an_id_and_cannot_be_doubled() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let r = parse(json!({"reason": "x"}), Some(id), WRITE).unwrap();
        assert_eq!(r.device, DeviceRef::Id(id.into()));
        let msg = invalid_message(parse(
            json!({"reason": "x", "device": {"id": id}}),
            Some(id),
            WRITE,
        ));
        assert!(msg.contains("named twice"), "{msg}");
        let msg = invalid_message(parse(json!({"reason": "x"}), Some("not-a-guid"), WRITE));
        assert!(msg.contains("GUID"), "{msg}");
    }

    #[test]
    fn bad_device_forms_are_refused_with_a_hint() {
        for (body, hint) in [
            (json!({}), "empty"),
            (
                json!({"serialNumber": "A", "imei": "350000000000001"}),
                "several ways",
            ),
            (json!({"deviceName": "KIOSK"}), "not unique"),
            (json!({"serial": "A"}), "unknown device field"),
            (json!({"id": "1234"}), "GUID"),
            (json!({"id": 5}), "must be a string"),
            (json!("R58N10AE001"), "must be an object"),
            (json!({"imei": "35abc"}), "14 to 16 digits"),
            (
                json!({"serialNumber": "X' or serialNumber ne '"}),
                "letters, digits",
            ),
            (json!({"serialNumber": "R58Ν10AE001"}), "letters, digits"), // Greek capital Nu
            (json!({"serialNumber": ""}), "1 to 64"),
            (
                json!({"userPrincipalName": "no-at-sign"}),
                "user@contoso.com",
            ),
            (
                json!({"userPrincipalName": "a b@c.com"}),
                "user@contoso.com",
            ),
            (
                json!({"userPrincipalName": "a@c.com", "deviceName": "bad\u{0}name"}),
                "control",
            ),
        ] {
            let msg = invalid_message(device(body.clone()));
            assert!(msg.contains(hint), "{body}: {msg}");
        }
    }

    #[test]
    fn reason_and_other_fields_are_checked() {
        let dev = json!({"serialNumber": "A1"});
        let long = "x".repeat(501);
        // (the body's fields besides the device, what the message must say)
        let cases = [
            (json!({}), "\"reason\" is required"),
            (json!({"reason": "   "}), "\"reason\" is required"),
            (json!({"reason": long}), "longer than 500"),
            (json!({"reason": "r", "dryRun": "yes"}), "dryRun"),
            (json!({"reason": "r", "requestedBy": "a"}), "only accepted from EventBridge"),
            (json!({"reason": "r", "idempotencyKey": "a b"}), "idempotencyKey"),
            (json!({"reason": "r", "extra": 1}), "unknown field \"extra\""),
        ];
        for (mut body, says) in cases {
            body["device"] = dev.clone();
            let msg = invalid_message(parse(body.clone(), None, WRITE));
            assert!(msg.contains(says), "{body}: {msg}");
        }
        let longest = json!({"device": dev, "reason": "x".repeat(500)});
        assert!(parse(longest, None, WRITE).is_ok());
        // Status does not need a reason.
        let status = ParseRules {
            reason_required: false,
            allow_requested_by: false,
        };
        assert!(parse(json!({"device": dev}), None, status).is_ok());
    }

    #[test]
    fn event_requests_carry_requested_by_and_flags() {
        let r = parse(
            json!({"device": {"imei": "350000000000001"}, "reason": " lost PIN ", "ticket": "INC1",
                   "requestedBy": "agent@contoso.com", "dryRun": true, "idempotencyKey": "INC1:reset",
                   "action": "resetPasscode"}),
            None,
            EVENT,
        )
        .unwrap();
        assert_eq!(r.reason.as_deref(), Some("lost PIN"));
        assert_eq!(r.ticket.as_deref(), Some("INC1"));
        assert_eq!(r.requested_by.as_deref(), Some("agent@contoso.com"));
        assert!(r.dry_run);
        assert_eq!(r.idempotency_key.as_deref(), Some("INC1:reset"));
    }

    #[test]
    fn odata_literals_are_escaped() {
        assert_eq!(odata_escape("o'brien"), "o''brien");
        assert_eq!(odata_escape("''"), "''''");
        let user = DeviceRef::User {
            user_principal_name: "o'brien@contoso.com".into(),
            device_name: Some("Kim's Pixel' or deviceName ne '".into()),
        };
        assert_eq!(
            user.odata_filter().unwrap(),
            "userPrincipalName eq 'o''brien@contoso.com' and deviceName eq 'Kim''s Pixel'' or deviceName ne '''"
        );
        assert_eq!(
            DeviceRef::SerialNumber("A1".into()).odata_filter().unwrap(),
            "serialNumber eq 'A1'"
        );
        assert_eq!(DeviceRef::Id("x".into()).odata_filter(), None);
    }

    #[test]
    fn stored_forms_of_imeis_and_serials_are_asked_for() {
        // Android stores bare digits, Apple groups them with spaces.
        assert_eq!(
            DeviceRef::Imei("354455066521325".into())
                .odata_filter()
                .unwrap(),
            "imei eq '354455066521325' or imei eq '35 445506 652132 5'"
        );
        assert_eq!(apple_imei_form("35445506652132"), "35 445506 652132");
        assert_eq!(apple_imei_form("3544550665213251"), "35 445506 652132 51");
        assert_eq!(imei_digits("35 445506 652132 5"), "354455066521325");
        // A lower-case serial is also asked for as printed (upper case).
        assert_eq!(
            DeviceRef::SerialNumber("r58n10ae001".into())
                .odata_filter()
                .unwrap(),
            "serialNumber eq 'r58n10ae001' or serialNumber eq 'R58N10AE001'"
        );
        assert_eq!(
            DeviceRef::SerialNumber("R58N10AE001".into())
                .odata_filter()
                .unwrap(),
            "serialNumber eq 'R58N10AE001'"
        );
    }

    #[test]
    fn replace_pending_is_a_flag() {
        let dev = json!({"serialNumber": "A1"});
        let r = parse(json!({"device": dev, "reason": "r"}), None, WRITE).unwrap();
        assert!(!r.replace_pending);
        let r = parse(
            json!({"device": dev, "reason": "r", "replacePending": true}),
            None,
            WRITE,
        )
        .unwrap();
        assert!(r.replace_pending);
        let msg = invalid_message(parse(
            json!({"device": dev, "reason": "r", "replacePending": "yes"}),
            None,
            WRITE,
        ));
        assert!(
            msg.contains("\"replacePending\" must be true or false"),
            "{msg}"
        );
    }

    #[test]
    fn unicode_look_alikes_are_decided_per_field() {
        // Refused: ASCII-only identifiers with look-alike characters.
        for (body, hint) in [
            (json!({"serialNumber": "R58N10АE001"}), "letters, digits"), // Cyrillic А
            (
                json!({"serialNumber": "R58N1\u{200B}0AE001"}),
                "letters, digits",
            ), // zero-width space
            (
                json!({"imei": "３５２０９９００１７６１４８１"}),
                "14 to 16 digits",
            ), // fullwidth
            (json!({"imei": "35209900176148\u{0661}"}), "14 to 16 digits"), // Arabic-Indic 1
            (
                json!({"id": "0f8fad5b-d9cb-469f-a165-７０867728950e"}),
                "GUID",
            ),
            (
                json!({"azureAdDeviceId": "0f8fad5b-d9cb-469f-a165-70867728950\u{0435}"}),
                "GUID",
            ),
            (
                json!({"userPrincipalName": "ad\u{200D}min@contoso.com"}),
                "ASCII",
            ), // ZWJ
            (
                json!({"userPrincipalName": "admin@contoso\u{FEFF}.com"}),
                "ASCII",
            ), // BOM
            (json!({"userPrincipalName": "аdmin@contoso.com"}), "ASCII"), // Cyrillic а
            (json!({"userPrincipalName": "admin@cοntoso.com"}), "ASCII"), // Greek ο
            (
                json!({"userPrincipalName": "admin\u{00A0}x@contoso.com"}),
                "ASCII",
            ), // NBSP
            (json!({"userPrincipalName": "ａdmin@contoso.com"}), "ASCII"), // fullwidth
            (
                json!({"userPrincipalName": "a@c.com", "deviceName": "KIOSK\u{7}"}),
                "control",
            ),
        ] {
            let msg = invalid_message(device(body.clone()));
            assert!(msg.contains(hint), "{body}: {msg}");
        }
        // Accepted: spaces printed on IMEI boxes, including no-break spaces,
        // are dropped; guest UPNs keep their #EXT#; device names are Unicode.
        assert_eq!(
            device(json!({"imei": "35 209900\u{00A0}176148 1"})).unwrap(),
            DeviceRef::Imei("352099001761481".into())
        );
        assert!(
            device(json!({"userPrincipalName": "kim_fabrikam.com#EXT#@contoso.onmicrosoft.com"}))
                .is_ok()
        );
        let family = "Ким's 👨\u{200D}👩\u{200D}👧 iPad";
        assert_eq!(
            device(json!({"userPrincipalName": "kim@contoso.com", "deviceName": family})).unwrap(),
            DeviceRef::User {
                user_principal_name: "kim@contoso.com".into(),
                device_name: Some(family.into())
            }
        );
    }

    #[test]
    fn huge_field_names_are_clipped_in_messages() {
        let long = "k".repeat(1_000_000);
        let msg = invalid_message(parse(json!({long.as_str(): 1}), None, WRITE));
        assert!(msg.len() < 400 && msg.contains("kkk…"), "{msg}");
        let msg = invalid_message(device(json!({long.as_str(): 1})));
        assert!(msg.len() < 400 && msg.contains("kkk…"), "{msg}");
        assert_eq!(clip("short"), "short");
        assert_eq!(clip(&"é".repeat(ECHO_CHARS)), "é".repeat(ECHO_CHARS));
        assert_eq!(
            clip(&"é".repeat(ECHO_CHARS + 1)),
            format!("{}…", "é".repeat(ECHO_CHARS))
        );
    }
}
