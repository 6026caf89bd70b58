//! Simulator profiles: how the seeded tenant and the service spell things.
//!
//! * [`Profile::Standard`] answers in the tidiest documented form: every
//!   property present, integer `Retry-After`, `204` for actions, one error
//!   body shape.
//! * [`Profile::Variants`] ("real-tenant variants") keeps the **same** seeded
//!   tenant (same ids, devices, serials, users) but spells it the way real
//!   tenants and Graph answers have been seen or documented to spell it, so a
//!   client that only copes with the tidy form fails a test:
//!   - Apple devices report their IMEI with spaces (`35 445506 652132 5`),
//!     Android devices without;
//!   - `operatingSystem` is free text: `AndroidEnterprise`, `AndroidForWork`,
//!     `AndroidAOSP`, `android`, `iPadOS`, `windows`, `MacOS`, ...;
//!   - optional properties are `null` or absent on some devices
//!     (`osVersion`, `serialNumber`, `imei`, `deviceActionResults`);
//!   - objects carry `@odata.type` annotations and properties this client
//!     does not know;
//!   - `Retry-After` is fractional seconds on 429 (Graph's throttling
//!     documentation shows `2.128`) and an HTTP-date on 503 (RFC 9110);
//!   - error bodies come with and without `innerError`, and 5xx bodies carry
//!     Intune's JSON-in-a-string `message`;
//!   - `resetPasscode` (documented `204 No Content`) answers `200` with a
//!     small JSON body.
//!
//! Pick it with `GRAPH_SIM_PROFILE=variants` (read by [`Profile::from_env`])
//! or `graph-sim --profile variants`.

use std::fmt;
use std::str::FromStr;

use hyper::StatusCode;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// Environment variable that selects the profile.
pub const PROFILE_ENV: &str = "GRAPH_SIM_PROFILE";

/// Which spelling of the tenant and the service the simulator uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Profile {
    /// Tidy, documented forms.
    #[default]
    Standard,
    /// The same tenant spelled as real tenants spell it (see the module docs).
    Variants,
}

impl Profile {
    /// `standard` or `variants`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Standard => "standard",
            Profile::Variants => "variants",
        }
    }

    /// The profile named by `GRAPH_SIM_PROFILE`; unset or empty means
    /// [`Profile::Standard`]. An unknown name is an error, not a silent
    /// fallback, so a typo cannot make a run look green.
    pub fn from_env() -> Result<Profile, String> {
        match std::env::var(PROFILE_ENV) {
            Ok(v) if !v.trim().is_empty() => v.parse(),
            _ => Ok(Profile::Standard),
        }
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Profile, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" | "default" => Ok(Profile::Standard),
            "variants" | "real-tenant-variants" => Ok(Profile::Variants),
            other => Err(format!(
                "unknown graph-sim profile {other:?}: use \"standard\" or \"variants\""
            )),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ------------------------------------------------------------ tenant data

/// `operatingSystem` as a real tenant spells it for a device of the seeded
/// tenant, or `None` to keep the tidy spelling. Keyed on the device's
/// enrolment data, so devices added later through the control API with the
/// same shape get the same spelling.
fn respelled_os(device: &Map<String, Value>) -> Option<&'static str> {
    let text = |name: &str| device.get(name).and_then(Value::as_str).unwrap_or("");
    let os = text("operatingSystem");
    let enrollment = text("deviceEnrollmentType");
    let device_type = text("deviceType");
    match os {
        "Android" if enrollment.starts_with("androidAOSP") => Some("AndroidAOSP"),
        "Android" if enrollment.starts_with("androidEnterprise") => Some("AndroidEnterprise"),
        "Android" if device_type == "androidForWork" => Some("AndroidForWork"),
        // Device administrator: the tidy name, in another case.
        "Android" => Some("android"),
        "iOS" if device_type == "iPad" => Some("iPadOS"),
        "Windows" if device_type == "windowsPhone" => Some("windows"),
        "macOS" => Some("MacOS"),
        _ => None,
    }
}

/// An IMEI as Apple devices report it to Intune: `AA BBBBBB CCCCCC D`.
pub(crate) fn spaced_imei(digits: &str) -> Option<String> {
    if digits.len() != 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{} {} {} {}",
        &digits[..2],
        &digits[2..8],
        &digits[8..14],
        &digits[14..]
    ))
}

fn is_apple(device: &Map<String, Value>) -> bool {
    let os = device
        .get("operatingSystem")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(os.as_str(), "ios" | "ipados" | "macos" | "visionos")
}

/// Seeded devices whose optional properties a real tenant leaves `null` or
/// out: (device id, property, absent rather than null). None of them is a
/// value any matrix row's eligibility or lookup depends on.
const SPARSE: &[(&str, &str, bool)] = &[
    // iPad without cellular: no IMEI at all.
    (crate::seed::devices::IPADOS_DEVICE_ENROLLMENT, "imei", true),
    // Mac: Intune has not inventoried the OS version yet.
    (crate::seed::devices::MACOS, "osVersion", false),
    // Headset without modem.
    (crate::seed::devices::AOSP_USER_ASSOCIATED, "imei", false),
    // Windows laptop: no serial, no action history, OS version unknown.
    (
        crate::seed::devices::MULTI_USER_LAPTOP,
        "serialNumber",
        false,
    ),
    (
        crate::seed::devices::MULTI_USER_LAPTOP,
        "deviceActionResults",
        false,
    ),
    (crate::seed::devices::MULTI_USER_LAPTOP, "osVersion", true),
    // Windows desktop: the collection is absent, not empty.
    (
        crate::seed::devices::WINDOWS_DESKTOP,
        "deviceActionResults",
        true,
    ),
];

impl Profile {
    /// Spell one stored device the way this profile's tenant stores it.
    /// Applied to the seed and to devices added through the control API.
    pub(crate) fn respell_device(self, device: &mut Map<String, Value>) {
        if self == Profile::Standard {
            return;
        }
        if let Some(os) = respelled_os(device) {
            device.insert("operatingSystem".into(), json!(os));
        }
        if is_apple(device)
            && let Some(spaced) = device
                .get("imei")
                .and_then(Value::as_str)
                .and_then(spaced_imei)
        {
            device.insert("imei".into(), json!(spaced));
        }
        let id = device
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        // Fillers past the paging near-misses: no serial, no OS version.
        let filler = (3..=crate::seed::devices::FILLER_COUNT)
            .step_by(3)
            .any(|n| crate::seed::devices::filler(n) == id);
        if filler {
            device.insert("serialNumber".into(), Value::Null);
            device.remove("osVersion");
        }
        for (sparse_id, property, absent) in SPARSE {
            if *sparse_id == id {
                if *absent {
                    device.remove(*property);
                } else {
                    device.insert((*property).into(), Value::Null);
                }
            }
        }
    }

    // -------------------------------------------------------- answers

    /// Extra annotations and properties a real answer carries on a device
    /// object: `@odata.type` and properties newer than this client.
    pub(crate) fn decorate_device(self, device: &mut Map<String, Value>, beta: bool) {
        if self == Profile::Standard {
            return;
        }
        device.insert(
            "@odata.type".into(),
            json!("#microsoft.graph.managedDevice"),
        );
        // Not in either schema snapshot: a property added after it.
        device.insert("deviceHealthScore".into(), json!({"@odata.type": "#microsoft.graph.deviceHealthScore", "score": 87.5, "calculatedDateTime": null}));
        if beta {
            // Real beta property the client never selected.
            device.insert(
                "hardwareInformation".into(),
                json!({"@odata.type": "#microsoft.graph.hardwareInformation", "batteryHealthPercentage": 0, "osBuildNumber": null}),
            );
        }
        if let Some(Value::Array(results)) = device.get_mut("deviceActionResults") {
            for entry in results.iter_mut().filter_map(Value::as_object_mut) {
                entry.insert("actionSource".into(), json!("graphApi"));
            }
        }
    }

    /// Does a property missing from the stored device come back as `null`
    /// (standard) or not at all (variants)?
    pub(crate) fn omits_missing(self) -> bool {
        self == Profile::Variants
    }

    /// The `Retry-After` header for a wait of `secs` whole seconds. The
    /// variants keep the wait: a fractional value is 128 ms longer, a date
    /// (one-second resolution) at most a second shorter.
    pub(crate) fn retry_after(self, secs: u64, status: StatusCode, now: OffsetDateTime) -> String {
        match self {
            Profile::Standard => secs.to_string(),
            Profile::Variants if status == StatusCode::SERVICE_UNAVAILABLE => {
                http_date(now + time::Duration::seconds(secs as i64))
            }
            // Never shorter than the wait the rule or the write limit needs:
            // a real Retry-After tells the true wait, with milliseconds.
            Profile::Variants => format!("{secs}.128"),
        }
    }

    /// Does a Graph error with `status` carry `innerError`? The variants
    /// leave it out of throttling answers, as Graph's own 429 example does.
    pub(crate) fn graph_inner_error(self, status: StatusCode) -> bool {
        !(self == Profile::Variants && status == StatusCode::TOO_MANY_REQUESTS)
    }

    /// Do 5xx Graph errors carry Intune's JSON-in-a-string `message`?
    pub(crate) fn intune_server_errors(self) -> bool {
        self == Profile::Variants
    }

    /// Status and body of a successful action POST.
    pub(crate) fn action_accepted(self) -> (StatusCode, Option<Value>) {
        match self {
            Profile::Standard => (StatusCode::NO_CONTENT, None),
            Profile::Variants => (
                StatusCode::OK,
                Some(json!({
                    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Null",
                    "@odata.null": true
                })),
            ),
        }
    }
}

/// IMF-fixdate, the preferred HTTP-date form (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn http_date(at: OffsetDateTime) -> String {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{self, devices};
    use time::macros::datetime;

    fn seeded(id: &str, profile: Profile) -> Map<String, Value> {
        let mut d = seed::devices_at(crate::timefmt::now())
            .into_iter()
            .find(|d| d["id"] == id)
            .unwrap();
        profile.respell_device(&mut d);
        d
    }

    #[test]
    fn names_parse_and_unknown_names_fail() {
        assert_eq!("variants".parse(), Ok(Profile::Variants));
        assert_eq!(" Standard ".parse(), Ok(Profile::Standard));
        assert!("varaints".parse::<Profile>().is_err());
    }

    #[test]
    fn apple_imeis_get_spaces_and_android_ones_do_not() {
        let iphone = seeded(devices::IOS_ADE, Profile::Variants);
        assert_eq!(iphone["imei"], "35 000000 000001 0");
        assert_eq!(iphone["operatingSystem"], "iOS");
        let android = seeded(devices::AE_DEDICATED, Profile::Variants);
        assert_eq!(android["imei"], "350000000000001");
        assert_eq!(android["operatingSystem"], "AndroidEnterprise");
        assert_eq!(
            seeded(devices::AE_PERSONAL_WORK_PROFILE, Profile::Variants)["operatingSystem"],
            "AndroidForWork"
        );
        assert_eq!(
            seeded(devices::AOSP_USERLESS, Profile::Variants)["operatingSystem"],
            "AndroidAOSP"
        );
        let standard = seeded(devices::IOS_ADE, Profile::Standard);
        assert_eq!(standard["imei"], "350000000000010");
    }

    #[test]
    fn sparse_devices_lose_optional_fields() {
        let ipad = seeded(devices::IPADOS_DEVICE_ENROLLMENT, Profile::Variants);
        assert!(!ipad.contains_key("imei"));
        assert_eq!(ipad["operatingSystem"], "iPadOS");
        let laptop = seeded(devices::MULTI_USER_LAPTOP, Profile::Variants);
        assert_eq!(laptop["serialNumber"], Value::Null);
        assert_eq!(laptop["deviceActionResults"], Value::Null);
        // Ids and lookup keys stay as seeded.
        assert_eq!(laptop["id"], devices::MULTI_USER_LAPTOP);
        assert_eq!(laptop["userPrincipalName"], "morgan@contoso.com");
    }

    #[test]
    fn retry_after_spellings_keep_the_wait() {
        let now = datetime!(1994-11-06 08:49:37.4 UTC);
        let p = Profile::Variants;
        assert_eq!(
            p.retry_after(3, StatusCode::TOO_MANY_REQUESTS, now),
            "3.128"
        );
        assert_eq!(
            p.retry_after(2, StatusCode::SERVICE_UNAVAILABLE, now),
            "Sun, 06 Nov 1994 08:49:39 GMT"
        );
        assert_eq!(
            Profile::Standard.retry_after(3, StatusCode::TOO_MANY_REQUESTS, now),
            "3"
        );
    }

    #[test]
    fn spaced_imei_needs_fifteen_digits() {
        assert_eq!(
            spaced_imei("354455066521325").as_deref(),
            Some("35 445506 652132 5")
        );
        assert_eq!(spaced_imei("35445506652132"), None);
        assert_eq!(spaced_imei(""), None);
    }
}
