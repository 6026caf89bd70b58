//! Failed invocation results land in an encrypted queue, by way of the
//! project's bus.

use serde_json::{Value, json};

use crate::deployed::{Deployed, get_att, reference};
use crate::{BULK_FUNCTION_ID, FUNCTIONS};

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
