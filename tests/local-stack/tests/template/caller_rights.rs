//! The right each function requires of JWT callers, and the routes each
//! caller persona's policy grants.

use std::collections::BTreeSet;

use passcode_core::Action;
use passcode_core::action::BULK_ROLE;
use serde_yaml_ng::Value;

use crate::functions::{bulk_function, function_for};
use crate::yaml::{intrinsic, key_paths, load_template};

#[test]
fn every_function_requires_its_own_right_of_jwt_callers() {
    let template = load_template();
    let mut found = Vec::new();
    key_paths(&template, "RETURN_PASSCODE", String::new(), &mut found);
    assert!(
        found.is_empty(),
        "the status never returns a passcode: {found:?}"
    );
    let parameters = template.get("Parameters").unwrap();
    let mut seen = BTreeSet::new();
    let rights = Action::ALL
        .into_iter()
        .map(|action| {
            (
                function_for(&template, action),
                passcode_core::rights::default_role(action),
            )
        })
        .chain([(bulk_function(&template), BULK_ROLE)]);
    for (function, right) in rights {
        let role = function
            .properties()
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.get("REQUIRED_ROLE"))
            .unwrap_or_else(|| panic!("{}: no REQUIRED_ROLE", function.logical_id));
        let parameter = match intrinsic(role) {
            Some((tag, name)) if tag == "Ref" => name.as_str().unwrap().to_string(),
            _ => panic!(
                "{}: REQUIRED_ROLE must be !Ref a parameter",
                function.logical_id
            ),
        };
        assert!(seen.insert(parameter.clone()), "{parameter} used twice");
        let default = parameters
            .get(parameter.as_str())
            .and_then(|p| p.get("Default"))
            .and_then(Value::as_str);
        assert_eq!(
            default,
            Some(right),
            "{parameter}: the default is the documented right"
        );
    }
}

#[test]
fn caller_personas_grant_the_reveal_to_tier_2_only() {
    let template = load_template();
    let resources = template.get("Resources").unwrap();
    let routes_of = |id: &str| -> BTreeSet<String> {
        let policy = resources.get(id).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(
            policy.get("Condition").and_then(Value::as_str),
            Some("CreateCallerPolicies")
        );
        let statement = &policy["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(statement["Action"].as_str(), Some("execute-api:Invoke"));
        statement["Resource"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| {
                let (_, arn) = intrinsic(r).expect("!Sub ARN");
                let arn = arn.as_str().unwrap();
                // .../${PasscodeApi}/*/METHOD/path -> "METHOD /path"
                let tail = arn
                    .split("${PasscodeApi}/*/")
                    .nth(1)
                    .expect("stage wildcard");
                let (method, path) = tail.split_once('/').unwrap();
                format!("{method} /{}", path.replace("/*/", "/{deviceId}/"))
            })
            .collect()
    };
    let routes = |actions: &[Action]| -> BTreeSet<String> {
        actions
            .iter()
            .flat_map(|a| a.routes())
            .map(|(m, p)| format!("{m} {p}"))
            .collect()
    };
    use Action::*;
    assert_eq!(
        routes_of("HelpdeskTier1Policy"),
        routes(&[ResetPasscode, RemovePasscode, Status])
    );
    assert_eq!(
        routes_of("HelpdeskTier2Policy"),
        routes(&[
            ResetPasscode,
            RemovePasscode,
            ResetWindowsPin,
            Status,
            RevealPasscode
        ])
    );
    assert_eq!(
        routes_of("SoarAutomationPolicy"),
        routes(&[ResetPasscode, RemovePasscode])
    );
    assert_eq!(routes_of("ReportingPolicy"), routes(&[Status]));
}
