//! AWS's own sample events (`tests/fixtures/aws-events/`) through the real
//! function binaries, retargeted at our routes behind the `$default` stage,
//! a named stage and a custom-domain mapping: the answer and the audit
//! record's caller must not depend on what sits in front of the API.

use crate::common::*;
use local_stack::events::{Front, aws_sample, retarget_v1, retarget_v2};
use passcode_core::Action;
use serde_json::{Value, json};

const FRONTS: [Front<'static>; 3] = [
    Front::DefaultStage,
    Front::NamedStage("prod"),
    Front::Mapping("intune/helpdesk"),
];

/// The newest audit record of `action`'s function (records of different
/// functions are not in time order).
fn last_audit(world: &World, action: Action) -> Value {
    world
        .audit_records()
        .into_iter()
        .rfind(|a| a["function"] == action.function_name())
        .expect("an audit record")
}

#[tokio::test]
async fn http_api_samples_reach_the_route_behind_every_front() {
    let world = World::start().await;
    let (method, path) = path_route(Action::ResetPasscode, dev::AE_DEDICATED);
    let body = json!({"reason": reason(), "dryRun": true});
    for front in FRONTS {
        let event = retarget_v2(
            aws_sample("example-apigw-v2-request-iam.json"),
            &method,
            &path,
            Some(("deviceId", dev::AE_DEDICATED)),
            front,
            Some(&body),
        );
        let reply = world.api(Action::ResetPasscode, event).await;
        reply.assert_outcome_for(front, 200, "dryRun");
        assert_eq!(reply.body["device"]["id"], dev::AE_DEDICATED);
        let audit = last_audit(&world, Action::ResetPasscode);
        assert_eq!(audit["source"], "apiGateway.http");
        assert_eq!(audit["caller"]["kind"], "iam");
        assert_eq!(
            audit["caller"]["principal"],
            "arn:aws:iam::1234567890:user/Admin"
        );
        assert_eq!(audit["caller"]["sourceIp"], "IP");
    }

    // Body route, SAM local's event, base64 body, named stage.
    let mut event = retarget_v2(
        aws_sample("example-apigw-sam-http-request.json"),
        "POST",
        "/v1/reset-passcode",
        None,
        Front::NamedStage("Prod"),
        None,
    );
    let body = json!({"device": {"id": dev::AE_FULLY_MANAGED}, "reason": reason(), "dryRun": true});
    event["body"] = json!(base64_encode(&body.to_string()));
    event["isBase64Encoded"] = json!(true);
    let reply = world.api(Action::ResetPasscode, event).await;
    reply.assert_outcome(200, "dryRun");
    assert_eq!(reply.body["device"]["id"], dev::AE_FULLY_MANAGED);
    let audit = last_audit(&world, Action::ResetPasscode);
    assert_eq!(audit["caller"]["kind"], "none");
    assert_eq!(audit["caller"]["sourceIp"], "127.0.0.1");
    assert_eq!(world.total_posts().await, 0);
}

/// A client-credentials token has no `upn`: the audit names the app.
#[tokio::test]
async fn jwt_app_caller_on_a_named_stage_is_audited_as_an_app() {
    let world = World::start().await;
    let (method, path) = path_route(Action::RemovePasscode, dev::IOS_ADE);
    let mut event = retarget_v2(
        aws_sample("example-apigw-v2-request-jwt-authorizer.json"),
        &method,
        &path,
        Some(("deviceId", dev::IOS_ADE)),
        Front::NamedStage("prod"),
        Some(&just_reason()),
    );
    event["requestContext"]["authorizer"]["jwt"]["claims"] = json!({
        "aud": "api://passcode-actions", "iss": "https://login.microsoftonline.com/7f3c2b1a-0000-4000-8000-00000000c0de/v2.0",
        "sub": "9a1b2c3d-0000-4000-8000-00000000a99a", "oid": "9a1b2c3d-0000-4000-8000-00000000a99a",
        "azp": "c0ffee00-0000-4000-8000-000000000001", "azpacr": "1", "roles": "[Passcode.Remove]", "ver": "2.0"
    });
    let reply = world.api(Action::RemovePasscode, event).await;
    reply.assert_outcome(202, "accepted");
    assert_eq!(world.posts(dev::IOS_ADE).await, 1);
    let caller = &last_audit(&world, Action::RemovePasscode)["caller"];
    assert_eq!(caller["kind"], "jwt");
    assert_eq!(caller["principalType"], "app");
    assert_eq!(caller["appId"], "c0ffee00-0000-4000-8000-000000000001");
    assert_eq!(caller["principal"], "9a1b2c3d-0000-4000-8000-00000000a99a");
    assert!(caller.get("user").is_none(), "{caller}");
}

#[tokio::test]
async fn rest_api_samples_route_on_the_resource() {
    let world = World::start().await;
    // Lambda authorizer (principalId) behind a base path mapping: the
    // status route with the reason in the query string.
    let (method, path) = path_route(Action::Status, dev::AE_DEDICATED);
    for front in [Front::NamedStage("prod"), Front::Mapping("intune")] {
        let mut event = retarget_v1(
            aws_sample("example-apigw-request-multi-value-parameters.json"),
            &method,
            &path,
            Some(("deviceId", dev::AE_DEDICATED)),
            front,
            None,
        );
        event["queryStringParameters"]["reason"] = json!("caller on the phone");
        event["multiValueQueryStringParameters"]["reason"] = json!(["caller on the phone"]);
        let reply = world.api(Action::Status, event).await;
        reply.assert_outcome_for(front, 200, "status");
        let audit = last_audit(&world, Action::Status);
        assert_eq!(audit["source"], "apiGateway.rest");
        assert_eq!(audit["reason"], "caller on the phone");
        assert_eq!(audit["caller"]["kind"], "lambdaAuthorizer");
        assert_eq!(audit["caller"]["principal"], "admin");
    }

    // The console's test invocation (an IAM role) behind a mapping.
    let (method, path) = path_route(Action::ResetWindowsPin, dev::WINDOWS_10_MOBILE);
    let event = retarget_v1(
        aws_sample("example-apigw-console-test-request.json"),
        &method,
        &path,
        Some(("deviceId", dev::WINDOWS_10_MOBILE)),
        Front::Mapping("intune"),
        Some(&json!({"reason": reason(), "dryRun": true})),
    );
    let reply = world.api(Action::ResetWindowsPin, event).await;
    reply.assert_outcome(200, "dryRun");
    let caller = &last_audit(&world, Action::ResetWindowsPin)["caller"];
    assert_eq!(caller["kind"], "iam");
    assert_eq!(
        caller["principal"],
        "arn:aws:sts::xxxxx:assumed-role/xxxxx/xxxxx"
    );
}

/// `$default` routes have no template: a named stage is taken off the path,
/// a mapping key is refused with a message saying what to do.
#[tokio::test]
async fn default_route_samples() {
    let world = World::start().await;
    let (method, path) = path_route(Action::ResetPasscode, dev::AE_DEDICATED);
    let body = json!({"reason": reason(), "dryRun": true});
    let default_route = |front| {
        let mut event = retarget_v2(
            aws_sample("example-apigw-v2-request-no-authorizer.json"),
            &method,
            &path,
            None,
            front,
            Some(&body),
        );
        event["routeKey"] = json!("$default");
        event["requestContext"]["routeKey"] = json!("$default");
        event
    };
    let reply = world
        .api(
            Action::ResetPasscode,
            default_route(Front::NamedStage("prod")),
        )
        .await;
    reply.assert_outcome(200, "dryRun");

    let calls = world.graph_calls().await;
    let mut event = default_route(Front::Mapping("intune"));
    event["requestContext"]["stage"] = json!("$default");
    let reply = world.api(Action::ResetPasscode, event).await;
    reply.assert_error(400, "invalidRequest");
    let message = reply.error_message();
    // The raw path is echoed (clipped to 64 characters), not the route.
    assert!(message.starts_with("POST /intune/v1/devices/"), "{message}");
    reply.assert_says("is not a route of reset-passcode");
    reply.assert_says("declare the routes");
    assert_eq!(
        world.graph_calls().await,
        calls,
        "a refused call reaches no one"
    );
    assert_eq!(
        last_audit(&world, Action::ResetPasscode)["outcome"],
        "rejected"
    );
}

#[tokio::test]
async fn eventbridge_sample_as_published_and_retargeted() {
    let world = World::start().await;
    // As published (an EC2 state change): rejected, not retried.
    let inv = world
        .invoke(
            Action::ResetPasscode,
            aws_sample("example-eventbridge-event-obj.json"),
        )
        .await;
    let result = inv.response().unwrap();
    assert_eq!(result["outcome"], "rejected", "{result}");
    assert_eq!(result["error"]["code"], "invalidRequest");
    let caller = &last_audit(&world, Action::ResetPasscode)["caller"];
    assert_eq!(caller["kind"], "eventBridge");
    assert_eq!(caller["principal"], "aws.ec2");

    let mut event = aws_sample("example-eventbridge-event-obj.json");
    event["detail-type"] = json!(passcode_core::action::EVENT_DETAIL_TYPE);
    event["source"] = json!("com.contoso.helpdesk");
    event["detail"] = json!({"action": "resetPasscode", "device": {"id": dev::AOSP_USERLESS},
                             "reason": reason(), "requestedBy": "agent@contoso.com"});
    let inv = world.invoke(Action::ResetPasscode, event).await;
    assert_eq!(inv.response().unwrap()["outcome"], "accepted");
    let caller = &last_audit(&world, Action::ResetPasscode)["caller"];
    assert_eq!(caller["principal"], "com.contoso.helpdesk");
    assert_eq!(caller["eventId"], "7bf73129-1428-4cd3-a780-95db273d1602");
    assert_eq!(caller["requestedBy"], "agent@contoso.com");
    assert_eq!(world.posts(dev::AOSP_USERLESS).await, 1);
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
