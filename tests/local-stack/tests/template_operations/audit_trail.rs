//! The audit trail outlives the stack: retained log groups, and the
//! optional export to a locked bucket.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::deployed::{Deployed, get_att};
use crate::{BULK_FUNCTION_ID, FUNCTIONS, TRACKER};

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
