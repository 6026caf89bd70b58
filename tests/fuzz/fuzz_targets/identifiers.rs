//! Every way to name a device, with fuzzed values: `parse_request` accepts
//! only values that meet the identifier rules, and for each accepted one
//! * the OData `$filter` is exactly the fixed text for its form with the
//!   value in string literals that un-escape to the value (no injection);
//! * the value matches a device that carries it, and `pick_one` picks it;
//! * the value in a different case still matches (Graph's `eq` ignores case);
//! * an IMEI also matches its Apple form (digits grouped with spaces).
#![no_main]

mod common;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use passcode_core::device::ManagedDevice;
use passcode_core::lookup::{matches, pick_one};
use passcode_core::request::{DeviceRef, ParseRules, apple_imei_form, parse_request};
use serde_json::{Map, json};

#[derive(Arbitrary, Debug)]
enum Form {
    Id,
    Serial,
    Imei,
    AzureAdDeviceId,
    Upn,
    UpnAndName(String),
    Path,
}

#[derive(Arbitrary, Debug)]
struct Input {
    form: Form,
    value: String,
    event_rules: bool,
}

/// A device that carries the identifier, as Graph would return it.
fn device_for(d: &DeviceRef) -> ManagedDevice {
    let mut m = ManagedDevice {
        id: "11111111-0000-4000-8000-000000000001".into(),
        ..Default::default()
    };
    match d {
        DeviceRef::Id(v) => m.id = v.clone(),
        DeviceRef::SerialNumber(v) => m.serial_number = Some(v.clone()),
        DeviceRef::Imei(v) => m.imei = Some(v.clone()),
        DeviceRef::AzureAdDeviceId(v) => m.azure_ad_device_id = Some(v.clone()),
        DeviceRef::User {
            user_principal_name,
            device_name,
        } => {
            m.user_principal_name = Some(user_principal_name.clone());
            m.device_name = device_name.clone();
        }
    }
    m
}

fn upper(d: &DeviceRef) -> DeviceRef {
    match d {
        DeviceRef::Id(v) => DeviceRef::Id(v.to_uppercase()),
        DeviceRef::SerialNumber(v) => DeviceRef::SerialNumber(v.to_uppercase()),
        DeviceRef::Imei(v) => DeviceRef::Imei(v.clone()),
        DeviceRef::AzureAdDeviceId(v) => DeviceRef::AzureAdDeviceId(v.to_uppercase()),
        DeviceRef::User {
            user_principal_name,
            device_name,
        } => DeviceRef::User {
            user_principal_name: user_principal_name.to_uppercase(),
            device_name: device_name.clone(),
        },
    }
}

fuzz_target!(|input: Input| {
    let rules = ParseRules {
        reason_required: true,
        allow_requested_by: input.event_rules,
    };
    let mut body = Map::new();
    body.insert("reason".into(), json!("fuzz"));
    let v = input.value.as_str();
    let device = match &input.form {
        Form::Id => Some(json!({"id": v})),
        Form::Serial => Some(json!({"serialNumber": v})),
        Form::Imei => Some(json!({"imei": v})),
        Form::AzureAdDeviceId => Some(json!({"azureAdDeviceId": v})),
        Form::Upn => Some(json!({"userPrincipalName": v})),
        Form::UpnAndName(name) => Some(json!({"userPrincipalName": v, "deviceName": name})),
        Form::Path => None,
    };
    let path = device.is_none().then_some(v);
    if let Some(device) = device {
        body.insert("device".into(), device);
    }
    match parse_request(&body, path, rules) {
        Ok(request) => {
            let d = &request.device;
            common::check_device(d);
            // What was accepted is the input, trimmed (and for IMEIs without
            // separators, for GUIDs lower-cased).
            match d {
                DeviceRef::Id(x) | DeviceRef::AzureAdDeviceId(x) => {
                    assert_eq!(x, &v.trim().to_ascii_lowercase())
                }
                DeviceRef::SerialNumber(x) => assert_eq!(x, v.trim()),
                DeviceRef::Imei(x) => {
                    let digits: String = v
                        .chars()
                        .filter(|c| !c.is_whitespace() && *c != '-')
                        .collect();
                    assert_eq!(x, &digits)
                }
                DeviceRef::User {
                    user_principal_name,
                    ..
                } => assert_eq!(user_principal_name, v.trim()),
            }
            let device = device_for(d);
            assert!(matches(d, &device), "{d:?} does not match its own device");
            assert!(matches(&upper(d), &device), "case matters for {d:?}");
            let picked = pick_one(d, vec![device.clone(), ManagedDevice::default()]).unwrap();
            assert_eq!(picked, device);
            // An IMEI also matches the way Apple devices store it.
            if let DeviceRef::Imei(x) = d {
                let apple = ManagedDevice {
                    imei: Some(apple_imei_form(x)),
                    ..device.clone()
                };
                assert!(matches(d, &apple), "{d:?} does not match {:?}", apple.imei);
            }
        }
        Err(e) => common::check_invalid(&e),
    }
});
