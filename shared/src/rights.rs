//! Rights per action for callers that come with a JWT.
//!
//! API Gateway's JWT authorizer proves who the caller is, but it can only
//! require OAuth scopes per route, and Entra puts an application's rights in
//! the `roles` claim, not in `scp`. So each function checks for itself that
//! the token grants the one right its action needs: an app role in `roles`
//! (client-credentials tokens, and users assigned to the role) or a
//! delegated scope of the same name in `scp`.
//!
//! IAM callers are authorized by their IAM policy (`execute-api:Invoke` on
//! the route), EventBridge and direct invocations by who may put events on
//! the bus or invoke the function; for those this check does not apply.

use crate::action::Action;
use crate::error::{ErrorCode, ServiceError};

/// The right each action needs, named as in the template's parameters.
pub fn default_role(action: Action) -> &'static str {
    match action {
        Action::ResetPasscode => "Passcode.Reset",
        Action::RemovePasscode => "Passcode.Remove",
        Action::ResetWindowsPin => "Passcode.ResetWindowsPin",
        Action::Status => "Passcode.Read",
        Action::RevealPasscode => "Passcode.Reveal",
    }
}

/// The rights a token grants, read from its claims as API Gateway passes
/// them on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// App roles (`roles`).
    pub roles: Vec<String>,
    /// Delegated scopes (`scp`).
    pub scopes: Vec<String>,
}

impl Grants {
    /// `roles` is a JSON array in the token; API Gateway's HTTP API hands
    /// claims to the function as strings and writes an array as
    /// `[a b c]`. A REST API authorizer, a test or a direct call may pass a
    /// real array. `scp` is one space-separated string. Entra refuses
    /// spaces in app role values and scope names, so splitting at white
    /// space is exact.
    pub fn from_claims(
        roles: Option<&serde_json::Value>,
        scp: Option<&serde_json::Value>,
    ) -> Grants {
        Grants {
            roles: roles.map(claim_values).unwrap_or_default(),
            scopes: scp.map(claim_values).unwrap_or_default(),
        }
    }

    fn has(&self, right: &str) -> bool {
        self.roles.iter().chain(&self.scopes).any(|r| r == right)
    }
}

fn claim_values(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str())
            .flat_map(split_words)
            .collect(),
        serde_json::Value::String(s) => {
            let s = s.trim();
            let inner = s
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or(s);
            split_words(inner)
        }
        _ => Vec::new(),
    }
}

fn split_words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// The right a function requires of JWT callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredRight(String);

impl RequiredRight {
    /// `REQUIRED_ROLE` from the function's environment, or the action's
    /// default name. An empty value is refused: there is no way to switch
    /// the check off, only to rename the right.
    pub fn from_env(action: Action, value: Option<&str>) -> Result<RequiredRight, String> {
        RequiredRight::named(default_role(action), value)
    }

    /// `REQUIRED_ROLE`, or `default` when it is not set.
    pub fn named(default: &str, value: Option<&str>) -> Result<RequiredRight, String> {
        match value {
            None => Ok(RequiredRight(default.to_string())),
            Some(v) => {
                let v = v.trim();
                if v.is_empty() || v.contains(char::is_whitespace) || v.len() > 120 {
                    Err(format!(
                        "REQUIRED_ROLE={v:?} is not an app role value (1-120 characters, no spaces)"
                    ))
                } else {
                    Ok(RequiredRight(v.to_string()))
                }
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `Ok` when the token grants the right; otherwise 403 `forbidden`
    /// naming the missing right, so the caller's admin knows what to assign.
    pub fn check(&self, action: Action, grants: &Grants) -> Result<(), ServiceError> {
        self.check_for(action.function_name(), grants)
    }

    /// [`Self::check`] for the function named `function`.
    pub fn check_for(&self, function: &str, grants: &Grants) -> Result<(), ServiceError> {
        if grants.has(&self.0) {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::Forbidden,
            format!(
                "The caller's token does not grant {:?}, which {} needs. Assign the app role {:?} to the calling application or user in Entra ID (Enterprise applications > the API > Users and groups, or the app's API permissions), then get a new token.",
                self.0, function, self.0
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_in_every_shape_api_gateway_and_entra_send() {
        let cases = [
            // HTTP API JWT authorizer: arrays arrive as "[a b]".
            (
                json!("[Passcode.Reset Passcode.Read]"),
                vec!["Passcode.Reset", "Passcode.Read"],
            ),
            (json!("[Passcode.Reset]"), vec!["Passcode.Reset"]),
            (json!("Passcode.Reset"), vec!["Passcode.Reset"]),
            (
                json!(["Passcode.Reset", "Passcode.Read"]),
                vec!["Passcode.Reset", "Passcode.Read"],
            ),
            (json!("[]"), vec![]),
            (json!(""), vec![]),
            (json!(42), vec![]),
        ];
        for (claim, expected) in cases {
            assert_eq!(
                Grants::from_claims(Some(&claim), None).roles,
                expected,
                "{claim}"
            );
        }
        let g = Grants::from_claims(None, Some(&json!("Passcode.Read User.Read")));
        assert_eq!(g.scopes, vec!["Passcode.Read", "User.Read"]);
    }

    #[test]
    fn a_right_is_granted_by_a_role_or_a_delegated_scope_of_that_name() {
        let right = RequiredRight::from_env(Action::ResetPasscode, None).unwrap();
        assert_eq!(right.name(), "Passcode.Reset");
        let by_role = Grants::from_claims(Some(&json!("[Passcode.Reset]")), None);
        let by_scope = Grants::from_claims(None, Some(&json!("Passcode.Reset")));
        assert!(right.check(Action::ResetPasscode, &by_role).is_ok());
        assert!(right.check(Action::ResetPasscode, &by_scope).is_ok());
    }

    #[test]
    fn missing_rights_are_403_naming_the_right() {
        let right = RequiredRight::from_env(Action::RevealPasscode, None).unwrap();
        for grants in [
            Grants::default(),
            Grants::from_claims(Some(&json!("[Passcode.Reset Passcode.Read]")), None),
            // No prefix or case games: the exact value only.
            Grants::from_claims(Some(&json!("[passcode.reveal Passcode.Reveal.All]")), None),
        ] {
            let e = right.check(Action::RevealPasscode, &grants).unwrap_err();
            assert_eq!(e.code, ErrorCode::Forbidden);
            assert_eq!(e.code.http_status(), 403);
            assert!(e.message.contains("\"Passcode.Reveal\""), "{}", e.message);
            assert!(!e.transient);
        }
    }

    #[test]
    fn the_required_right_can_be_renamed_but_not_switched_off() {
        let custom = RequiredRight::from_env(Action::Status, Some("Helpdesk.Read")).unwrap();
        assert_eq!(custom.name(), "Helpdesk.Read");
        for bad in ["", "  ", "two words"] {
            assert!(
                RequiredRight::from_env(Action::Status, Some(bad)).is_err(),
                "{bad:?}"
            );
        }
        let names: std::collections::BTreeSet<_> =
            Action::ALL.into_iter().map(default_role).collect();
        assert_eq!(names.len(), Action::ALL.len(), "one right per action");
    }
}
