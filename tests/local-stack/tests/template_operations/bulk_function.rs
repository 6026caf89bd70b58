//! The bulk function (`bulk-passcode`): its rights, environment and rule,
//! and its absence without the idempotency table.

use serde_json::{Value, json};

use crate::deployed::{
    Deployed, declared_parameters, get_att, items, range, reference, scalar, translate,
};
use crate::roles::{function_role, granted, rights_exactly};
use crate::{BULK, BULK_FUNCTION_ID, BULK_ROUTE_KEYS, TRACKER, bulk_keys_only};

/// bulk-passcode reads and writes only the bulk items of the idempotency
/// table (batches, hourly counts, stop switch), adds its batch records to
/// the action log, sends to the two bulk queues and reads the Graph secret.
/// It puts no events itself: the only events:PutEvents on its role is the
/// one SAM adds for the destinations on the bus, as for every request
/// function.
#[test]
fn bulk_function_rights_are_least_privilege() {
    let stack = Deployed::with(&[]);
    let by_action = rights_exactly(
        &stack,
        BULK_FUNCTION_ID,
        &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "events:PutEvents",
            "secretsmanager:GetSecretValue",
            "sqs:SendMessage",
        ],
    );
    let bulk_items = (vec![get_att("IdempotencyRecords", "Arn")], bulk_keys_only());
    for action in ["dynamodb:GetItem", "dynamodb:UpdateItem"] {
        assert_eq!(by_action[action], vec![bulk_items.clone()], "{action}");
    }
    // Its batch records in the action log, "bulk#..." keys only there too.
    assert_eq!(
        by_action["dynamodb:PutItem"],
        vec![
            bulk_items,
            (vec![get_att("ActionsTable", "Arn")], bulk_keys_only())
        ]
    );
    let queues: Vec<Value> = BULK.iter().map(|(q, _, _)| get_att(q, "Arn")).collect();
    assert_eq!(by_action["sqs:SendMessage"], vec![(queues, Value::Null)]);

    // The secret and the destinations' PutEvents are exactly what
    // reset-passcode has.
    let reset = granted(&stack, &function_role(&stack, "ResetPasscodeFunction"));
    let reset_grants = |wanted: &str| -> Vec<(Vec<Value>, Value)> {
        reset
            .iter()
            .filter(|(actions, _, _)| actions.iter().any(|a| a == wanted))
            .map(|(_, resources, condition)| (resources.clone(), condition.clone()))
            .collect()
    };
    for action in ["secretsmanager:GetSecretValue", "events:PutEvents"] {
        assert_eq!(by_action[action], reset_grants(action), "{action}");
    }
    // The PutEvents comes from SAM's destination policies only, never from
    // a policy of this template.
    let p = stack.props(&function_role(&stack, BULK_FUNCTION_ID));
    let inline: Vec<String> = items(&p["Policies"])
        .iter()
        .map(|policy| scalar(&policy["PolicyName"]))
        .collect();
    assert_eq!(
        inline,
        [
            format!("{BULK_FUNCTION_ID}EventInvokeConfigOnSuccessEventBridgePolicy"),
            format!("{BULK_FUNCTION_ID}EventInvokeConfigOnFailureEventBridgePolicy"),
        ]
    );
    for arn in items(&p["ManagedPolicyArns"]) {
        if let Some(id) = arn.get("Ref").and_then(Value::as_str) {
            let document = stack.props(id)["PolicyDocument"].to_string();
            assert!(!document.contains("events:"), "{id}: {document}");
        }
    }
}

/// The bulk function gets the Graph settings of the other functions, its
/// table, the two queues, its three brakes and the stop switch's interval,
/// and runs like the other request functions.
#[test]
fn bulk_function_environment_and_limits() {
    let stack = Deployed::with(&[
        ("BulkMaxDevices", "300"),
        ("BulkMaxDevicesPerHour", "900"),
        ("BulkExpectedCountAbove", "5"),
        ("BulkStopCheckSeconds", "30"),
    ]);
    let p = stack.props(BULK_FUNCTION_ID);
    let reset = stack.props("ResetPasscodeFunction");
    for key in [
        "Runtime",
        "Architectures",
        "Handler",
        "Timeout",
        "MemorySize",
    ] {
        assert_eq!(p[key], reset[key], "{key}");
    }
    assert_eq!(p["Architectures"], json!(["arm64"]));
    assert_eq!(p["Runtime"], "provided.al2023");
    assert!(
        p["Timeout"].as_u64().unwrap() <= 30,
        "an HTTP API waits 30 s at most: {}",
        p["Timeout"]
    );
    assert_eq!(
        p["LoggingConfig"]["LogGroup"],
        reference("BulkPasscodeLogGroup")
    );
    let env = &p["Environment"]["Variables"];
    let reset_env = &reset["Environment"]["Variables"];
    for key in [
        "GRAPH_SECRET_ID",
        "GRAPH_CLOUD",
        "PENDING_WINDOW_MINUTES",
        "METRICS_NAMESPACE",
        "IDEMPOTENCY_TABLE",
        "ACTIONS_TABLE",
    ] {
        assert_eq!(env[key], reset_env[key], "{key}");
    }
    assert_eq!(env["IDEMPOTENCY_TABLE"], reference("IdempotencyRecords"));
    assert_eq!(env["BULK_RESET_QUEUE_URL"], reference("BulkResetQueue"));
    assert_eq!(env["BULK_REMOVE_QUEUE_URL"], reference("BulkRemoveQueue"));
    assert_eq!(env["BULK_MAX_DEVICES"], "300");
    assert_eq!(env["BULK_MAX_DEVICES_PER_HOUR"], "900");
    assert_eq!(env["BULK_EXPECTED_COUNT_ABOVE"], "5");
    assert_eq!(env["BULK_STOP_CHECK_SECONDS"], "30");
    assert_eq!(env["REQUIRED_ROLE"], "Passcode.Bulk");

    // The defaults the design settles on.
    let parameters = declared_parameters();
    assert_eq!(
        range(&parameters, "BulkMaxDevices"),
        (json!(500), json!(1), json!(1000))
    );
    assert_eq!(
        range(&parameters, "BulkMaxDevicesPerHour"),
        (json!(2000), json!(1), json!(36000))
    );
    assert_eq!(
        range(&parameters, "BulkExpectedCountAbove"),
        (json!(20), json!(0), json!(1000))
    );
}

/// The bulk rule takes "Passcode Bulk Action Requested" on the project's
/// bus and is delivered like the single-request rules (retries, dead-letter
/// queue); the function's results go to the bus like theirs.
#[test]
fn bulk_rule_and_results_mirror_the_request_functions() {
    for bus in ["", "ops-bus"] {
        let stack = Deployed::with(&[("EventBusName", bus)]);
        let rule = stack.props(&format!("{BULK_FUNCTION_ID}Requested"));
        let reset = stack.props("ResetPasscodeFunctionRequested");
        assert_eq!(rule["EventBusName"], reset["EventBusName"], "{bus:?}");
        assert_eq!(
            rule["Name"],
            json!({"Fn::Sub": "${NamePrefix}bulk-passcode-requested"})
        );
        assert_eq!(
            rule["EventPattern"],
            json!({
                "detail-type": ["Passcode Bulk Action Requested"],
                "detail": {"action": ["resetPasscode", "removePasscode"]}
            })
        );
        let target = &rule["Targets"][0];
        assert_eq!(target["Arn"], get_att(BULK_FUNCTION_ID, "Arn"));
        for key in ["RetryPolicy", "DeadLetterConfig"] {
            assert_eq!(target[key], reset["Targets"][0][key], "{key}");
        }
        let config = stack.props(&format!("{BULK_FUNCTION_ID}EventInvokeConfig"));
        let reset_config = stack.props("ResetPasscodeFunctionEventInvokeConfig");
        for key in [
            "DestinationConfig",
            "MaximumRetryAttempts",
            "MaximumEventAgeInSeconds",
        ] {
            assert_eq!(config[key], reset_config[key], "{bus:?}: {key}");
        }
    }
}

/// Without the idempotency table there is no bulk function: nothing of the
/// stack (routes, rule, dead-letter queue policy, failure rule, alarms,
/// audit export) refers to it, the tracker gets an empty table name, and
/// the bulk outputs are left out with it.
#[test]
fn bulk_function_needs_the_idempotency_table() {
    let stack = Deployed::with(&[("IdempotencyTable", "disabled"), ("AuditExport", "enabled")]);
    let everything = serde_json::to_string(&stack.resources).unwrap();
    for name in [
        BULK_FUNCTION_ID,
        "BulkPasscodeLogGroup",
        "BulkRequestPolicy",
        "BulkBatchReadPolicy",
        "BulkBatchDuePolicy",
    ] {
        assert!(!stack.resources.contains_key(name), "{name} deployed");
        assert!(!everything.contains(name), "{name} still referred to");
    }
    let stage = stack.props("PasscodeApiApiGatewayDefaultStage");
    for route in BULK_ROUTE_KEYS {
        assert!(stage["RouteSettings"].get(route).is_none(), "{route}");
    }
    let paths = &stack.props("PasscodeApi")["Body"]["paths"];
    for path in ["/v1/bulk/{action}", "/v1/bulk/{action}/{batchId}"] {
        assert!(
            paths
                .get(path)
                .and_then(Value::as_object)
                .is_none_or(|operations| operations.is_empty()),
            "{path}: {}",
            paths[path]
        );
    }
    assert_eq!(
        stack.props(TRACKER)["Environment"]["Variables"]["IDEMPOTENCY_TABLE"],
        ""
    );

    let template = translate(&[]);
    for (name, output) in template["Outputs"].as_object().unwrap() {
        let text = output.to_string();
        if text.contains(BULK_FUNCTION_ID) || text.contains("/v1/bulk/") {
            assert_eq!(output["Condition"], "UseIdempotencyTable", "{name}");
        }
    }
    assert!(
        template["Outputs"]["BulkResetUrl"]["Value"]
            .to_string()
            .contains("/v1/bulk/reset-passcode")
    );
    assert!(
        template["Outputs"]["BulkRemoveUrl"]["Value"]
            .to_string()
            .contains("/v1/bulk/remove-passcode")
    );
}
