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

use crate::action::Action;
use crate::device::ManagedDevice;
use crate::error::ErrorCode;

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
    Other,
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
const OTHER_OS: &str = "Intune has no remote passcode reset for this operating system.";

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
    let seen = format!(
        " (Intune reports {} {}, enrollment type {}.)",
        device
            .operating_system
            .as_deref()
            .unwrap_or("an unknown OS"),
        device.os_version.as_deref().unwrap_or(""),
        device
            .device_enrollment_type
            .as_deref()
            .unwrap_or("unknown")
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

/// Places a device in the matrix from Graph beta's fields.
pub fn classify(device: &ManagedDevice) -> Platform {
    let os = device
        .operating_system
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let enrollment = device.device_enrollment_type.as_deref().unwrap_or("");
    match os.as_str() {
        "android" => classify_android(device, enrollment),
        "ios" | "ipados" => {
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
        "visionos" => Platform::VisionOs,
        "macos" | "mac os x" | "macosx" => Platform::MacOs,
        _ if os.starts_with("windows") => {
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

    fn device(
        os: &str,
        version: &str,
        enrollment: &str,
        agent: &str,
        device_type: &str,
        join: &str,
    ) -> ManagedDevice {
        ManagedDevice {
            id: "11111111-0000-4000-8000-000000000001".into(),
            operating_system: Some(os.into()),
            os_version: Some(version.into()),
            device_enrollment_type: Some(enrollment.into()),
            management_agent: Some(agent.into()),
            device_type: Some(device_type.into()),
            join_type: Some(join.into()),
            management_state: Some("managed".into()),
            ..Default::default()
        }
    }

    const R: Action = Action::ResetPasscode;
    const M: Action = Action::RemovePasscode;
    const W: Action = Action::ResetWindowsPin;
    const S: Action = Action::Status;

    /// (device, platform, [allowed for reset, remove, windows pin, status])
    fn assert_row(d: ManagedDevice, platform: Platform, allowed: [bool; 4]) {
        assert_eq!(classify(&d), platform, "{d:?}");
        for (action, expected) in [R, M, W, S].into_iter().zip(allowed) {
            let verdict = check(action, &d);
            assert_eq!(
                verdict.is_ok(),
                expected,
                "{platform:?} {action}: {verdict:?}"
            );
            if let Err(refusal) = verdict {
                assert_eq!(refusal.code, ErrorCode::UnsupportedPlatform);
                assert!(
                    refusal.message.len() > 40,
                    "reason too thin: {}",
                    refusal.message
                );
            }
        }
    }

    #[test]
    fn android_enterprise_dedicated() {
        let d = device(
            "Android",
            "13",
            "androidEnterpriseDedicatedDevice",
            "mdm",
            "androidEnterprise",
            "unknown",
        );
        assert_row(
            d,
            Platform::AndroidEnterpriseDedicated,
            [true, false, false, true],
        );
    }

    #[test]
    fn android_enterprise_fully_managed() {
        let d = device(
            "Android",
            "14",
            "androidEnterpriseFullyManaged",
            "mdm",
            "androidEnterprise",
            "unknown",
        );
        assert_row(
            d,
            Platform::AndroidEnterpriseFullyManaged,
            [true, false, false, true],
        );
    }

    #[test]
    fn android_enterprise_corporate_work_profile() {
        let d = device(
            "Android",
            "12",
            "androidEnterpriseCorporateWorkProfile",
            "mdm",
            "androidEnterprise",
            "unknown",
        );
        assert_row(
            d,
            Platform::AndroidEnterpriseCorporateWorkProfile,
            [true, false, false, true],
        );
    }

    #[test]
    fn android_personal_work_profile_8_and_later() {
        let d = device(
            "Android",
            "8.0",
            "userEnrollment",
            "mdm",
            "androidForWork",
            "unknown",
        );
        assert_row(
            d,
            Platform::AndroidEnterprisePersonalWorkProfile,
            [true, false, false, true],
        );
    }

    #[test]
    fn android_personal_work_profile_7_is_refused() {
        let d = device(
            "Android",
            "7.1.2",
            "userEnrollment",
            "mdm",
            "androidForWork",
            "unknown",
        );
        assert_row(
            d.clone(),
            Platform::AndroidEnterprisePersonalWorkProfile,
            [false, false, false, true],
        );
        assert!(
            check(R, &d)
                .unwrap_err()
                .message
                .contains("Android 8.0 or later")
        );
    }

    #[test]
    fn aosp_user_associated_and_userless() {
        let d = device(
            "Android",
            "12",
            "androidAOSPUserOwnedDeviceEnrollment",
            "intuneAosp",
            "android",
            "unknown",
        );
        assert_row(d, Platform::AospUserAssociated, [true, false, false, true]);
        let d = device(
            "Android",
            "10",
            "androidAOSPUserlessDeviceEnrollment",
            "intuneAosp",
            "android",
            "unknown",
        );
        assert_row(d, Platform::AospUserless, [true, false, false, true]);
    }

    #[test]
    fn android_device_administrator_6_is_allowed() {
        let d = device(
            "Android",
            "6.0.1",
            "userEnrollment",
            "mdm",
            "android",
            "unknown",
        );
        assert_row(
            d,
            Platform::AndroidDeviceAdministrator,
            [true, false, false, true],
        );
    }

    #[test]
    fn android_device_administrator_7_and_later_is_refused() {
        for version in ["7.0", "10"] {
            let d = device(
                "Android",
                version,
                "userEnrollment",
                "mdm",
                "android",
                "unknown",
            );
            assert_row(
                d.clone(),
                Platform::AndroidDeviceAdministrator,
                [false, false, false, true],
            );
            assert!(
                check(R, &d)
                    .unwrap_err()
                    .message
                    .contains("Android 6.x or earlier")
            );
        }
    }

    #[test]
    fn android_that_cannot_be_placed_is_refused() {
        let d = device(
            "Android",
            "14",
            "unknown",
            "mdm",
            "androidEnterprise",
            "unknown",
        );
        assert_row(d, Platform::AndroidUnknown, [false, false, false, true]);
    }

    #[test]
    fn ios_and_ipados_device_enrollment() {
        let d = device(
            "iOS",
            "17.5.1",
            "appleBulkWithUser",
            "mdm",
            "iPhone",
            "unknown",
        );
        assert_row(
            d,
            Platform::AppleDeviceEnrollment,
            [false, true, false, true],
        );
        let d = device("iPadOS", "17.4", "userEnrollment", "mdm", "iPad", "unknown");
        assert_row(
            d,
            Platform::AppleDeviceEnrollment,
            [false, true, false, true],
        );
    }

    #[test]
    fn apple_user_enrollment_is_never_eligible() {
        for enrollment in [
            "appleUserEnrollment",
            "appleUserEnrollmentWithServiceAccount",
            "appleAccountDrivenUserEnrollment",
        ] {
            let d = device("iOS", "17.2", enrollment, "mdm", "iPhone", "unknown");
            assert_row(
                d.clone(),
                Platform::AppleUserEnrollment,
                [false, false, false, true],
            );
            assert!(
                check(M, &d)
                    .unwrap_err()
                    .message
                    .contains("Apple User Enrollment")
            );
        }
    }

    #[test]
    fn visionos_from_1_1() {
        let d = device(
            "visionOS",
            "1.1",
            "appleBulkWithUser",
            "mdm",
            "visionOS",
            "unknown",
        );
        assert_row(d, Platform::VisionOs, [false, true, false, true]);
        let d = device(
            "visionOS",
            "1.0.2",
            "appleBulkWithUser",
            "mdm",
            "visionOS",
            "unknown",
        );
        assert_row(d, Platform::VisionOs, [false, false, false, true]);
    }

    #[test]
    fn macos_is_refused_with_remote_lock_hint() {
        let d = device(
            "macOS",
            "14.5",
            "appleBulkWithUser",
            "mdm",
            "macMDM",
            "unknown",
        );
        assert_row(d.clone(), Platform::MacOs, [false, false, false, true]);
        assert!(check(R, &d).unwrap_err().message.contains("Remote lock"));
    }

    #[test]
    fn windows_desktop_is_refused_with_self_service_pin_reset() {
        let d = device(
            "Windows",
            "10.0.22631.3880",
            "windowsAzureADJoin",
            "mdm",
            "desktop",
            "azureADJoined",
        );
        assert_row(
            d.clone(),
            Platform::WindowsDesktop,
            [false, false, false, true],
        );
        let msg = check(W, &d).unwrap_err().message;
        assert!(
            msg.contains("I forgot my PIN") && msg.contains("PIN reset service"),
            "{msg}"
        );
    }

    #[test]
    fn windows_10_mobile_creators_update_entra_joined() {
        let d = device(
            "Windows",
            "10.0.15063.1631",
            "windowsAzureADJoin",
            "mdm",
            "windowsPhone",
            "azureADJoined",
        );
        assert_row(d, Platform::Windows10Mobile, [false, false, true, true]);
    }

    #[test]
    fn windows_10_mobile_before_creators_update_or_not_joined_is_refused() {
        let d = device(
            "Windows",
            "10.0.14393.2551",
            "windowsAzureADJoin",
            "mdm",
            "windowsPhone",
            "azureADJoined",
        );
        assert_row(d, Platform::Windows10Mobile, [false, false, false, true]);
        let d = device(
            "Windows",
            "10.0.15063.1631",
            "userEnrollment",
            "mdm",
            "windowsPhone",
            "azureADRegistered",
        );
        assert_row(
            d.clone(),
            Platform::Windows10Mobile,
            [false, false, false, true],
        );
        assert!(
            check(W, &d)
                .unwrap_err()
                .message
                .contains("Creators Update")
        );
    }

    #[test]
    fn unknown_operating_systems_are_refused() {
        let d = device("Linux", "22.04", "unknown", "mdm", "linux", "unknown");
        assert_row(d, Platform::Other, [false, false, false, true]);
    }

    #[test]
    fn wrong_function_names_the_right_one() {
        let iphone = device(
            "iOS",
            "17.5.1",
            "appleBulkWithUser",
            "mdm",
            "iPhone",
            "unknown",
        );
        let msg = check(R, &iphone).unwrap_err().message;
        assert!(msg.contains("Use remove-passcode instead"), "{msg}");
        let pixel = device(
            "Android",
            "14",
            "androidEnterpriseFullyManaged",
            "mdm",
            "androidEnterprise",
            "unknown",
        );
        assert!(
            check(M, &pixel)
                .unwrap_err()
                .message
                .contains("Use reset-passcode instead")
        );
    }

    #[test]
    fn not_managed_is_refused_for_every_action() {
        let mut d = device(
            "Android",
            "14",
            "androidEnterpriseFullyManaged",
            "mdm",
            "androidEnterprise",
            "unknown",
        );
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
        // An unreadable version fails version-gated rows.
        let d = device(
            "Android",
            "unknown",
            "userEnrollment",
            "mdm",
            "androidForWork",
            "unknown",
        );
        assert!(check(R, &d).is_err());
    }
}
