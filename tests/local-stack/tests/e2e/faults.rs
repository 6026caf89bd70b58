//! Throttling, outages and POSTs whose outcome is unknown.

use crate::common::*;
use graph_sim::{DropPoint, Endpoint, FaultRule};
use passcode_core::Action;
use std::time::{Duration, Instant};

/// A fresh world with `rule` injected into the simulator.
async fn world_with_fault(rule: FaultRule) -> World {
    let world = World::start().await;
    world.add_fault(rule).await;
    world
}

/// A fresh world whose Graph answers the `resetPasscode` POSTs as `rule` says.
async fn world_with_reset_post_fault(rule: FaultRule) -> World {
    let world = World::start().await;
    world.fault_on_reset_post(rule).await;
    world
}

#[tokio::test]
async fn throttled_post_with_retry_after_is_retried_after_that_delay() {
    let world = world_with_reset_post_fault(FaultRule::status_retry_after(429, 2).times(1)).await;
    let started = Instant::now();
    world.reset_kiosk().await.assert_status(202);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    // 204 as documented; the variants profile answers 200 with a body.
    let accepted = Some(world.action_accepted_status());
    assert_eq!(world.graph_post_statuses().await, [Some(429), accepted]);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);
}

#[tokio::test]
async fn throttled_post_without_retry_after_backs_off() {
    let world = world_with_reset_post_fault(FaultRule::status(429).times(2)).await;
    world.reset_kiosk().await.assert_status(202);
    let accepted = Some(world.action_accepted_status());
    assert_eq!(
        world.graph_post_statuses().await,
        [Some(429), Some(429), accepted]
    );
}

#[tokio::test]
async fn throttling_beyond_the_deadline_answers_429_in_time() {
    let world =
        world_with_reset_post_fault(FaultRule::status_retry_after(429, 30).times(100)).await;
    let reply = world.reset_kiosk_within(Duration::from_secs(10)).await;
    reply.assert_error(429, "throttled");
    // Graph's 30 s, in whole seconds and never shorter (30.128 s from a
    // tenant that sends milliseconds is 31).
    let hint = reply.retry_after_seconds();
    assert!((30..=31).contains(&hint), "{hint}");
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 0);
}

#[tokio::test]
async fn graph_unavailable_until_the_deadline_answers_503_in_time() {
    let world =
        world_with_fault(FaultRule::status(503).endpoint(Endpoint::Graph).times(1000)).await;
    let reply = world.reset_kiosk_within(Duration::from_secs(6)).await;
    reply.assert_error(503, "graphUnavailable");
    let attempts = world.graph_calls().await;
    assert!(attempts >= 3, "retried with backoff ({attempts} calls)");
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 0);
}

#[tokio::test]
async fn a_post_dropped_after_intune_recorded_it_is_not_sent_again() {
    let world =
        world_with_reset_post_fault(FaultRule::drop_connection(DropPoint::AfterCommit).times(1))
            .await;
    world
        .reset(dev::AE_CORPORATE_WORK_PROFILE)
        .await
        .assert_outcome(202, "accepted");
    assert_eq!(
        world.posts(dev::AE_CORPORATE_WORK_PROFILE).await,
        1,
        "confirmed by re-reading, not re-sent"
    );
    assert_eq!(world.graph_post_statuses().await.len(), 1);
}

#[tokio::test]
async fn a_post_dropped_before_intune_saw_it_is_reported_not_resent() {
    let world =
        world_with_reset_post_fault(FaultRule::drop_connection(DropPoint::BeforeCommit).times(1))
            .await;
    world.reset(dev::AOSP_USERLESS).await.assert_error_saying(
        503,
        "graphUnavailable",
        "Nothing was sent again",
    );
    assert_eq!(world.posts(dev::AOSP_USERLESS).await, 0);

    // EventBridge: the same failure fails the invocation so Lambda retries...
    world.drop_next_reset_post(DropPoint::BeforeCommit).await;
    let failed = world.event_reset(dev::AOSP_USERLESS).await;
    assert_failed_with(&failed, "GraphUnavailable");
    // ...and the retry goes through exactly once.
    let retried = world.event_reset(dev::AOSP_USERLESS).await;
    assert_eq!(retried.response().unwrap()["outcome"], "accepted");
    assert_eq!(world.posts(dev::AOSP_USERLESS).await, 1);
}

#[tokio::test]
async fn graph_500_on_post_is_checked_by_reading_again() {
    let world = world_with_reset_post_fault(FaultRule::status(500).times(1)).await;
    world.reset(dev::AE_FULLY_MANAGED).await.assert_status(503);
    assert_eq!(
        world.posts(dev::AE_FULLY_MANAGED).await,
        0,
        "a 500 is not blindly re-sent"
    );
}

#[tokio::test]
async fn token_endpoint_outage_is_retried() {
    let world = world_with_fault(FaultRule::status(503).endpoint(Endpoint::Token).times(2)).await;
    world.reset_kiosk().await.assert_status(202);
    assert_eq!(world.token_requests().await.len(), 3);
}

#[tokio::test]
async fn intune_write_limit_is_respected() {
    let world = World::start().await;
    world
        .sim()
        .set_write_limit(Some(graph_sim::WriteLimit {
            max: 2,
            window_seconds: 2,
        }))
        .await
        .unwrap();
    let devices = [
        dev::AE_DEDICATED,
        dev::AE_FULLY_MANAGED,
        dev::AE_CORPORATE_WORK_PROFILE,
    ];
    for id in devices {
        let reply = world.reset(id).await;
        assert_eq!(reply.status, 202, "{id}: {:?}", reply.body);
    }
    for id in devices {
        assert_eq!(world.posts(id).await, 1);
    }
    let throttled = world
        .requests()
        .await
        .into_iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert_eq!(throttled, 1, "the third POST waited out the window once");
}

/// `wait_ms` of each "… will be retried" line the functions logged for
/// `call` ("Graph call" or "token request"): the wait the retry loop chose.
fn retry_waits(world: &World, call: &str) -> Vec<u64> {
    world
        .all_logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["call"] == call
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("will be retried"))
        })
        .filter_map(|v| v["wait_ms"].as_u64())
        .collect()
}

/// The status Entra answered each token request with, in order.
async fn token_statuses(world: &World) -> Vec<Option<u16>> {
    world
        .token_requests()
        .await
        .into_iter()
        .map(|r| r.status)
        .collect()
}

/// Graph's throttling page shows `Retry-After: 2.128`. Read as whole
/// seconds only, it fell back to a 200–400 ms backoff.
#[tokio::test]
async fn fractional_retry_after_from_graph_is_waited_out_in_full() {
    let world =
        world_with_reset_post_fault(FaultRule::status_retry_after_text(429, "2.128").times(1))
            .await;
    world.reset_kiosk().await.assert_status(202);
    assert_eq!(retry_waits(&world, "Graph call"), [2128]);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);
}

/// RFC 9110's other form: an HTTP-date, here three seconds ahead when sent.
/// The wait counts from when the function reads it, so it is a little
/// shorter than three seconds, and far longer than a backoff would be.
#[tokio::test]
async fn http_date_retry_after_from_graph_is_waited_until() {
    let world = world_with_fault(
        FaultRule::status_retry_after_date_in(503, 3)
            .method("GET")
            .endpoint(Endpoint::Graph),
    )
    .await;
    world.reset_kiosk().await.assert_status(202);
    let waits = retry_waits(&world, "Graph call");
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(
        (1500..=3000).contains(&waits[0]),
        "waited until the date, not a backoff: {waits:?}"
    );
}

/// Throttling to the end with a fractional hint: the caller is told the
/// hint rounded up to whole seconds.
#[tokio::test]
async fn a_fractional_hint_reaches_the_caller_rounded_up() {
    let world =
        world_with_reset_post_fault(FaultRule::status_retry_after_text(429, "2.128").times(100))
            .await;
    let reply = world.reset_kiosk_within(Duration::from_secs(8)).await;
    reply.assert_error(429, "throttled");
    assert_eq!(reply.headers["retry-after"], "3");
    assert_eq!(reply.body["error"]["retryAfterSeconds"], 3);
    assert!(retry_waits(&world, "Graph call").iter().all(|w| *w == 2128));
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 0);
}

#[tokio::test]
async fn token_endpoint_retry_after_in_every_form_is_honoured() {
    let world = World::start().await;
    for rule in [
        FaultRule::status_retry_after_text(503, "1.5"),
        FaultRule::status_retry_after_date_in(429, 2),
    ] {
        world.add_fault(rule.endpoint(Endpoint::Token)).await;
    }
    world.reset_kiosk().await.assert_status(202);
    assert_eq!(
        token_statuses(&world).await,
        [Some(503), Some(429), Some(200)]
    );
    let waits = retry_waits(&world, "token request");
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert_eq!(waits[0], 1500);
    assert!((500..=2000).contains(&waits[1]), "{waits:?}");
}

/// Entra answering 5xx without `Retry-After`: backed off in seconds (as
/// Microsoft's guidance asks), never hammered, then `graphUnavailable` with
/// a hint, within the deadline.
#[tokio::test]
async fn token_endpoint_down_is_backed_off_in_seconds_then_reported_with_a_hint() {
    let world =
        world_with_fault(FaultRule::status(500).endpoint(Endpoint::Token).times(1000)).await;
    let reply = world.reset_kiosk_within(Duration::from_secs(8)).await;
    reply.assert_error_saying(503, "graphUnavailable", "token endpoint");
    assert_eq!(reply.headers["retry-after"], "30");
    assert_eq!(reply.body["error"]["retryAfterSeconds"], 30);
    let tokens = token_statuses(&world).await;
    assert!(
        (2..=4).contains(&tokens.len()),
        "retried, but not hammered: {tokens:?}"
    );
    let waits = retry_waits(&world, "token request");
    assert_eq!(waits.len(), tokens.len() - 1);
    assert!(waits.iter().all(|w| *w >= 1000), "seconds apart: {waits:?}");
    assert_eq!(world.graph_calls().await, 0);
}

/// Secrets Manager unreachable: its own code, retryable, not a Graph error.
#[tokio::test]
async fn secrets_manager_outage_is_reported_as_such() {
    let mut world = World::start().await;
    // A port nothing listens on: every connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    world
        .respawn(
            Action::ResetPasscode,
            &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", unreachable.as_str())],
        )
        .await;
    world.reset_kiosk().await.assert_error_saying(
        503,
        "secretsUnavailable",
        "Secrets Manager could not be reached",
    );
    let failed = world.event_reset(dev::AE_DEDICATED).await;
    assert_failed_with(&failed, "SecretsUnavailable");
    assert_eq!(world.graph_calls().await, 0);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 0);
}
