//! The write budget and the bulk stop switch: which functions get them, and
//! their rights on the idempotency table.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::deployed::{Deployed, declared_parameters, get_att, items, range};
use crate::roles::{function_role, granted};
use crate::{BULK, BULK_FUNCTION_ID, TRACKER, WRITES, bulk_keys_only};

/// The key of the stop switch item in the idempotency table (`shared/src/stop.rs`).
const STOP_ITEM: &str = "bulk#stop";

/// Every write function paces its POSTs with the shared budget and is
/// told how often to read the stop switch; the read functions and the
/// tracker send no writes and get neither. The bulk function sends no
/// writes either but reads the stop switch (a stopped bulk request queues
/// nothing).
#[test]
fn write_functions_get_the_budget_and_the_stop_check() {
    let stack = Deployed::with(&[("WriteBudgetPer20s", "50"), ("BulkStopCheckSeconds", "30")]);
    for (id, function) in stack.of_type("AWS::Lambda::Function") {
        let env = &function["Properties"]["Environment"]["Variables"];
        if WRITES.contains(&id.as_str()) {
            assert_eq!(env["WRITE_BUDGET_PER_20S"], "50", "{id}");
            assert_eq!(env["BULK_STOP_CHECK_SECONDS"], "30", "{id}");
        } else if id == BULK_FUNCTION_ID {
            assert!(env.get("WRITE_BUDGET_PER_20S").is_none(), "{id}");
            assert_eq!(env["BULK_STOP_CHECK_SECONDS"], "30", "{id}");
        } else {
            assert!(env.get("WRITE_BUDGET_PER_20S").is_none(), "{id}");
            assert!(env.get("BULK_STOP_CHECK_SECONDS").is_none(), "{id}");
        }
    }
    let parameters = declared_parameters();
    assert_eq!(
        range(&parameters, "WriteBudgetPer20s"),
        (json!(100), json!(0), json!(200)),
        "at most 200, Intune's limit per app and tenant"
    );
    assert_eq!(
        range(&parameters, "BulkStopCheckSeconds"),
        (json!(60), json!(1), json!(3600))
    );
}

/// The budget is an UpdateItem on the idempotency table (every write
/// function); the stop switch a GetItem of its one item (the functions that
/// take queued requests). Without the table, neither.
#[test]
fn budget_and_stop_switch_rights_on_the_idempotency_table() {
    let table = get_att("IdempotencyRecords", "Arn");
    let on_table = |stack: &Deployed, function: &str| -> BTreeMap<String, Vec<Value>> {
        let mut by_action: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (actions, resources, condition) in granted(stack, &function_role(stack, function)) {
            if !resources.contains(&table) {
                continue;
            }
            for action in actions {
                by_action.entry(action).or_default().push(condition.clone());
            }
        }
        by_action
    };
    let stack = Deployed::with(&[]);
    let stop_condition =
        json!({"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [STOP_ITEM]}});
    for function in WRITES {
        let rights = on_table(&stack, function);
        assert_eq!(
            rights.get("dynamodb:UpdateItem"),
            Some(&vec![Value::Null]),
            "{function}"
        );
        let consumer = BULK.iter().any(|(_, f, _)| *f == function);
        if consumer {
            assert_eq!(
                rights.get("dynamodb:GetItem"),
                Some(&vec![stop_condition.clone()]),
                "{function}: the stop switch item only"
            );
        } else {
            assert!(!rights.contains_key("dynamodb:GetItem"), "{function}");
        }
        for broader in ["dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem"] {
            assert!(!rights.contains_key(broader), "{function}: {broader}");
        }
    }
    for function in ["PasscodeStatusFunction", "RevealPasscodeFunction"] {
        assert!(on_table(&stack, function).is_empty(), "{function}");
    }
    assert_eq!(
        on_table(&stack, TRACKER),
        BTreeMap::from([("dynamodb:GetItem".to_string(), vec![bulk_keys_only()])]),
        "the tracker reads the bulk batches only"
    );

    let without = Deployed::with(&[("IdempotencyTable", "disabled")]);
    assert!(!without.resources.contains_key("IdempotencyRecords"));
    for (queue, _, _) in BULK {
        // The queue is still taken (without brake and budget; the README
        // says so).
        assert!(without.resources.contains_key(queue));
    }
    // Every role still names only existing policies (the consumers lose the
    // stop switch's, the tracker the bulk batches').
    for (function, _) in without.of_type("AWS::Lambda::Function") {
        let role = without.props(&function_role(&without, function));
        for arn in items(&role["ManagedPolicyArns"]) {
            if let Some(id) = arn.get("Ref").and_then(Value::as_str) {
                assert!(without.resources.contains_key(id), "{function}: {id}");
            }
        }
    }
}
