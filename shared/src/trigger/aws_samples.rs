//! AWS's own sample events (`tests/fixtures/aws-events/`, copied from the
//! `aws_lambda_events` crate), retargeted at this project's routes the way
//! API Gateway would send them behind the `$default` stage, a named stage
//! and a custom-domain mapping: the request, the route and the caller must
//! come out right whatever sits in front of the API.

use super::parse_event;
use super::test_events::{ID, assert_eventbridge_caller};
use crate::action::Action;
use crate::request::DeviceRef;
use base64::Engine;
use serde_json::{Value, json};

fn sample(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/aws-events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What sits in front of the API's routes in the URL the client called.
#[derive(Clone, Copy, Debug)]
enum Front {
    /// The API's own URL, `$default` stage: no prefix.
    DefaultStage,
    /// The API's own URL, stage `prod`: `/prod` (HTTP API only; a REST API
    /// drops the stage from `path`).
    NamedStage,
    /// A custom domain with API mapping key / base path `intune/helpdesk`.
    Mapping,
}

const FRONTS: [Front; 3] = [Front::DefaultStage, Front::NamedStage, Front::Mapping];

impl Front {
    fn stage(self) -> &'static str {
        match self {
            Front::DefaultStage => "$default",
            Front::NamedStage | Front::Mapping => "prod",
        }
    }

    /// What the client's URL has before the route's path (HTTP API).
    fn prefix(self) -> &'static str {
        match self {
            Front::DefaultStage => "",
            Front::NamedStage => "/prod",
            Front::Mapping => "/intune/helpdesk",
        }
    }
}

/// A route as API Gateway resolves it: the path below the API's root, the
/// template it matched and the template's parameters.
struct Route {
    method: &'static str,
    path: String,
    template: &'static str,
    params: Value,
}

/// `action`'s route with the device in the path.
fn device_route(action: Action) -> Route {
    let (method, template) = action.routes()[0];
    Route {
        method,
        path: template.replace("{deviceId}", ID),
        template,
        params: json!({"deviceId": ID}),
    }
}

/// Puts a sample on `action`'s device route behind a front, with a body.
type Retarget = fn(Value, Action, Front, Option<Value>) -> Value;

/// A payload 2.0 sample on `action`'s device route.
fn retarget_v2(ev: Value, action: Action, front: Front, body: Option<Value>) -> Value {
    retarget_v2_to(ev, device_route(action), front, body)
}

fn retarget_v2_to(mut ev: Value, route: Route, front: Front, body: Option<Value>) -> Value {
    let raw_path = format!("{}{}", front.prefix(), route.path);
    let route_key = format!("{} {}", route.method, route.template);
    ev["routeKey"] = json!(route_key);
    ev["rawPath"] = json!(raw_path);
    ev["pathParameters"] = route.params;
    ev["requestContext"]["routeKey"] = json!(route_key);
    ev["requestContext"]["stage"] = json!(front.stage());
    ev["requestContext"]["http"]["method"] = json!(route.method);
    ev["requestContext"]["http"]["path"] = json!(raw_path);
    ev["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    ev
}

/// A payload 1.0 sample on `action`'s device route. A REST API keeps the
/// stage out of `path` (it is in `requestContext.path`); a base path
/// mapping stays in both.
fn retarget_v1(ev: Value, action: Action, front: Front, body: Option<Value>) -> Value {
    retarget_v1_to(ev, device_route(action), front, body)
}

fn retarget_v1_to(mut ev: Value, route: Route, front: Front, body: Option<Value>) -> Value {
    // A REST API has no `$default` stage: both stage fronts are `prod`.
    let (raw_path, context_path) = match front {
        Front::DefaultStage | Front::NamedStage => (route.path.clone(), format!("/prod{}", route.path)),
        Front::Mapping => {
            let mapped = format!("{}{}", front.prefix(), route.path);
            (mapped.clone(), mapped)
        }
    };
    ev["resource"] = json!(route.template);
    ev["path"] = json!(raw_path);
    ev["httpMethod"] = json!(route.method);
    ev["pathParameters"] = route.params;
    ev["requestContext"]["resourcePath"] = json!(route.template);
    ev["requestContext"]["path"] = json!(context_path);
    ev["requestContext"]["httpMethod"] = json!(route.method);
    ev["requestContext"]["stage"] = json!("prod");
    ev["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    ev
}

fn reason() -> Value {
    json!({"reason": "locked out"})
}

/// Each 2.0 sample, each front: the device from `pathParameters`, the
/// reason from the body, the caller from the sample's authorizer.
#[test]
fn http_api_samples_route_behind_every_front() {
    let expected = [
        (
            "example-apigw-v2-request-iam.json",
            "iam",
            Some("arn:aws:iam::1234567890:user/Admin"),
        ),
        ("example-apigw-v2-request-jwt-authorizer.json", "jwt", None),
        (
            "example-apigw-v2-request-lambda-authorizer.json",
            "lambdaAuthorizer",
            None,
        ),
        ("example-apigw-v2-request-no-authorizer.json", "none", None),
        (
            "example-apigw-v2-request-multi-value-parameters.json",
            "lambdaAuthorizer",
            None,
        ),
        ("example-apigw-sam-http-request.json", "none", None),
    ];
    assert_device_and_caller(&expected, Action::ResetPasscode, retarget_v2);
}

/// Each sample, behind every front, names the device, carries the body and
/// comes from the expected kind of caller.
fn assert_device_and_caller(
    expected: &[(&str, &str, Option<&str>)],
    action: Action,
    retarget: Retarget,
) {
    for &(name, kind, principal) in expected {
        for front in FRONTS {
            let ev = retarget(sample(name), action, front, Some(reason()));
            let inc = parse_event(action, &ev);
            let request = inc
                .request
                .unwrap_or_else(|e| panic!("{name} {front:?}: {}", e.message));
            assert_eq!(request.device, DeviceRef::Id(ID.into()), "{name}");
            assert_eq!(request.reason.as_deref(), Some("locked out"), "{name}");
            assert_eq!(inc.caller.kind, kind, "{name}");
            assert_eq!(inc.caller.principal.as_deref(), principal, "{name}");
        }
    }
}

#[test]
fn rest_api_samples_route_behind_every_front() {
    let expected = [
        // A Lambda authorizer's principalId (its context also has a number).
        (
            "example-apigw-request.json",
            "lambdaAuthorizer",
            Some("admin"),
        ),
        (
            "example-apigw-request-multi-value-parameters.json",
            "lambdaAuthorizer",
            Some("admin"),
        ),
        ("example-apigw-sam-rest-request.json", "none", None),
        (
            "example-apigw-console-test-request.json",
            "iam",
            Some("arn:aws:sts::xxxxx:assumed-role/xxxxx/xxxxx"),
        ),
    ];
    assert_device_and_caller(&expected, Action::ResetWindowsPin, retarget_v1);
}

/// The samples as published are on routes these functions don't have
/// (`/my/path`, `/{proxy+}` → `/hello/world`): a 400 that names the raw
/// path, not a guess.
#[test]
fn samples_as_published_are_not_our_routes() {
    for name in [
        "example-apigw-v2-request-iam.json",
        "example-apigw-v2-request-no-authorizer.json",
        "example-apigw-sam-http-request.json",
        "example-apigw-request.json",
        "example-apigw-sam-rest-request.json",
        "example-apigw-console-test-request.json",
    ] {
        let raw = sample(name);
        let raw_path = raw["rawPath"].as_str().or(raw["path"].as_str()).unwrap();
        let err = parse_event(Action::ResetPasscode, &raw)
            .request
            .unwrap_err();
        assert!(
            err.message
                .contains(&format!("{raw_path} is not a route of reset-passcode")),
            "{name}: {}",
            err.message
        );
    }
}

/// A `$default` route: the stage is taken off the path, a mapping key is
/// not guessed.
#[test]
fn default_route_samples() {
    for (front, ok) in [
        (Front::DefaultStage, true),
        (Front::NamedStage, true),
        (Front::Mapping, false),
    ] {
        let mut ev = retarget_v2(
            sample("example-apigw-v2-request-iam.json"),
            Action::RemovePasscode,
            front,
            Some(reason()),
        );
        ev["routeKey"] = json!("$default");
        ev["requestContext"]["routeKey"] = json!("$default");
        ev["pathParameters"] = json!({"proxy": "ignored"});
        if matches!(front, Front::Mapping) {
            ev["requestContext"]["stage"] = json!("$default");
        }
        let request = parse_event(Action::RemovePasscode, &ev).request;
        match request {
            Ok(r) => {
                assert!(ok, "{front:?}");
                assert_eq!(r.device, DeviceRef::Id(ID.into()));
            }
            Err(e) => {
                assert!(!ok, "{front:?}: {}", e.message);
                assert!(
                    e.message.contains("/intune/helpdesk/v1/devices/"),
                    "{}",
                    e.message
                );
                assert!(e.message.contains("declare the routes"), "{}", e.message);
            }
        }
    }
}

/// JWT samples with Entra's claims: a client-credentials token is an app,
/// named by `azp` (v2) or `appid` (v1); a delegated one is a user.
#[test]
fn jwt_sample_callers_are_users_or_apps() {
    let cases = [
        (
            json!({"sub": "sp-1", "azp": "c0ffee00-0000-4000-8000-000000000001", "roles": "Passcode.Reset"}),
            Some("app"),
            None,
            Some("c0ffee00-0000-4000-8000-000000000001"),
        ),
        (
            json!({"sub": "sp-1", "appid": "c0ffee00-0000-4000-8000-000000000002", "ver": "1.0"}),
            Some("app"),
            None,
            Some("c0ffee00-0000-4000-8000-000000000002"),
        ),
        (
            json!({"sub": "u-1", "upn": "agent@contoso.com", "scp": "Passcode.Reset", "azp": "tool"}),
            Some("user"),
            Some("agent@contoso.com"),
            Some("tool"),
        ),
    ];
    for (claims, principal_type, user, app_id) in cases {
        let mut ev = retarget_v2(
            sample("example-apigw-v2-request-jwt-authorizer.json"),
            Action::ResetPasscode,
            Front::NamedStage,
            Some(reason()),
        );
        ev["requestContext"]["authorizer"]["jwt"]["claims"] = claims;
        let inc = parse_event(Action::ResetPasscode, &ev);
        assert!(inc.request.is_ok());
        assert_eq!(inc.caller.kind, "jwt");
        assert_eq!(inc.caller.principal_type, principal_type);
        assert_eq!(inc.caller.user.as_deref(), user);
        assert_eq!(inc.caller.app_id.as_deref(), app_id);
    }
}

/// Query strings as the multi-value samples carry them: a reason with a
/// comma survives payload 2.0's comma-joining; payload 1.0 reads the
/// single-value map.
#[test]
fn multi_value_samples_keep_query_values() {
    let status = |retarget: Retarget, name| retarget(sample(name), Action::Status, Front::Mapping, None);

    let mut ev = status(retarget_v2, "example-apigw-v2-request-multi-value-parameters.json");
    ev["queryStringParameters"]["reason"] = json!("on the phone, verified");
    let request = parse_event(Action::Status, &ev).request.unwrap();
    assert_eq!(request.reason.as_deref(), Some("on the phone, verified"));

    let mut ev = status(retarget_v1, "example-apigw-request-multi-value-parameters.json");
    ev["queryStringParameters"]["ticket"] = json!("INC2");
    ev["multiValueQueryStringParameters"]["ticket"] = json!(["INC1", "INC2"]);
    let request = parse_event(Action::Status, &ev).request.unwrap();
    assert_eq!(request.ticket.as_deref(), Some("INC2"));
}

#[test]
fn base64_bodies_of_both_formats() {
    let body = json!({"reason": "locked out", "dryRun": true}).to_string();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    for ev in [
        retarget_v2(
            sample("example-apigw-v2-request-iam.json"),
            Action::ResetPasscode,
            Front::NamedStage,
            None,
        ),
        retarget_v1(
            sample("example-apigw-request.json"),
            Action::ResetPasscode,
            Front::Mapping,
            None,
        ),
    ] {
        let mut ev = ev;
        ev["body"] = json!(encoded);
        ev["isBase64Encoded"] = json!(true);
        let request = parse_event(Action::ResetPasscode, &ev).request.unwrap();
        assert!(request.dry_run);
        assert_eq!(request.reason.as_deref(), Some("locked out"));
    }
}

#[test]
fn eventbridge_sample() {
    let mut ev = sample("example-eventbridge-event-obj.json");
    let inc = parse_event(Action::ResetPasscode, &ev);
    assert!(
        inc.request
            .unwrap_err()
            .message
            .contains("detail-type must be"),
    );
    assert_eq!(inc.caller.principal.as_deref(), Some("aws.ec2"));

    ev["detail-type"] = json!(crate::action::EVENT_DETAIL_TYPE);
    ev["source"] = json!("com.contoso.helpdesk");
    ev["detail"] = json!({"action": "resetPasscode", "device": {"serialNumber": "R58N10AE001"},
                          "reason": "r", "requestedBy": "agent@contoso.com"});
    let inc = parse_event(Action::ResetPasscode, &ev);
    assert_eq!(
        inc.request.unwrap().device,
        DeviceRef::SerialNumber("R58N10AE001".into())
    );
    let event_id = "7bf73129-1428-4cd3-a780-95db273d1602";
    assert_eventbridge_caller(&inc.caller, "com.contoso.helpdesk", event_id, "agent@contoso.com");
}

/// The bulk routes (two path parameters on the progress route) read from
/// AWS's samples of both payload formats, behind every front.
#[cfg(feature = "bulk")]
#[test]
fn bulk_routes_from_the_samples() {
    use crate::action::BULK_ROUTES;
    use crate::bulk::{BulkCall, BulkReader};
    let reader = BulkReader { max_devices: 500 };
    let submit = || Route {
        method: BULK_ROUTES[0].0,
        path: "/v1/bulk/remove-passcode".into(),
        template: BULK_ROUTES[0].1,
        params: json!({"action": "remove-passcode"}),
    };
    let progress = || Route {
        method: BULK_ROUTES[1].0,
        path: "/v1/bulk/remove-passcode/0f3a9c".into(),
        template: BULK_ROUTES[1].1,
        params: json!({"action": "remove-passcode", "batchId": "0f3a9c"}),
    };
    let body = json!({"devices": [{"id": ID}, {"serialNumber": "F2LXK0AAAA10"}], "reason": "lost"});
    for front in FRONTS {
        let events = [
            retarget_v2_to(sample("example-apigw-v2-request-iam.json"), submit(), front, Some(body.clone())),
            retarget_v1_to(sample("example-apigw-request.json"), submit(), front, Some(body.clone())),
        ];
        for ev in events {
            match super::read(&reader, &ev).request {
                Ok(BulkCall::Submit(request)) => {
                    assert_eq!(request.action, Action::RemovePasscode, "{front:?}");
                    assert_eq!(request.reason.as_deref(), Some("lost"));
                }
                other => panic!("{front:?}: {other:?}"),
            }
        }
        let events = [
            retarget_v2_to(sample("example-apigw-v2-request-iam.json"), progress(), front, None),
            retarget_v1_to(sample("example-apigw-request.json"), progress(), front, None),
        ];
        for ev in events {
            let call = super::read(&reader, &ev).request.unwrap_or_else(|e| panic!("{front:?}: {}", e.message));
            assert_eq!(
                call,
                BulkCall::Progress {
                    action: Action::RemovePasscode,
                    batch_id: "0f3a9c".into()
                },
                "{front:?}"
            );
        }
    }
}
