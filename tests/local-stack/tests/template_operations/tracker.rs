//! The completion tracker: its rights, its schedule and its alarms.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::deployed::{Deployed, declared_parameters, get_att, reference};
use crate::roles::{granted, rights_exactly};
use crate::{TRACKER, bulk_keys_only};

/// What the tracker's `EVENT_SOURCE` is and its policy allows.
const EVENT_SOURCE: &str = "intune-passcode";

/// The tracker may query the open-actions index (not the table), read and
/// update items, read the bulk batches, read the Graph secret and put its
/// own events on the project's bus; nothing else.
#[test]
fn tracker_policy_is_least_privilege() {
    for (bus, expected_bus) in [
        ("", get_att("EventBus", "Arn")),
        (
            "ops-bus",
            json!({"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}),
        ),
    ] {
        let stack = Deployed::with(&[("EventBusName", bus)]);
        // A failure lists the rights, whose PutEvents resource names the bus.
        let by_action = rights_exactly(
            &stack,
            TRACKER,
            &[
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "events:PutEvents",
                "secretsmanager:GetSecretValue",
            ],
        );
        assert_eq!(
            by_action["dynamodb:Query"],
            vec![(
                vec![json!({"Fn::Sub": "${ActionsTable.Arn}/index/open-by-next-poll"})],
                Value::Null
            )],
            "the index only"
        );
        assert_eq!(
            by_action["dynamodb:UpdateItem"],
            vec![(vec![get_att("ActionsTable", "Arn")], Value::Null)]
        );
        // Its own items, and the bulk batches it reports (nothing else of
        // the idempotency table).
        assert_eq!(
            by_action["dynamodb:GetItem"],
            vec![
                (vec![get_att("ActionsTable", "Arn")], Value::Null),
                (vec![get_att("IdempotencyRecords", "Arn")], bulk_keys_only()),
            ]
        );
        let puts = &by_action["events:PutEvents"];
        assert_eq!(puts.len(), 1);
        let (resources, condition) = &puts[0];
        assert_eq!(resources, &vec![expected_bus.clone()], "{bus:?}");
        assert_eq!(condition["StringEquals"]["events:source"], EVENT_SOURCE);
        assert_eq!(
            condition["StringEquals"]["events:detail-type"],
            json!([
                "Passcode Action Completed",
                "Passcode Action Expired",
                "Passcode Bulk Action Completed"
            ])
        );

        // The function sends to that bus, with the source its policy allows.
        let env = &stack.props(TRACKER)["Environment"]["Variables"];
        let bus_name = if bus.is_empty() {
            reference("EventBus")
        } else {
            json!(bus)
        };
        assert_eq!(env["EVENT_BUS_NAME"], bus_name);
        assert_eq!(env["EVENT_SOURCE"], EVENT_SOURCE);
        assert_eq!(env["IDEMPOTENCY_TABLE"], reference("IdempotencyRecords"));
        // No destinations: SAM would otherwise add PutEvents on the bus
        // without the source condition, and post every run's result.
        let config = stack.props(&format!("{TRACKER}EventInvokeConfig"));
        assert_eq!(config["DestinationConfig"], json!({}));
        assert_eq!(config["MaximumRetryAttempts"], 0);
    }
}

/// The tracker runs on EventBridge Scheduler with the parameter's
/// expression; what Scheduler cannot deliver lands in an encrypted queue;
/// nothing else can invoke it (no route, no rule, no permission).
#[test]
fn tracker_runs_on_its_schedule_with_a_dead_letter_queue() {
    let stack = Deployed::with(&[
        ("TrackerSchedule", "rate(10 minutes)"),
        ("TrackerReadBudgetFraction", "0.2"),
        ("TrackerExpireAfterHours", "72"),
    ]);
    let schedules: Vec<_> = stack.of_type("AWS::Scheduler::Schedule").collect();
    assert_eq!(schedules.len(), 1);
    let p = &schedules[0].1["Properties"];
    assert_eq!(p["ScheduleExpression"], "rate(10 minutes)");
    assert_eq!(p["State"], "ENABLED");
    assert_eq!(
        p["Name"],
        json!({"Fn::Sub": "${NamePrefix}passcode-tracker"})
    );
    let target = &p["Target"];
    assert_eq!(target["Arn"], get_att(TRACKER, "Arn"));
    assert_eq!(
        target["DeadLetterConfig"]["Arn"],
        get_att("TrackerScheduleDeadLetterQueue", "Arn")
    );
    assert!(
        target["RetryPolicy"]["MaximumRetryAttempts"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(target["RetryPolicy"]["MaximumEventAgeInSeconds"].is_number());
    let queue = stack.props("TrackerScheduleDeadLetterQueue");
    assert_eq!(queue["SqsManagedSseEnabled"], true);
    assert_eq!(queue["MessageRetentionPeriod"], 1_209_600);

    // Scheduler's role: trusted by Scheduler for this account only; invokes
    // the tracker and writes the dead letters, nothing more.
    let role = target["RoleArn"]["Fn::GetAtt"][0].as_str().unwrap();
    let trust = &stack.props(role)["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().unwrap().len(), 1);
    assert_eq!(trust[0]["Principal"]["Service"], "scheduler.amazonaws.com");
    assert_eq!(
        trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        reference("AWS::AccountId")
    );
    let mut grants: Vec<(Vec<String>, Vec<Value>)> = granted(&stack, role)
        .into_iter()
        .map(|(a, r, _)| (a, r))
        .collect();
    grants.sort_by_key(|g| g.0.clone());
    assert_eq!(
        grants,
        vec![
            (
                vec!["lambda:InvokeFunction".to_string()],
                vec![get_att(TRACKER, "Arn")]
            ),
            (
                vec!["sqs:SendMessage".to_string()],
                vec![get_att("TrackerScheduleDeadLetterQueue", "Arn")]
            ),
        ]
    );

    let permissions: Vec<_> = stack
        .of_type("AWS::Lambda::Permission")
        .filter(|(_, perm)| perm["Properties"]["FunctionName"] == reference(TRACKER))
        .collect();
    assert!(
        permissions.is_empty(),
        "only the schedule invokes it: {permissions:?}"
    );
    for (id, rule) in stack.of_type("AWS::Events::Rule") {
        assert!(
            !rule.to_string().contains(TRACKER),
            "{id} targets the tracker"
        );
    }

    let tracker = stack.props(TRACKER);
    assert_eq!(tracker["Timeout"], 300);
    let env = &tracker["Environment"]["Variables"];
    assert_eq!(env["TRACK_READ_BUDGET_FRACTION"], "0.2");
    assert_eq!(env["TRACK_EXPIRE_AFTER_HOURS"], "72");
    assert_eq!(
        env["GRAPH_SECRET_ID"],
        stack.props("ResetPasscodeFunction")["Environment"]["Variables"]["GRAPH_SECRET_ID"]
    );

    // The defaults the design settles on.
    let parameters = declared_parameters();
    assert_eq!(parameters["TrackerSchedule"]["Default"], "rate(5 minutes)");
    assert_eq!(parameters["TrackerReadBudgetFraction"]["Default"], 0.1);
    assert_eq!(parameters["TrackerExpireAfterHours"]["Default"], 168);
}

/// A failed or throttled run, a dropped run and a schedule that cannot
/// invoke the tracker each raise an alarm.
#[test]
fn tracker_failures_raise_alarms() {
    let stack = Deployed::with(&[]);
    let alarms = stack.alarms();
    let on_tracker: BTreeSet<String> = alarms
        .keys()
        .filter(|k| {
            k.2.contains(&format!("FunctionName={}", reference(TRACKER)))
        })
        .map(|k| k.1.clone())
        .collect();
    assert_eq!(
        on_tracker,
        BTreeSet::from([
            "\"AsyncEventsDropped\"".to_string(),
            "\"Errors\"".to_string(),
            "\"Throttles\"".to_string(),
        ])
    );
    let queue = format!(
        "QueueName={}",
        get_att("TrackerScheduleDeadLetterQueue", "QueueName")
    );
    assert!(
        alarms.keys().any(|k| k.2.contains(&queue)),
        "no alarm on the schedule's dead-letter queue"
    );
}
