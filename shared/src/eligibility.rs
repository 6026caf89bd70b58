//! Which devices can take which passcode action: one pure function over one
//! table.
//!
//! The table follows Intune's support matrix for "Reset passcode" (Android
//! Enterprise, AOSP, legacy device administrator), "Remove passcode"
//! (iOS/iPadOS/visionOS) and the legacy Windows 10 Mobile PIN reset. Devices
//! are refused *before* Graph is called, each with a reason a helpdesk agent
//! can act on.
//!
//! Where Microsoft's documentation leaves a point open, the table takes the
//! safe side:
//! * Graph has no enrollment type for Android personally-owned work profile;
//!   it is recognised by `deviceType == androidForWork`. An Android device we
//!   cannot place is refused rather than guessed.
//! * Fully managed (COBO) devices get the work-profile reset per the current
//!   docs; the reset itself is the same Graph call either way.
//! * Windows 10 Mobile needs `joinType == azureADJoined` on record; an
//!   unknown join type is refused.
//! * Graph does not document the set of `operatingSystem` values ("Windows,
//!   iOS, etc."), and Entra's records of the same devices read
//!   `AndroidForWork`, `AndroidEnterprise`, `AndroidAOSP`, `iPhone`, ... So
//!   the OS is recognised by family, ignoring case (`android*`, `windows*`,
//!   iOS/iPadOS/iPhone/iPad, macOS/Mac OS X/OS X, visionOS); within a
//!   family the enrollment fields decide. Anything else is refused with
//!   `unsupportedPlatform` naming the value seen: a platform is never
//!   guessed into one that would allow the action.

use crate::action::Action;
use crate::device::ManagedDevice;
use crate::error::ErrorCode;
use crate::request::clip;

/// How Intune manages the device, as far as passcode actions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    AndroidEnterpriseDedicated,
    AndroidEnterpriseFullyManaged,
    AndroidEnterpriseCorporateWorkProfile,
    AndroidEnterprisePersonalWorkProfile,
    AospUserAssociated,
    AospUserless,
    AndroidDeviceAdministrator,
    /// Android, but the enrollment mode can't be told from Graph's data.
    AndroidUnknown,
    /// iOS / iPadOS with device enrollment (ADE, Apple Configurator, Company Portal).
    AppleDeviceEnrollment,
    /// Apple User Enrollment, profile-based or account-driven.
    AppleUserEnrollment,
    VisionOs,
    MacOs,
    WindowsDesktop,
    Windows10Mobile,
    /// Any other operating system, recognised or not.
    Other,
}

impl Platform {
    /// Intune shows the new passcode of a finished reset (Android rows).
    pub fn is_android(self) -> bool {
        matches!(
            self,
            Platform::AndroidEnterpriseDedicated
                | Platform::AndroidEnterpriseFullyManaged
                | Platform::AndroidEnterpriseCorporateWorkProfile
                | Platform::AndroidEnterprisePersonalWorkProfile
                | Platform::AospUserAssociated
                | Platform::AospUserless
                | Platform::AndroidDeviceAdministrator
                | Platform::AndroidUnknown
        )
    }

    /// The passcode is cleared, not replaced (Apple rows).
    pub fn is_apple(self) -> bool {
        matches!(
            self,
            Platform::AppleDeviceEnrollment | Platform::AppleUserEnrollment | Platform::VisionOs
        )
    }
}

/// A condition an allowed row may add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// OS version at least this.
    MinOs(&'static [u32]),
    /// OS version strictly below this.
    BelowOs(&'static [u32]),
    /// Entra ID (Azure AD) joined, not just registered.
    EntraJoined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Allowed,
    /// Allowed when every condition holds, else refused with the message.
    AllowedIf(&'static [Condition], &'static str),
    /// Wrong function for this platform: the message names the right one.
    UseInstead(Action),
    Refused(&'static str),
}

struct Row {
    platform: Platform,
    /// How the agent would name the device, used in messages.
    label: &'static str,
    reset_passcode: Rule,
    remove_passcode: Rule,
    reset_windows_pin: Rule,
}

const MACOS: &str = "Intune can't reset or remove a macOS passcode. Use Remote lock in the Intune admin center (it sets a six-digit recovery PIN shown there), or have the user recover the account with their FileVault recovery key or Apple Account.";
const WINDOWS_DESKTOP: &str = "Intune has no remote PIN or passcode reset for Windows 10/11 PCs. The user resets their Windows Hello PIN on the sign-in screen with \"I forgot my PIN\". For a reset that keeps the user's data, an admin turns on the Microsoft PIN reset service and the \"Enable Pin Recovery\" setting (Intune admin center > Endpoint security > Account protection, or a Windows Hello for Business configuration profile).";
const APPLE_USER_ENROLLMENT: &str = "This device uses Apple User Enrollment (a personal device with a separate work account). Apple does not let an MDM clear its passcode. The user changes the passcode on the device; if they are locked out, only erasing the device through their Apple Account helps, and it must then be enrolled again.";
const ANDROID_UNKNOWN: &str = "Intune's record doesn't show how this Android device is enrolled, so a passcode reset can't be confirmed as safe. Check the device's enrollment type in the Intune admin center (Devices > Android) and run Reset passcode there if it is offered.";
const DEVICE_ADMIN_7: &str = "Android device administrator can reset a passcode only on Android 6.x or earlier: Google removed the capability in Android 7.0 for every MDM. Have the user reset the passcode with their Google account or at the device, or move the device to Android Enterprise enrollment.";
const WORK_PROFILE_8: &str = "A work-profile passcode reset needs Android 8.0 or later. Ask the user to change the work-profile passcode on the device, or remove and re-enroll the work profile.";
const VISIONOS_1_1: &str = "Remove passcode on Apple Vision Pro needs visionOS 1.1 or later. Update the device first; until then the passcode can't be removed remotely.";
const WINDOWS_MOBILE_PIN: &str = "Windows 10 Mobile PIN reset needs the Creators Update (10.0.15063) or later on a device joined to Entra ID (not just registered). Windows 10 Mobile is out of support: have the user reset the PIN on the device, or retire it.";
const OTHER_OS: &str = "This function has no passcode action for the operating system Intune reports for this device, or doesn't recognise it, so nothing was sent rather than guess. Check the device in the Intune admin center (Devices > All devices).";

use Condition::*;
use Rule::*;

/// The support matrix. One row per platform; columns are the three write
/// actions. `passcode-status` works for any managed device.
const MATRIX: &[Row] = &[
    Row {
        platform: Platform::AndroidEnterpriseDedicated,
        label: "an Android Enterprise dedicated device",
        reset_passcode: Allowed,
        remove_passcode: UseInstead(Action::ResetPasscode),
        reset_windows_pin: UseInstead(Action::ResetPasscode),
    },
    Row {
        platform: Platform::AndroidEnterpriseFullyManaged,
        label: "an Android Enterprise fully managed device",
        reset_passcode: Allowed,
        remove_passcode: UseInstead(Action::ResetPasscode),
        reset_windows_pin: UseInstead(Action::ResetPasscode),
    },
    Row {
        platform: Platform::AndroidEnterpriseCorporateWorkProfile,
        label: "an Android Enterprise corporate-owned work profile device",
        reset_passcode: Allowed,
        remove_passcode: UseInstead(Action::ResetPasscode),
        reset_windows_pin: UseInstead(Action::ResetPasscode),
    },
    Row {
        platform: Platform::AndroidEnterprisePersonalWorkProfile,
        label: "an Android Enterprise personally-owned work profile device",
        reset_passcode: AllowedIf(&[MinOs(&[8])], WORK_PROFILE_8),
        remove_passcode: UseInstead(Action::ResetPasscode),
        reset_windows_pin: UseInstead(Action::ResetPasscode),
    },
    Row {
        platform: Platform::AospUserAssociated,
        label: "an Android (AOSP) user-associated device",
        reset_passcode: Allowed,
        remove_passcode: UseInstead(Action::ResetPasscode),
        reset_windows_pin: UseInstead(Action::ResetPasscode),
    },
    Row {
        platform: Platform::AospUserless,
        label: "an Android (AOSP) userless device",
        reset_passcode: Allowed,
        remove_passcode: UseInstead(Action::ResetPasscode),
        reset_windows_pin: UseInstead(Action::ResetPasscode),
    },
    Row {
        platform: Platform::AndroidDeviceAdministrator,
        label: "an Android device administrator device",
        reset_passcode: AllowedIf(&[BelowOs(&[7])], DEVICE_ADMIN_7),
        remove_passcode: UseInstead(Action::ResetPasscode),
        reset_windows_pin: UseInstead(Action::ResetPasscode),
    },
    Row {
        platform: Platform::AndroidUnknown,
        label: "an Android device",
        reset_passcode: Refused(ANDROID_UNKNOWN),
        remove_passcode: UseInstead(Action::ResetPasscode),
        reset_windows_pin: UseInstead(Action::ResetPasscode),
    },
    Row {
        platform: Platform::AppleDeviceEnrollment,
        label: "an iOS/iPadOS device",
        reset_passcode: UseInstead(Action::RemovePasscode),
        remove_passcode: Allowed,
        reset_windows_pin: UseInstead(Action::RemovePasscode),
    },
    Row {
        platform: Platform::AppleUserEnrollment,
        label: "an iOS/iPadOS device with Apple User Enrollment",
        reset_passcode: Refused(APPLE_USER_ENROLLMENT),
        remove_passcode: Refused(APPLE_USER_ENROLLMENT),
        reset_windows_pin: Refused(APPLE_USER_ENROLLMENT),
    },
    Row {
        platform: Platform::VisionOs,
        label: "an Apple Vision Pro",
        reset_passcode: UseInstead(Action::RemovePasscode),
        remove_passcode: AllowedIf(&[MinOs(&[1, 1])], VISIONOS_1_1),
        reset_windows_pin: UseInstead(Action::RemovePasscode),
    },
    Row {
        platform: Platform::MacOs,
        label: "a Mac",
        reset_passcode: Refused(MACOS),
        remove_passcode: Refused(MACOS),
        reset_windows_pin: Refused(MACOS),
    },
    Row {
        platform: Platform::WindowsDesktop,
        label: "a Windows PC",
        reset_passcode: Refused(WINDOWS_DESKTOP),
        remove_passcode: Refused(WINDOWS_DESKTOP),
        reset_windows_pin: Refused(WINDOWS_DESKTOP),
    },
    Row {
        platform: Platform::Windows10Mobile,
        label: "a Windows 10 Mobile device",
        reset_passcode: UseInstead(Action::ResetWindowsPin),
        remove_passcode: UseInstead(Action::ResetWindowsPin),
        reset_windows_pin: AllowedIf(&[MinOs(&[10, 0, 15063]), EntraJoined], WINDOWS_MOBILE_PIN),
    },
    Row {
        platform: Platform::Other,
        label: "this device",
        reset_passcode: Refused(OTHER_OS),
        remove_passcode: Refused(OTHER_OS),
        reset_windows_pin: Refused(OTHER_OS),
    },
];

/// Why a device was refused: `unsupportedPlatform` or `deviceNotManaged`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

/// Decides whether `action` may run on `device`. Pure: no I/O, no clock.
pub fn check(action: Action, device: &ManagedDevice) -> Result<Platform, Refusal> {
    if !device.is_managed() {
        let state = device.management_state.as_deref().unwrap_or("unknown");
        return Err(Refusal {
            code: ErrorCode::DeviceNotManaged,
            message: format!(
                "The device's management state is {state}, not managed. Intune ignores other actions while a retire, wipe or delete is pending, and can't act on a device it no longer manages. Check Devices > Device actions in the Intune admin center; once the device is managed again, retry."
            ),
        });
    }
    let platform = classify(device);
    let row = MATRIX
        .iter()
        .find(|r| r.platform == platform)
        .expect("every platform has a row");
    let rule = match action {
        Action::ResetPasscode => row.reset_passcode,
        Action::RemovePasscode => row.remove_passcode,
        Action::ResetWindowsPin => row.reset_windows_pin,
        // Reads: any managed device. The reveal itself checks that an
        // Android reset produced a passcode.
        Action::Status | Action::RevealPasscode => Allowed,
    };
    let refuse = |message: String| Refusal {
        code: ErrorCode::UnsupportedPlatform,
        message,
    };
    // The values as Graph sent them, quoted and cut short: they name what
    // was seen, and can't make a huge message.
    let quoted = |value: &Option<String>| match value.as_deref() {
        Some(v) if !v.trim().is_empty() => format!("{:?}", clip(v)),
        _ => "none".to_string(),
    };
    let seen = format!(
        " (Intune reports operatingSystem {}, osVersion {}, deviceEnrollmentType {}.)",
        quoted(&device.operating_system),
        quoted(&device.os_version),
        quoted(&device.device_enrollment_type),
    );
    match rule {
        Allowed => Ok(platform),
        AllowedIf(conditions, message) => {
            if conditions.iter().all(|c| holds(*c, device)) {
                Ok(platform)
            } else {
                Err(refuse(format!("{message}{seen}")))
            }
        }
        UseInstead(right) => Err(refuse(format!(
            "{} can't take \"{}\": that action is for other platforms. Use {} instead.{seen}",
            capitalise(row.label),
            action.display_name(),
            right.function_name()
        ))),
        Refused(message) => Err(refuse(format!("{message}{seen}"))),
    }
}

fn holds(condition: Condition, device: &ManagedDevice) -> bool {
    let version = device.os_version.as_deref().and_then(parse_version);
    match condition {
        // An unreadable version never satisfies a version rule.
        MinOs(min) => version.is_some_and(|v| compare(&v, min).is_ge()),
        BelowOs(max) => version.is_some_and(|v| compare(&v, max).is_lt()),
        EntraJoined => eq(&device.join_type, "azureADJoined"),
    }
}

/// Places a device in the matrix from Graph beta's fields. The OS family is
/// read tolerantly (see the module notes); an unrecognised value is `Other`.
pub fn classify(device: &ManagedDevice) -> Platform {
    let os = device
        .operating_system
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let enrollment = device.device_enrollment_type.as_deref().unwrap_or("");
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| os.starts_with(p));
    match os.as_str() {
        _ if starts(&["android"]) => classify_android(device, enrollment),
        _ if starts(&["ios", "ipados", "iphone", "ipad"]) => {
            let user_enrollment = [
                "appleUserEnrollment",
                "appleUserEnrollmentWithServiceAccount",
                "appleAccountDrivenUserEnrollment",
            ]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(enrollment));
            if user_enrollment {
                Platform::AppleUserEnrollment
            } else {
                Platform::AppleDeviceEnrollment
            }
        }
        _ if starts(&["visionos"]) => Platform::VisionOs,
        _ if starts(&["macos", "mac os", "os x", "osx"]) => Platform::MacOs,
        _ if starts(&["windows"]) => {
            let phone = os.contains("mobile")
                || os.contains("phone")
                || eq(&device.device_type, "windowsPhone")
                || eq(&device.device_type, "winMO6");
            if phone {
                Platform::Windows10Mobile
            } else {
                Platform::WindowsDesktop
            }
        }
        _ => Platform::Other,
    }
}

fn classify_android(device: &ManagedDevice, enrollment: &str) -> Platform {
    let by_enrollment = [
        (
            "androidEnterpriseDedicatedDevice",
            Platform::AndroidEnterpriseDedicated,
        ),
        (
            "androidEnterpriseFullyManaged",
            Platform::AndroidEnterpriseFullyManaged,
        ),
        (
            "androidEnterpriseCorporateWorkProfile",
            Platform::AndroidEnterpriseCorporateWorkProfile,
        ),
        (
            "androidAOSPUserOwnedDeviceEnrollment",
            Platform::AospUserAssociated,
        ),
        (
            "androidAOSPUserlessDeviceEnrollment",
            Platform::AospUserless,
        ),
    ];
    if let Some((_, platform)) = by_enrollment
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(enrollment))
    {
        return *platform;
    }
    if eq(&device.management_agent, "intuneAosp") {
        // AOSP without a specific enrollment type: both AOSP kinds allow reset.
        return Platform::AospUserAssociated;
    }
    if eq(&device.device_type, "androidForWork") {
        return Platform::AndroidEnterprisePersonalWorkProfile;
    }
    if eq(&device.device_type, "android") {
        return Platform::AndroidDeviceAdministrator;
    }
    Platform::AndroidUnknown
}

fn eq(value: &Option<String>, expected: &str) -> bool {
    value
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case(expected))
}

/// Leading numeric components of a version: "10.0.15063.1631" → [10, 0, 15063, 1631].
pub fn parse_version(value: &str) -> Option<Vec<u32>> {
    let parts: Vec<u32> = value
        .trim()
        .split('.')
        .map_while(|p| p.parse::<u32>().ok())
        .collect();
    (!parts.is_empty()).then_some(parts)
}

fn compare(version: &[u32], other: &[u32]) -> std::cmp::Ordering {
    let len = version.len().max(other.len());
    let at = |v: &[u32], i: usize| v.get(i).copied().unwrap_or(0);
    (0..len)
        .map(|i| at(version, i).cmp(&at(other, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Action = Action::ResetPasscode;
    const M: Action = Action::RemovePasscode;
    const W: Action = Action::ResetWindowsPin;
    const S: Action = Action::Status;

    /// The Graph fields the matrix reads, in the order [`f`] takes them.
    #[derive(Clone, Copy)]
    struct Fields([&'static str; 6]);

    impl Fields {
        fn device(self) -> ManagedDevice {
            let [os, version, enrollment, agent, device_type, join] = self.0.map(String::from);
            ManagedDevice {
                id: "11111111-0000-4000-8000-000000000001".into(),
                operating_system: Some(os),
                os_version: Some(version),
                device_enrollment_type: Some(enrollment),
                management_agent: Some(agent),
                device_type: Some(device_type),
                join_type: Some(join),
                management_state: Some("managed".into()),
                ..Default::default()
            }
        }
    }

    const fn f(
        os: &'static str,
        version: &'static str,
        enrollment: &'static str,
        agent: &'static str,
        device_type: &'static str,
        join: &'static str,
    ) -> Fields {
        Fields([os, version, enrollment, agent, device_type, join])
    }

    /// One row of the support matrix as a test: the device, where it lands,
    /// which of [reset, remove, windows pin, status] it may take, and what
    /// a refusal of `says.0` must contain.
    struct Case {
        fields: Fields,
        platform: Platform,
        allowed: [bool; 4],
        says: Option<(Action, &'static str)>,
    }

    use Platform as P;
    const ANDROID_ONLY: [bool; 4] = [true, false, false, true];
    const APPLE_ONLY: [bool; 4] = [false, true, false, true];
    const NONE: [bool; 4] = [false, false, false, true];

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        Case { fields: f("Android", "13", "androidEnterpriseDedicatedDevice", "mdm", "androidEnterprise", "unknown"), platform: P::AndroidEnterpriseDedicated, allowed: ANDROID_ONLY, says: Some((M, "Use reset-passcode instead")) },
        Case { fields: f("Android", "14", "androidEnterpriseFullyManaged", "mdm", "androidEnterprise", "unknown"), platform: P::AndroidEnterpriseFullyManaged, allowed: ANDROID_ONLY, says: None },
        Case { fields: f("Android", "12", "androidEnterpriseCorporateWorkProfile", "mdm", "androidEnterprise", "unknown"), platform: P::AndroidEnterpriseCorporateWorkProfile, allowed: ANDROID_ONLY, says: None },
        Case { fields: f("Android", "8.0", "userEnrollment", "mdm", "androidForWork", "unknown"), platform: P::AndroidEnterprisePersonalWorkProfile, allowed: ANDROID_ONLY, says: None },
        Case { fields: f("Android", "7.1.2", "userEnrollment", "mdm", "androidForWork", "unknown"), platform: P::AndroidEnterprisePersonalWorkProfile, allowed: NONE, says: Some((R, "Android 8.0 or later")) },
        Case { fields: f("Android", "unknown", "userEnrollment", "mdm", "androidForWork", "unknown"), platform: P::AndroidEnterprisePersonalWorkProfile, allowed: NONE, says: Some((R, "Android 8.0 or later")) },
        Case { fields: f("Android", "12", "androidAOSPUserOwnedDeviceEnrollment", "intuneAosp", "android", "unknown"), platform: P::AospUserAssociated, allowed: ANDROID_ONLY, says: None },
        Case { fields: f("Android", "10", "androidAOSPUserlessDeviceEnrollment", "intuneAosp", "android", "unknown"), platform: P::AospUserless, allowed: ANDROID_ONLY, says: None },
        Case { fields: f("Android", "6.0.1", "userEnrollment", "mdm", "android", "unknown"), platform: P::AndroidDeviceAdministrator, allowed: ANDROID_ONLY, says: None },
        Case { fields: f("Android", "7.0", "userEnrollment", "mdm", "android", "unknown"), platform: P::AndroidDeviceAdministrator, allowed: NONE, says: Some((R, "Android 6.x or earlier")) },
        Case { fields: f("Android", "10", "userEnrollment", "mdm", "android", "unknown"), platform: P::AndroidDeviceAdministrator, allowed: NONE, says: Some((R, "Android 6.x or earlier")) },
        Case { fields: f("Android", "14", "unknown", "mdm", "androidEnterprise", "unknown"), platform: P::AndroidUnknown, allowed: NONE, says: Some((R, "doesn't show how this Android device is enrolled")) },
        Case { fields: f("iOS", "17.5.1", "appleBulkWithUser", "mdm", "iPhone", "unknown"), platform: P::AppleDeviceEnrollment, allowed: APPLE_ONLY, says: Some((R, "Use remove-passcode instead")) },
        Case { fields: f("iPadOS", "17.4", "userEnrollment", "mdm", "iPad", "unknown"), platform: P::AppleDeviceEnrollment, allowed: APPLE_ONLY, says: None },
        Case { fields: f("iOS", "17.2", "appleUserEnrollment", "mdm", "iPhone", "unknown"), platform: P::AppleUserEnrollment, allowed: NONE, says: Some((M, "Apple User Enrollment")) },
        Case { fields: f("iOS", "17.2", "appleUserEnrollmentWithServiceAccount", "mdm", "iPhone", "unknown"), platform: P::AppleUserEnrollment, allowed: NONE, says: Some((M, "Apple User Enrollment")) },
        Case { fields: f("iOS", "18.1", "appleAccountDrivenUserEnrollment", "mdm", "iPhone", "unknown"), platform: P::AppleUserEnrollment, allowed: NONE, says: Some((M, "Apple User Enrollment")) },
        Case { fields: f("visionOS", "1.1", "appleBulkWithUser", "mdm", "visionOS", "unknown"), platform: P::VisionOs, allowed: APPLE_ONLY, says: None },
        Case { fields: f("visionOS", "1.0.2", "appleBulkWithUser", "mdm", "visionOS", "unknown"), platform: P::VisionOs, allowed: NONE, says: Some((M, "visionOS 1.1 or later")) },
        Case { fields: f("macOS", "14.5", "appleBulkWithUser", "mdm", "macMDM", "unknown"), platform: P::MacOs, allowed: NONE, says: Some((R, "Remote lock")) },
        Case { fields: f("Windows", "10.0.22631.3880", "windowsAzureADJoin", "mdm", "desktop", "azureADJoined"), platform: P::WindowsDesktop, allowed: NONE, says: Some((W, "I forgot my PIN")) },
        Case { fields: f("Windows", "10.0.15063.1631", "windowsAzureADJoin", "mdm", "windowsPhone", "azureADJoined"), platform: P::Windows10Mobile, allowed: [false, false, true, true], says: Some((R, "Use reset-windows-pin instead")) },
        Case { fields: f("Windows", "10.0.14393.2551", "windowsAzureADJoin", "mdm", "windowsPhone", "azureADJoined"), platform: P::Windows10Mobile, allowed: NONE, says: Some((W, "Creators Update")) },
        Case { fields: f("Windows", "10.0.15063.1631", "userEnrollment", "mdm", "windowsPhone", "azureADRegistered"), platform: P::Windows10Mobile, allowed: NONE, says: Some((W, "joined to Entra ID")) },
        Case { fields: f("Linux", "22.04", "unknown", "mdm", "linux", "unknown"), platform: P::Other, allowed: NONE, says: Some((R, "\"Linux\"")) },
    ];

    #[test]
    fn the_support_matrix() {
        for case in CASES {
            let d = case.fields.device();
            let version = d.os_version.as_deref().unwrap_or_default();
            let label = format!("{:?} {version}", case.platform);
            assert_eq!(classify(&d), case.platform, "{label}");
            for (action, expected) in [R, M, W, S].into_iter().zip(case.allowed) {
                let verdict = check(action, &d);
                assert_eq!(verdict.is_ok(), expected, "{label} {action}: {verdict:?}");
                if let Err(refusal) = verdict {
                    assert_eq!(refusal.code, ErrorCode::UnsupportedPlatform, "{label}");
                    assert!(refusal.message.len() > 40, "reason too thin: {refusal:?}");
                }
            }
            if let Some((action, text)) = case.says {
                let message = check(action, &d).unwrap_err().message;
                assert!(message.contains(text), "{label} {action}: {message}");
            }
        }
    }

    /// Spellings of `operatingSystem` seen in Graph and in Entra's records
    /// of the same devices, grouped by the row they land on, with the other
    /// fields of that row (version, enrollment type, management agent,
    /// device type, join type) where it allows the action.
    #[rustfmt::skip]
    const SPELLINGS: &[(&[&str], [&str; 5], Platform)] = &[
        (&["android", "AndroidEnterprise"], ["14", "androidEnterpriseFullyManaged", "mdm", "androidEnterprise", "unknown"], P::AndroidEnterpriseFullyManaged),
        (&["ANDROID"], ["13", "androidEnterpriseDedicatedDevice", "mdm", "androidEnterprise", "unknown"], P::AndroidEnterpriseDedicated),
        (&["AndroidForWork"], ["11", "userEnrollment", "mdm", "androidForWork", "unknown"], P::AndroidEnterprisePersonalWorkProfile),
        (&["AndroidAOSP"], ["12", "androidAOSPUserlessDeviceEnrollment", "intuneAosp", "android", "unknown"], P::AospUserless),
        (&[" Android "], ["6.0.1", "userEnrollment", "mdm", "android", "unknown"], P::AndroidDeviceAdministrator),
        (&["ios", "iPhone"], ["17.5", "appleBulkWithUser", "mdm", "iPhone", "unknown"], P::AppleDeviceEnrollment),
        (&["IPADOS"], ["17.4", "userEnrollment", "mdm", "iPad", "unknown"], P::AppleDeviceEnrollment),
        (&["iPad"], ["17.4", "appleBulkWithUser", "mdm", "iPad", "unknown"], P::AppleDeviceEnrollment),
        (&["VisionOS"], ["2.0", "appleBulkWithUser", "mdm", "visionOS", "unknown"], P::VisionOs),
        (&["Windows 10 Mobile", "WindowsPhone"], ["10.0.15063.1631", "windowsAzureADJoin", "mdm", "unknown", "azureADJoined"], P::Windows10Mobile),
    ];

    #[test]
    fn operating_system_spellings_land_on_their_row() {
        for (spellings, [version, enrollment, agent, device_type, join], platform) in SPELLINGS {
            let action = if platform.is_android() {
                R
            } else if platform.is_apple() {
                M
            } else {
                W
            };
            for spelling in *spellings {
                let d = f(spelling, version, enrollment, agent, device_type, join).device();
                assert_eq!(classify(&d), *platform, "{spelling:?}");
                assert!(check(action, &d).is_ok(), "{spelling:?} {action}");
            }
        }
        // Family spellings of platforms without a passcode action.
        for (spelling, platform) in [
            ("Mac OS X", P::MacOs),
            ("OS X", P::MacOs),
            ("macos", P::MacOs),
            ("Windows 11", P::WindowsDesktop),
            ("WINDOWS", P::WindowsDesktop),
            ("Windows Holographic", P::WindowsDesktop),
        ] {
            let d = f(spelling, "1", "unknown", "mdm", "unknown", "unknown").device();
            assert_eq!(classify(&d), platform, "{spelling:?}");
        }
    }

    #[test]
    fn unrecognised_operating_systems_are_refused_naming_the_value() {
        for os in [
            "", "Linux", "ChromeOS", "tvOS", "Tizen", "Andriod", "AOSP", "Win", "Unknown",
        ] {
            // Enrollment fields of an eligible Android device must not pull an
            // unrecognised OS into a row that allows the reset.
            let d = f(
                os,
                "14",
                "androidEnterpriseFullyManaged",
                "intuneAosp",
                "androidEnterprise",
                "azureADJoined",
            )
            .device();
            assert_eq!(classify(&d), P::Other, "{os:?}");
            for action in [R, M, W] {
                let refusal = check(action, &d).unwrap_err();
                assert_eq!(refusal.code, ErrorCode::UnsupportedPlatform);
                let named = if os.is_empty() {
                    "operatingSystem none".to_string()
                } else {
                    format!("operatingSystem \"{os}\"")
                };
                assert!(
                    refusal.message.contains(&named),
                    "{os:?}: {}",
                    refusal.message
                );
            }
            assert!(check(S, &d).is_ok(), "status works for any managed device");
        }
        let mut missing = f("x", "1", "unknown", "mdm", "unknown", "unknown").device();
        missing.operating_system = None;
        assert_eq!(classify(&missing), P::Other);
        let long = "Q".repeat(10_000);
        let mut huge = missing.clone();
        huge.operating_system = Some(long);
        assert!(check(R, &huge).unwrap_err().message.len() < 1000);
    }

    #[test]
    fn not_managed_is_refused_for_every_action() {
        let mut d = f(
            "Android",
            "14",
            "androidEnterpriseFullyManaged",
            "mdm",
            "androidEnterprise",
            "unknown",
        )
        .device();
        d.management_state = Some("retirePending".into());
        for action in Action::ALL {
            let refusal = check(action, &d).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::DeviceNotManaged);
            assert!(refusal.message.contains("retirePending"));
        }
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(
            parse_version("10.0.15063.1631"),
            Some(vec![10, 0, 15063, 1631])
        );
        assert_eq!(parse_version("6.0.1"), Some(vec![6, 0, 1]));
        assert_eq!(parse_version("beta"), None);
        assert!(compare(&[10, 0, 15063], &[10, 0, 15063]).is_eq());
        assert!(compare(&[8], &[8, 0]).is_eq());
        assert!(compare(&[7, 1, 2], &[8]).is_lt());
        assert!(compare(&[10], &[7]).is_gt());
    }
}
