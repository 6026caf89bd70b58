//! Rights per action for JWT callers, and revealing a passcode as a right and
//! a route of its own.

use crate::common::*;
use passcode_core::Action;
use passcode_core::rights::default_role;
use serde_json::{Value, json};

const PASSCODE: &str = "58203917";

/// An HTTP API call from a JWT caller with these claims, as API Gateway's
/// JWT authorizer hands them on: every value a string, arrays as `[a b]`.
fn jwt_call(action: Action, device_id: &str, body: Value, claims: Value) -> Value {
    let mut event = api_body_event(action, &with_id(body, device_id));
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    event
}

fn with_id(mut body: Value, device_id: &str) -> Value {
    body["device"] = json!({"id": device_id});
    body
}

/// An app-only token (client credentials): no `upn`, rights in `roles`.
fn app_token(roles: &str) -> Value {
    json!({"sub": "app-object-id", "azp": "2f9b-client", "appid": "2f9b-client", "roles": roles})
}

/// A delegated user token: rights in `scp`.
fn user_token(scp: &str) -> Value {
    json!({"sub": "user-sub", "upn": "agent@contoso.com", "scp": scp})
}

/// A request each action accepts without sending anything to Intune.
fn harmless_body(action: Action) -> Value {
    match action {
        Action::RevealPasscode => json!({"reason": "r", "ticket": "INC1"}),
        a if a.writes() => json!({"reason": "r", "dryRun": true}),
        _ => json!({}),
    }
}

fn device_for(action: Action) -> &'static str {
    match action {
        Action::RemovePasscode => dev::IOS_ADE,
        Action::ResetWindowsPin => dev::WINDOWS_10_MOBILE,
        _ => dev::AE_DEDICATED,
    }
}

async fn reset_and_finish(world: &World, device: &str) {
    let reply = world.act(Action::ResetPasscode, device).await;
    reply.assert_status(202);
    world
        .sim()
        .advance_action(device, "resetPasscode", "done", Some(PASSCODE))
        .await
        .unwrap();
}

#[tokio::test]
async fn every_route_needs_its_own_right_from_a_jwt() {
    let world = World::start().await;
    for action in Action::ALL {
        let right = default_role(action);
        let others: Vec<_> = Action::ALL
            .into_iter()
            .filter(|a| *a != action)
            .map(default_role)
            .collect();
        let cases = [
            (app_token(&format!("[{right}]")), true, "app role"),
            (
                app_token(&format!("[Other.Role {right}]")),
                true,
                "one of several app roles",
            ),
            (
                user_token(&format!("openid {right}")),
                true,
                "delegated scope",
            ),
            (
                app_token(&format!("[{}]", others.join(" "))),
                false,
                "every other right",
            ),
            (user_token("openid profile"), false, "no right"),
            (json!({"sub": "s"}), false, "no roles or scp claim"),
        ];
        for (claims, allowed, what) in cases {
            let event = jwt_call(action, device_for(action), harmless_body(action), claims);
            let reply = world.api(action, event).await;
            if allowed {
                assert_ne!(
                    reply.status, 403,
                    "{action:?} with {what}: {:?}",
                    reply.body
                );
            } else {
                assert_eq!(
                    reply.status, 403,
                    "{action:?} with {what}: {:?}",
                    reply.body
                );
                assert_eq!(reply.error_code(), "forbidden");
                let message = reply.error_message();
                assert!(
                    message.contains(right),
                    "names the missing right: {message}"
                );
            }
        }
    }
    assert_eq!(world.total_posts().await, 0, "dry runs and refusals only");
    let forbidden: Vec<_> = world
        .audit_records()
        .into_iter()
        .filter(|a| a["errorCode"] == "forbidden")
        .collect();
    assert_eq!(
        forbidden.len(),
        3 * Action::ALL.len(),
        "every refusal is audited"
    );
}

#[tokio::test]
async fn a_forbidden_reset_sends_nothing_and_an_allowed_one_does() {
    let world = World::start().await;
    let body = short_reason();
    let denied = jwt_call(
        Action::ResetPasscode,
        dev::AE_DEDICATED,
        body.clone(),
        app_token("[Passcode.Read]"),
    );
    assert_eq!(world.api(Action::ResetPasscode, denied).await.status, 403);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 0);
    let allowed = jwt_call(
        Action::ResetPasscode,
        dev::AE_DEDICATED,
        body,
        app_token("[Passcode.Reset]"),
    );
    let reply = world.api(Action::ResetPasscode, allowed).await;
    reply.assert_status(202);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);
}

#[tokio::test]
async fn role_names_follow_the_configuration() {
    let mut world = World::start().await;
    world
        .respawn(Action::Status, &[("REQUIRED_ROLE", "Helpdesk.Read")])
        .await;
    let call = |roles: &str| {
        jwt_call(
            Action::Status,
            dev::AE_DEDICATED,
            json!({}),
            app_token(roles),
        )
    };
    let default_name = world.api(Action::Status, call("[Passcode.Read]")).await;
    assert_eq!(default_name.status, 403);
    default_name.assert_says("Helpdesk.Read");
    let renamed = world.api(Action::Status, call("[Helpdesk.Read]")).await;
    renamed.assert_status(200);
}

#[tokio::test]
async fn status_never_carries_the_passcode_and_the_reveal_does() {
    let world = World::start().await;
    reset_and_finish(&world, dev::AE_FULLY_MANAGED).await;

    let status = world.status(dev::AE_FULLY_MANAGED).await;
    assert_eq!(status.body["actions"][0]["state"], "done");
    assert!(
        !status.body.to_string().contains(PASSCODE),
        "{:?}",
        status.body
    );

    let revealed = world
        .api_body(
            Action::RevealPasscode,
            json!({"device": {"id": dev::AE_FULLY_MANAGED}, "reason": "user at the desk", "ticket": "INC7"}),
        )
        .await;
    revealed.assert_status(200);
    assert_eq!(revealed.outcome(), "revealed");
    assert_eq!(revealed.body["passcode"], PASSCODE);
    assert!(revealed.body["expiresAt"].as_str().is_some());
    assert_eq!(revealed.headers["cache-control"], "no-store");

    // The GET route takes reason and ticket from the query string.
    let (method, path) = path_route(Action::RevealPasscode, dev::AE_FULLY_MANAGED);
    assert_eq!(
        (method.as_str(), path.ends_with("/passcode")),
        ("GET", true)
    );
    let mut event = local_stack::events::api_v2(
        &method,
        &path,
        Some(("deviceId", dev::AE_FULLY_MANAGED)),
        None,
        &local_stack::events::Caller::iam(HELPDESK),
    );
    event["rawQueryString"] = json!("reason=desk&ticket=INC8");
    event["queryStringParameters"] = json!({"reason": "desk", "ticket": "INC8"});
    let by_get = world.api(Action::RevealPasscode, event).await;
    by_get.assert_status(200);
    assert_eq!(by_get.body["passcode"], PASSCODE);

    let audits = world.audit_records();
    let reveals: Vec<_> = audits
        .iter()
        .filter(|a| a["function"] == "reveal-passcode")
        .collect();
    assert_eq!(reveals.len(), 2);
    for a in &reveals {
        assert_eq!(a["passcodeReturned"], true, "{a}");
        assert_eq!(a["action"], "revealPasscode");
        assert!(a["ticket"].as_str().unwrap().starts_with("INC"), "{a}");
        assert!(!a.to_string().contains(PASSCODE));
    }
    assert!(
        audits
            .iter()
            .filter(|a| a["function"] == "passcode-status")
            .all(|a| a["passcodeReturned"] == false)
    );
    assert!(
        !world.all_logs().iter().any(|l| l.contains(PASSCODE)),
        "never logged"
    );
}

#[tokio::test]
async fn the_reveal_answers_only_when_there_is_a_passcode_to_show() {
    let world = World::start().await;
    let reveal = |id: &str, body: Value| world.api_body(Action::RevealPasscode, with_id(body, id));
    let ticketed = json!({"reason": "r", "ticket": "INC9"});

    let none = reveal(dev::AE_DEDICATED, ticketed.clone()).await;
    none.assert_error(404, "passcodeNotAvailable");

    world.act(Action::ResetPasscode, dev::AE_DEDICATED).await;
    let pending = reveal(dev::AE_DEDICATED, ticketed.clone()).await;
    pending.assert_error(409, "passcodeNotReady");

    // iOS: the passcode is removed, never replaced.
    world.act(Action::RemovePasscode, dev::IOS_ADE).await;
    world
        .sim()
        .advance_action(dev::IOS_ADE, "resetPasscode", "done", None)
        .await
        .unwrap();
    let ios = reveal(dev::IOS_ADE, ticketed.clone()).await;
    ios.assert_error(404, "passcodeNotAvailable");

    let no_ticket = reveal(dev::AE_DEDICATED, short_reason()).await;
    no_ticket.assert_error(400, "invalidRequest");
}

#[tokio::test]
async fn the_reveal_is_not_reachable_by_events_or_direct_calls() {
    let world = World::start().await;
    reset_and_finish(&world, dev::AE_DEDICATED).await;
    let detail = json!({"device": {"id": dev::AE_DEDICATED}, "reason": "r", "ticket": "INC1", "requestedBy": "soar"});
    let via_bus = world.event(Action::RevealPasscode, detail.clone()).await;
    let result = via_bus.response().expect("a rejected result");
    assert_eq!(result["outcome"], "rejected", "{result}");
    assert_eq!(result["error"]["code"], "invalidRequest");
    assert!(!result.to_string().contains(PASSCODE));

    let direct = world.invoke(Action::RevealPasscode, detail).await;
    let result = direct.response().expect("a rejected result");
    assert_eq!(result["outcome"], "rejected", "{result}");
    assert!(!result.to_string().contains(PASSCODE));
}
