//! What an operator relies on in `template.yaml`: failures land in queues,
//! alarms watch every failure signal, the API throttles before Lambda does,
//! the defaults deploy on a new account, the audit trail outlives the stack,
//! every role takes the permissions boundary, the completion tracker runs
//! on its schedule with no more rights than it needs, queued (bulk)
//! requests reach only their own function, with a dead-letter queue, the
//! write budget and the stop switch, and the bulk function touches only
//! bulk items and the two bulk queues.
//!
//! The template is translated by AWS SAM's own translator
//! (`scripts/sam_translate.py`, samtranslator from `.venv`), then "deployed"
//! here for a set of parameter values: conditions evaluated, `Fn::If`
//! branches chosen, parameters and mappings substituted, conditional
//! resources dropped. The checks run on that result, i.e. on what
//! CloudFormation would create for those parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Map, Value, json};

const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/team-boundary";
const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ops-alerts";

const FUNCTIONS: [&str; 5] = [
    "ResetPasscodeFunction",
    "RemovePasscodeFunction",
    "ResetWindowsPinFunction",
    "PasscodeStatusFunction",
    "RevealPasscodeFunction",
];

/// The scheduled completion tracker: no route, no rule, no reservation.
const TRACKER: &str = "PasscodeTrackerFunction";

/// The bulk function (`bulk-passcode`): two routes and a rule, no
/// reservation; deployed only with the idempotency table.
const BULK_FUNCTION_ID: &str = "BulkPasscodeFunction";

/// The bulk function's routes (`passcode_core::action::BULK_ROUTES`), as
/// route keys.
const BULK_ROUTE_KEYS: [&str; 2] = ["POST /v1/bulk/{action}", "GET /v1/bulk/{action}/{batchId}"];

/// The functions that record accepted actions in the actions table.
const WRITES: [&str; 3] = [
    "ResetPasscodeFunction",
    "RemovePasscodeFunction",
    "ResetWindowsPinFunction",
];

/// The bulk queues, each with the function that takes its messages and its
/// dead-letter queue.
const BULK: [(&str, &str, &str); 2] = [
    (
        "BulkResetQueue",
        "ResetPasscodeFunction",
        "BulkResetDeadLetterQueue",
    ),
    (
        "BulkRemoveQueue",
        "RemovePasscodeFunction",
        "BulkRemoveDeadLetterQueue",
    ),
];

/// The key of the stop switch item in the idempotency table (`shared/src/stop.rs`).
const STOP_ITEM: &str = "bulk#stop";

/// The condition that keeps a statement on the idempotency table to the
/// bulk items (batches, hourly counts, stop switch).
fn bulk_keys_only() -> Value {
    json!({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["bulk#*"]}})
}

/// What the tracker's `EVENT_SOURCE` is and its policy allows.
const EVENT_SOURCE: &str = "intune-passcode";

/// The read functions share the status reservation.
fn reads(id: &str) -> bool {
    matches!(id, "PasscodeStatusFunction" | "RevealPasscodeFunction")
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The template as samtranslator turns it into plain CloudFormation.
fn translate(parameters: &[(&str, &str)]) -> Value {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let python = if python.is_file() {
        python.into_os_string()
    } else {
        "python3".into()
    };
    let overrides: Map<String, Value> = parameters
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let output = Command::new(&python)
        .arg(root.join("tests/local-stack/scripts/sam_translate.py"))
        .arg(root.join("template.yaml"))
        .arg(Value::Object(overrides).to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python:?}: {e}"));
    assert!(
        output.status.success(),
        "samtranslator failed (run `./dev lint` once to install it into .venv):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("translation is JSON")
}

/// The resources CloudFormation would create for these parameters.
struct Deployed {
    resources: BTreeMap<String, Value>,
}

impl Deployed {
    fn with(parameters: &[(&str, &str)]) -> Deployed {
        let template = translate(parameters);
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for (name, declaration) in template["Parameters"].as_object().unwrap() {
            if let Some(default) = declaration.get("Default") {
                values.insert(name.clone(), scalar(default));
            }
        }
        for (name, value) in parameters {
            assert!(
                values.contains_key(*name) || template["Parameters"].get(*name).is_some(),
                "{name} is not a parameter of the template"
            );
            values.insert(name.to_string(), value.to_string());
        }
        let resolver = Resolver {
            template: &template,
            parameters: values,
        };
        let resources = template["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| {
                r.get("Condition")
                    .and_then(Value::as_str)
                    .is_none_or(|c| resolver.condition(c))
            })
            .map(|(id, r)| (id.clone(), resolver.resolve(r).unwrap_or(Value::Null)))
            .collect();
        Deployed { resources }
    }

    fn get(&self, id: &str) -> &Value {
        self.resources
            .get(id)
            .unwrap_or_else(|| panic!("no resource {id}"))
    }

    fn props(&self, id: &str) -> &Value {
        &self.get(id)["Properties"]
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.resources
            .iter()
            .filter(move |(_, r)| r["Type"] == kind)
    }

    /// The resources of `kind`, which must be `count` in number (`what`
    /// says which they are).
    fn exactly<'a>(
        &'a self,
        kind: &'a str,
        count: usize,
        what: &str,
    ) -> Vec<(&'a String, &'a Value)> {
        let found: Vec<_> = self.of_type(kind).collect();
        assert_eq!(found.len(), count, "{kind}: {what}");
        found
    }

    /// Alarms keyed by (namespace, metric, dimensions as "Name=value").
    fn alarms(&self) -> BTreeMap<(String, String, BTreeSet<String>), &Value> {
        self.of_type("AWS::CloudWatch::Alarm")
            .map(|(_, alarm)| {
                let p = &alarm["Properties"];
                let dimensions = p["Dimensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| format!("{}={}", d["Name"].as_str().unwrap(), d["Value"]))
                    .collect();
                (
                    (
                        p["Namespace"].to_string(),
                        p["MetricName"].to_string(),
                        dimensions,
                    ),
                    p,
                )
            })
            .collect()
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Resolver<'a> {
    template: &'a Value,
    parameters: BTreeMap<String, String>,
}

impl Resolver<'_> {
    fn condition(&self, name: &str) -> bool {
        let definition = &self.template["Conditions"][name];
        assert!(!definition.is_null(), "no condition {name}");
        self.truth(definition)
    }

    fn truth(&self, value: &Value) -> bool {
        let (function, args) = single(value).unwrap_or_else(|| panic!("not a condition: {value}"));
        let args = args.as_array();
        match function {
            "Fn::Equals" => {
                let args = args.unwrap();
                let side = |v: &Value| scalar(&self.resolve(v).unwrap_or(Value::Null));
                side(&args[0]) == side(&args[1])
            }
            "Fn::Not" => !self.truth(&args.unwrap()[0]),
            "Fn::And" => args.unwrap().iter().all(|a| self.truth(a)),
            "Fn::Or" => args.unwrap().iter().any(|a| self.truth(a)),
            "Condition" => self.condition(value["Condition"].as_str().unwrap()),
            other => panic!("unsupported condition function {other}"),
        }
    }

    /// `None` for `Ref AWS::NoValue`.
    fn resolve(&self, value: &Value) -> Option<Value> {
        if let Some((function, args)) = single(value) {
            match function {
                "Fn::If" => {
                    let args = args.as_array().unwrap();
                    let chosen = if self.condition(args[0].as_str().unwrap()) {
                        &args[1]
                    } else {
                        &args[2]
                    };
                    return self.resolve(chosen);
                }
                "Ref" if args == "AWS::NoValue" => return None,
                "Ref" => {
                    if let Some(v) = args.as_str().and_then(|p| self.parameters.get(p)) {
                        return Some(Value::String(v.clone()));
                    }
                }
                "Fn::FindInMap" => {
                    let keys: Vec<String> = args
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| scalar(&self.resolve(k).unwrap()))
                        .collect();
                    let found = &self.template["Mappings"][&keys[0]][&keys[1]][&keys[2]];
                    assert!(!found.is_null(), "no mapping entry {keys:?}");
                    return Some(found.clone());
                }
                _ => {}
            }
        }
        Some(match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().filter_map(|v| self.resolve(v)).collect())
            }
            other => other.clone(),
        })
    }
}

/// `{"Fn::X": args}` / `{"Ref": x}` / `{"Condition": x}` as (name, args).
fn single(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let (k, v) = map.iter().next()?;
    (k.starts_with("Fn::") || k == "Ref" || k == "Condition").then_some((k.as_str(), v))
}

fn get_att(id: &str, attribute: &str) -> Value {
    json!({"Fn::GetAtt": [id, attribute]})
}

fn reference(id: &str) -> Value {
    json!({"Ref": id})
}

/// A new account may have a concurrency limit of 10, of which Lambda keeps 10
/// unreserved: the defaults must not reserve anything.
#[test]
fn defaults_reserve_no_concurrency_and_keep_platform_logs() {
    let stack = Deployed::with(&[]);
    let functions = stack.exactly(
        "AWS::Lambda::Function",
        FUNCTIONS.len() + 2,
        "and the tracker and the bulk function",
    );
    for (id, function) in functions {
        let p = &function["Properties"];
        assert!(
            p.get("ReservedConcurrentExecutions").is_none(),
            "{id} reserves concurrency by default: {}",
            p["ReservedConcurrentExecutions"]
        );
        assert_eq!(p["TracingConfig"]["Mode"], "Active", "{id}: X-Ray");
        assert_eq!(
            p["LoggingConfig"]["SystemLogLevel"], "INFO",
            "{id}: START/REPORT lines kept"
        );
        assert_eq!(p["LoggingConfig"]["LogFormat"], "JSON");
        assert_eq!(
            p["Environment"]["Variables"]["METRICS_NAMESPACE"],
            json!({"Fn::Sub": "${NamePrefix}IntunePasscode"}),
            "{id}"
        );
    }
    // Without reservations the routes use the two ApiThrottle parameters.
    let stage = stack.props("PasscodeApiApiGatewayDefaultStage");
    let routes = stage["RouteSettings"].as_object().unwrap();
    assert_eq!(
        routes.len(),
        2 * FUNCTIONS.len() + BULK_ROUTE_KEYS.len(),
        "one setting per route"
    );
    for (route, limits) in routes {
        assert_eq!(limits["ThrottlingBurstLimit"], "10", "{route}");
        assert_eq!(limits["ThrottlingRateLimit"], "5", "{route}");
    }
}

/// With reservations, each route's limits come from its function's
/// reservation, so that the two routes of a function together cannot start
/// more executions at once than it has reserved.
#[test]
fn reservations_derive_the_route_limits() {
    let stack = Deployed::with(&[
        ("ReservedConcurrency", "4"),
        ("StatusReservedConcurrency", "7"),
    ]);
    for id in FUNCTIONS {
        let expected = if reads(id) { "7" } else { "4" };
        assert_eq!(stack.props(id)["ReservedConcurrentExecutions"], expected);
    }
    // Overlapping tracker runs are safe (leases): it reserves nothing. Nor
    // does the bulk function, which only reads and queues.
    for id in [TRACKER, BULK_FUNCTION_ID] {
        assert!(
            stack
                .props(id)
                .get("ReservedConcurrentExecutions")
                .is_none(),
            "{id}"
        );
    }
    let stage = stack.props("PasscodeApiApiGatewayDefaultStage");
    let routes = stage["RouteSettings"].as_object().unwrap();
    for (route, limits) in routes {
        if BULK_ROUTE_KEYS.contains(&route.as_str()) {
            // No reservation: the ApiThrottle parameters' defaults.
            assert_eq!(limits["ThrottlingBurstLimit"], "10", "{route}");
            assert_eq!(limits["ThrottlingRateLimit"], "5", "{route}");
            continue;
        }
        let read_route = route.ends_with("/passcode-status")
            || route.ends_with("/passcode")
            || route.ends_with("/reveal-passcode");
        let (burst, rate) = if read_route { (3, 1.75) } else { (2, 1.0) };
        assert_eq!(limits["ThrottlingBurstLimit"], burst, "{route}");
        assert_eq!(
            limits["ThrottlingRateLimit"].as_f64(),
            Some(rate),
            "{route}"
        );
    }
    // Every reservation the parameter allows: two routes' bursts fit in it
    // (1 cannot be split; each route still gets 1), and two routes at their
    // steady rate keep at most half of it busy with invocations of 2 s.
    let template = translate(&[]);
    let table = template["Mappings"]["RouteThrottle"].as_object().unwrap();
    let max = template["Parameters"]["ReservedConcurrency"]["MaxValue"]
        .as_u64()
        .unwrap();
    assert_eq!(table.len() as u64, max + 1, "a row per allowed value");
    for reserved in 1..=max {
        let row = &table[&reserved.to_string()];
        let burst = row["Burst"].as_u64().unwrap();
        let rate = row["Rate"].as_f64().unwrap();
        assert!(burst >= 1 && rate > 0.0);
        assert!(2 * burst <= reserved.max(2), "C={reserved}: burst {burst}");
        assert!(
            2.0 * rate * 2.0 <= reserved as f64,
            "C={reserved}: rate {rate}"
        );
    }
}

#[test]
fn failure_results_land_in_an_encrypted_queue() {
    let stack = Deployed::with(&[]);
    for queue in ["EventDeadLetterQueue", "FailedInvocationQueue"] {
        let p = stack.props(queue);
        assert_eq!(p["MessageRetentionPeriod"], 1_209_600, "{queue}: 14 days");
        assert_eq!(p["SqsManagedSseEnabled"], true, "{queue}: encrypted");
    }
    let rule = stack.props("FailedInvocationRule");
    let pattern = &rule["EventPattern"];
    assert_eq!(pattern["source"], json!(["lambda"]));
    assert_eq!(
        pattern["detail-type"],
        json!(["Lambda Function Invocation Result - Failure"])
    );
    let prefixes: Vec<Value> = FUNCTIONS
        .iter()
        .chain([&BULK_FUNCTION_ID])
        .map(|f| json!({"prefix": get_att(f, "Arn")}))
        .collect();
    assert_eq!(
        pattern["detail"]["requestContext"]["functionArn"],
        Value::Array(prefixes)
    );
    assert_eq!(rule["State"], "ENABLED");
    assert_eq!(
        rule["Targets"][0]["Arn"],
        get_att("FailedInvocationQueue", "Arn")
    );
    assert_eq!(
        rule["Targets"][0]["DeadLetterConfig"]["Arn"],
        get_att("EventDeadLetterQueue", "Arn")
    );
    // The rule listens on the bus the functions send their failures to.
    assert_eq!(rule["EventBusName"], reference("EventBus"));
    for function in FUNCTIONS.iter().chain([&BULK_FUNCTION_ID]) {
        let config = stack.props(&format!("{function}EventInvokeConfig"));
        assert_eq!(
            config["DestinationConfig"]["OnFailure"]["Destination"],
            get_att("EventBus", "Arn"),
            "{function}"
        );
    }
    let statement = &stack.props("FailedInvocationQueuePolicy")["PolicyDocument"]["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(
        statement["Condition"]["ArnEquals"]["aws:SourceArn"],
        get_att("FailedInvocationRule", "Arn")
    );
    let dlq = &stack.props("EventDeadLetterQueuePolicy")["PolicyDocument"]["Statement"][0];
    let sources = dlq["Condition"]["ArnEquals"]["aws:SourceArn"]
        .as_array()
        .unwrap();
    assert!(sources.contains(&get_att("FailedInvocationRule", "Arn")));
    assert!(sources.contains(&get_att(&format!("{BULK_FUNCTION_ID}Requested"), "Arn")));
}

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
const AGE_METRIC: &str = "ApproximateAgeOfOldestMessage";

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

#[test]
fn log_groups_outlive_the_stack() {
    let stack = Deployed::with(&[]);
    let groups = stack.exactly(
        "AWS::Logs::LogGroup",
        FUNCTIONS.len() + 3,
        "the functions, the tracker, the bulk function and the API access log",
    );
    for (id, group) in groups {
        assert_eq!(group["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(group["UpdateReplacePolicy"], "Retain", "{id}");
    }
    assert_eq!(stack.of_type("AWS::S3::Bucket").count(), 0, "export is off");
    assert_eq!(stack.of_type("AWS::Logs::SubscriptionFilter").count(), 0);
}

#[test]
fn audit_export_writes_to_a_locked_bucket() {
    let stack = Deployed::with(&[
        ("AuditExport", "enabled"),
        ("AuditExportRetentionDays", "400"),
        ("AuditExportLockMode", "COMPLIANCE"),
    ]);
    let bucket = stack.get("AuditExportBucket");
    assert_eq!(bucket["DeletionPolicy"], "Retain");
    assert_eq!(bucket["UpdateReplacePolicy"], "Retain");
    let p = &bucket["Properties"];
    assert_eq!(p["ObjectLockEnabled"], true);
    assert_eq!(p["ObjectLockConfiguration"]["ObjectLockEnabled"], "Enabled");
    let retention = &p["ObjectLockConfiguration"]["Rule"]["DefaultRetention"];
    assert_eq!(retention["Mode"], "COMPLIANCE");
    assert_eq!(retention["Days"], "400");
    assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(
        p["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"],
        true
    );

    let stream = stack.props("AuditExportStream");
    assert_eq!(
        stream["ExtendedS3DestinationConfiguration"]["BucketARN"],
        get_att("AuditExportBucket", "Arn")
    );
    let filters: BTreeMap<String, &Value> = stack
        .of_type("AWS::Logs::SubscriptionFilter")
        .map(|(_, f)| {
            (
                f["Properties"]["LogGroupName"].to_string(),
                &f["Properties"],
            )
        })
        .collect();
    let function_groups: BTreeSet<String> = FUNCTIONS
        .iter()
        .chain([&TRACKER, &BULK_FUNCTION_ID])
        .map(|f| stack.props(f)["LoggingConfig"]["LogGroup"].to_string())
        .collect();
    assert_eq!(
        filters.keys().cloned().collect::<BTreeSet<_>>(),
        function_groups,
        "one filter on each function's log group"
    );
    for filter in filters.values() {
        assert_eq!(filter["FilterPattern"], "{ $.type = \"audit\" }");
        assert_eq!(
            filter["DestinationArn"],
            get_att("AuditExportStream", "Arn")
        );
    }
    assert!(
        stack.alarms().keys().any(|k| k.0 == "\"AWS/Firehose\""),
        "failed deliveries raise an alarm"
    );
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

/// infra/README.md is where an operator looks a parameter up.
#[test]
fn every_parameter_is_documented() {
    let template = translate(&[]);
    let readme = std::fs::read_to_string(workspace_root().join("infra/README.md")).unwrap();
    let missing: Vec<&String> = template["Parameters"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "not in infra/README.md: {missing:?}");
}

/// A value that may be one item or a list, as a list.
fn items(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Every statement a function's role grants through the policies this
/// template defines (managed policies it references and inline policies),
/// as (actions, resources, condition). The two AWS managed policies SAM
/// attaches (logs, X-Ray) are not in the template and not listed.
fn granted(stack: &Deployed, role: &str) -> Vec<(Vec<String>, Vec<Value>, Value)> {
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

fn function_role(stack: &Deployed, function: &str) -> String {
    let role = &stack.props(function)["Role"]["Fn::GetAtt"][0];
    role.as_str().unwrap().to_string()
}

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
        let by_action = rights_by_action(&stack, TRACKER);
        assert_eq!(
            by_action.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "events:PutEvents",
                "secretsmanager:GetSecretValue",
            ],
            "{bus:?}: {by_action:?}"
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
    let template = translate(&[]);
    let parameters = &template["Parameters"];
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

    let template = translate(&[]);
    let parameters = &template["Parameters"];
    assert_eq!(parameters["BulkBatchSize"]["Default"], 10);
    assert_eq!(parameters["BulkBatchSize"]["MaxValue"], 10);
    assert_eq!(parameters["BulkMaximumConcurrency"]["Default"], 2);
    assert_eq!(
        parameters["BulkMaximumConcurrency"]["MinValue"], 2,
        "the least AWS accepts"
    );
    assert_eq!(parameters["BulkMaximumConcurrency"]["MaxValue"], 1000);
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
    let template = translate(&[]);
    let parameters = &template["Parameters"];
    assert_eq!(parameters["WriteBudgetPer20s"]["Default"], 100);
    assert_eq!(parameters["WriteBudgetPer20s"]["MinValue"], 0);
    assert_eq!(
        parameters["WriteBudgetPer20s"]["MaxValue"], 200,
        "Intune's limit per app and tenant"
    );
    assert_eq!(parameters["BulkStopCheckSeconds"]["Default"], 60);
    assert_eq!(parameters["BulkStopCheckSeconds"]["MinValue"], 1);
    assert_eq!(parameters["BulkStopCheckSeconds"]["MaxValue"], 3600);
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

/// bulk-passcode reads and writes only the bulk items of the idempotency
/// table (batches, hourly counts, stop switch), adds its batch records to
/// the action log, sends to the two bulk queues and reads the Graph secret.
/// It puts no events itself: the only events:PutEvents on its role is the
/// one SAM adds for the destinations on the bus, as for every request
/// function.
#[test]
fn bulk_function_rights_are_least_privilege() {
    let stack = Deployed::with(&[]);
    let by_action = rights_by_action(&stack, BULK_FUNCTION_ID);
    assert_eq!(
        by_action.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "events:PutEvents",
            "secretsmanager:GetSecretValue",
            "sqs:SendMessage",
        ],
        "{by_action:?}"
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
    let template = translate(&[]);
    let parameters = &template["Parameters"];
    let range = |name: &str| {
        let p = &parameters[name];
        (
            p["Default"].clone(),
            p["MinValue"].clone(),
            p["MaxValue"].clone(),
        )
    };
    assert_eq!(range("BulkMaxDevices"), (json!(500), json!(1), json!(1000)));
    assert_eq!(
        range("BulkMaxDevicesPerHour"),
        (json!(2000), json!(1), json!(36000))
    );
    assert_eq!(
        range("BulkExpectedCountAbove"),
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
