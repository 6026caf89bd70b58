//! The support matrix on any device: `classify` and `check` never panic, a
//! refusal always explains itself (over 40 characters) with the right code,
//! and an allowed action is consistent with `classify`.
//!
//! The same bytes are read twice: as Graph JSON (`ManagedDevice`), and as
//! fuzzer choices among the values Graph really uses (plus anything else),
//! which reaches every row of the matrix quickly.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use passcode_core::Action;
use passcode_core::device::{DeviceActionResult, ManagedDevice};
use passcode_core::eligibility::{Platform, check, classify, parse_version};
use passcode_core::error::ErrorCode;

#[derive(Arbitrary, Debug)]
enum Choice {
    None,
    Known(u8),
    Any(String),
}

impl Choice {
    fn pick(&self, known: &[&str]) -> Option<String> {
        match self {
            Choice::None => None,
            Choice::Known(i) => Some(known[*i as usize % known.len()].to_string()),
            Choice::Any(s) => Some(s.clone()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Fields {
    os: Choice,
    version: Choice,
    enrollment: Choice,
    agent: Choice,
    owner: Choice,
    device_type: Choice,
    join: Choice,
    state: Choice,
    results: Vec<(Choice, Choice, Choice)>,
}

const OS: &[&str] = &[
    "Android",
    "android",
    "iOS",
    "iPadOS",
    "visionOS",
    "macOS",
    "Mac OS X",
    "Windows",
    "Windows Mobile",
    "windows phone",
    "Linux",
    "ChromeOS",
    "",
    "AndroidForWork",
    "AndroidEnterprise",
    "AndroidAOSP",
    "iPhone",
    "IPAD",
    "tvOS",
    "Andriod",
];
const VERSION: &[&str] = &[
    "13",
    "6.0.1",
    "7.0",
    "7",
    "8.0",
    "11.0",
    "10.0.15063",
    "10.0.14393.0",
    "10.0.15063.1631",
    "1.1",
    "1.0.2",
    "2",
    "",
    "x",
    "99999999999",
];
const ENROLLMENT: &[&str] = &[
    "androidEnterpriseDedicatedDevice",
    "androidEnterpriseFullyManaged",
    "androidEnterpriseCorporateWorkProfile",
    "androidAOSPUserOwnedDeviceEnrollment",
    "androidAOSPUserlessDeviceEnrollment",
    "appleUserEnrollment",
    "appleUserEnrollmentWithServiceAccount",
    "appleAccountDrivenUserEnrollment",
    "appleBulkWithUser",
    "userEnrollment",
    "windowsAzureADJoin",
    "unknown",
];
const AGENT: &[&str] = &[
    "mdm",
    "intuneAosp",
    "easMdm",
    "configurationManagerClientMdm",
];
const OWNER: &[&str] = &["company", "personal", "unknown"];
const DEVICE_TYPE: &[&str] = &[
    "android",
    "androidForWork",
    "androidEnterprise",
    "windowsPhone",
    "winMO6",
    "iPhone",
    "desktop",
    "unknown",
];
const JOIN: &[&str] = &[
    "azureADJoined",
    "azureADRegistered",
    "hybridAzureADJoined",
    "unknown",
];
const STATE: &[&str] = &[
    "managed",
    "retirePending",
    "wipePending",
    "unhealthy",
    "MANAGED",
];
const ACTION_NAME: &[&str] = &["resetPasscode", "remoteLock", "RESETPASSCODE"];
const ACTION_STATE: &[&str] = &["pending", "active", "done", "failed", "notSupported"];
const TIME: &[&str] = &[
    "2026-11-26T05:00:00Z",
    "2026-11-26T05:10:11.1234567Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "not a time",
];

fn structured(f: &Fields) -> ManagedDevice {
    ManagedDevice {
        id: "11111111-0000-4000-8000-000000000001".into(),
        operating_system: f.os.pick(OS),
        os_version: f.version.pick(VERSION),
        device_enrollment_type: f.enrollment.pick(ENROLLMENT),
        management_agent: f.agent.pick(AGENT),
        owner_type: f.owner.pick(OWNER),
        device_type: f.device_type.pick(DEVICE_TYPE),
        join_type: f.join.pick(JOIN),
        management_state: f.state.pick(STATE),
        device_action_results: Some(
            f.results
                .iter()
                .map(|(name, state, time)| DeviceActionResult {
                    action_name: name.pick(ACTION_NAME),
                    action_state: state.pick(ACTION_STATE),
                    start_date_time: time.pick(TIME),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

fn check_device(d: &ManagedDevice) {
    let platform = classify(d);
    if let Some(v) = d.os_version.as_deref()
        && let Some(parts) = parse_version(v)
    {
        assert!(!parts.is_empty());
    }
    let _ = d.latest_reset();
    let _ = d.summary();
    for action in Action::ALL {
        match check(action, d) {
            Ok(p) => {
                assert!(d.is_managed());
                assert_eq!(p, platform);
                if action.writes() {
                    // Never guessed: an allowed platform's family is the one
                    // the operatingSystem value names.
                    let os = d
                        .operating_system
                        .as_deref()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    let family: &[&str] = if p.is_android() {
                        &["android"]
                    } else if p.is_apple() {
                        &["ios", "ipados", "iphone", "ipad", "visionos"]
                    } else {
                        &["windows"]
                    };
                    assert!(family.iter().any(|f| os.starts_with(f)), "{os:?} as {p:?}");
                    assert!(!matches!(
                        p,
                        Platform::MacOs
                            | Platform::WindowsDesktop
                            | Platform::AppleUserEnrollment
                            | Platform::AndroidUnknown
                            | Platform::Other
                    ));
                }
            }
            Err(refusal) => {
                assert!(
                    refusal.message.chars().count() > 40,
                    "short refusal: {:?}",
                    refusal.message
                );
                if d.is_managed() {
                    assert_eq!(refusal.code, ErrorCode::UnsupportedPlatform);
                    assert!(action.writes(), "status is refused for {platform:?}");
                } else {
                    assert_eq!(refusal.code, ErrorCode::DeviceNotManaged);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = serde_json::from_slice::<ManagedDevice>(data) {
        check_device(&d);
    }
    if let Ok(fields) = Fields::arbitrary_take_rest(Unstructured::new(data)) {
        check_device(&structured(&fields));
    }
});
