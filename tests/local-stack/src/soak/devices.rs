//! The soak's own managed devices: clones of seeded ones with identifiers of
//! their own, so that each identifier form names exactly one device and no
//! device starts with an action history.

use std::collections::HashMap;

use graph_sim::seed::devices as seed;
use passcode_core::Action;
use serde_json::json;

use crate::stack::Stack;

/// One managed device added for the soak, cloned from a seeded one.
#[derive(Debug, Clone)]
pub(super) struct SoakDevice {
    pub id: String,
    pub serial: String,
    pub imei: Option<String>,
    pub azure_ad_device_id: String,
    pub upn: Option<String>,
    pub name: String,
    /// The write action this device can take (`None`: none of them).
    pub takes: Option<Action>,
    /// `managementState` is not `managed`: even `passcode-status` refuses it.
    pub unmanaged: bool,
}

/// Seeded devices to clone, with the write action each can take. Repeats
/// weight the mix; the last five refuse every write action.
pub(super) const TEMPLATES: [(&str, Option<Action>); 12] = [
    (seed::AE_FULLY_MANAGED, Some(Action::ResetPasscode)),
    (seed::AE_DEDICATED, Some(Action::ResetPasscode)),
    (seed::AOSP_USERLESS, Some(Action::ResetPasscode)),
    (seed::AE_CORPORATE_WORK_PROFILE, Some(Action::ResetPasscode)),
    (seed::IOS_ADE, Some(Action::RemovePasscode)),
    (seed::IPADOS_DEVICE_ENROLLMENT, Some(Action::RemovePasscode)),
    (seed::VISIONOS, Some(Action::RemovePasscode)),
    (seed::WINDOWS_10_MOBILE, Some(Action::ResetWindowsPin)),
    (seed::WINDOWS_DESKTOP, None),
    (seed::IOS_USER_ENROLLMENT, None),
    (seed::ANDROID_DEVICE_ADMIN_10, None),
    (seed::RETIRE_PENDING, None),
];

/// Adds `count` devices to the simulator, cycling through [`TEMPLATES`].
pub(super) async fn add_devices(stack: &Stack, count: usize) -> anyhow::Result<Vec<SoakDevice>> {
    let control = stack.sim.control();
    let mut templates = HashMap::new();
    for (id, _) in TEMPLATES {
        templates.insert(id, control.device(id).await?);
    }
    let mut pool = Vec::with_capacity(count);
    for n in 0..count {
        let (template, takes) = TEMPLATES[n % TEMPLATES.len()];
        let mut device = templates[template].clone();
        let had = |field: &str| device[field].as_str().is_some_and(|v| !v.is_empty());
        let soak = SoakDevice {
            id: format!("44444444-0000-4000-8000-{n:012}"),
            serial: format!("SOAK{n:06}"),
            imei: had("imei").then(|| format!("35399{n:010}")),
            azure_ad_device_id: format!("55555555-0000-4000-8000-{n:012}"),
            upn: had("userPrincipalName").then(|| format!("soak.{n:05}@contoso.com")),
            name: format!("SOAK-{n:05}"),
            takes,
            unmanaged: device["managementState"] != "managed",
        };
        let upn = soak.upn.clone().unwrap_or_default();
        for (field, value) in [
            ("id", json!(soak.id)),
            ("serialNumber", json!(soak.serial)),
            ("imei", json!(soak.imei.clone().unwrap_or_default())),
            ("azureADDeviceId", json!(soak.azure_ad_device_id)),
            ("userPrincipalName", json!(upn)),
            ("emailAddress", json!(upn)),
            ("deviceName", json!(soak.name)),
            ("deviceActionResults", json!([])),
        ] {
            device[field] = value;
        }
        control.put_device(&device).await?;
        pool.push(soak);
    }
    Ok(pool)
}
