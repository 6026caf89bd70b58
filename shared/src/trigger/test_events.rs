//! Hand-made events for the unit tests: the fields the parsers read, in
//! the shapes API Gateway and EventBridge send. The AWS-published samples
//! are exercised in `aws_samples`.

use crate::origin::Caller;
use serde_json::{Value, json};

pub const ID: &str = "11111111-0000-4000-8000-000000000001";

/// `/v1/devices/<id>/x` with `Some(id)` → `/v1/devices/{deviceId}/x`, the
/// route template API Gateway reports.
fn template(path: &str, device: Option<&str>) -> String {
    match device {
        Some(id) => path.replacen(&format!("/{id}/"), "/{deviceId}/", 1),
        None => path.to_string(),
    }
}

/// HTTP API (2.0) on the `$default` stage, IAM caller.
pub fn v2(method: &str, path: &str, device: Option<&str>, body: Option<Value>) -> Value {
    let route_key = format!("{method} {}", template(path, device));
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "pathParameters": device.map(|d| json!({"deviceId": d})),
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "x", "requestId": "r",
            "routeKey": route_key, "stage": "$default", "time": "26/Nov/2026:05:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "curl"},
            "authorizer": {"iam": {"accessKey": "AKIA", "accountId": "123456789012", "callerId": "AID",
                "principalOrgId": null, "userArn": "arn:aws:iam::123456789012:user/helpdesk", "userId": "AID"}}
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// REST API (1.0), stage `prod` on the API's own URL, IAM caller.
pub fn v1(method: &str, path: &str, device: Option<&str>, body: Option<Value>) -> Value {
    let resource = template(path, device);
    json!({
        "resource": resource, "path": path, "httpMethod": method,
        "headers": {}, "multiValueHeaders": {}, "queryStringParameters": null,
        "pathParameters": device.map(|d| json!({"deviceId": d})),
        "requestContext": {"accountId": "123456789012", "resourceId": "x", "stage": "prod", "requestId": "r",
            "httpMethod": method, "resourcePath": resource, "path": format!("/prod{path}"),
            "identity": {"sourceIp": "192.0.2.2", "userArn": "arn:aws:iam::123456789012:role/snow", "caller": "AROA"}},
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

pub fn eventbridge(detail: Value) -> Value {
    json!({"version": "0", "id": "ev-1", "detail-type": "Passcode Action Requested", "source": "com.contoso.helpdesk",
           "account": "123456789012", "time": "2026-11-26T05:00:00Z", "region": "us-east-1", "resources": [], "detail": detail})
}

/// An EventBridge caller: the rule's event source as the principal, the
/// event's id and the validated `requestedBy`.
pub fn assert_eventbridge_caller(caller: &Caller, source: &str, event_id: &str, requested_by: &str) {
    assert_eq!(caller.kind, "eventBridge");
    assert_eq!(caller.principal.as_deref(), Some(source));
    assert_eq!(caller.event_id.as_deref(), Some(event_id));
    assert_eq!(caller.requested_by.as_deref(), Some(requested_by));
}
