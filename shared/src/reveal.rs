//! Which passcode, if any, the `reveal-passcode` function may hand out.
//!
//! Intune shows the passcode of a finished Android reset in the admin center
//! for 7 days and Graph returns it in the device's `deviceActionResults`.
//! The reveal answers with exactly that passcode and nothing else: only for
//! the newest `resetPasscode` of the device, only when it is `done`, and only
//! within the same 7 days. Everything else is an error that says why, so a
//! helpdesk agent knows whether to wait, reset again, or stop.

use crate::device::{DeviceActionResult, ManagedDevice};
use crate::error::{ErrorCode, ServiceError};
use crate::sensitive::Sensitive;
use time::OffsetDateTime;

/// How long Intune shows a new passcode, and so how long it is revealed.
pub const REVEAL_WINDOW: time::Duration = time::Duration::days(7);

/// A passcode that may be handed to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revealed {
    pub passcode: Sensitive,
    /// When the reset finished (`lastUpdatedDateTime`, else its start).
    pub completed_at: Option<String>,
    /// When Intune stops showing it; the reveal stops with it.
    pub expires_at: OffsetDateTime,
}

pub fn passcode(device: &ManagedDevice, now: OffsetDateTime) -> Result<Revealed, ServiceError> {
    let not_available =
        |message: String| ServiceError::new(ErrorCode::PasscodeNotAvailable, message);
    let Some(reset) = device.latest_reset() else {
        return Err(not_available(format!(
            "Intune has no passcode reset on record for {}. Reset the passcode first (reset-passcode), then reveal it once the device has checked in.",
            name(device)
        )));
    };
    let state = reset.action_state.as_deref().unwrap_or("none");
    if reset.in_progress() {
        return Err(ServiceError::new(
            ErrorCode::PasscodeNotReady,
            format!(
                "The passcode reset started {} is still {state}: Intune generates the new passcode when the device checks in (online devices within minutes, others at the next check-in, about every 8 hours). Ask again later.",
                reset
                    .start_date_time
                    .as_deref()
                    .unwrap_or("at an unknown time")
            ),
        ));
    }
    if !state.eq_ignore_ascii_case("done") {
        return Err(not_available(format!(
            "The last passcode reset of {} ended as {state}; there is no new passcode to reveal. passcode-status says what to do about it.",
            name(device)
        )));
    }
    let Some(finished) = finished_at(reset) else {
        return Err(not_available(
            "Intune reports the last reset as done but gives no time for it, so it can't be told whether the passcode is still shown. Look it up in the Intune admin center.".into(),
        ));
    };
    let expires_at = finished + REVEAL_WINDOW;
    if now >= expires_at {
        return Err(not_available(format!(
            "The last passcode reset of {} finished more than 7 days ago; Intune no longer shows its passcode. Reset the passcode again if it is still needed.",
            name(device)
        )));
    }
    match reset.passcode.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Ok(Revealed {
            passcode: Sensitive::new(p),
            completed_at: reset
                .last_updated_date_time
                .clone()
                .or_else(|| reset.start_date_time.clone()),
            expires_at,
        }),
        None => Err(not_available(format!(
            "Intune returned no passcode for the finished reset of {}. Only Android resets produce one; on iOS/iPadOS the passcode is removed, not replaced.",
            name(device)
        ))),
    }
}

fn finished_at(reset: &DeviceActionResult) -> Option<OffsetDateTime> {
    reset
        .last_updated_date_time
        .as_deref()
        .and_then(crate::device::parse_time)
        .or_else(|| reset.started_at())
}

fn name(device: &ManagedDevice) -> String {
    match device.device_name.as_deref() {
        Some(n) if !n.is_empty() => format!("device {n:?}"),
        _ => format!("device {}", device.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    fn device(results: Vec<DeviceActionResult>) -> ManagedDevice {
        ManagedDevice {
            id: "d1".into(),
            device_name: Some("KIOSK-1".into()),
            device_action_results: Some(results),
            ..Default::default()
        }
    }

    fn reset(
        state: &str,
        started: &str,
        updated: Option<&str>,
        passcode: Option<&str>,
    ) -> DeviceActionResult {
        DeviceActionResult {
            odata_type: Some("#microsoft.graph.resetPasscodeActionResult".into()),
            action_name: Some("resetPasscode".into()),
            action_state: Some(state.into()),
            start_date_time: Some(started.into()),
            last_updated_date_time: updated.map(str::to_string),
            passcode: passcode.map(str::to_string),
            error_code: None,
        }
    }

    #[test]
    fn a_done_reset_within_seven_days_is_revealed() {
        let d = device(vec![reset(
            "done",
            "2026-11-25T08:00:00Z",
            Some("2026-11-25T09:00:00Z"),
            Some("24681357"),
        )]);
        let r = passcode(&d, NOW).unwrap();
        assert_eq!(r.passcode.expose(), "24681357");
        assert_eq!(r.expires_at, datetime!(2026-12-02 09:00 UTC));
        assert!(!format!("{r:?}").contains("24681357"));
    }

    #[test]
    fn only_the_newest_reset_counts() {
        // An older done reset must not be revealed while a newer one is pending:
        // that passcode has already been replaced on the device.
        let d = device(vec![
            reset(
                "done",
                "2026-11-28T08:00:00Z",
                Some("2026-11-28T09:00:00Z"),
                Some("11112222"),
            ),
            reset("pending", "2026-11-30T10:00:00Z", None, None),
        ]);
        let e = passcode(&d, NOW).unwrap_err();
        assert_eq!(e.code, ErrorCode::PasscodeNotReady);
        assert_eq!(e.code.http_status(), 409);
    }

    #[test]
    fn every_other_case_says_why_and_reveals_nothing() {
        let cases = [
            (vec![], "no passcode reset on record"),
            (
                vec![reset("failed", "2026-11-29T08:00:00Z", None, None)],
                "ended as failed",
            ),
            (
                vec![reset("notSupported", "2026-11-29T08:00:00Z", None, None)],
                "ended as notSupported",
            ),
            (
                vec![reset(
                    "done",
                    "2026-11-20T08:00:00Z",
                    Some("2026-11-23T11:59:00Z"),
                    Some("1234"),
                )],
                "more than 7 days ago",
            ),
            (
                vec![reset("done", "2026-11-29T08:00:00Z", None, Some(""))],
                "returned no passcode",
            ),
            (
                vec![reset("done", "yesterday", None, Some("1234"))],
                "gives no time",
            ),
        ];
        for (results, expected) in cases {
            let e = passcode(&device(results), NOW).unwrap_err();
            assert_eq!(e.code, ErrorCode::PasscodeNotAvailable, "{expected}");
            assert!(e.message.contains(expected), "{expected}: {}", e.message);
            assert!(!e.message.contains("1234"));
        }
    }
}
