//! What a batch would do: every reference looked up and checked the way a
//! single request checks its device (lookup, eligibility, pending action),
//! each with its verdict. A preview is this plan; a batch sends the lines
//! whose verdict is `send`, one queued message each.
//!
//! A reference that cannot be decided because Graph is unavailable or
//! throttles fails the whole request (nothing is queued): a plan with a
//! hole in it would be the wrong list of devices.

use super::request::Targets;
use crate::action::Action;
use crate::device::ManagedDevice;
use crate::eligibility;
use crate::error::{ErrorCode, ServiceError};
use crate::graph::Graph;
use crate::handler::pending_reset;
use crate::lookup;
use crate::request::DeviceRef;
use crate::retry::Deadline;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;

/// What happens to one device of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Eligible and nothing pending: one message is queued for it.
    Send,
    NotFound,
    Ambiguous,
    /// Its platform or state cannot take the action.
    Refused,
    /// An action started within the pending window has not finished.
    AlreadyPending,
    /// Another reference of the same request names the same device.
    Duplicate,
}

/// One reference and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// The reference as the caller gave it, e.g. `serialNumber "R58N10AE001"`.
    pub reference: String,
    pub result: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// The error code a single request would have answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Line {
    /// A reference that names no single device (not found, ambiguous).
    fn unresolved(reference: String, code: ErrorCode, result: Verdict, message: String) -> Line {
        Line {
            reference,
            result,
            device_id: None,
            device_name: None,
            code: Some(code.as_str().to_string()),
            message: Some(message),
        }
    }
}

/// Counts of a plan, by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub references: u32,
    pub to_send: u32,
    pub not_found: u32,
    pub ambiguous: u32,
    pub refused: u32,
    pub already_pending: u32,
    pub duplicate: u32,
}

pub fn counts(lines: &[Line]) -> Counts {
    let mut c = Counts {
        references: lines.len() as u32,
        ..Counts::default()
    };
    for line in lines {
        *match line.result {
            Verdict::Send => &mut c.to_send,
            Verdict::NotFound => &mut c.not_found,
            Verdict::Ambiguous => &mut c.ambiguous,
            Verdict::Refused => &mut c.refused,
            Verdict::AlreadyPending => &mut c.already_pending,
            Verdict::Duplicate => &mut c.duplicate,
        } += 1;
    }
    c
}

/// What the checks need besides Graph.
pub struct Checks {
    pub action: Action,
    pub pending_window: Duration,
    pub replace_pending: bool,
    /// Most devices a user's "all devices" may expand to.
    pub max_devices: usize,
}

/// Looks every reference up and checks it; references keep their order.
pub async fn plan(
    graph: &Graph,
    targets: &Targets,
    checks: &Checks,
    deadline: &Deadline,
) -> Result<Vec<Line>, ServiceError> {
    let refs = match targets {
        Targets::Devices(refs) => refs.clone(),
        Targets::AllOfUser(upn) => users_devices(graph, upn, checks.max_devices, deadline).await?,
    };
    let lines = super::pool::map_all(refs, |reference| {
        check_one(graph, reference, checks, deadline)
    })
    .await;
    let mut lines = lines.into_iter().collect::<Result<Vec<_>, _>>()?;
    mark_duplicates(&mut lines);
    Ok(lines)
}

/// Every device enrolled by the user, as id references. Graph may ignore
/// the filter, so each device is matched again (as the single lookup does).
async fn users_devices(
    graph: &Graph,
    upn: &str,
    max_devices: usize,
    deadline: &Deadline,
) -> Result<Vec<DeviceRef>, ServiceError> {
    let user = DeviceRef::User {
        user_principal_name: upn.to_string(),
        device_name: None,
    };
    let filter = user.odata_filter().expect("a user reference has a filter");
    let ids: Vec<DeviceRef> = graph
        .list_devices(&filter, deadline)
        .await?
        .into_iter()
        .filter(|d| lookup::matches(&user, d))
        .map(|d| DeviceRef::Id(d.id))
        .collect();
    if ids.is_empty() {
        return Err(ServiceError::new(
            ErrorCode::DeviceNotFound,
            format!("no managed device is enrolled by {}; nothing was done", user.describe()),
        ));
    }
    if ids.len() > max_devices {
        return Err(ServiceError::invalid(format!(
            "{} has {} devices; at most {max_devices} are allowed in one request (BULK_MAX_DEVICES). Name the devices instead.",
            user.describe(),
            ids.len()
        )));
    }
    Ok(ids)
}

/// One reference through the single request's checks. Only errors a
/// retry may fix (or a setup error) come back as `Err`.
async fn check_one(
    graph: &Graph,
    reference: DeviceRef,
    checks: &Checks,
    deadline: &Deadline,
) -> Result<Line, ServiceError> {
    let described = reference.describe();
    let device = match lookup::find_device(graph, &reference, deadline).await {
        Ok(device) => device,
        Err(e) if e.code == ErrorCode::DeviceNotFound => {
            return Ok(Line::unresolved(described, e.code, Verdict::NotFound, e.message));
        }
        Err(e) if e.code == ErrorCode::AmbiguousDevice => {
            return Ok(Line::unresolved(described, e.code, Verdict::Ambiguous, e.message));
        }
        Err(e) => return Err(e),
    };
    Ok(verdict(described, &device, checks, crate::clock::now()))
}

/// The single request's eligibility and pending checks (pure).
fn verdict(reference: String, device: &ManagedDevice, checks: &Checks, now: time::OffsetDateTime) -> Line {
    let mut line = Line {
        reference,
        result: Verdict::Send,
        device_id: Some(device.id.to_ascii_lowercase()),
        device_name: device.device_name.clone(),
        code: None,
        message: None,
    };
    if let Err(refusal) = eligibility::check(checks.action, device) {
        line.result = Verdict::Refused;
        line.code = Some(refusal.code.as_str().to_string());
        line.message = Some(refusal.message);
    } else if !checks.replace_pending
        && let Some(pending) = pending_reset(device, None, now, checks.pending_window)
    {
        line.result = Verdict::AlreadyPending;
        line.message = Some(format!(
            "a passcode action started {} is still pending; send \"replacePending\": true to replace it",
            pending.since.as_deref().unwrap_or("recently")
        ));
    }
    line
}

/// The second and later lines naming a device already named are not sent.
fn mark_duplicates(lines: &mut [Line]) {
    let mut seen = HashSet::new();
    for line in lines.iter_mut() {
        if let Some(id) = &line.device_id
            && !seen.insert(id.clone())
        {
            line.result = Verdict::Duplicate;
            line.message = Some("another reference of this request names the same device".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceActionResult;

    fn device(id: &str, os: &str, ownership: &str, mode: &str) -> ManagedDevice {
        ManagedDevice {
            id: id.into(),
            device_name: Some(format!("dev {id}")),
            operating_system: Some(os.into()),
            os_version: Some("14.0".into()),
            managed_device_owner_type: Some(ownership.into()),
            device_enrollment_type: Some(mode.into()),
            management_state: Some("managed".into()),
            ..Default::default()
        }
    }

    fn checks(action: Action) -> Checks {
        Checks {
            action,
            pending_window: Duration::from_secs(8 * 3600),
            replace_pending: false,
            max_devices: 500,
        }
    }

    #[test]
    fn verdicts_follow_the_single_request_checks() {
        let now = crate::device::parse_time("2026-11-30T12:00:00Z").unwrap();
        let ipad = device("A", "iPadOS", "company", "appleBulkWithUser");
        let line = verdict("id A".into(), &ipad, &checks(Action::RemovePasscode), now);
        assert_eq!((line.result, line.device_id.as_deref()), (Verdict::Send, Some("a")));
        // The same iPad cannot take an Android reset.
        let line = verdict("id A".into(), &ipad, &checks(Action::ResetPasscode), now);
        assert_eq!(line.result, Verdict::Refused);
        assert!(line.code.is_some() && line.message.is_some());
        let mut pending = ipad.clone();
        pending.device_action_results = Some(vec![DeviceActionResult {
            action_name: Some("resetPasscode".into()),
            action_state: Some("pending".into()),
            start_date_time: Some("2026-11-30T11:00:00Z".into()),
            ..Default::default()
        }]);
        let line = verdict("id A".into(), &pending, &checks(Action::RemovePasscode), now);
        assert_eq!(line.result, Verdict::AlreadyPending);
        let replace = Checks { replace_pending: true, ..checks(Action::RemovePasscode) };
        assert_eq!(verdict("id A".into(), &pending, &replace, now).result, Verdict::Send);
    }

    #[test]
    fn a_device_named_twice_is_sent_once_and_counted() {
        let now = crate::device::parse_time("2026-11-30T12:00:00Z").unwrap();
        let ipad = device("A", "iPadOS", "company", "appleBulkWithUser");
        let c = checks(Action::RemovePasscode);
        let mut lines = vec![
            verdict("id A".into(), &ipad, &c, now),
            Line::unresolved("serialNumber \"X\"".into(), ErrorCode::DeviceNotFound, Verdict::NotFound, "none".into()),
            verdict("serialNumber \"A1\"".into(), &ipad, &c, now),
        ];
        mark_duplicates(&mut lines);
        let counts = counts(&lines);
        assert_eq!((counts.references, counts.to_send, counts.not_found, counts.duplicate), (3, 1, 1, 1));
        assert_eq!(lines[2].result, Verdict::Duplicate);
    }
}
