//! The seeded tenant: one app registration and 47 managed devices that cover
//! every platform/enrolment row of the passcode support matrix, plus filler
//! devices for paging and near-miss identifiers that must never match.
//!
//! The ids and values here are a contract with the tests that use the
//! simulator; change them only together with those tests.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::device;
use crate::timefmt;

/// Directory (tenant) id of the seeded tenant.
pub const TENANT_ID: &str = "7f3c2b1a-0000-4000-8000-00000000c0de";
/// Application (client) id of the seeded app registration.
pub const CLIENT_ID: &str = "5e0c1d2f-0000-4000-8000-0000000a9901";

/// Application permission needed for reads.
pub const ROLE_READ_ALL: &str = "DeviceManagementManagedDevices.Read.All";
/// Application permission that also allows reads.
pub const ROLE_READ_WRITE_ALL: &str = "DeviceManagementManagedDevices.ReadWrite.All";
/// Application permission needed for the device actions.
pub const ROLE_PRIVILEGED_OPERATIONS: &str =
    "DeviceManagementManagedDevices.PrivilegedOperations.All";
/// Roles the seeded app holds after a reset.
pub const DEFAULT_ROLES: &[&str] = &[ROLE_READ_ALL, ROLE_PRIVILEGED_OPERATIONS];

/// Intune managed-device ids of the seeded devices, one per row.
pub mod devices {
    /// Android Enterprise corporate-owned dedicated (kiosk), userless.
    pub const AE_DEDICATED: &str = "11111111-0000-4000-8000-000000000001";
    /// Android Enterprise fully managed.
    pub const AE_FULLY_MANAGED: &str = "11111111-0000-4000-8000-000000000002";
    /// Android Enterprise corporate-owned work profile.
    pub const AE_CORPORATE_WORK_PROFILE: &str = "11111111-0000-4000-8000-000000000003";
    /// Android Enterprise personally-owned work profile, Android 11.
    pub const AE_PERSONAL_WORK_PROFILE: &str = "11111111-0000-4000-8000-000000000004";
    /// Android Enterprise personally-owned work profile, Android 7.1.2.
    pub const AE_PERSONAL_WORK_PROFILE_ANDROID_7: &str = "11111111-0000-4000-8000-000000000005";
    /// AOSP, user-associated.
    pub const AOSP_USER_ASSOCIATED: &str = "11111111-0000-4000-8000-000000000006";
    /// AOSP, userless.
    pub const AOSP_USERLESS: &str = "11111111-0000-4000-8000-000000000007";
    /// Android device administrator, Android 6.0.1.
    pub const ANDROID_DEVICE_ADMIN_6: &str = "11111111-0000-4000-8000-000000000008";
    /// Android device administrator, Android 10.
    pub const ANDROID_DEVICE_ADMIN_10: &str = "11111111-0000-4000-8000-000000000009";
    /// iPhone, automated device enrolment.
    pub const IOS_ADE: &str = "11111111-0000-4000-8000-000000000010";
    /// iPad, device enrolment.
    pub const IPADOS_DEVICE_ENROLLMENT: &str = "11111111-0000-4000-8000-000000000011";
    /// iPhone, Apple User Enrollment.
    pub const IOS_USER_ENROLLMENT: &str = "11111111-0000-4000-8000-000000000012";
    /// iPhone, account-driven User Enrollment.
    pub const IOS_ACCOUNT_DRIVEN_USER_ENROLLMENT: &str = "11111111-0000-4000-8000-000000000013";
    /// Apple Vision Pro, visionOS 1.1.
    pub const VISIONOS: &str = "11111111-0000-4000-8000-000000000014";
    /// Apple Vision Pro, visionOS 1.0.2.
    pub const VISIONOS_1_0: &str = "11111111-0000-4000-8000-000000000015";
    /// MacBook.
    pub const MACOS: &str = "11111111-0000-4000-8000-000000000016";
    /// Windows 11 desktop, Entra joined.
    pub const WINDOWS_DESKTOP: &str = "11111111-0000-4000-8000-000000000017";
    /// Windows 10 Mobile, Creators Update.
    pub const WINDOWS_10_MOBILE: &str = "11111111-0000-4000-8000-000000000018";
    /// Windows 10 Mobile, Anniversary Update.
    pub const WINDOWS_10_MOBILE_ANNIVERSARY: &str = "11111111-0000-4000-8000-000000000019";
    /// Windows 10 Mobile, Entra registered only.
    pub const WINDOWS_10_MOBILE_REGISTERED: &str = "11111111-0000-4000-8000-000000000020";
    /// Android fully managed, managementState `retirePending`.
    pub const RETIRE_PENDING: &str = "11111111-0000-4000-8000-000000000021";
    /// First of two devices sharing serial `DUPSERIAL01`.
    pub const SHARED_SERIAL_A: &str = "11111111-0000-4000-8000-000000000022";
    /// Second of two devices sharing serial `DUPSERIAL01`.
    pub const SHARED_SERIAL_B: &str = "11111111-0000-4000-8000-000000000023";
    /// morgan@contoso.com's Android phone.
    pub const MULTI_USER_ANDROID: &str = "11111111-0000-4000-8000-000000000024";
    /// morgan@contoso.com's iPhone.
    pub const MULTI_USER_IPHONE: &str = "11111111-0000-4000-8000-000000000025";
    /// morgan@contoso.com's Windows laptop.
    pub const MULTI_USER_LAPTOP: &str = "11111111-0000-4000-8000-000000000026";
    /// "Kim's Pixel", owned by o'brien@contoso.com (OData quote escaping).
    pub const APOSTROPHE: &str = "11111111-0000-4000-8000-000000000027";
    /// Filler 01: serial `R58N10AE0010`, a superstring of row 01's serial.
    pub const FILLER_01: &str = "11111111-0000-4000-8000-000000000101";
    /// Filler 02: deviceName `kiosk-lobby-01 ` (case and trailing space differ from row 01).
    pub const FILLER_02: &str = "11111111-0000-4000-8000-000000000102";

    /// All 27 matrix rows, in row order.
    pub const ROWS: [&str; 27] = [
        AE_DEDICATED,
        AE_FULLY_MANAGED,
        AE_CORPORATE_WORK_PROFILE,
        AE_PERSONAL_WORK_PROFILE,
        AE_PERSONAL_WORK_PROFILE_ANDROID_7,
        AOSP_USER_ASSOCIATED,
        AOSP_USERLESS,
        ANDROID_DEVICE_ADMIN_6,
        ANDROID_DEVICE_ADMIN_10,
        IOS_ADE,
        IPADOS_DEVICE_ENROLLMENT,
        IOS_USER_ENROLLMENT,
        IOS_ACCOUNT_DRIVEN_USER_ENROLLMENT,
        VISIONOS,
        VISIONOS_1_0,
        MACOS,
        WINDOWS_DESKTOP,
        WINDOWS_10_MOBILE,
        WINDOWS_10_MOBILE_ANNIVERSARY,
        WINDOWS_10_MOBILE_REGISTERED,
        RETIRE_PENDING,
        SHARED_SERIAL_A,
        SHARED_SERIAL_B,
        MULTI_USER_ANDROID,
        MULTI_USER_IPHONE,
        MULTI_USER_LAPTOP,
        APOSTROPHE,
    ];

    /// Number of filler Windows desktops.
    pub const FILLER_COUNT: u8 = 20;

    /// Id of filler device `n` (1..=20).
    pub fn filler(n: u8) -> String {
        format!("11111111-0000-4000-8000-0000000001{n:02}")
    }

    /// Entra `deviceId` (`azureADDeviceId`) that goes with a seeded device id.
    pub fn azure_ad_device_id(device_id: &str) -> String {
        device_id.replacen("11111111-", "22222222-", 1)
    }

    /// Total number of seeded devices.
    pub const TOTAL: usize = ROWS.len() + FILLER_COUNT as usize;
}

/// One row of the matrix.
struct Row<'a> {
    nn: u8,
    name: &'a str,
    os: &'a str,
    os_version: &'a str,
    enrollment: &'a str,
    agent: &'a str,
    owner: &'a str,
    device_type: &'a str,
    join: &'a str,
    serial: &'a str,
    upn: &'a str,
    state: &'a str,
    manufacturer: &'a str,
    model: &'a str,
    chassis: &'a str,
}

#[allow(clippy::too_many_arguments)]
const fn row(
    nn: u8,
    name: &'static str,
    os: &'static str,
    os_version: &'static str,
    enrollment: &'static str,
    agent: &'static str,
    owner: &'static str,
    device_type: &'static str,
    join: &'static str,
    serial: &'static str,
    upn: &'static str,
    hardware: (&'static str, &'static str, &'static str),
) -> Row<'static> {
    Row {
        nn,
        name,
        os,
        os_version,
        enrollment,
        agent,
        owner,
        device_type,
        join,
        serial,
        upn,
        state: "managed",
        manufacturer: hardware.0,
        model: hardware.1,
        chassis: hardware.2,
    }
}

const PIXEL_8: (&str, &str, &str) = ("Google", "Pixel 8", "phone");

#[rustfmt::skip]
fn rows() -> Vec<Row<'static>> {
    vec![
        row(1, "KIOSK-LOBBY-01", "Android", "13", "androidEnterpriseDedicatedDevice", "mdm", "company", "androidEnterprise", "unknown", "R58N10AE001", "", ("samsung", "SM-T220", "tablet")),
        row(2, "COBO-ALEX", "Android", "14", "androidEnterpriseFullyManaged", "mdm", "company", "androidEnterprise", "unknown", "R58N10AE002", "alex@contoso.com", PIXEL_8),
        row(3, "COPE-SAM", "Android", "12", "androidEnterpriseCorporateWorkProfile", "mdm", "company", "androidEnterprise", "unknown", "R58N10AE003", "sam@contoso.com", ("samsung", "SM-S911B", "phone")),
        row(4, "BYOD-JO", "Android", "11.0", "userEnrollment", "mdm", "personal", "androidForWork", "unknown", "R58N10AE004", "jo@contoso.com", ("samsung", "SM-G991B", "phone")),
        row(5, "BYOD-OLD", "Android", "7.1.2", "userEnrollment", "mdm", "personal", "androidForWork", "unknown", "R58N10AE005", "jo@contoso.com", ("motorola", "Moto G (5)", "phone")),
        row(6, "AOSP-HEADSET-LEE", "Android", "12", "androidAOSPUserOwnedDeviceEnrollment", "intuneAosp", "company", "android", "unknown", "AOSP000006", "lee@contoso.com", ("Oculus", "Quest 2", "mobileOther")),
        row(7, "AOSP-SCANNER-07", "Android", "10", "androidAOSPUserlessDeviceEnrollment", "intuneAosp", "company", "android", "unknown", "AOSP000007", "", ("Zebra Technologies", "TC52", "mobileOther")),
        row(8, "DA-LEGACY-6", "Android", "6.0.1", "userEnrollment", "mdm", "personal", "android", "unknown", "DA00000008", "taylor@contoso.com", ("samsung", "SM-G920F", "phone")),
        row(9, "DA-LEGACY-10", "Android", "10", "userEnrollment", "mdm", "personal", "android", "unknown", "DA00000009", "taylor@contoso.com", ("Xiaomi", "Redmi Note 8", "phone")),
        row(10, "IPHONE-PAT", "iOS", "17.5.1", "appleBulkWithUser", "mdm", "company", "iPhone", "unknown", "F2LXK0AAAA10", "pat@contoso.com", ("Apple", "iPhone 15 Pro", "phone")),
        row(11, "IPAD-ROBIN", "iPadOS", "17.4", "userEnrollment", "mdm", "personal", "iPad", "unknown", "DMPXK0AAAA11", "robin@contoso.com", ("Apple", "iPad Air (5th generation)", "tablet")),
        row(12, "IPHONE-BYOD-UE", "iOS", "17.2", "appleUserEnrollment", "mdm", "personal", "iPhone", "unknown", "F2LXK0AAAA12", "casey@contoso.com", ("Apple", "iPhone 14", "phone")),
        row(13, "IPHONE-ADUE", "iOS", "18.1", "appleAccountDrivenUserEnrollment", "mdm", "personal", "iPhone", "unknown", "F2LXK0AAAA13", "casey@contoso.com", ("Apple", "iPhone 16", "phone")),
        row(14, "VISION-PRO-01", "visionOS", "1.1", "appleBulkWithUser", "mdm", "company", "visionOS", "unknown", "VPXK0AAAA14", "drew@contoso.com", ("Apple", "Apple Vision Pro", "mobileOther")),
        row(15, "VISION-PRO-OLD", "visionOS", "1.0.2", "appleBulkWithUser", "mdm", "company", "visionOS", "unknown", "VPXK0AAAA15", "drew@contoso.com", ("Apple", "Apple Vision Pro", "mobileOther")),
        row(16, "MACBOOK-KIM", "macOS", "14.5", "appleBulkWithUser", "mdm", "company", "macMDM", "unknown", "C02XK0AAAA16", "kim@contoso.com", ("Apple", "MacBook Pro (14-inch, 2023)", "laptop")),
        row(17, "DESKTOP-KIM01", "Windows", "10.0.22631.3880", "windowsAzureADJoin", "mdm", "company", "desktop", "azureADJoined", "PF3K0A17", "kim@contoso.com", ("Dell Inc.", "OptiPlex 7010", "desktop")),
        row(18, "LUMIA-950-QUINN", "Windows", "10.0.15063.1631", "windowsAzureADJoin", "mdm", "company", "windowsPhone", "azureADJoined", "LUMIA000018", "quinn@contoso.com", ("Microsoft Mobile", "Lumia 950", "phone")),
        row(19, "LUMIA-640-OLD", "Windows", "10.0.14393.2551", "windowsAzureADJoin", "mdm", "company", "windowsPhone", "azureADJoined", "LUMIA000019", "quinn@contoso.com", ("Microsoft Mobile", "Lumia 640 LTE", "phone")),
        row(20, "LUMIA-REG", "Windows", "10.0.15063.1631", "userEnrollment", "mdm", "personal", "windowsPhone", "azureADRegistered", "LUMIA000020", "quinn@contoso.com", ("Microsoft Mobile", "Lumia 950 XL", "phone")),
        Row { state: "retirePending", ..row(21, "RETIRING-PIXEL", "Android", "14", "androidEnterpriseFullyManaged", "mdm", "company", "androidEnterprise", "unknown", "R58N10AE021", "alex@contoso.com", ("Google", "Pixel 7", "phone")) },
        row(22, "SHARED-SERIAL-A", "Android", "13", "androidEnterpriseFullyManaged", "mdm", "company", "androidEnterprise", "unknown", "DUPSERIAL01", "riley@contoso.com", ("Google", "Pixel 6a", "phone")),
        row(23, "SHARED-SERIAL-B", "Android", "13", "androidEnterpriseFullyManaged", "mdm", "company", "androidEnterprise", "unknown", "DUPSERIAL01", "riley@contoso.com", ("Google", "Pixel 6a", "phone")),
        row(24, "MORGAN-PIXEL", "Android", "14", "androidEnterpriseFullyManaged", "mdm", "company", "androidEnterprise", "unknown", "R58N10AE024", "morgan@contoso.com", ("Google", "Pixel 9", "phone")),
        row(25, "MORGAN-IPHONE", "iOS", "17.5.1", "appleBulkWithUser", "mdm", "company", "iPhone", "unknown", "F2LXK0AAAA25", "morgan@contoso.com", ("Apple", "iPhone 15", "phone")),
        row(26, "MORGAN-LAPTOP", "Windows", "10.0.26100.2314", "windowsAzureADJoin", "mdm", "company", "desktop", "azureADJoined", "PF3K0A26", "morgan@contoso.com", ("LENOVO", "ThinkPad X1 Carbon Gen 11", "laptop")),
        row(27, "Kim's Pixel", "Android", "14", "androidEnterpriseFullyManaged", "mdm", "company", "androidEnterprise", "unknown", "APOS000027", "o'brien@contoso.com", ("Google", "Pixel 8a", "phone")),
    ]
}

/// Stable `userId` for each seeded user ("" for userless devices).
fn user_id(upn: &str) -> String {
    const USERS: &[&str] = &[
        "alex", "sam", "jo", "lee", "taylor", "pat", "robin", "casey", "drew", "kim", "quinn",
        "riley", "morgan", "o'brien",
    ];
    let local = upn.split('@').next().unwrap_or("");
    if local.is_empty() {
        return String::new();
    }
    if let Some(n) = local.strip_prefix("filler.") {
        return format!("33333333-0000-4000-8000-0000000001{n}");
    }
    let index = USERS.iter().position(|u| *u == local).map_or(99, |i| i + 1);
    format!("33333333-0000-4000-8000-0000000000{index:02}")
}

/// "alex@contoso.com" -> "Alex", "filler.07@contoso.com" -> "Filler 07".
fn display_name(upn: &str) -> String {
    let local = upn.split('@').next().unwrap_or("").replace('.', " ");
    let mut chars = local.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Phones carry an IMEI; tablets, headsets without modem, Macs and desktops
/// report an empty string. Per the seed contract every Android, iPhone and
/// Windows phone row gets one.
fn has_imei(row: &Row<'_>) -> bool {
    matches!(row.os, "Android" | "iOS") || row.device_type == "windowsPhone"
}

fn build(row: &Row<'_>, id: &str, last_sync: &str) -> Map<String, Value> {
    let mut d = device::template();
    let user_local = row.upn.split('@').next().unwrap_or("");
    let imei = if has_imei(row) {
        format!("3500000000000{:02}", row.nn)
    } else {
        String::new()
    };
    let patch_level = if row.os == "Android" {
        "2024-10-01"
    } else {
        ""
    };
    let supervised = row.enrollment == "appleBulkWithUser";
    let agent_name = if user_local.is_empty() {
        "userless".to_string()
    } else {
        user_local.to_string()
    };
    let fields = json!({
        "id": id,
        "userId": user_id(row.upn),
        "deviceName": row.name,
        "ownerType": row.owner,
        "managedDeviceOwnerType": row.owner,
        "managementState": row.state,
        "lastSyncDateTime": last_sync,
        "chassisType": row.chassis,
        "operatingSystem": row.os,
        "deviceType": row.device_type,
        "managementAgent": row.agent,
        "osVersion": row.os_version,
        "deviceEnrollmentType": row.enrollment,
        "emailAddress": row.upn,
        "azureADDeviceId": devices::azure_ad_device_id(id),
        "isSupervised": supervised,
        "userPrincipalName": row.upn,
        "model": row.model,
        "manufacturer": row.manufacturer,
        "imei": imei,
        "serialNumber": row.serial,
        "androidSecurityPatchLevel": patch_level,
        "userDisplayName": display_name(row.upn),
        "managedDeviceName": format!("{agent_name}_{}_3/14/2025_9:26 AM", row.os),
        "totalStorageSpaceInBytes": 128_849_018_880_u64,
        "freeStorageSpaceInBytes": 64_424_509_440_u64,
        "joinType": row.join,
    });
    if let Value::Object(fields) = fields {
        d.extend(fields);
    }
    d
}

/// All seeded devices, keyed by lower-case id.
///
/// `lastSyncDateTime` is the same for every device and a little before the
/// reset time, so a seeded device always looks recently synced.
pub(crate) fn devices_at(now: OffsetDateTime) -> Vec<Map<String, Value>> {
    let last_sync = timefmt::rfc3339_seconds(now - time::Duration::minutes(37));
    let mut out: Vec<Map<String, Value>> = rows()
        .iter()
        .map(|r| {
            build(
                r,
                &format!("11111111-0000-4000-8000-0000000000{:02}", r.nn),
                &last_sync,
            )
        })
        .collect();
    for n in 1..=devices::FILLER_COUNT {
        let upn = format!("filler.{n:02}@contoso.com");
        let serial = match n {
            1 => "R58N10AE0010".to_string(),
            _ => format!("FILLER{n:02}"),
        };
        let name = match n {
            2 => "kiosk-lobby-01 ".to_string(),
            _ => format!("FILLER-{n:02}"),
        };
        let filler = Row {
            nn: 100 + n,
            name: &name,
            os: "Windows",
            os_version: "10.0.22631.3880",
            enrollment: "windowsAzureADJoin",
            agent: "mdm",
            owner: "company",
            device_type: "desktop",
            join: "azureADJoined",
            serial: &serial,
            upn: &upn,
            state: "managed",
            manufacturer: "HP",
            model: "EliteDesk 800 G6",
            chassis: "desktop",
        };
        out.push(build(&filler, &devices::filler(n), &last_sync));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_id(all: &[Map<String, Value>], id: &str) -> Map<String, Value> {
        all.iter().find(|d| d["id"] == id).cloned().unwrap()
    }

    #[test]
    fn seed_matches_the_contract() {
        let all = devices_at(timefmt::now());
        assert_eq!(all.len(), devices::TOTAL);
        let kiosk = by_id(&all, devices::AE_DEDICATED);
        assert_eq!(kiosk["deviceName"], "KIOSK-LOBBY-01");
        assert_eq!(kiosk["imei"], "350000000000001");
        assert_eq!(kiosk["userPrincipalName"], "");
        assert_eq!(
            kiosk["azureADDeviceId"],
            "22222222-0000-4000-8000-000000000001"
        );
        assert_eq!(
            kiosk["deviceEnrollmentType"],
            "androidEnterpriseDedicatedDevice"
        );
        let apostrophe = by_id(&all, devices::APOSTROPHE);
        assert_eq!(apostrophe["deviceName"], "Kim's Pixel");
        assert_eq!(apostrophe["imei"], "350000000000027");
        assert_eq!(apostrophe["emailAddress"], "o'brien@contoso.com");
        assert_eq!(by_id(&all, devices::IPADOS_DEVICE_ENROLLMENT)["imei"], "");
        assert_eq!(
            by_id(&all, devices::WINDOWS_10_MOBILE)["imei"],
            "350000000000018"
        );
        assert_eq!(by_id(&all, devices::MACOS)["imei"], "");
        assert_eq!(
            by_id(&all, devices::RETIRE_PENDING)["managementState"],
            "retirePending"
        );
        assert_eq!(
            by_id(&all, devices::FILLER_01)["serialNumber"],
            "R58N10AE0010"
        );
        assert_eq!(
            by_id(&all, devices::FILLER_02)["deviceName"],
            "kiosk-lobby-01 "
        );
        assert_eq!(by_id(&all, &devices::filler(20))["deviceName"], "FILLER-20");
        assert_eq!(
            by_id(&all, &devices::filler(20))["serialNumber"],
            "FILLER20"
        );
        assert_eq!(
            by_id(&all, &devices::filler(7))["userPrincipalName"],
            "filler.07@contoso.com"
        );
        for id in devices::ROWS {
            let d = by_id(&all, id);
            assert_eq!(d["deviceActionResults"], json!([]));
            assert_eq!(d["emailAddress"], d["userPrincipalName"]);
        }
        let mut ids: Vec<&str> = all.iter().map(|d| d["id"].as_str().unwrap()).collect();
        ids.dedup();
        assert_eq!(ids.len(), devices::TOTAL);
    }
}
