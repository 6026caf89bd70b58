//! The idempotency table and the functions it reaches.

use passcode_core::Action;

use crate::functions::{bulk_function, function_built_from, function_for};
use crate::yaml::{key_paths, load_template, resources, show};

/// The idempotency table: on-demand with TTL on the attribute the code
/// writes. Its variable reaches the three write functions, the bulk
/// function (its batches) and the tracker (which reports them); its write
/// policy the three write functions only, with item writes on that table
/// alone. The bulk function and the tracker have policies of their own,
/// limited to the bulk items (template_operations/tracker.rs and
/// bulk_function.rs).
#[test]
fn idempotency_table_reaches_the_write_functions_only() {
    let template = load_template();
    let table = &resources(&template)["IdempotencyRecords"];
    let props = &table["Properties"];
    assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        props["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("expiration")
    );
    assert_eq!(props["KeySchema"][0]["AttributeName"].as_str(), Some("id"));

    let mut found = Vec::new();
    key_paths(&template, "IDEMPOTENCY_TABLE", String::new(), &mut found);
    let mut expected: Vec<String> = [
        Action::ResetPasscode,
        Action::RemovePasscode,
        Action::ResetWindowsPin,
    ]
    .into_iter()
    .map(|action| function_for(&template, action).logical_id)
    .chain([
        bulk_function(&template).logical_id,
        function_built_from(&template, passcode_core::action::TRACKER_FUNCTION).logical_id,
    ])
    .map(|id| format!(".Resources.{id}.Properties.Environment.Variables.IDEMPOTENCY_TABLE"))
    .collect();
    expected.sort();
    found.sort();
    assert_eq!(found, expected);

    for action in Action::ALL {
        let function = function_for(&template, action);
        let policies = show(function.properties().get("Policies").unwrap());
        assert_eq!(
            policies.contains("IdempotencyRecordsPolicy"),
            action.writes(),
            "{}: {policies}",
            function.logical_id
        );
    }
    let bulk = bulk_function(&template);
    let policies = show(bulk.properties().get("Policies").unwrap());
    assert!(
        !policies.contains("IdempotencyRecordsPolicy"),
        "{}: {policies}",
        bulk.logical_id
    );
    let policy = show(&resources(&template)["IdempotencyRecordsPolicy"]);
    for needed in [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "IdempotencyRecords",
    ] {
        assert!(policy.contains(needed), "{needed} missing: {policy}");
    }
    for broader in ["dynamodb:*", "Scan", "Query", "GetItem", "BatchWriteItem"] {
        assert!(!policy.contains(broader), "{broader} granted: {policy}");
    }
}
