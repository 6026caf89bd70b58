//! What a function's role grants, and the permissions boundary every role
//! takes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::FUNCTIONS;
use crate::deployed::{Deployed, items};

const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/team-boundary";

/// Every statement a function's role grants through the policies this
/// template defines (managed policies it references and inline policies),
/// as (actions, resources, condition). The two AWS managed policies SAM
/// attaches (logs, X-Ray) are not in the template and not listed.
pub(crate) fn granted(stack: &Deployed, role: &str) -> Vec<(Vec<String>, Vec<Value>, Value)> {
    let p = stack.props(role);
    let mut documents: Vec<Value> = Vec::new();
    for arn in items(&p["ManagedPolicyArns"]) {
        if let Some(id) = arn.get("Ref").and_then(Value::as_str) {
            documents.push(stack.props(id)["PolicyDocument"].clone());
        }
    }
    for policy in items(&p["Policies"]) {
        documents.push(policy["PolicyDocument"].clone());
    }
    documents
        .iter()
        .flat_map(|d| items(&d["Statement"]))
        .map(|s| {
            assert_eq!(s["Effect"], "Allow", "{role}: {s}");
            let actions = items(&s["Action"])
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            (actions, items(&s["Resource"]), s["Condition"].clone())
        })
        .collect()
}

pub(crate) fn function_role(stack: &Deployed, function: &str) -> String {
    let role = &stack.props(function)["Role"]["Fn::GetAtt"][0];
    role.as_str().unwrap().to_string()
}

/// The function's granted statements by action: (resources, condition)
/// of each statement that grants it.
fn rights_by_action(
    stack: &Deployed,
    function: &str,
) -> BTreeMap<String, Vec<(Vec<Value>, Value)>> {
    let mut by_action: BTreeMap<String, Vec<(Vec<Value>, Value)>> = BTreeMap::new();
    for (actions, resources, condition) in granted(stack, &function_role(stack, function)) {
        for action in actions {
            by_action
                .entry(action)
                .or_default()
                .push((resources.clone(), condition.clone()));
        }
    }
    by_action
}

/// [`rights_by_action`], once asserted to grant exactly `actions` (in
/// their sorted order) and nothing else.
pub(crate) fn rights_exactly(
    stack: &Deployed,
    function: &str,
    actions: &[&str],
) -> BTreeMap<String, Vec<(Vec<Value>, Value)>> {
    let by_action = rights_by_action(stack, function);
    assert_eq!(
        by_action.keys().map(String::as_str).collect::<Vec<_>>(),
        actions,
        "{function}: {by_action:?}"
    );
    by_action
}

#[test]
fn permissions_boundary_applies_to_every_role() {
    let stack = Deployed::with(&[
        ("PermissionsBoundary", BOUNDARY),
        ("AuditExport", "enabled"),
    ]);
    let roles = stack.exactly(
        "AWS::IAM::Role",
        FUNCTIONS.len() + 5,
        "the function roles, the bulk function's, the tracker's and its schedule's, \
         and two export roles",
    );
    for (id, role) in roles {
        assert_eq!(role["Properties"]["PermissionsBoundary"], BOUNDARY, "{id}");
    }
    let without = Deployed::with(&[("AuditExport", "enabled")]);
    for (id, role) in without.of_type("AWS::IAM::Role") {
        assert!(
            role["Properties"].get("PermissionsBoundary").is_none(),
            "{id}"
        );
    }
}
