//! The actions table: its keys and index, the functions it reaches and what
//! each may do with it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::deployed::{Deployed, get_att, reference, scalar};
use crate::roles::{function_role, granted};
use crate::{BULK, BULK_FUNCTION_ID, TRACKER, WRITES, bulk_keys_only};

/// The statements of a function's role whose resources are the actions
/// table or one of its indexes, as (actions, resources, condition).
fn on_actions_table(stack: &Deployed, function: &str) -> Vec<(Vec<String>, Vec<Value>, Value)> {
    granted(stack, &function_role(stack, function))
        .into_iter()
        .filter(|(_, resources, _)| {
            resources
                .iter()
                .any(|r| r.to_string().contains("ActionsTable"))
        })
        .collect()
}

/// Keys and sparse index as the tracker and the status read them; TTL on
/// the attribute the code writes; kept with the stack's audit trail.
#[test]
fn actions_table_has_the_keys_and_index_the_code_uses() {
    let stack = Deployed::with(&[("IdempotencyTable", "disabled")]);
    let table = stack.get("ActionsTable");
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(p["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(
        p["TimeToLiveSpecification"],
        json!({"AttributeName": "expiration", "Enabled": true})
    );
    assert_eq!(
        p["KeySchema"],
        json!([
            {"AttributeName": "deviceId", "KeyType": "HASH"},
            {"AttributeName": "actionKey", "KeyType": "RANGE"}
        ])
    );
    let indexes = p["GlobalSecondaryIndexes"].as_array().unwrap();
    assert_eq!(indexes.len(), 1);
    assert_eq!(indexes[0]["IndexName"], "open-by-next-poll");
    assert_eq!(
        indexes[0]["KeySchema"],
        json!([
            {"AttributeName": "openPartition", "KeyType": "HASH"},
            {"AttributeName": "nextPollAtMs", "KeyType": "RANGE"}
        ])
    );
    assert_eq!(indexes[0]["Projection"]["ProjectionType"], "ALL");
    let types: BTreeMap<String, String> = p["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (scalar(&d["AttributeName"]), scalar(&d["AttributeType"])))
        .collect();
    assert_eq!(
        types,
        BTreeMap::from([
            ("deviceId".into(), "S".into()),
            ("actionKey".into(), "S".into()),
            ("openPartition".into(), "S".into()),
            ("nextPollAtMs".into(), "N".into()),
        ])
    );
}

/// The table does not depend on the idempotency table: tracking works
/// without it. ACTIONS_TABLE reaches exactly the functions that use it (the
/// bulk function records its batches there, when it is deployed).
#[test]
fn actions_table_reaches_the_writers_the_status_and_the_tracker() {
    for idempotency in ["enabled", "disabled"] {
        let stack = Deployed::with(&[("IdempotencyTable", idempotency)]);
        for (id, function) in stack.of_type("AWS::Lambda::Function") {
            let variable = function["Properties"]["Environment"]["Variables"].get("ACTIONS_TABLE");
            let expected = WRITES.contains(&id.as_str())
                || id == "PasscodeStatusFunction"
                || id == TRACKER
                || id == BULK_FUNCTION_ID;
            if expected {
                assert_eq!(variable, Some(&reference("ActionsTable")), "{id}");
            } else {
                assert!(variable.is_none(), "{id}: ACTIONS_TABLE");
            }
        }
    }
}

/// Writers add items and do nothing else with them, except that the two
/// bulk consumers bring a finished batch's record forward (an update of
/// "bulk#..." records only); the bulk function adds its batch records and
/// nothing else; the status queries the table by device, not the index;
/// reveal-passcode never touches it. Without the idempotency table there
/// are no batches, and no bulk rights.
#[test]
fn actions_table_rights_per_function() {
    let table = get_att("ActionsTable", "Arn");
    let grant =
        |action: &str, condition: Value| (vec![action.to_string()], vec![table.clone()], condition);
    for idempotency in ["enabled", "disabled"] {
        let stack = Deployed::with(&[("IdempotencyTable", idempotency)]);
        let bulk = idempotency == "enabled";
        for function in WRITES {
            let mut expected = vec![grant("dynamodb:PutItem", Value::Null)];
            if bulk && BULK.iter().any(|(_, f, _)| *f == function) {
                expected.push(grant("dynamodb:UpdateItem", bulk_keys_only()));
            }
            assert_eq!(on_actions_table(&stack, function), expected, "{function}");
        }
        if bulk {
            assert_eq!(
                on_actions_table(&stack, BULK_FUNCTION_ID),
                vec![grant("dynamodb:PutItem", bulk_keys_only())]
            );
        }
        assert_eq!(
            on_actions_table(&stack, "PasscodeStatusFunction"),
            vec![grant("dynamodb:Query", Value::Null)]
        );
        assert!(on_actions_table(&stack, "RevealPasscodeFunction").is_empty());
    }
}
