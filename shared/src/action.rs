//! The five passcode actions this project ships, one Lambda binary each, and the
//! routes and EventBridge names that reach them.
//!
//! This file is the single source of truth for names: `template.yaml` is checked
//! against it by a test (`tests/local-stack/tests/template/`).

use std::fmt;

/// `detail-type` of the EventBridge events the functions accept.
pub const EVENT_DETAIL_TYPE: &str = "Passcode Action Requested";

/// The one function binary that serves no request: the completion tracker,
/// started on a schedule (see `tracking`).
pub const TRACKER_FUNCTION: &str = "passcode-tracker";

/// The function that takes many devices in one request (`bulk`): it
/// resolves and checks them, then queues one message per device for the
/// write function of its action.
pub const BULK_FUNCTION: &str = "bulk-passcode";

/// `detail-type` of the EventBridge events the bulk function accepts.
pub const BULK_DETAIL_TYPE: &str = "Passcode Bulk Action Requested";

/// The bulk function's HTTP routes. `{action}` is `reset-passcode` or
/// `remove-passcode`. Progress is read below the action because API Gateway
/// allows one variable name per path position (`/v1/bulk/{batchId}` next to
/// `/v1/bulk/{action}` does not deploy).
pub const BULK_ROUTES: [(&str, &str); 2] = [
    ("POST", "/v1/bulk/{action}"),
    ("GET", "/v1/bulk/{action}/{batchId}"),
];

/// The right JWT callers need for the bulk function.
pub const BULK_ROLE: &str = "Passcode.Bulk";

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
    /// Read-only: how the last actions on a device went. Never a passcode.
    Status,
    /// Read-only, API only: the new passcode of a finished Android reset,
    /// a right of its own (see `rights`).
    RevealPasscode,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::ResetPasscode,
        Action::RemovePasscode,
        Action::ResetWindowsPin,
        Action::Status,
        Action::RevealPasscode,
    ];

    /// Cargo binary name, Lambda function name and last route segment.
    pub fn function_name(self) -> &'static str {
        match self {
            Action::ResetPasscode => "reset-passcode",
            Action::RemovePasscode => "remove-passcode",
            Action::ResetWindowsPin => "reset-windows-pin",
            Action::Status => "passcode-status",
            Action::RevealPasscode => "reveal-passcode",
        }
    }

    /// Value of `detail.action` in an EventBridge event.
    pub fn event_action(self) -> &'static str {
        match self {
            Action::ResetPasscode => "resetPasscode",
            Action::RemovePasscode => "removePasscode",
            Action::ResetWindowsPin => "resetWindowsPin",
            Action::Status => "status",
            Action::RevealPasscode => "revealPasscode",
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
            Action::RevealPasscode => &[
                ("GET", "/v1/devices/{deviceId}/passcode"),
                ("POST", "/v1/reveal-passcode"),
            ],
        }
    }

    /// The two actions a bulk request may ask for (each has a bulk queue).
    pub fn bulk_capable(self) -> bool {
        matches!(self, Action::ResetPasscode | Action::RemovePasscode)
    }

    /// This function's routes, for matching API calls.
    pub(crate) fn route_table(self) -> crate::trigger::Routes {
        crate::trigger::Routes {
            function: self.function_name(),
            routes: self.routes(),
        }
    }

    /// True for the three actions that send `resetPasscode` to Graph.
    pub fn writes(self) -> bool {
        !matches!(self, Action::Status | Action::RevealPasscode)
    }

    /// False for the reveal: its answer holds a passcode, and EventBridge
    /// results are copied onto the bus by the functions' destinations.
    pub fn reachable_by_events(self) -> bool {
        self != Action::RevealPasscode
    }

    /// What a helpdesk agent calls this action.
    pub fn display_name(self) -> &'static str {
        match self {
            Action::ResetPasscode => "Reset passcode",
            Action::RemovePasscode => "Remove passcode",
            Action::ResetWindowsPin => "Reset Windows 10 Mobile PIN",
            Action::Status => "Passcode action status",
            Action::RevealPasscode => "Reveal the new Android passcode",
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
            // The body route is named after the function; the path route
            // after what it does to the device.
            let (_, body_route) = action.routes()[1];
            assert_eq!(body_route, format!("/v1/{}", action.function_name()));
            let (_, path_route) = action.routes()[0];
            assert!(
                path_route.starts_with("/v1/devices/{deviceId}/"),
                "{path_route}"
            );
        }
        assert_eq!(Action::from_event_action("wipe"), None);
        let mut paths: Vec<_> = Action::ALL.iter().flat_map(|a| a.routes()).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), 2 * Action::ALL.len(), "routes are unique");
    }
}
