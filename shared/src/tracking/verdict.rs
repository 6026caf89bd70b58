//! What a device's `deviceActionResults` say about one tracked action, and
//! when to look again (pure).
//!
//! Intune keeps one `resetPasscode` result per device: a newer action
//! replaces the older one's entry. So the entry belongs to the tracked action
//! only when it started around the time the action was accepted: an entry
//! from well before is an older action (Intune has not shown ours yet), one
//! from clearly after is a newer action that superseded ours.

use crate::device::ManagedDevice;
use crate::eligibility::{self, Platform};
use crate::outcome::status_hint;
use std::time::Duration;
use time::OffsetDateTime;

/// How long before the recorded acceptance Intune's `startDateTime` may lie
/// and still be the same action: the write function records the time after
/// its POST returned, which may have waited out throttling, and the two
/// clocks may differ a little.
const STARTED_BEFORE_ACCEPTANCE: time::Duration = time::Duration::minutes(5);
/// An entry this long after acceptance is another, newer action.
const STARTED_AFTER_ACCEPTANCE: time::Duration = time::Duration::minutes(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Intune has not finished (or does not show the action yet).
    Waiting,
    Final(Final),
}

/// How a tracked action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Final {
    /// `done`, `failed`, `notSupported`, `canceled`, `superseded`,
    /// `deviceRemoved` or `expired`.
    pub state: &'static str,
    pub intune_error_code: Option<i64>,
    /// What an agent can do about it.
    pub hint: String,
}

impl Final {
    pub fn is_expiry(&self) -> bool {
        self.state == "expired"
    }
}

/// The verdict for an action accepted at `accepted_at`, from the device as
/// Graph returns it now (`None`: the device is gone from Intune).
pub fn judge(accepted_at: OffsetDateTime, device: Option<&ManagedDevice>) -> Verdict {
    let Some(device) = device else {
        return Verdict::Final(Final {
            state: "deviceRemoved",
            intune_error_code: None,
            hint: "The device is no longer in Intune (retired, wiped or deleted), so the action will not run. Nothing more happens for this request.".into(),
        });
    };
    let Some(entry) = device.latest_reset() else {
        return Verdict::Waiting;
    };
    if let Some(start) = entry.started_at() {
        if start < accepted_at - STARTED_BEFORE_ACCEPTANCE {
            return Verdict::Waiting;
        }
        if start > accepted_at + STARTED_AFTER_ACCEPTANCE {
            return Verdict::Final(Final {
                state: "superseded",
                intune_error_code: None,
                hint: "A newer passcode action on this device replaced this one; only the newer action's result counts, and it is reported on its own.".into(),
            });
        }
    }
    let state = match entry
        .action_state
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("done") => "done",
        Some("failed") => "failed",
        Some("notsupported") => "notSupported",
        Some("canceled" | "cancelled") => "canceled",
        // pending, active, none, or a state Graph added later.
        _ => return Verdict::Waiting,
    };
    let platform = eligibility::classify(device);
    Verdict::Final(Final {
        state,
        intune_error_code: entry.error_code.filter(|_| state != "done"),
        hint: hint(state, platform),
    })
}

fn hint(state: &str, platform: Platform) -> String {
    status_hint(state, platform)
        .unwrap_or("Intune reports the action finished.")
        .to_string()
}

/// The end of tracking for an action nothing happened to.
pub fn expired(after: Duration) -> Final {
    Final {
        state: "expired",
        intune_error_code: None,
        hint: format!(
            "Intune did not finish the action within {} hours: the device has not checked in. Check that it is powered on and online, or retire it if it is lost; a new Android passcode is no longer shown after 7 days, so send a new request when the user needs one.",
            after.as_secs() / 3600
        ),
    }
}

/// When to poll again: often while a device that is online would pick the
/// action up, then less and less as it becomes a device that is off.
pub fn next_poll_after(age: Duration) -> Duration {
    const MINUTE: u64 = 60;
    let minutes = match age.as_secs() / MINUTE {
        0..10 => 1,
        10..60 => 5,
        60..360 => 15,
        360..1440 => 60,
        _ => 180,
    };
    Duration::from_secs(minutes * MINUTE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{DeviceActionResult, parse_time};

    fn at(text: &str) -> OffsetDateTime {
        parse_time(text).unwrap()
    }

    fn device(os: &str, state: &str, start: &str, error: Option<i64>) -> ManagedDevice {
        ManagedDevice {
            id: "d".into(),
            operating_system: Some(os.into()),
            device_enrollment_type: Some("androidEnterpriseDedicatedDevice".into()),
            device_action_results: Some(vec![DeviceActionResult {
                action_name: Some("resetPasscode".into()),
                action_state: Some(state.into()),
                start_date_time: Some(start.into()),
                error_code: error,
                passcode: Some("24681357".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    const ACCEPTED: &str = "2026-11-30T10:00:05Z";

    fn state_of(verdict: &Verdict) -> &'static str {
        match verdict {
            Verdict::Waiting => "waiting",
            Verdict::Final(f) => f.state,
        }
    }

    #[test]
    fn every_intune_state_maps_to_waiting_or_one_final_state() {
        let cases = [
            ("pending", "waiting"),
            ("active", "waiting"),
            ("none", "waiting"),
            ("somethingNew", "waiting"),
            ("done", "done"),
            ("Done", "done"),
            ("failed", "failed"),
            ("notSupported", "notSupported"),
            ("canceled", "canceled"),
        ];
        for (intune, expected) in cases {
            let d = device("Android", intune, "2026-11-30T10:00:04.1234567Z", None);
            assert_eq!(state_of(&judge(at(ACCEPTED), Some(&d))), expected, "{intune}");
        }
    }

    #[test]
    fn the_entry_must_be_ours_by_its_start_time() {
        let older = device("Android", "done", "2026-11-30T09:00:00Z", None);
        assert_eq!(judge(at(ACCEPTED), Some(&older)), Verdict::Waiting);
        let newer = device("Android", "pending", "2026-11-30T11:00:00Z", None);
        assert_eq!(state_of(&judge(at(ACCEPTED), Some(&newer))), "superseded");
        // Sent while a Retry-After was waited out: still ours.
        let throttled = device("Android", "done", "2026-11-30T09:57:00Z", None);
        assert_eq!(state_of(&judge(at(ACCEPTED), Some(&throttled))), "done");
        let none = ManagedDevice::default();
        assert_eq!(judge(at(ACCEPTED), Some(&none)), Verdict::Waiting);
        assert_eq!(state_of(&judge(at(ACCEPTED), None)), "deviceRemoved");
    }

    #[test]
    fn a_failure_keeps_intunes_error_code_and_a_hint_for_the_platform() {
        let d = device("Android", "failed", ACCEPTED, Some(-2016345060));
        let Verdict::Final(f) = judge(at(ACCEPTED), Some(&d)) else {
            panic!("final expected");
        };
        assert_eq!(f.intune_error_code, Some(-2016345060));
        assert!(f.hint.contains("passcode"), "{}", f.hint);
        let d = device("iOS", "done", ACCEPTED, Some(0));
        let Verdict::Final(f) = judge(at(ACCEPTED), Some(&d)) else {
            panic!("final expected");
        };
        assert_eq!(f.intune_error_code, None);
        assert!(f.hint.contains("removed"), "{}", f.hint);
    }

    #[test]
    fn no_verdict_or_hint_carries_the_passcode() {
        for state in ["done", "failed", "notSupported", "canceled"] {
            let d = device("Android", state, ACCEPTED, None);
            assert!(!format!("{:?}", judge(at(ACCEPTED), Some(&d))).contains("24681357"));
        }
    }

    #[test]
    fn polls_thin_out_as_the_action_ages() {
        let m = |minutes: u64| next_poll_after(Duration::from_secs(minutes * 60)).as_secs() / 60;
        assert_eq!([m(0), m(9), m(10), m(59), m(60), m(359), m(360), m(1439), m(1440), m(9000)],
                   [1, 1, 5, 5, 15, 15, 60, 60, 180, 180]);
        assert!(expired(Duration::from_secs(168 * 3600)).hint.contains("168 hours"));
    }
}
