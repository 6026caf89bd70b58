//! The `managedDevice` resource: its property set per API version, the
//! v1.0/beta views, and the `deviceActionResults` entries Intune writes.

use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

use crate::profile::Profile;

/// Graph API version in the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiVersion {
    V1,
    Beta,
}

impl ApiVersion {
    pub(crate) fn parse(segment: &str) -> Option<ApiVersion> {
        if segment.eq_ignore_ascii_case("v1.0") {
            Some(ApiVersion::V1)
        } else if segment.eq_ignore_ascii_case("beta") {
            Some(ApiVersion::Beta)
        } else {
            None
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// The `managedDevice` properties both API versions have, beta spelling.
const V1_PROPERTIES: &[&str] = &[
    "id",
    "userId",
    "deviceName",
    "managedDeviceOwnerType",
    "managementState",
    "enrolledDateTime",
    "lastSyncDateTime",
    "operatingSystem",
    "complianceState",
    "jailBroken",
    "managementAgent",
    "osVersion",
    "easActivated",
    "easDeviceId",
    "easActivationDateTime",
    "azureADRegistered",
    "deviceEnrollmentType",
    "activationLockBypassCode",
    "emailAddress",
    "azureADDeviceId",
    "deviceRegistrationState",
    "deviceCategoryDisplayName",
    "isSupervised",
    "exchangeLastSuccessfulSyncDateTime",
    "exchangeAccessState",
    "exchangeAccessStateReason",
    "remoteAssistanceSessionUrl",
    "remoteAssistanceSessionErrorDetails",
    "isEncrypted",
    "userPrincipalName",
    "model",
    "manufacturer",
    "imei",
    "complianceGracePeriodExpirationDateTime",
    "serialNumber",
    "phoneNumber",
    "androidSecurityPatchLevel",
    "userDisplayName",
    "configurationManagerClientEnabledFeatures",
    "wiFiMacAddress",
    "deviceHealthAttestationState",
    "subscriberCarrier",
    "meid",
    "totalStorageSpaceInBytes",
    "freeStorageSpaceInBytes",
    "managedDeviceName",
    "partnerReportedThreatState",
    "requireUserEnrollmentApproval",
    "managementCertificateExpirationDate",
    "iccid",
    "udid",
    "notes",
    "ethernetMacAddress",
    "physicalMemoryInBytes",
    "enrollmentProfileName",
    "deviceActionResults",
];

/// Properties that exist only in the beta schema; v1.0 omits them and
/// rejects them in `$select`.
pub(crate) const BETA_ONLY: &[&str] = &[
    "ownerType",
    "chassisType",
    "deviceType",
    "lostModeState",
    "joinType",
    "skuFamily",
    "skuNumber",
    "autopilotEnrolled",
    "processorArchitecture",
    "roleScopeTagIds",
];

/// `deviceEnrollmentType` members added in beta; v1.0 has no spelling for
/// them, so the simulator shows `unknown` there.
const BETA_ONLY_ENROLLMENT_TYPES: &[&str] = &[
    "azureAdJoinUsingAzureVmExtension",
    "androidEnterpriseDedicatedDevice",
    "androidEnterpriseFullyManaged",
    "androidEnterpriseCorporateWorkProfile",
    "androidAOSPUserOwnedDeviceEnrollment",
    "androidAOSPUserlessDeviceEnrollment",
    "appleAccountDrivenUserEnrollment",
];

/// `managementAgentType` members added in beta.
const BETA_ONLY_AGENTS: &[&str] = &["intuneAosp", "google"];

/// Every `managedDevice` property the simulator knows, beta spelling.
/// `$select` names are checked against these (minus [`BETA_ONLY`] in v1.0).
fn properties() -> impl Iterator<Item = &'static str> {
    V1_PROPERTIES.iter().chain(BETA_ONLY).copied()
}

/// Is `name` a property of `managedDevice` in `version`? Returns the
/// canonical spelling (Graph matches property names case-insensitively).
pub(crate) fn canonical_property(name: &str, version: ApiVersion) -> Option<&'static str> {
    let found = properties().find(|p| p.eq_ignore_ascii_case(name))?;
    if version == ApiVersion::V1 && BETA_ONLY.contains(&found) {
        None
    } else {
        Some(found)
    }
}

/// A device with every property at a neutral default. Devices added through
/// the control API are laid over this, so every view has the full shape.
pub(crate) fn template() -> Map<String, Value> {
    let v = json!({
        "id": "00000000-0000-0000-0000-000000000000",
        "userId": "",
        "deviceName": "",
        "ownerType": "company",
        "managedDeviceOwnerType": "company",
        "managementState": "managed",
        "enrolledDateTime": "2025-03-14T09:26:53Z",
        "lastSyncDateTime": "2026-01-01T00:00:00Z",
        "chassisType": "unknown",
        "operatingSystem": "",
        "deviceType": "unknown",
        "complianceState": "compliant",
        "jailBroken": "False",
        "managementAgent": "mdm",
        "osVersion": "",
        "easActivated": false,
        "easDeviceId": "",
        "easActivationDateTime": "0001-01-01T00:00:00Z",
        "azureADRegistered": true,
        "deviceEnrollmentType": "unknown",
        "lostModeState": "disabled",
        "activationLockBypassCode": null,
        "emailAddress": "",
        "azureADDeviceId": "",
        "deviceRegistrationState": "registered",
        "deviceCategoryDisplayName": "Unknown Category",
        "isSupervised": false,
    });
    let rest = json!({
        "exchangeLastSuccessfulSyncDateTime": "0001-01-01T00:00:00Z",
        "exchangeAccessState": "none",
        "exchangeAccessStateReason": "none",
        "remoteAssistanceSessionUrl": "",
        "remoteAssistanceSessionErrorDetails": "",
        "isEncrypted": true,
        "userPrincipalName": "",
        "model": "",
        "manufacturer": "",
        "imei": "",
        "complianceGracePeriodExpirationDateTime": "9999-12-31T23:59:59Z",
        "serialNumber": "",
        "phoneNumber": "",
        "androidSecurityPatchLevel": "",
        "userDisplayName": "",
        "configurationManagerClientEnabledFeatures": null,
        "wiFiMacAddress": "",
        "deviceHealthAttestationState": null,
        "subscriberCarrier": "",
        "meid": "",
        "totalStorageSpaceInBytes": 0,
        "freeStorageSpaceInBytes": 0,
        "managedDeviceName": "",
        "partnerReportedThreatState": "unknown",
        "requireUserEnrollmentApproval": null,
        "managementCertificateExpirationDate": "2027-03-14T09:16:53Z",
        "iccid": null,
        "udid": null,
        "notes": null,
        "ethernetMacAddress": null,
        "physicalMemoryInBytes": 0,
        "enrollmentProfileName": null,
        "joinType": "unknown",
        "skuFamily": "",
        "skuNumber": 0,
        "autopilotEnrolled": false,
        "processorArchitecture": "unknown",
        "roleScopeTagIds": ["0"],
        "deviceActionResults": []
    });
    // Two literals: one would exceed the json! macro's recursion limit.
    let mut map = Map::new();
    for part in [v, rest] {
        if let Value::Object(fields) = part {
            map.extend(fields);
        }
    }
    map
}

/// Lay `patch` over the template: unknown keys are dropped, missing keys
/// keep their default.
pub(crate) fn from_patch(patch: &Map<String, Value>) -> Map<String, Value> {
    let mut device = template();
    for (key, value) in patch {
        if let Some(name) = canonical_property(key, ApiVersion::Beta) {
            device.insert(name.to_string(), value.clone());
        }
    }
    device
}

/// Which properties a response carries.
pub(crate) enum Shape<'a> {
    /// Everything the version knows.
    Full,
    /// `$select`: `id` plus these canonical names.
    Selected(&'a [&'static str]),
}

/// Render a stored (beta-shaped) device for `version`, spelled as
/// `profile` spells answers.
///
/// `in_list` empties `deviceActionResults`: the list endpoint is not
/// documented to populate it, so clients must read it from GET-by-id.
/// A property the stored device lacks is `null`, or left out when the
/// profile omits missing properties.
pub(crate) fn view(
    device: &Map<String, Value>,
    version: ApiVersion,
    shape: Shape<'_>,
    in_list: bool,
    profile: Profile,
) -> Value {
    let wanted: Vec<&str> = match shape {
        Shape::Full => properties().collect(),
        Shape::Selected(names) => {
            let mut names: Vec<&str> = names.to_vec();
            if !names.contains(&"id") {
                names.insert(0, "id");
            }
            names
        }
    };
    let mut out = Map::new();
    for name in wanted {
        if version == ApiVersion::V1 && BETA_ONLY.contains(&name) {
            continue;
        }
        let mut value = match device.get(name) {
            Some(v) => v.clone(),
            None if profile.omits_missing() => continue,
            None => Value::Null,
        };
        if version == ApiVersion::V1 {
            value = v1_value(name, value);
        }
        if name == "deviceActionResults" && in_list && !value.is_null() {
            value = json!([]);
        }
        out.insert(name.to_string(), value);
    }
    profile.decorate_device(&mut out, version == ApiVersion::Beta);
    Value::Object(out)
}

/// Map beta-only enum members to what v1.0 can spell.
fn v1_value(name: &str, value: Value) -> Value {
    let beta_only: &[&str] = match name {
        "deviceEnrollmentType" => BETA_ONLY_ENROLLMENT_TYPES,
        "managementAgent" => BETA_ONLY_AGENTS,
        _ => return value,
    };
    match value.as_str() {
        Some(s) if beta_only.contains(&s) => json!("unknown"),
        _ => value,
    }
}

/// The three Intune device actions the simulator accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceAction {
    ResetPasscode,
    RecoverPasscode,
    RemoteLock,
}

impl DeviceAction {
    /// Parse a path segment; the namespace-qualified spelling
    /// (`microsoft.graph.resetPasscode`) is accepted as OData allows.
    pub(crate) fn parse(segment: &str) -> Option<DeviceAction> {
        let name = segment.strip_prefix("microsoft.graph.").unwrap_or(segment);
        [
            DeviceAction::ResetPasscode,
            DeviceAction::RecoverPasscode,
            DeviceAction::RemoteLock,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            DeviceAction::ResetPasscode => "resetPasscode",
            DeviceAction::RecoverPasscode => "recoverPasscode",
            DeviceAction::RemoteLock => "remoteLock",
        }
    }

    /// Is this action refused synchronously for the device?
    ///
    /// Intune has no passcode action for Windows desktops, and macOS has no
    /// passcode reset (only remote lock); calling a device action where it
    /// does not apply is observed to fail with 400 and a nested Intune message.
    pub(crate) fn unsupported_on(self, device: &Map<String, Value>) -> bool {
        let os = str_prop(device, "operatingSystem").to_ascii_lowercase();
        let device_type = str_prop(device, "deviceType").to_ascii_lowercase();
        let windows_desktop = os == "windows" && device_type == "desktop";
        let mac = os == "macos";
        match self {
            DeviceAction::ResetPasscode | DeviceAction::RecoverPasscode => windows_desktop || mac,
            DeviceAction::RemoteLock => windows_desktop,
        }
    }

    /// A fresh `pending` entry for `deviceActionResults`, typed with the
    /// derived result type Graph uses for the action.
    pub(crate) fn pending_entry(self, now: &str) -> Value {
        match self {
            DeviceAction::ResetPasscode => json!({
                "@odata.type": "#microsoft.graph.resetPasscodeActionResult",
                "actionName": "resetPasscode",
                "actionState": "pending",
                "startDateTime": now,
                "lastUpdatedDateTime": now,
                "passcode": null,
                "errorCode": 0
            }),
            DeviceAction::RemoteLock => json!({
                "@odata.type": "#microsoft.graph.remoteLockActionResult",
                "actionName": "remoteLock",
                "actionState": "pending",
                "startDateTime": now,
                "lastUpdatedDateTime": now,
                "unlockPin": null
            }),
            DeviceAction::RecoverPasscode => json!({
                "@odata.type": "#microsoft.graph.deviceActionResult",
                "actionName": "recoverPasscode",
                "actionState": "pending",
                "startDateTime": now,
                "lastUpdatedDateTime": now
            }),
        }
    }
}

/// A string property, or "" when absent or not a string.
pub(crate) fn str_prop<'a>(device: &'a Map<String, Value>, name: &str) -> &'a str {
    device.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The device as GET-by-id lists it when accepted actions take
/// `delay_seconds` to show up: `deviceActionResults` entries that started
/// less than that long before `now` are left out.
pub(crate) fn without_fresh_actions(
    device: &Map<String, Value>,
    delay_seconds: u64,
    now: time::OffsetDateTime,
) -> Map<String, Value> {
    let mut device = device.clone();
    if delay_seconds == 0 {
        return device;
    }
    let listed_from = now - time::Duration::seconds(delay_seconds as i64);
    if let Some(Value::Array(list)) = device.get_mut("deviceActionResults") {
        list.retain(|entry| {
            let started = entry
                .get("startDateTime")
                .and_then(Value::as_str)
                .and_then(|s| time::OffsetDateTime::parse(s, &Rfc3339).ok());
            started.is_none_or(|at| at <= listed_from)
        });
    }
    device
}

/// Store `entry` in `deviceActionResults`, replacing any earlier entry with
/// the same `actionName` (the simulator keeps only the latest per action).
pub(crate) fn record_action(device: &mut Map<String, Value>, entry: Value) {
    let name = entry
        .get("actionName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let results = device
        .entry("deviceActionResults")
        .or_insert_with(|| json!([]));
    if !results.is_array() {
        *results = json!([]);
    }
    if let Value::Array(list) = results {
        list.retain(|e| e.get("actionName").and_then(Value::as_str) != Some(name.as_str()));
        list.push(entry);
    }
}

/// The `actionState` values of the Graph `actionState` enum.
pub(crate) const ACTION_STATES: &[&str] = &[
    "none",
    "pending",
    "canceled",
    "active",
    "done",
    "failed",
    "notSupported",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_exactly_the_schema() {
        let t = template();
        assert_eq!(t.len(), properties().count());
        for p in properties() {
            assert!(t.contains_key(p), "{p}");
        }
        for p in BETA_ONLY {
            assert!(!V1_PROPERTIES.contains(p), "{p}");
        }
    }

    #[test]
    fn v1_view_hides_beta_members() {
        let mut d = template();
        d.insert(
            "deviceEnrollmentType".into(),
            json!("androidEnterpriseDedicatedDevice"),
        );
        d.insert("managementAgent".into(), json!("intuneAosp"));
        let v1 = view(&d, ApiVersion::V1, Shape::Full, false, Profile::Standard);
        assert_eq!(v1["deviceEnrollmentType"], "unknown");
        assert_eq!(v1["managementAgent"], "unknown");
        assert!(v1.get("deviceType").is_none());
        assert!(v1.get("ownerType").is_none());
        let beta = view(&d, ApiVersion::Beta, Shape::Full, false, Profile::Standard);
        assert_eq!(
            beta["deviceEnrollmentType"],
            "androidEnterpriseDedicatedDevice"
        );
        assert_eq!(beta["managementAgent"], "intuneAosp");
    }

    #[test]
    fn canonical_names_are_case_insensitive_and_versioned() {
        assert_eq!(
            canonical_property("SERIALNUMBER", ApiVersion::V1),
            Some("serialNumber")
        );
        assert_eq!(canonical_property("deviceType", ApiVersion::V1), None);
        assert_eq!(
            canonical_property("deviceType", ApiVersion::Beta),
            Some("deviceType")
        );
        assert_eq!(canonical_property("nope", ApiVersion::Beta), None);
    }

    #[test]
    fn latest_entry_per_action_wins() {
        let mut d = template();
        record_action(&mut d, DeviceAction::ResetPasscode.pending_entry("t1"));
        record_action(&mut d, DeviceAction::RemoteLock.pending_entry("t1"));
        record_action(&mut d, DeviceAction::ResetPasscode.pending_entry("t2"));
        let list = d["deviceActionResults"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        let reset = list
            .iter()
            .find(|e| e["actionName"] == "resetPasscode")
            .unwrap();
        assert_eq!(reset["startDateTime"], "t2");
    }

    #[test]
    fn a_listing_delay_hides_only_actions_younger_than_it() {
        let now = crate::timefmt::now();
        let at = |secs_ago: i64| {
            crate::timefmt::graph_timestamp(now - time::Duration::seconds(secs_ago))
        };
        let mut d = template();
        record_action(&mut d, DeviceAction::ResetPasscode.pending_entry(&at(5)));
        record_action(&mut d, DeviceAction::RemoteLock.pending_entry(&at(60)));
        let names = |d: &Map<String, Value>| -> Vec<String> {
            d["deviceActionResults"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["actionName"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&without_fresh_actions(&d, 0, now)).len(), 2);
        assert_eq!(names(&without_fresh_actions(&d, 30, now)), ["remoteLock"]);
        assert!(names(&without_fresh_actions(&d, 120, now)).is_empty());
        // The stored device keeps both.
        assert_eq!(names(&d).len(), 2);
    }
}
