//! The parts of Graph's `managedDevice` this project reads.
//!
//! Devices are read from Graph **beta**: v1.0's `deviceEnrollmentType` has no
//! Android Enterprise / AOSP members and v1.0 has no `ownerType`, `deviceType`
//! or `joinType`, all of which the eligibility rules need. Every field is
//! optional and unknown enum values are kept as strings, because Graph's enums
//! evolve and a new value must never break parsing.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Properties requested with `$select` on every device read.
pub const DEVICE_FIELDS: &str = "id,deviceName,operatingSystem,osVersion,deviceEnrollmentType,managementAgent,managedDeviceOwnerType,ownerType,deviceType,joinType,managementState,serialNumber,imei,azureADDeviceId,userPrincipalName,lastSyncDateTime";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagedDevice {
    pub id: String,
    pub device_name: Option<String>,
    pub operating_system: Option<String>,
    pub os_version: Option<String>,
    pub device_enrollment_type: Option<String>,
    pub management_agent: Option<String>,
    pub managed_device_owner_type: Option<String>,
    pub owner_type: Option<String>,
    pub device_type: Option<String>,
    pub join_type: Option<String>,
    pub management_state: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    #[serde(rename = "azureADDeviceId")]
    pub azure_ad_device_id: Option<String>,
    pub user_principal_name: Option<String>,
    pub last_sync_date_time: Option<String>,
    pub device_action_results: Option<Vec<DeviceActionResult>>,
}

/// One entry of `deviceActionResults`. `passcode` is only present on
/// `#microsoft.graph.resetPasscodeActionResult`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceActionResult {
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    pub action_name: Option<String>,
    pub action_state: Option<String>,
    pub start_date_time: Option<String>,
    pub last_updated_date_time: Option<String>,
    pub passcode: Option<String>,
    pub error_code: Option<i64>,
}

// Hand-written so a passcode can never be printed through `{:?}`.
impl std::fmt::Debug for DeviceActionResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceActionResult")
            .field("action_name", &self.action_name)
            .field("action_state", &self.action_state)
            .field("start_date_time", &self.start_date_time)
            .field("passcode", &self.passcode.as_ref().map(|_| "***"))
            .finish()
    }
}

impl DeviceActionResult {
    /// Is this the result of `resetPasscode`? Graph's literal `actionName` is
    /// not documented, so the derived `@odata.type` is preferred and the name is
    /// compared case-insensitively.
    pub fn is_reset_passcode(&self) -> bool {
        let by_type = self
            .odata_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.resetPasscodeActionResult"));
        let by_name = self
            .action_name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("resetPasscode"));
        by_type || by_name
    }

    pub fn started_at(&self) -> Option<OffsetDateTime> {
        self.start_date_time.as_deref().and_then(parse_time)
    }

    /// `pending` or `active`: Intune has not finished with it.
    pub fn in_progress(&self) -> bool {
        matches!(
            self.action_state
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("pending" | "active")
        )
    }
}

impl ManagedDevice {
    /// The newest `resetPasscode` result on the device, if any.
    pub fn latest_reset(&self) -> Option<&DeviceActionResult> {
        self.device_action_results
            .iter()
            .flatten()
            .filter(|r| r.is_reset_passcode())
            .max_by_key(|r| r.started_at())
    }

    pub fn is_managed(&self) -> bool {
        self.management_state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("managed"))
    }

    /// What callers see of the device in every answer and in the audit trail.
    pub fn summary(&self) -> DeviceSummary {
        let owned = |v: &Option<String>| v.clone().unwrap_or_default();
        DeviceSummary {
            id: self.id.clone(),
            device_name: owned(&self.device_name),
            operating_system: owned(&self.operating_system),
            os_version: owned(&self.os_version),
            enrollment_type: owned(&self.device_enrollment_type),
            ownership: self
                .owner_type
                .clone()
                .or_else(|| self.managed_device_owner_type.clone())
                .unwrap_or_default(),
            user_principal_name: owned(&self.user_principal_name),
            last_sync_date_time: self.last_sync_date_time.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSummary {
    pub id: String,
    pub device_name: String,
    pub operating_system: String,
    pub os_version: String,
    pub enrollment_type: String,
    pub ownership: String,
    pub user_principal_name: String,
    pub last_sync_date_time: Option<String>,
}

/// Parses Graph's timestamps (RFC 3339, up to 7 fractional digits).
pub fn parse_time(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_graph_json_with_unknown_enum_values_and_extra_fields() {
        let d: ManagedDevice = serde_json::from_value(json!({
            "id": "11111111-0000-4000-8000-000000000001",
            "deviceEnrollmentType": "someFutureValue",
            "azureADDeviceId": "22222222-0000-4000-8000-000000000001",
            "somethingNew": {"nested": true},
            "deviceActionResults": [
                {"@odata.type": "#microsoft.graph.deviceActionResult", "actionName": "remoteLock",
                 "actionState": "done", "startDateTime": "2026-11-26T05:00:00Z"},
                {"@odata.type": "#microsoft.graph.resetPasscodeActionResult", "actionName": "resetPasscode",
                 "actionState": "pending", "startDateTime": "2026-11-26T05:10:11.1234567Z", "passcode": null, "errorCode": 0},
                {"actionName": "RESETPASSCODE", "actionState": "done", "startDateTime": "2026-11-25T05:00:00Z",
                 "passcode": "12345678"}
            ]
        }))
        .unwrap();
        assert_eq!(d.device_enrollment_type.as_deref(), Some("someFutureValue"));
        assert_eq!(
            d.azure_ad_device_id.as_deref(),
            Some("22222222-0000-4000-8000-000000000001")
        );
        let latest = d.latest_reset().unwrap();
        assert!(latest.in_progress());
        assert_eq!(
            latest.start_date_time.as_deref(),
            Some("2026-11-26T05:10:11.1234567Z")
        );
        assert!(!format!("{:?}", d).contains("12345678"));
    }

    #[test]
    fn summary_prefers_beta_owner_type() {
        let d = ManagedDevice {
            id: "x".into(),
            owner_type: Some("company".into()),
            managed_device_owner_type: Some("personal".into()),
            ..Default::default()
        };
        assert_eq!(d.summary().ownership, "company");
    }
}
