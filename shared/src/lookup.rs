//! Finds exactly one managed device from the caller's identifier.
//!
//! Graph silently ignores a `$filter` it does not support and then returns
//! *every* device. So the filter only narrows what Graph sends; each returned
//! device is checked again here against the identifier, all pages are read
//! (up to a cap), and only a single exact match is acted on: none is
//! `deviceNotFound`, several is `ambiguousDevice` with the candidates.

use crate::device::ManagedDevice;
use crate::error::{Candidate, ErrorCode, ServiceError};
use crate::graph::Graph;
use crate::request::{DeviceRef, imei_digits};
use crate::retry::Deadline;

/// The device, read by id with its `deviceActionResults` (list answers may
/// not carry them).
pub async fn find_device(
    graph: &Graph,
    device: &DeviceRef,
    deadline: &Deadline,
) -> Result<ManagedDevice, ServiceError> {
    let id = match device {
        DeviceRef::Id(id) => id.clone(),
        other => {
            let filter = other.odata_filter().expect("only ids have no filter");
            let listed = graph.list_devices(&filter, deadline).await?;
            pick_one(other, listed)?.id
        }
    };
    let found = graph
        .get_device(&id, deadline)
        .await?
        .ok_or_else(|| not_found(device))?;
    // Defence in depth: never act on a record that isn't the one asked for.
    if !found.id.eq_ignore_ascii_case(&id) {
        return Err(ServiceError::new(
            ErrorCode::GraphError,
            "Graph returned a different device than the one requested; nothing was done",
        ));
    }
    Ok(found)
}

/// Keeps the devices that really match; exactly one must remain.
pub fn pick_one(
    device: &DeviceRef,
    listed: Vec<ManagedDevice>,
) -> Result<ManagedDevice, ServiceError> {
    let mut matches: Vec<ManagedDevice> =
        listed.into_iter().filter(|d| matches(device, d)).collect();
    match matches.len() {
        0 => Err(not_found(device)),
        1 => Ok(matches.remove(0)),
        n => {
            let mut err = ServiceError::new(
                ErrorCode::AmbiguousDevice,
                format!(
                    "{n} managed devices match {}; nothing was done. Call again with one of the candidate ids",
                    device.describe()
                ),
            );
            err.candidates = matches
                .iter()
                .map(|d| Candidate {
                    id: d.id.clone(),
                    device_name: d.device_name.clone().unwrap_or_default(),
                    operating_system: d.operating_system.clone().unwrap_or_default(),
                    serial_number: d.serial_number.clone().unwrap_or_default(),
                    user_principal_name: d.user_principal_name.clone().unwrap_or_default(),
                })
                .collect();
            Err(err)
        }
    }
}

/// Exact comparison of the identifier with the device's own field. Case is
/// ignored (serial numbers are printed in upper case, callers type them in
/// any case), nothing else: no trimming, no prefix or substring matches, no
/// Unicode folding beyond lower case. IMEIs compare digits only, because
/// Apple devices report them grouped with spaces and Android devices don't;
/// the digits themselves must all be equal.
pub fn matches(device: &DeviceRef, d: &ManagedDevice) -> bool {
    let same = |field: &Option<String>, wanted: &str| {
        field
            .as_deref()
            .is_some_and(|v| !v.is_empty() && v.to_lowercase() == wanted.to_lowercase())
    };
    match device {
        DeviceRef::Id(id) => d.id.eq_ignore_ascii_case(id),
        DeviceRef::SerialNumber(s) => same(&d.serial_number, s),
        DeviceRef::Imei(i) => d
            .imei
            .as_deref()
            .map(imei_digits)
            .is_some_and(|digits| !digits.is_empty() && digits == *i),
        DeviceRef::AzureAdDeviceId(a) => same(&d.azure_ad_device_id, a),
        DeviceRef::User {
            user_principal_name,
            device_name,
        } => {
            same(&d.user_principal_name, user_principal_name)
                && device_name.as_ref().is_none_or(|n| same(&d.device_name, n))
        }
    }
}

fn not_found(device: &DeviceRef) -> ServiceError {
    ServiceError::new(
        ErrorCode::DeviceNotFound,
        format!(
            "no managed device matches {} exactly; check the value in the Intune admin center (Devices > All devices)",
            device.describe()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str, serial: &str, name: &str, upn: &str) -> ManagedDevice {
        ManagedDevice {
            id: id.into(),
            serial_number: Some(serial.into()),
            device_name: Some(name.into()),
            user_principal_name: Some(upn.into()),
            imei: Some(String::new()),
            ..Default::default()
        }
    }

    /// What Graph returns when it ignores the filter: the whole tenant.
    fn tenant() -> Vec<ManagedDevice> {
        vec![
            dev("1", "R58N10AE001", "KIOSK-LOBBY-01", ""),
            dev("2", "R58N10AE0010", "FILLER-01", "filler.01@contoso.com"),
            dev("3", "DUPSERIAL01", "SHARED-SERIAL-A", "riley@contoso.com"),
            dev("4", "DUPSERIAL01", "SHARED-SERIAL-B", "riley@contoso.com"),
            dev("5", "X", "kiosk-lobby-01 ", "filler.02@contoso.com"),
            dev("6", "APOS000027", "Kim's Pixel", "o'brien@contoso.com"),
        ]
    }

    #[test]
    fn exact_match_only_even_when_graph_ignores_the_filter() {
        let found = pick_one(&DeviceRef::SerialNumber("r58n10ae001".into()), tenant()).unwrap();
        assert_eq!(found.id, "1");
        let found = pick_one(
            &DeviceRef::User {
                user_principal_name: "O'Brien@contoso.com".into(),
                device_name: Some("kim's pixel".into()),
            },
            tenant(),
        )
        .unwrap();
        assert_eq!(found.id, "6");
    }

    #[test]
    fn no_match_is_not_found_and_several_are_ambiguous() {
        let err = pick_one(&DeviceRef::SerialNumber("R58N10AE00".into()), tenant()).unwrap_err();
        assert_eq!(err.code, ErrorCode::DeviceNotFound);
        let err = pick_one(&DeviceRef::SerialNumber("DUPSERIAL01".into()), tenant()).unwrap_err();
        assert_eq!(err.code, ErrorCode::AmbiguousDevice);
        let ids: Vec<&str> = err.candidates.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["3", "4"]);
        let err = pick_one(
            &DeviceRef::User {
                user_principal_name: "riley@contoso.com".into(),
                device_name: None,
            },
            tenant(),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::AmbiguousDevice);
    }

    #[test]
    fn imeis_match_in_either_stored_form_and_only_whole() {
        let with_imei = |id: &str, imei: &str| ManagedDevice {
            id: id.into(),
            imei: Some(imei.into()),
            ..Default::default()
        };
        let tenant = vec![
            with_imei("apple", "35 445506 652132 5"),
            with_imei("android", "354455066521333"),
            with_imei("longer", "3544550665213251"),
            with_imei("wifi-only", ""),
        ];
        let found = pick_one(&DeviceRef::Imei("354455066521325".into()), tenant.clone());
        assert_eq!(found.unwrap().id, "apple");
        let found = pick_one(&DeviceRef::Imei("354455066521333".into()), tenant.clone());
        assert_eq!(found.unwrap().id, "android");
        // A prefix of a longer IMEI is not that IMEI.
        let err = pick_one(&DeviceRef::Imei("35445506652132".into()), tenant).unwrap_err();
        assert_eq!(err.code, ErrorCode::DeviceNotFound);
    }

    #[test]
    fn empty_fields_never_match() {
        // A userless device has an empty UPN; an empty IMEI must not match anything.
        assert!(!matches(&DeviceRef::Imei(String::new()), &tenant()[0]));
        let look_alike = DeviceRef::SerialNumber("R58N1OAE001".into()); // letter O for zero
        assert!(pick_one(&look_alike, tenant()).is_err());
    }
}
