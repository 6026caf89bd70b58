//! Alarms on every failure signal, the topic they notify, and the switch
//! that turns them off.

use std::collections::BTreeSet;

use serde_json::json;

use crate::deployed::{Deployed, get_att, reference};
use crate::{BULK, BULK_FUNCTION_ID, FUNCTIONS, TOPIC, TRACKER};

/// Names a rule's metrics carry: its name, and the bus unless it is the
/// default bus.
fn rule_dimensions(stack: &Deployed, rule: &str) -> BTreeSet<String> {
    let p = stack.props(rule);
    let mut dims = BTreeSet::from([format!("RuleName={}", p["Name"])]);
    if p["EventBusName"] != "default" {
        dims.insert(format!("EventBusName={}", p["EventBusName"]));
    }
    dims
}

/// The bulk queues' backlog metric.
pub(crate) const AGE_METRIC: &str = "ApproximateAgeOfOldestMessage";

fn expected_alarms(stack: &Deployed) -> Vec<(String, String, BTreeSet<String>)> {
    let key = |ns: &str, metric: &str, dims: BTreeSet<String>| {
        (json!(ns).to_string(), json!(metric).to_string(), dims)
    };
    let mut expected = Vec::new();
    for queue in [
        "EventDeadLetterQueue",
        "FailedInvocationQueue",
        "TrackerScheduleDeadLetterQueue",
        "BulkResetDeadLetterQueue",
        "BulkRemoveDeadLetterQueue",
    ] {
        expected.push(key(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            BTreeSet::from([format!("QueueName={}", get_att(queue, "QueueName"))]),
        ));
    }
    // A backlog rather than a failure: the bulk queues drain too slowly.
    for (queue, _, _) in BULK {
        expected.push(key(
            "AWS/SQS",
            AGE_METRIC,
            BTreeSet::from([format!("QueueName={}", get_att(queue, "QueueName"))]),
        ));
    }
    for function in FUNCTIONS.iter().chain([&BULK_FUNCTION_ID]) {
        for metric in [
            "Errors",
            "Throttles",
            "DestinationDeliveryFailures",
            "AsyncEventsDropped",
        ] {
            expected.push(key(
                "AWS/Lambda",
                metric,
                BTreeSet::from([format!("FunctionName={}", reference(function))]),
            ));
        }
    }
    // The tracker has no destinations, hence no DestinationDeliveryFailures.
    for metric in ["Errors", "Throttles", "AsyncEventsDropped"] {
        expected.push(key(
            "AWS/Lambda",
            metric,
            BTreeSet::from([format!("FunctionName={}", reference(TRACKER))]),
        ));
    }
    let rules: Vec<&String> = stack
        .of_type("AWS::Events::Rule")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        rules.len(),
        6,
        "four request rules, the bulk rule and the failure rule"
    );
    for rule in rules {
        expected.push(key(
            "AWS/Events",
            "FailedInvocations",
            rule_dimensions(stack, rule),
        ));
    }
    expected.push(key(
        "AWS/ApiGateway",
        "5xx",
        BTreeSet::from([format!("ApiId={}", reference("PasscodeApi"))]),
    ));
    expected
}

#[test]
fn alarms_watch_every_failure_signal() {
    let stack = Deployed::with(&[]);
    let alarms = stack.alarms();
    let mut expected = expected_alarms(&stack);
    // The credentials code reports the certificate's days left without
    // dimensions, in the namespace the functions are given.
    let namespace =
        &stack.props("ResetPasscodeFunction")["Environment"]["Variables"]["METRICS_NAMESPACE"];
    expected.push((
        namespace.to_string(),
        json!("CertificateDaysLeft").to_string(),
        BTreeSet::new(),
    ));
    for key in &expected {
        assert!(alarms.contains_key(key), "no alarm on {key:?}");
    }
    assert_eq!(alarms.len(), expected.len(), "no alarm beyond these");
    for (key, alarm) in &alarms {
        assert_eq!(alarm["TreatMissingData"], "notBreaching", "{key:?}");
        assert!(alarm.get("AlarmActions").is_none(), "no topic by default");
        assert!(alarm["AlarmName"].is_object(), "named per NamePrefix");
    }
    let certificate = &alarms[expected.last().unwrap()];
    assert_eq!(certificate["ComparisonOperator"], "LessThanThreshold");
    assert_eq!(certificate["Threshold"], 30);
    assert_eq!(certificate["Statistic"], "Minimum");
    let certificate_namespace = namespace.to_string();
    let age = json!(AGE_METRIC).to_string();
    for (key, alarm) in alarms
        .iter()
        .filter(|(k, _)| k.0 != certificate_namespace && k.1 != age)
    {
        assert_eq!(alarm["Threshold"], 1, "{key:?}: the first occurrence");
        assert_eq!(
            alarm["ComparisonOperator"], "GreaterThanOrEqualToThreshold",
            "{key:?}"
        );
    }
    // Backlog alarms: the oldest message has waited more than an hour.
    let backlog: Vec<_> = alarms.iter().filter(|(k, _)| k.1 == age).collect();
    assert_eq!(backlog.len(), BULK.len());
    for (key, alarm) in backlog {
        assert_eq!(alarm["Threshold"], 3600, "{key:?}");
        assert_eq!(
            alarm["ComparisonOperator"], "GreaterThanThreshold",
            "{key:?}"
        );
        assert_eq!(alarm["Statistic"], "Maximum", "{key:?}");
    }
}

#[test]
fn alarms_notify_the_topic_and_can_be_turned_off() {
    let stack = Deployed::with(&[("AlarmTopicArn", TOPIC)]);
    let alarms = stack.alarms();
    assert!(!alarms.is_empty());
    for (key, alarm) in &alarms {
        assert_eq!(alarm["AlarmActions"], json!([TOPIC]), "{key:?}");
        assert_eq!(alarm["OKActions"], json!([TOPIC]), "{key:?}");
    }
    let off = Deployed::with(&[("Alarms", "disabled"), ("AlarmTopicArn", TOPIC)]);
    assert_eq!(off.alarms().len(), 0);
}

#[test]
fn rule_alarms_follow_an_existing_bus() {
    for (bus, with_bus_dimension) in [("default", false), ("ops-bus", true)] {
        let stack = Deployed::with(&[("EventBusName", bus)]);
        assert!(!stack.resources.contains_key("EventBus"));
        let rule_alarms: Vec<_> = stack
            .alarms()
            .into_iter()
            .filter(|(k, _)| k.1 == "\"FailedInvocations\"")
            .collect();
        assert_eq!(rule_alarms.len(), 6);
        for ((_, _, dims), _) in rule_alarms {
            assert_eq!(
                dims.contains(&format!("EventBusName=\"{bus}\"")),
                with_bus_dimension,
                "{bus}: {dims:?}"
            );
            assert!(dims.iter().any(|d| d.starts_with("RuleName=")));
        }
    }
}
