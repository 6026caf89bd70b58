//! The request flow: dry run, duplicate suppression, status and the
//! passcode, EventBridge and direct invocations, audit records.

use crate::common::*;
use local_stack::InvokeOutcome;
use passcode_core::Action;
use serde_json::json;

#[tokio::test]
async fn dry_run_sends_nothing() {
    let world = World::start().await;
    let body = json!({"device": {"imei": "350000000000001"}, "reason": "r", "dryRun": true});
    let reply = world.api_body(Action::ResetPasscode, body).await;
    reply.assert_outcome(200, "dryRun");
    assert_eq!(reply.body["wouldSend"], true);
    assert_eq!(reply.body["device"]["id"], dev::AE_DEDICATED);
    // An ineligible device is still refused in a dry run.
    let body = json!({"device": {"id": dev::MACOS}, "reason": "r", "dryRun": true});
    assert_eq!(
        world.api_body(Action::ResetPasscode, body).await.status,
        422
    );
    assert_eq!(world.total_posts().await, 0);
}

#[tokio::test]
async fn a_pending_reset_is_not_sent_twice() {
    let world = World::start().await;
    let first = world.reset_kiosk().await;
    first.assert_outcome(202, "accepted");
    assert!(
        first.body["graphRequestId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    // Client retry and EventBridge redelivery of the same request.
    let again = world.reset_kiosk().await;
    again.assert_outcome(200, "alreadyPending");
    let detail = json!({"device": {"serialNumber": "R58N10AE001"}, "reason": "r", "requestedBy": "agent@contoso.com"});
    let redelivered = world.event(Action::ResetPasscode, detail.clone()).await;
    assert_eq!(redelivered.response().unwrap()["outcome"], "alreadyPending");
    let dry = world.reset_dry_run(dev::AE_DEDICATED).await;
    assert_eq!(dry.body["wouldSend"], false);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);

    // Once Intune finished, a new request is a new reset.
    world
        .sim()
        .advance_action(dev::AE_DEDICATED, "resetPasscode", "done", Some("24681357"))
        .await
        .unwrap();
    let next = world.event(Action::ResetPasscode, detail).await;
    assert_eq!(next.response().unwrap()["outcome"], "accepted");
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 2);
}

#[tokio::test]
async fn status_explains_not_supported_work_profile_resets() {
    let world = World::start().await;
    world.reset(dev::AE_PERSONAL_WORK_PROFILE).await;
    world
        .sim()
        .advance_action(
            dev::AE_PERSONAL_WORK_PROFILE,
            "resetPasscode",
            "notSupported",
            None,
        )
        .await
        .unwrap();
    let status = world.status(dev::AE_PERSONAL_WORK_PROFILE).await;
    let hint = status.body["actions"][0]["hint"].as_str().unwrap();
    assert!(hint.contains("accept the prompt"), "{hint}");
}

#[tokio::test]
async fn eventbridge_accepted_rejected_and_failed() {
    let world = World::start().await;
    let accepted = world
        .event(Action::RemovePasscode, json!({"device": {"serialNumber": "F2LXK0AAAA10"}, "reason": "r", "ticket": "INC1", "requestedBy": "agent@contoso.com"}))
        .await;
    let result = accepted.response().unwrap();
    assert_eq!(result["outcome"], "accepted", "{result}");
    assert_eq!(result["device"]["id"], dev::IOS_ADE);

    // Permanent: completes normally as "rejected", so Lambda does not retry it.
    let rejected = world
        .event(
            Action::RemovePasscode,
            json!({"device": {"id": dev::MACOS}, "reason": "r"}),
        )
        .await;
    let result = rejected.response().unwrap();
    assert_eq!(result["outcome"], "rejected");
    assert_eq!(result["error"]["code"], "unsupportedPlatform");
    let invalid = world
        .event(
            Action::RemovePasscode,
            json!({"device": {"serialNumber": "A"}}),
        )
        .await;
    assert_eq!(
        invalid.response().unwrap()["error"]["code"],
        "invalidRequest",
        "missing reason"
    );
    let wrong_action = world
        .invoke(
            Action::RemovePasscode,
            local_stack::events::eventbridge(
                &json!({"action": "resetPasscode", "device": {"id": dev::IOS_ADE}, "reason": "r"}),
            ),
        )
        .await;
    assert_eq!(wrong_action.response().unwrap()["outcome"], "rejected");

    // Transient: the invocation fails so Lambda retries it / sends it to OnFailure.
    world
        .add_fault(
            graph_sim::FaultRule::status(503)
                .endpoint(graph_sim::Endpoint::Graph)
                .times(1000),
        )
        .await;
    let failed = world
        .invoke_within(
            Action::RemovePasscode,
            local_stack::events::eventbridge(&json!({"action": "removePasscode", "device": {"id": dev::IPADOS_DEVICE_ENROLLMENT}, "reason": "r"})),
            std::time::Duration::from_secs(5),
        )
        .await;
    match &failed.outcome {
        InvokeOutcome::Error { error_type, .. } => assert_eq!(error_type, "GraphUnavailable"),
        other => panic!("expected an invocation error, got {other:?}"),
    }
    world.sim().clear_faults().await.unwrap();
    assert_eq!(world.total_posts().await, 1);

    let audits = world.audit_records();
    let first = &audits[0];
    assert_eq!(first["source"], "eventBridge");
    assert_eq!(first["caller"]["requestedBy"], "agent@contoso.com");
    assert_eq!(first["caller"]["principal"], "com.example.helpdesk");
    assert_eq!(first["ticket"], "INC1");
    assert_eq!(first["outcome"], "accepted");
    let outcomes: Vec<&str> = audits
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["accepted", "rejected", "rejected", "rejected", "failed"]
    );
}

#[tokio::test]
async fn direct_invocation_behaves_like_eventbridge() {
    let world = World::start().await;
    let inv = world
        .invoke(Action::ResetPasscode, json!({"action": "resetPasscode", "device": {"id": dev::AOSP_USERLESS}, "reason": "kiosk locked", "requestedBy": "stepfunctions"}))
        .await;
    assert_eq!(inv.response().unwrap()["outcome"], "accepted");
    assert_eq!(world.posts(dev::AOSP_USERLESS).await, 1);
}

#[tokio::test]
async fn api_audit_records_name_the_caller_and_the_reason() {
    let world = World::start().await;
    let body = json!({"device": {"id": dev::AOSP_USER_ASSOCIATED}, "reason": "headset locked", "ticket": "INC42"});
    world.api_body(Action::ResetPasscode, body).await;
    let audit = world.audit_records().pop().expect("an audit record");
    assert_eq!(audit["caller"]["kind"], "iam");
    assert_eq!(audit["caller"]["principal"], HELPDESK);
    assert_eq!(audit["reason"], "headset locked");
    assert_eq!(audit["ticket"], "INC42");
    assert_eq!(audit["deviceId"], dev::AOSP_USER_ASSOCIATED);
    assert_eq!(audit["action"], "resetPasscode");
    assert_eq!(audit["outcome"], "accepted");
    assert!(
        audit["graphRequestId"]
            .as_str()
            .is_some_and(|s| s.len() > 10)
    );
    assert!(audit["durationMs"].is_u64());
}

#[tokio::test]
async fn bad_requests_are_400_and_change_nothing() {
    let world = World::start().await;
    for body in [
        json!({"device": {"serialNumber": "R58N10AE001"}}),
        json!({"device": {"serial": "R58N10AE001"}, "reason": "r"}),
        json!({"device": {"serialNumber": "R58N10AE001", "imei": "350000000000001"}, "reason": "r"}),
        json!({"device": {"deviceName": "KIOSK-LOBBY-01"}, "reason": "r"}),
        short_reason(),
        json!({"device": {"id": dev::AE_DEDICATED}, "reason": "x".repeat(501)}),
    ] {
        let reply = world.api_body(Action::ResetPasscode, body.clone()).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (400, "invalidRequest"),
            "{body}"
        );
        assert!(!reply.error_message().is_empty());
        assert!(
            !reply.body["error"]["requestId"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(world.graph_calls().await, 0);
}

/// A reset still pending two hours later (an Android device checks in about
/// every 8 hours) blocks a second one; `replacePending: true` sends it
/// anyway, and both the answer and the audit say so.
#[tokio::test]
async fn a_pending_reset_hours_old_blocks_a_new_one_unless_replaced() {
    let world = World::start().await;
    let two_hours_ago = (time::OffsetDateTime::now_utc() - time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    patch_device(
        &world,
        dev::AE_DEDICATED,
        json!({"deviceActionResults": [{
            "@odata.type": "#microsoft.graph.resetPasscodeActionResult",
            "actionName": "resetPasscode",
            "actionState": "pending",
            "startDateTime": two_hours_ago,
            "lastUpdatedDateTime": two_hours_ago,
        }]}),
    )
    .await;

    let retry = world.act(Action::ResetPasscode, dev::AE_DEDICATED).await;
    retry.assert_outcome(200, "alreadyPending");
    assert_eq!(retry.body["pendingSince"], two_hours_ago.as_str());
    assert!(
        retry.body["message"]
            .as_str()
            .unwrap()
            .contains("\"replacePending\": true"),
        "the answer says how to replace it: {:?}",
        retry.body
    );
    let dry = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_DEDICATED,
            json!({"reason": "r", "dryRun": true, "replacePending": true}),
        )
        .await;
    assert_eq!(dry.body["wouldSend"], true, "{:?}", dry.body);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 0);

    let replaced = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_DEDICATED,
            json!({"reason": "user never got the first passcode", "replacePending": true}),
        )
        .await;
    replaced.assert_outcome(202, "accepted");
    assert_eq!(replaced.body["replacedPending"], true);
    assert_eq!(
        replaced.body["replacedPendingSince"],
        two_hours_ago.as_str()
    );
    assert!(
        replaced.body["message"]
            .as_str()
            .unwrap()
            .contains("superseded")
    );
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);

    // From EventBridge the same: blocked, unless the detail says replacePending.
    let detail = json!({"device": {"id": dev::AE_DEDICATED}, "reason": "r", "requestedBy": "agent@contoso.com"});
    let blocked = world.event(Action::ResetPasscode, detail.clone()).await;
    assert_eq!(blocked.response().unwrap()["outcome"], "alreadyPending");
    let mut replacing = detail;
    replacing["replacePending"] = json!(true);
    let sent = world.event(Action::ResetPasscode, replacing).await;
    let result = sent.response().unwrap();
    assert_eq!(result["outcome"], "accepted");
    assert_eq!(result["replacedPending"], true);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 2);

    let audits: Vec<(String, bool, bool)> = world
        .audit_records()
        .iter()
        .filter(|a| a["function"] == "reset-passcode")
        .map(|a| {
            (
                a["outcome"].as_str().unwrap().to_string(),
                a["replacePending"].as_bool().unwrap(),
                a["replacedPending"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("alreadyPending", false, false),
        ("dryRun", true, false),
        ("accepted", true, true),
        ("alreadyPending", false, false),
        ("accepted", true, true),
    ];
    let expected: Vec<(String, bool, bool)> = expected
        .iter()
        .map(|(o, a, b)| (o.to_string(), *a, *b))
        .collect();
    assert_eq!(audits, expected);
}

/// Without the caller's say-so, a pending reset older than the old
/// 15-minute window still blocks: the default window is 8 hours.
#[tokio::test]
async fn the_pending_window_is_configurable() {
    let mut world = World::start().await;
    let twenty_minutes_ago = (time::OffsetDateTime::now_utc() - time::Duration::minutes(20))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let pending = json!({"deviceActionResults": [{
        "@odata.type": "#microsoft.graph.resetPasscodeActionResult",
        "actionName": "resetPasscode",
        "actionState": "pending",
        "startDateTime": twenty_minutes_ago,
    }]});
    patch_device(&world, dev::AE_DEDICATED, pending.clone()).await;
    let retry = world.act(Action::ResetPasscode, dev::AE_DEDICATED).await;
    assert_eq!(retry.outcome(), "alreadyPending", "{:?}", retry.body);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 0);
    // A deployment that chose a 15-minute window sends after 20 minutes.
    world
        .respawn(Action::ResetPasscode, &[("PENDING_WINDOW_MINUTES", "15")])
        .await;
    let retry = world.act(Action::ResetPasscode, dev::AE_DEDICATED).await;
    assert_eq!(retry.outcome(), "accepted", "{:?}", retry.body);
    assert!(retry.body.get("replacedPending").is_none());
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);
}

/// With the idempotency table, a `replacePending` request right after the
/// first one (same caller, same device, same time window) is a request of
/// its own: it is sent, not answered with the first request's reply.
#[tokio::test]
async fn replace_pending_is_its_own_request_for_the_idempotency_record() {
    let world = World::start_idempotent().await;
    let first = world
        .act(Action::ResetPasscode, dev::AE_FULLY_MANAGED)
        .await;
    assert_eq!(first.outcome(), "accepted", "{:?}", first.body);
    assert_eq!(world.posts(dev::AE_FULLY_MANAGED).await, 1);

    let replaced = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_FULLY_MANAGED,
            json!({"reason": reason(), "replacePending": true}),
        )
        .await;
    assert_eq!(replaced.outcome(), "accepted", "{:?}", replaced.body);
    assert_eq!(replaced.body["replacedPending"], true);
    assert!(
        replaced.body.get("replayed").is_none(),
        "{:?}",
        replaced.body
    );
    assert_eq!(world.posts(dev::AE_FULLY_MANAGED).await, 2);
}
