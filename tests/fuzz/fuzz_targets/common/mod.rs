//! Checks shared by the fuzz targets (and, in `inputs`, parts of their
//! structured inputs). Each check states a property that must
//! hold for every input, and panics (a libFuzzer crash) when it does not.

#![allow(dead_code)]

pub mod inputs;

use passcode_core::Action;
use passcode_core::audit::{self, AuditInput};
use passcode_core::error::{ErrorCode, ServiceError};
use passcode_core::outcome::Outcome;
use passcode_core::request::apple_imei_form;
use passcode_core::request::{DeviceRef, PasscodeRequest};
use passcode_core::response;
use passcode_core::trigger::{Incoming, Source};
use serde_json::Value;

/// Longest message a request error may have: the longest fixed text plus
/// two echoed values of at most 64 characters, each escaped by `{:?}`.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// What every parsed event must satisfy, whatever the input.
pub fn check_incoming(action: Action, inc: &Incoming) {
    if let Some(by) = &inc.caller.requested_by {
        assert!(by.chars().count() <= 256, "requestedBy is capped");
    }
    match &inc.request {
        Ok(request) => check_request(action, request),
        Err(e) => check_invalid(e),
    }
    // The answer renders; a request error is never an invocation error.
    if let Err(e) = &inc.request {
        let result = Err::<Outcome, _>(e.clone());
        let answer = response::render(inc.source, action, "fuzz-request-id", &result)
            .unwrap_or_else(|d| panic!("invalidRequest became an invocation error: {d:?}"));
        check_error_answer(inc.source, e, &answer);
    }
    // The audit record serialises to one JSON line.
    let result: Result<Outcome, ServiceError> = match &inc.request {
        Ok(_) => Err(ServiceError::new(ErrorCode::DeviceNotFound, "fuzz")),
        Err(e) => Err(e.clone()),
    };
    let input = AuditInput {
        action,
        request_id: "fuzz-request-id",
        source: inc.source,
        caller: &inc.caller,
        request: inc.request.as_ref().ok(),
        result: &result,
        passcode_returned: false,
        duration: std::time::Duration::from_millis(3),
        metrics_namespace: "IntunePasscode",
    };
    let line = serde_json::to_vec(&audit::record(&input)).expect("audit record serialises");
    assert!(!line.contains(&b'\n'), "audit record is one line");
    let back: Value = serde_json::from_slice(&line).expect("audit record is JSON");
    assert_eq!(back["type"], "audit");
}

/// A refused request: `invalidRequest`, with a short, non-empty message.
pub fn check_invalid(e: &ServiceError) {
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e:?}");
    assert!(!e.transient, "{e:?}");
    assert!(!e.message.trim().is_empty(), "empty message");
    assert!(
        e.message.len() <= MAX_MESSAGE_BYTES,
        "message of {} bytes",
        e.message.len()
    );
}

/// The answer to a refused request: a 400 for API callers, `rejected`
/// for events and direct invocations, with the error's code and message.
pub fn check_error_answer(source: Source, e: &ServiceError, answer: &Value) {
    let error = if source.is_api() {
        assert_eq!(answer["statusCode"], 400);
        assert_eq!(answer["headers"]["cache-control"], "no-store");
        let body: Value = serde_json::from_str(answer["body"].as_str().expect("body is text"))
            .expect("body is JSON");
        body["error"].clone()
    } else {
        assert_eq!(answer["outcome"], "rejected");
        answer["error"].clone()
    };
    assert_eq!(error["code"], "invalidRequest");
    assert_eq!(error["message"].as_str(), Some(e.message.as_str()));
    assert_eq!(error["requestId"], "fuzz-request-id");
}

/// An accepted request only holds values that passed validation.
pub fn check_request(action: Action, r: &PasscodeRequest) {
    if action.writes() {
        assert!(r.reason.is_some(), "writes need a reason");
    }
    for (text, max) in [(&r.reason, 500), (&r.ticket, 100), (&r.requested_by, 256)] {
        check_text(text.as_deref(), max);
    }
    check_idempotency_key(r.idempotency_key.as_deref());
    check_device(&r.device);
}

/// Accepted free text (reason, ticket, requestedBy): 1 to `max` characters,
/// trimmed, no control characters but tab and newline.
pub fn check_text(text: Option<&str>, max: usize) {
    if let Some(t) = text {
        assert!(!t.is_empty() && t.chars().count() <= max, "{t:?}");
        assert_eq!(t.trim(), t);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
    }
}

/// An accepted `idempotencyKey`: up to 128 of letters, digits and `- _ . :`.
pub fn check_idempotency_key(key: Option<&str>) {
    if let Some(key) = key {
        assert!(key.len() <= 128);
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        );
    }
}

fn is_guid(v: &str) -> bool {
    v.len() == 36
        && v.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// Identifier invariants, and the `$filter` built from them.
pub fn check_device(d: &DeviceRef) {
    match d {
        DeviceRef::Id(v) | DeviceRef::AzureAdDeviceId(v) => assert!(is_guid(v), "{v:?}"),
        DeviceRef::SerialNumber(v) => {
            assert!((1..=64).contains(&v.len()), "{v:?}");
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            );
        }
        DeviceRef::Imei(v) => {
            assert!((14..=16).contains(&v.len()), "{v:?}");
            assert!(v.chars().all(|c| c.is_ascii_digit()));
        }
        DeviceRef::User {
            user_principal_name: upn,
            device_name,
        } => {
            assert!((3..=256).contains(&upn.len()), "{upn:?}");
            assert!(upn.chars().all(|c| c.is_ascii_graphic()), "{upn:?}");
            assert_eq!(upn.matches('@').count(), 1);
            if let Some(name) = device_name {
                assert!((1..=128).contains(&name.chars().count()));
                assert_eq!(name.trim(), name);
                assert!(!name.chars().any(char::is_control));
            }
        }
    }
    let _ = d.describe();
    check_filter(d);
}

/// Splits an OData filter into the text outside string literals (each
/// literal replaced by `''`) and the unescaped literals. `None` when a
/// literal is not closed.
pub fn split_filter(filter: &str) -> Option<(String, Vec<String>)> {
    let mut skeleton = String::new();
    let mut literals = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            skeleton.push(c);
            continue;
        }
        let mut literal = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    literal.push('\'');
                }
                '\'' => break,
                other => literal.push(other),
            }
        }
        skeleton.push_str("''");
        literals.push(literal);
    }
    Some((skeleton, literals))
}

/// The filter is exactly the fixed text for its form, and un-escaping its
/// literals gives the identifiers back: nothing the caller sent can get
/// outside a literal.
pub fn check_filter(d: &DeviceRef) {
    let Some(filter) = d.odata_filter() else {
        assert!(matches!(d, DeviceRef::Id(_)));
        return;
    };
    let (skeleton, literals) = split_filter(&filter).expect("every literal is closed");
    let upper;
    let spaced;
    let (expected, values): (&str, Vec<&str>) = match d {
        DeviceRef::Id(_) => unreachable!(),
        // A serial with lower-case letters is also asked for in upper case.
        DeviceRef::SerialNumber(v) if *v != v.to_ascii_uppercase() => {
            upper = v.to_ascii_uppercase();
            ("serialNumber eq '' or serialNumber eq ''", vec![v, &upper])
        }
        DeviceRef::SerialNumber(v) => ("serialNumber eq ''", vec![v]),
        // Both stored forms of an IMEI: bare digits and Apple's grouping.
        DeviceRef::Imei(v) => {
            spaced = apple_imei_form(v);
            ("imei eq '' or imei eq ''", vec![v, &spaced])
        }
        DeviceRef::AzureAdDeviceId(v) => ("azureADDeviceId eq ''", vec![v]),
        DeviceRef::User {
            user_principal_name,
            device_name: None,
        } => ("userPrincipalName eq ''", vec![user_principal_name]),
        DeviceRef::User {
            user_principal_name,
            device_name: Some(name),
        } => (
            "userPrincipalName eq '' and deviceName eq ''",
            vec![user_principal_name, name],
        ),
    };
    assert_eq!(skeleton, expected, "filter {filter:?}");
    assert_eq!(literals, values, "filter {filter:?}");
}
