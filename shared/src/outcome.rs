//! How a request ended, as plain data, and what each ending tells the
//! helpdesk agent.
//!
//! The idempotency record stores an [`Outcome`] and the audit reads one, so
//! these types know nothing of triggers or HTTP; `response` turns them into
//! answers. The words an agent reads (messages, status hints, platform
//! notices) live here, next to the states they explain, and depend on the
//! platform: an Android reset makes a new passcode, an Apple one clears it,
//! a Windows 10 Mobile one makes a new PIN.

use crate::device::DeviceSummary;
use crate::eligibility::Platform;
use crate::sensitive::Sensitive;
use crate::tracking::TrackedAction;
use serde::{Deserialize, Serialize};

/// How one action on one device went (for `passcode-status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionStatus {
    pub action: String,
    pub state: String,
    pub started_at: Option<String>,
    pub updated_at: Option<String>,
    /// What the state means for the agent, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Something the agent must know about the device's platform whenever an
/// action is sent (or would be): both are legacy paths that still work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlatformNotice {
    Windows10Mobile,
    AndroidDeviceAdministrator,
}

impl PlatformNotice {
    pub fn for_platform(platform: Platform) -> Option<PlatformNotice> {
        match platform {
            Platform::Windows10Mobile => Some(PlatformNotice::Windows10Mobile),
            Platform::AndroidDeviceAdministrator => {
                Some(PlatformNotice::AndroidDeviceAdministrator)
            }
            _ => None,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            PlatformNotice::Windows10Mobile => {
                "Windows 10 Mobile is out of support (Microsoft ended it in 2019 and enrolled devices stop syncing), so this device may never check in again and the PIN reset may stay pending; if it does run, Intune shows the new PIN in the admin center."
            }
            PlatformNotice::AndroidDeviceAdministrator => {
                "Android device administrator is a legacy management mode: its passcode reset works only below Android 7.0, and Google no longer supports it. Plan to move this device to Android Enterprise."
            }
        }
    }
}

/// How a request ended. Serialized into the idempotency record, which holds
/// write outcomes only; a revealed passcode is never serialized. Fields added later carry
/// `serde(default)` so records written before them still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Outcome {
    /// The action was sent; Intune runs it when the device checks in.
    Accepted {
        device: DeviceSummary,
        graph_request_id: Option<String>,
        /// Sent although an earlier action was still pending, because the
        /// caller asked for it (`replacePending`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced: Option<PendingAction>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice: Option<PlatformNotice>,
    },
    /// A `resetPasscode` is still pending: nothing was sent.
    AlreadyPending {
        device: DeviceSummary,
        pending_since: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice: Option<PlatformNotice>,
    },
    /// Nothing was sent; says what would have happened.
    DryRun {
        device: DeviceSummary,
        would_send: bool,
        /// A pending action the request would replace (`replacePending`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        would_replace: Option<PendingAction>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice: Option<PlatformNotice>,
    },
    Status {
        device: DeviceSummary,
        actions: Vec<ActionStatus>,
        /// The device's newest tracked actions, newest first; `None` when
        /// no action log is configured or it could not be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracking: Option<Vec<TrackedAction>>,
    },
    /// The new passcode of a finished Android reset (`reveal-passcode`).
    Revealed {
        device: DeviceSummary,
        #[serde(skip)]
        passcode: Sensitive,
        completed_at: Option<String>,
        expires_at: String,
    },
    /// A repeat of a finished request (same idempotency key): the first
    /// request's outcome, answered again. Nothing was done now.
    Replayed {
        original: Box<Outcome>,
        original_request_id: String,
    },
}

/// A passcode action Intune still reports as pending or active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingAction {
    /// Its `startDateTime` as Graph wrote it; `None` when Graph gave none.
    pub since: Option<String>,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::AlreadyPending { .. } => "alreadyPending",
            Outcome::DryRun { .. } => "dryRun",
            Outcome::Status { .. } => "status",
            Outcome::Revealed { .. } => "revealed",
            Outcome::Replayed { .. } => "replayed",
        }
    }

    pub fn device(&self) -> &DeviceSummary {
        match self {
            Outcome::Accepted { device, .. }
            | Outcome::AlreadyPending { device, .. }
            | Outcome::DryRun { device, .. }
            | Outcome::Status { device, .. }
            | Outcome::Revealed { device, .. } => device,
            Outcome::Replayed { original, .. } => original.device(),
        }
    }

    pub fn graph_request_id(&self) -> Option<&str> {
        match self {
            Outcome::Accepted {
                graph_request_id, ..
            } => graph_request_id.as_deref(),
            Outcome::Replayed { original, .. } => original.graph_request_id(),
            _ => None,
        }
    }

    /// Did this answer hand out a passcode? Only a reveal does.
    pub fn passcode_returned(&self) -> bool {
        matches!(self, Outcome::Revealed { .. })
    }

    /// A pending action was replaced by this request's (`replacePending`).
    /// A replay replaced nothing now.
    pub fn replaced_pending(&self) -> bool {
        matches!(
            self,
            Outcome::Accepted {
                replaced: Some(_),
                ..
            }
        )
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Outcome::Accepted { .. } => 202,
            Outcome::Replayed { original, .. } => original.http_status(),
            _ => 200,
        }
    }

    /// What the agent reads in the answer's `message` (none for `Status`,
    /// whose actions carry hints).
    pub fn message(&self) -> Option<String> {
        let (text, notice) = match self {
            Outcome::Accepted {
                replaced, notice, ..
            } => {
                let text = match replaced {
                    None => "Intune accepted the action; it runs when the device next checks in. Follow it with passcode-status.".to_string(),
                    Some(pending) => format!(
                        "Intune accepted a new passcode action although an earlier one ({}) was still pending, because the request said replacePending. The earlier action is superseded: only the newest result counts (passcode-status lists it first). It runs when the device next checks in.",
                        started(&pending.since)
                    ),
                };
                (text, notice)
            }
            Outcome::AlreadyPending {
                pending_since,
                notice,
                ..
            } => (
                format!(
                    "A passcode action for this device ({}) is still pending in Intune, so nothing was sent again: the device picks it up at its next check-in. To issue a new one anyway, send the request again with \"replacePending\": true.",
                    started(pending_since)
                ),
                notice,
            ),
            Outcome::DryRun {
                would_send,
                would_replace,
                notice,
                ..
            } => {
                let text = match (*would_send, would_replace) {
                    (true, None) => "Dry run: the device is eligible and the action would be sent. Nothing was sent.".to_string(),
                    (true, Some(pending)) => format!(
                        "Dry run: a passcode action ({}) is still pending; with replacePending a new one would be sent and supersede it. Nothing was sent.",
                        started(&pending.since)
                    ),
                    (false, _) => "Dry run: a passcode action is already pending, so nothing would be sent.".to_string(),
                };
                (text, notice)
            }
            Outcome::Revealed { .. } => {
                return Some(
                    "The new passcode Intune set on the device. Give it to the user over a channel you trust; Intune also shows it in the admin center until expiresAt.".to_string(),
                );
            }
            Outcome::Status { .. } | Outcome::Replayed { .. } => return None,
        };
        Some(match notice {
            Some(notice) => format!("{text} {}", notice.text()),
            None => text,
        })
    }
}

fn started(since: &Option<String>) -> String {
    match since {
        Some(time) => format!("started {time}"),
        None => "start time not reported".to_string(),
    }
}

/// What a passcode action's state means for the agent on this platform.
pub fn status_hint(state: &str, platform: Platform) -> Option<&'static str> {
    let windows_mobile = platform == Platform::Windows10Mobile;
    let text = match state.to_ascii_lowercase().as_str() {
        "pending" | "active" if windows_mobile => {
            "Intune is waiting for the device to check in. Windows 10 Mobile is out of support and such devices may never check in again; if it stays pending, have the user reset the PIN on the device, or retire it."
        }
        "pending" | "active" => {
            "Intune is waiting for the device to check in. A device that is online picks it up within minutes; an offline one at its next check-in (about every 8 hours)."
        }
        "done" if platform.is_android() => {
            "Done. The new passcode is shown in the Intune admin center for 7 days; the user enters it on the device."
        }
        "done" if platform.is_apple() => {
            "Done. The passcode was removed; the user sets a new one if a passcode policy requires it."
        }
        "done" if windows_mobile => {
            "Done. Intune generated a new PIN for the device; it is shown in the Intune admin center on the device's page. The user signs in with it and then sets a PIN of their own."
        }
        "done" => "Done: Intune reports the action finished on the device.",
        "notsupported" if platform.is_android() => {
            "Intune reports the reset as not supported. On a personally-owned work profile the reset token isn't active: the user must set a work-profile passcode and accept the prompt that allows passcode reset. Also check that a passcode policy is assigned."
        }
        "failed" if platform.is_android() => {
            "The reset failed. Android passcode reset fails when no device configuration policy requires a passcode; assign one and retry."
        }
        "failed" if platform.is_apple() => {
            "Remove passcode failed. Intune may hold an outdated unlock token for this device; if a retry fails too, only a wipe restores access."
        }
        "failed" if windows_mobile => {
            "The PIN reset failed. Windows 10 Mobile is out of support: have the user reset the PIN on the device, or retire it."
        }
        "canceled" => "The action was canceled in Intune.",
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceSummary {
        DeviceSummary {
            id: "d1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn hints_speak_of_what_the_platform_does() {
        use Platform as P;
        #[rustfmt::skip]
        let cases: &[(&str, Platform, Option<&str>)] = &[
            ("done", P::AndroidEnterpriseDedicated, Some("new passcode is shown")),
            ("done", P::AndroidDeviceAdministrator, Some("new passcode is shown")),
            ("done", P::AppleDeviceEnrollment, Some("passcode was removed")),
            ("done", P::VisionOs, Some("passcode was removed")),
            ("done", P::Windows10Mobile, Some("new PIN")),
            ("DONE", P::Windows10Mobile, Some("new PIN")),
            ("pending", P::Windows10Mobile, Some("may never check in again")),
            ("active", P::AospUserless, Some("about every 8 hours")),
            ("notSupported", P::AndroidEnterprisePersonalWorkProfile, Some("accept the prompt")),
            ("notSupported", P::AppleDeviceEnrollment, None),
            ("failed", P::AndroidEnterpriseFullyManaged, Some("policy requires a passcode")),
            ("failed", P::AppleDeviceEnrollment, Some("unlock token")),
            ("failed", P::Windows10Mobile, Some("out of support")),
            ("canceled", P::Other, Some("canceled")),
            ("none", P::AndroidEnterpriseDedicated, None),
        ];
        for (state, platform, expected) in cases {
            let hint = status_hint(state, *platform);
            match expected {
                Some(text) => assert!(
                    hint.is_some_and(|h| h.contains(text)),
                    "{state} {platform:?}: {hint:?}"
                ),
                None => assert_eq!(hint, None, "{state} {platform:?}"),
            }
        }
        // No platform's finished action is described as another's.
        assert!(
            !status_hint("done", P::Windows10Mobile)
                .unwrap()
                .contains("removed")
        );
        assert!(!status_hint("done", P::Other).unwrap().contains("removed"));
    }

    #[test]
    fn legacy_platforms_are_named_when_an_action_is_sent() {
        let accepted = |notice| Outcome::Accepted {
            device: device(),
            graph_request_id: None,
            replaced: None,
            notice,
        };
        let message = accepted(PlatformNotice::for_platform(Platform::Windows10Mobile))
            .message()
            .unwrap();
        assert!(
            message.contains("out of support") && message.contains("may never check in again"),
            "{message}"
        );
        let message = accepted(PlatformNotice::for_platform(
            Platform::AndroidDeviceAdministrator,
        ))
        .message()
        .unwrap();
        assert!(
            message.contains("legacy") && message.contains("below Android 7.0"),
            "{message}"
        );
        let message = accepted(PlatformNotice::for_platform(
            Platform::AndroidEnterpriseFullyManaged,
        ))
        .message()
        .unwrap();
        assert!(!message.contains("legacy"), "{message}");
    }

    #[test]
    fn a_replaced_pending_action_is_said_and_survives_the_record() {
        let outcome = Outcome::Accepted {
            device: device(),
            graph_request_id: Some("g".into()),
            replaced: Some(PendingAction {
                since: Some("2026-11-26T05:00:00Z".into()),
            }),
            notice: None,
        };
        assert!(outcome.replaced_pending());
        let message = outcome.message().unwrap();
        assert!(
            message.contains("replacePending") && message.contains("2026-11-26T05:00:00Z"),
            "{message}"
        );
        let stored = serde_json::to_string(&outcome).unwrap();
        assert_eq!(serde_json::from_str::<Outcome>(&stored).unwrap(), outcome);
        // A record written before these fields existed still reads.
        let old = r#"{"outcome":"accepted","device":{"id":"d1","deviceName":"","operatingSystem":"","osVersion":"","enrollmentType":"","ownership":"","userPrincipalName":"","lastSyncDateTime":null},"graphRequestId":"g"}"#;
        let read: Outcome = serde_json::from_str(old).unwrap();
        assert!(!read.replaced_pending());
        let pending = Outcome::AlreadyPending {
            device: device(),
            pending_since: None,
            notice: None,
        };
        assert!(
            pending
                .message()
                .unwrap()
                .contains("\"replacePending\": true")
        );
    }
}
