//! The four passcode actions this project ships, one Lambda binary each, and the
//! routes and EventBridge names that reach them.
//!
//! This file is the single source of truth for names: `template.yaml` is checked
//! against it by a test (`tests/local-stack/tests/template.rs`).

use std::fmt;

/// `detail-type` of the EventBridge events the functions accept.
pub const EVENT_DETAIL_TYPE: &str = "Passcode Action Requested";

/// One Intune passcode action. Each variant is one function binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Android Enterprise / AOSP / legacy device administrator: Intune sets a new
    /// passcode and shows it to the admin.
    ResetPasscode,
    /// iOS / iPadOS / visionOS: Intune clears the passcode.
    RemovePasscode,
    /// Windows 10 Mobile: the legacy PIN reset.
    ResetWindowsPin,
    /// Read-only: how the last actions on a device went.
    Status,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::ResetPasscode,
        Action::RemovePasscode,
        Action::ResetWindowsPin,
        Action::Status,
    ];

    /// Cargo binary name, Lambda function name and last route segment.
    pub fn function_name(self) -> &'static str {
        match self {
            Action::ResetPasscode => "reset-passcode",
            Action::RemovePasscode => "remove-passcode",
            Action::ResetWindowsPin => "reset-windows-pin",
            Action::Status => "passcode-status",
        }
    }

    /// Value of `detail.action` in an EventBridge event.
    pub fn event_action(self) -> &'static str {
        match self {
            Action::ResetPasscode => "resetPasscode",
            Action::RemovePasscode => "removePasscode",
            Action::ResetWindowsPin => "resetWindowsPin",
            Action::Status => "status",
        }
    }

    pub fn from_event_action(value: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.event_action() == value)
    }

    /// HTTP routes (method, path template) of the API in front of this function.
    pub fn routes(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Action::ResetPasscode => &[
                ("POST", "/v1/devices/{deviceId}/reset-passcode"),
                ("POST", "/v1/reset-passcode"),
            ],
            Action::RemovePasscode => &[
                ("POST", "/v1/devices/{deviceId}/remove-passcode"),
                ("POST", "/v1/remove-passcode"),
            ],
            Action::ResetWindowsPin => &[
                ("POST", "/v1/devices/{deviceId}/reset-windows-pin"),
                ("POST", "/v1/reset-windows-pin"),
            ],
            Action::Status => &[
                ("GET", "/v1/devices/{deviceId}/passcode-status"),
                ("POST", "/v1/passcode-status"),
            ],
        }
    }

    /// True for the three actions that send `resetPasscode` to Graph.
    pub fn writes(self) -> bool {
        self != Action::Status
    }

    /// What a helpdesk agent calls this action.
    pub fn display_name(self) -> &'static str {
        match self {
            Action::ResetPasscode => "Reset passcode",
            Action::RemovePasscode => "Remove passcode",
            Action::ResetWindowsPin => "Reset Windows 10 Mobile PIN",
            Action::Status => "Passcode action status",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.event_action())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for action in Action::ALL {
            assert_eq!(
                Action::from_event_action(action.event_action()),
                Some(action)
            );
            for (_, path) in action.routes() {
                assert!(path.ends_with(action.function_name()), "{path}");
            }
        }
        assert_eq!(Action::from_event_action("wipe"), None);
    }
}
