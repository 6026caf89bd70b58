//! The idempotency record in DynamoDB (moto): repeats of a request get the
//! first answer without touching Graph, simultaneous duplicates in different
//! execution environments send one POST, and a dead or unsure invocation
//! never blocks retries for longer than its deadline.

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use graph_sim::{DropPoint, FaultRule};
use local_stack::InvokeOutcome;
use local_stack::events::{self, Caller};
use passcode_core::Action;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The table's request records (the write budget's window counters and
/// the device leases share the table).
async fn records(world: &World) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = world.idempotency_items().await;
    items.retain(|item| {
        !["budget#", "device#"]
            .iter()
            .any(|p| text(item, "id").starts_with(p))
    });
    items
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or("")
}

#[tokio::test]
async fn a_repeated_key_gets_the_first_answer_without_touching_graph() {
    let world = World::start_idempotent().await;
    let first = world.reset_keyed(dev::AE_DEDICATED, "INC0001:reset").await;
    first.assert_status(202);
    assert_eq!(first.body["replayed"], Value::Null);
    let calls_after_first = world.graph_calls().await;

    let again = world.reset_keyed(dev::AE_DEDICATED, "INC0001:reset").await;
    again.assert_status(202);
    assert_eq!(again.outcome(), "accepted");
    assert_eq!(again.body["replayed"], true);
    assert_eq!(again.body["originalRequestId"], first.body["requestId"]);
    assert_eq!(again.body["device"], first.body["device"]);
    assert_ne!(again.body["requestId"], first.body["requestId"]);
    assert_eq!(
        world.graph_calls().await,
        calls_after_first,
        "no Graph call"
    );
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);

    let items = records(&world).await;
    assert_eq!(items.len(), 1);
    assert_eq!(text(&items[0], "id"), "resetPasscode#key#INC0001:reset");
    assert_eq!(text(&items[0], "status"), "COMPLETED");
    assert!(items[0].contains_key("expiration"), "TTL attribute");

    let audit = world.audit_records();
    let replay = audit.last().unwrap();
    assert_eq!(replay["outcome"], "replayed");
    assert_eq!(replay["replayOf"], first.body["requestId"]);
}

#[tokio::test]
async fn a_key_reused_for_another_device_is_refused_and_changes_nothing() {
    let world = World::start_idempotent().await;
    let first = world.reset_keyed(dev::AE_DEDICATED, "INC0002").await;
    first.assert_status(202);
    let calls = world.graph_calls().await;
    let other = world.reset_keyed(dev::AOSP_USERLESS, "INC0002").await;
    other.assert_error(422, "idempotencyKeyReused");
    assert_eq!(world.graph_calls().await, calls);
    assert_eq!(world.posts(dev::AOSP_USERLESS).await, 0);
    // The same key for another action is another request.
    let removal = world
        .api_body(Action::RemovePasscode, keyed(dev::IOS_ADE, "INC0002"))
        .await;
    removal.assert_status(202);
}

/// The race the record exists for: the same request, at the same moment, in
/// two execution environments, while Graph is slow enough that both would
/// pass the `deviceActionResults` check.
#[tokio::test]
async fn simultaneous_duplicates_in_two_environments_send_one_post() {
    let world = World::start_idempotent().await;
    let second = world.another_process(Action::ResetPasscode).await;
    world
        .add_fault(FaultRule::delay_ms(1500).method("GET"))
        .await;
    let mut in_progress_seen = 0;
    for (round, device) in [dev::AE_DEDICATED, dev::AOSP_USERLESS]
        .into_iter()
        .enumerate()
    {
        // Round 0 with an idempotencyKey, round 1 without (derived key).
        let body = if round == 0 {
            keyed(device, "INC0003")
        } else {
            by_id(device)
        };
        let event = api_body_event(Action::ResetPasscode, &body);
        let (a, b) = tokio::join!(
            world
                .function(Action::ResetPasscode)
                .invoke(event.clone(), TIMEOUT),
            second.invoke(event.clone(), TIMEOUT),
        );
        // One of them ran; the other was turned away while it ran (409) or,
        // if it lost the race only after the first had finished, got the
        // first answer again. Never a second accepted POST.
        let (ran, other): (Vec<Reply>, Vec<Reply>) = [Reply::from(a), Reply::from(b)]
            .into_iter()
            .partition(|r| r.status == 202 && r.body["replayed"].is_null());
        assert_eq!(ran.len(), 1, "exactly one ran: {ran:?} {other:?}");
        let other = &other[0];
        match other.status {
            409 => {
                assert_eq!(other.error_code(), "requestInProgress", "{:?}", other.body);
                assert!(other.headers["retry-after"].is_string());
                in_progress_seen += 1;
            }
            _ => assert_eq!(other.body["replayed"], true, "{:?}", other.body),
        }
        assert_eq!(world.posts(device).await, 1, "round {round}");

        // Once the first has finished, the retry gets its answer.
        let retry = Reply::from(second.invoke(event, TIMEOUT).await);
        assert_eq!(
            (retry.status, retry.body["replayed"].clone()),
            (202, json!(true))
        );
        assert_eq!(world.posts(device).await, 1, "round {round}");
    }
    eprintln!("duplicates turned away while the first ran: {in_progress_seen} of 2");
}

#[tokio::test]
async fn an_eventbridge_event_delivered_twice_runs_once() {
    let world = World::start_idempotent().await;
    let detail = json!({
        "action": "removePasscode",
        "device": {"serialNumber": "F2LXK0AAAA10"},
        "reason": reason(),
        "requestedBy": "agent@contoso.com",
    });
    let event = events::eventbridge_with(
        "com.example.helpdesk",
        passcode_core::action::EVENT_DETAIL_TYPE,
        "5d7c0a8e-0000-4000-8000-00000000e001",
        &detail,
    );
    let first = world.invoke(Action::RemovePasscode, event.clone()).await;
    let again = world.invoke(Action::RemovePasscode, event).await;
    let (InvokeOutcome::Response(first), InvokeOutcome::Response(again)) =
        (first.outcome, again.outcome)
    else {
        panic!("both deliveries answer");
    };
    assert_eq!(first["outcome"], "accepted");
    assert_eq!(again["outcome"], "accepted");
    assert_eq!(again["replayed"], true);
    assert_eq!(world.posts(dev::IOS_ADE).await, 1);
    let items = records(&world).await;
    assert_eq!(
        text(&items[0], "id"),
        "removePasscode#event#5d7c0a8e-0000-4000-8000-00000000e001"
    );
}

#[tokio::test]
async fn a_record_left_by_a_dead_invocation_blocks_only_until_its_deadline() {
    let world = World::start_idempotent().await;
    let first = world.reset_keyed(dev::AE_FULLY_MANAGED, "INC0004").await;
    first.assert_status(202);
    // Rewrite it as an invocation that died mid-request: still running...
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let key = AttributeValue::S("resetPasscode#key#INC0005".into());
    let fingerprint = records(&world).await[0]["fingerprint"].clone();
    let put = async |until_ms: i128| {
        world
            .put_idempotency_item(&[
                ("id", key.clone()),
                ("status", AttributeValue::S("INPROGRESS".into())),
                (
                    "expiration",
                    AttributeValue::N((now_ms / 1000 + 3600).to_string()),
                ),
                ("inProgressUntilMs", AttributeValue::N(until_ms.to_string())),
                ("fingerprint", fingerprint.clone()),
                ("requestId", AttributeValue::S("dead-invocation".into())),
            ])
            .await
    };
    put(now_ms + 30_000).await;
    let blocked = world.reset_keyed(dev::AE_FULLY_MANAGED, "INC0005").await;
    blocked.assert_error(409, "requestInProgress");
    let wait = blocked.retry_after_seconds();
    assert!((25..=31).contains(&wait), "retry-after {wait}");

    // ...and past its deadline: the request runs (the earlier reset is
    // still pending, so the pending check answers).
    put(now_ms - 1).await;
    let retried = world.reset_keyed(dev::AE_FULLY_MANAGED, "INC0005").await;
    retried.assert_outcome(200, "alreadyPending");
    assert_eq!(world.posts(dev::AE_FULLY_MANAGED).await, 1);
}

#[tokio::test]
async fn a_request_that_sent_nothing_releases_its_key() {
    let world = World::start_idempotent().await;
    let refused = world.reset_keyed(dev::WINDOWS_DESKTOP, "INC0006").await;
    refused.assert_status(422);
    assert!(records(&world).await.is_empty(), "claim released");
    // Dry runs and reads never claim a key.
    let dry = world
        .api_body(
            Action::ResetPasscode,
            json!({"device": {"id": dev::AE_DEDICATED}, "reason": "r", "dryRun": true, "idempotencyKey": "INC0007"}),
        )
        .await;
    assert_eq!(dry.outcome(), "dryRun");
    world.status(dev::AE_DEDICATED).await.assert_status(200);
    assert!(records(&world).await.is_empty());
}

#[tokio::test]
async fn an_unknown_post_outcome_keeps_the_key_so_a_quick_retry_cannot_resend() {
    let world = World::start_idempotent().await;
    world.drop_next_reset_post(DropPoint::BeforeCommit).await;
    let first = world.reset_keyed(dev::AOSP_USERLESS, "INC0008").await;
    first.assert_error(503, "graphUnavailable");
    let retry = world.reset_keyed(dev::AOSP_USERLESS, "INC0008").await;
    retry.assert_error(409, "requestInProgress");
    assert_eq!(world.posts(dev::AOSP_USERLESS).await, 0);
    let items = records(&world).await;
    assert_eq!(text(&items[0], "status"), "INPROGRESS");
}

#[tokio::test]
async fn a_missing_table_fails_safe_before_graph() {
    let missing = [("IDEMPOTENCY_TABLE", "passcode-idempotency-missing")];
    let world = World::start_with_reset_env(&missing).await;
    let reply = world
        .api_body(Action::ResetPasscode, by_id(dev::AE_DEDICATED))
        .await;
    reply.assert_error_saying(500, "configurationError", "passcode-idempotency-missing");
    reply.assert_says("Nothing was sent");
    assert_eq!(world.graph_calls().await, 0);

    // EventBridge: the invocation fails, so Lambda retries and then sends
    // the event to the failure destination.
    let failed = world
        .event(Action::ResetPasscode, by_id(dev::AE_DEDICATED))
        .await;
    assert_failed_with(&failed, "ConfigurationError");
}

#[tokio::test]
async fn the_same_caller_and_device_within_the_window_is_one_request() {
    let world = World::start_idempotent().await;
    let first = world
        .api_body(Action::ResetPasscode, by_id(dev::AE_CORPORATE_WORK_PROFILE))
        .await;
    first.assert_status(202);
    let again = world
        .api_body(Action::ResetPasscode, by_id(dev::AE_CORPORATE_WORK_PROFILE))
        .await;
    assert_eq!(again.body["replayed"], true, "{:?}", again.body);
    // Another caller asking for the same device is another request; the
    // pending check answers it.
    let other = world
        .invoke(
            Action::ResetPasscode,
            events::api_v2(
                "POST",
                "/v1/reset-passcode",
                None,
                Some(&by_id(dev::AE_CORPORATE_WORK_PROFILE)),
                &Caller::iam("arn:aws:iam::123456789012:user/security-automation"),
            ),
        )
        .await;
    let other = Reply::from(other);
    assert_eq!(other.outcome(), "alreadyPending", "{:?}", other.body);
    assert_eq!(other.body["replayed"], Value::Null);
    assert_eq!(world.posts(dev::AE_CORPORATE_WORK_PROFILE).await, 1);
}
