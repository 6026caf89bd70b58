//! The bulk queues: who takes their messages, who may send to them, their
//! dead-letter queues and their alarms.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::alarms::AGE_METRIC;
use crate::deployed::{Deployed, declared_parameters, get_att, items, range, reference, scalar};
use crate::roles::{function_role, granted};
use crate::{BULK, BULK_FUNCTION_ID, FUNCTIONS, TOPIC, TRACKER};

/// The event source mappings: one per bulk queue, to its own function,
/// with partial batch responses and the parameters' batch size and
/// concurrency; nothing else polls a queue.
#[test]
fn bulk_queues_are_mapped_to_their_own_function() {
    let stack = Deployed::with(&[("BulkBatchSize", "7"), ("BulkMaximumConcurrency", "5")]);
    let mappings: Vec<_> = stack.of_type("AWS::Lambda::EventSourceMapping").collect();
    assert_eq!(mappings.len(), BULK.len(), "{mappings:?}");
    for (queue, function, _) in BULK {
        let found: Vec<_> = mappings
            .iter()
            .filter(|(_, m)| m["Properties"]["EventSourceArn"] == get_att(queue, "Arn"))
            .collect();
        assert_eq!(found.len(), 1, "{queue}: one mapping");
        let (id, mapping) = found[0];
        let p = &mapping["Properties"];
        assert_eq!(p["FunctionName"], reference(function), "{id}");
        assert_eq!(
            p["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"]),
            "{id}"
        );
        assert_eq!(p["BatchSize"], "7", "{id}");
        assert_eq!(p["ScalingConfig"]["MaximumConcurrency"], "5", "{id}");
        assert!(p.get("Enabled").is_none_or(|e| e == true), "{id}");
        // Above 10 messages AWS requires a batching window, which the
        // template does not set.
        assert!(p.get("MaximumBatchingWindowInSeconds").is_none(), "{id}");
    }

    let parameters = declared_parameters();
    assert_eq!(parameters["BulkBatchSize"]["Default"], 10);
    assert_eq!(parameters["BulkBatchSize"]["MaxValue"], 10);
    assert_eq!(
        range(&parameters, "BulkMaximumConcurrency"),
        (json!(2), json!(2), json!(1000)),
        "at least 2, the least AWS accepts"
    );
}

/// Each consumer's role may receive and delete messages of its own queue
/// only: no AWS managed SQS policy (SAM's "SQS" event would attach
/// AWSLambdaSQSQueueExecutionRole, on every queue), no rights on the other
/// bulk queue or on a dead-letter queue. No other function polls a queue;
/// the bulk function only sends, to the two bulk queues.
#[test]
fn bulk_pollers_read_only_their_own_queue() {
    let stack = Deployed::with(&[]);
    let poll = [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ];
    let sqs_grants = |function: &str| -> BTreeMap<String, Vec<Value>> {
        let mut by_action: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (actions, resources, _) in granted(&stack, &function_role(&stack, function)) {
            for action in actions.into_iter().filter(|a| a.starts_with("sqs:")) {
                by_action
                    .entry(action)
                    .or_default()
                    .extend(resources.iter().cloned());
            }
        }
        by_action
    };
    for function in FUNCTIONS.iter().copied().chain([TRACKER, BULK_FUNCTION_ID]) {
        let role = stack.props(&function_role(&stack, function));
        for arn in items(&role["ManagedPolicyArns"]) {
            if let Some(arn) = arn.as_str() {
                assert!(!arn.contains("SQS"), "{function}: {arn}");
            }
        }
        let grants = sqs_grants(function);
        if function == BULK_FUNCTION_ID {
            let queues: Vec<Value> = BULK.iter().map(|(q, _, _)| get_att(q, "Arn")).collect();
            assert_eq!(
                grants,
                BTreeMap::from([("sqs:SendMessage".to_string(), queues)]),
                "{function}"
            );
            continue;
        }
        match BULK.iter().find(|(_, f, _)| *f == function) {
            Some((queue, _, _)) => {
                assert_eq!(
                    grants.keys().map(String::as_str).collect::<Vec<_>>(),
                    poll,
                    "{function}"
                );
                for (action, resources) in &grants {
                    assert_eq!(
                        resources,
                        &vec![get_att(queue, "Arn")],
                        "{function}: {action}"
                    );
                }
            }
            None => assert!(grants.is_empty(), "{function}: {grants:?}"),
        }
    }
}

/// A message that keeps failing ends in the queue's own dead-letter queue
/// after 5 receives; a batch is not visible again while an invocation may
/// still be working on it (AWS: at least 6 x the function's timeout).
#[test]
fn bulk_queues_have_dead_letter_queues() {
    let stack = Deployed::with(&[]);
    for (queue, function, dead_letters) in BULK {
        let timeout = stack.props(function)["Timeout"].as_u64().unwrap();
        let p = stack.props(queue);
        assert!(
            p["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout,
            "{queue}: visibility {} for a {timeout} s function",
            p["VisibilityTimeout"]
        );
        assert_eq!(p["MessageRetentionPeriod"], 345_600, "{queue}: 4 days");
        assert_eq!(p["SqsManagedSseEnabled"], true, "{queue}");
        let redrive = &p["RedrivePolicy"];
        assert_eq!(redrive["deadLetterTargetArn"], get_att(dead_letters, "Arn"));
        assert_eq!(scalar(&redrive["maxReceiveCount"]), "5", "{queue}");
        assert!(p.get("FifoQueue").is_none(), "{queue}: standard queue");

        let dlq = stack.props(dead_letters);
        assert_eq!(
            dlq["MessageRetentionPeriod"], 1_209_600,
            "{dead_letters}: 14 days"
        );
        assert_eq!(dlq["SqsManagedSseEnabled"], true, "{dead_letters}");
        assert!(dlq.get("RedrivePolicy").is_none(), "{dead_letters}");
    }
    // Each queue its own dead-letter queue.
    assert_ne!(BULK[0].2, BULK[1].2);
}

/// Producers get one policy: send to the two bulk queues, nothing else
/// (sqs:SendMessage also authorises SendMessageBatch). It does not depend
/// on the API's authentication, since SQS takes IAM principals only.
#[test]
fn bulk_sender_policy_sends_to_the_two_queues_only() {
    for parameters in [
        vec![],
        vec![
            ("JwtIssuer", "https://login.microsoftonline.com/t/v2.0"),
            ("JwtAudience", "api://passcode"),
        ],
    ] {
        let stack = Deployed::with(&parameters);
        let document = &stack.props("BulkSenderPolicy")["PolicyDocument"];
        let statements = items(&document["Statement"]);
        assert_eq!(statements.len(), 1, "{parameters:?}");
        let statement = &statements[0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(items(&statement["Action"]), vec![json!("sqs:SendMessage")]);
        let resources: BTreeSet<String> = items(&statement["Resource"])
            .iter()
            .map(Value::to_string)
            .collect();
        let queues: BTreeSet<String> = BULK
            .iter()
            .map(|(queue, _, _)| get_att(queue, "Arn").to_string())
            .collect();
        assert_eq!(resources, queues, "{parameters:?}");
        assert!(statement.get("Condition").is_none());
    }
    let off = Deployed::with(&[("CallerPolicies", "disabled")]);
    assert!(!off.resources.contains_key("BulkSenderPolicy"));
}

/// A dead letter and a backlog on either bulk queue raise an alarm.
#[test]
fn bulk_queue_alarms() {
    let stack = Deployed::with(&[("AlarmTopicArn", TOPIC)]);
    let alarms = stack.alarms();
    for (queue, _, dead_letters) in BULK {
        let on = |q: &str, metric: &str| {
            let dims = BTreeSet::from([format!("QueueName={}", get_att(q, "QueueName"))]);
            alarms
                .get(&(
                    json!("AWS/SQS").to_string(),
                    json!(metric).to_string(),
                    dims,
                ))
                .copied()
                .unwrap_or_else(|| panic!("no alarm on {metric} of {q}"))
        };
        let dead = on(dead_letters, "ApproximateNumberOfMessagesVisible");
        assert_eq!(dead["Threshold"], 1);
        assert_eq!(dead["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
        assert_eq!(dead["AlarmActions"], json!([TOPIC]));
        let backlog = on(queue, AGE_METRIC);
        assert_eq!(backlog["AlarmActions"], json!([TOPIC]));
        assert_eq!(backlog["OKActions"], json!([TOPIC]));
    }
}
