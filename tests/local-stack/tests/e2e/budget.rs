//! The tenant-wide write budget: every execution environment takes a write
//! from one DynamoDB counter per two-second window before its POST, so
//! together they pace themselves instead of meeting Intune's 429.

use super::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use passcode_core::Action;
use serde_json::json;
use std::time::Duration;

/// One write per two-second window (the smallest budget there is).
const ONE_PER_WINDOW: &[(&str, &str)] = &[("WRITE_BUDGET_PER_20S", "10")];

fn unix_ms(at: &str) -> i128 {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 time");
    t.unix_timestamp_nanos() / 1_000_000
}

#[tokio::test]
async fn environments_share_the_budget_and_pace_their_posts() {
    let mut world = World::start_idempotent().await;
    world.respawn(Action::ResetPasscode, ONE_PER_WINDOW).await;
    world.respawn(Action::RemovePasscode, ONE_PER_WINDOW).await;
    let other = world
        .stack
        .spawn(Action::ResetPasscode, ONE_PER_WINDOW)
        .await
        .unwrap();

    // Four writes at once from three environments of two functions.
    let body = |id: &str| api_body_event(Action::ResetPasscode, &by_id(id));
    let remove = api_body_event(Action::RemovePasscode, &by_id(dev::IOS_ADE));
    let (a, b, c, d) = tokio::join!(
        world.invoke(Action::ResetPasscode, body(dev::AE_DEDICATED)),
        other.invoke(body(dev::AE_FULLY_MANAGED), TIMEOUT),
        world.invoke(Action::RemovePasscode, remove),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            other.invoke(body(dev::AOSP_USERLESS), TIMEOUT).await
        },
    );
    for invocation in [a, b, c, d] {
        let reply = Reply::from(invocation);
        assert_eq!(reply.outcome(), "accepted", "{:?}", reply.body);
    }
    let posts: Vec<String> = world
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method == "POST" && r.device_id.is_some())
        .map(|r| r.at)
        .collect();
    assert_eq!(posts.len(), 4);
    // The budget counts a write when it is taken: four windows, one each.
    let mut taken: Vec<(String, String)> = world
        .idempotency_items()
        .await
        .iter()
        .filter_map(|item| {
            let id = item.get("id")?.as_s().ok()?;
            let writes = item.get("writes")?.as_n().ok()?;
            id.starts_with("budget#writes#")
                .then(|| (id.clone(), writes.clone()))
        })
        .collect();
    taken.sort();
    assert_eq!(taken.len(), 4, "four windows: {taken:?}");
    assert!(taken.iter().all(|(_, n)| n == "1"), "{taken:?}");
    // Graph sees them spread over at least three window boundaries. (Not
    // one per window of arrival time: a write taken in a window's last
    // milliseconds reaches Graph in the next one, beside that window's own.)
    let mut at: Vec<i128> = posts.iter().map(|at| unix_ms(at)).collect();
    at.sort();
    assert!(
        at[3] - at[0] >= 3500,
        "paced over at least three windows: {posts:?}"
    );
}

#[tokio::test]
async fn a_spent_budget_answers_throttled_and_sends_nothing() {
    let mut world = World::start_idempotent().await;
    world.respawn(Action::ResetPasscode, ONE_PER_WINDOW).await;
    // Another app registration's burst used up the next 30 seconds.
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let first = now_ms - now_ms % 2000;
    for n in 0..15 {
        let id = format!("budget#writes#{}", first + n * 2000);
        world
            .put_idempotency_item(&[
                ("id", AttributeValue::S(id)),
                ("writes", AttributeValue::N("1".into())),
            ])
            .await;
    }
    let reply = Reply::from(
        world
            .invoke_within(
                Action::ResetPasscode,
                api_body_event(Action::ResetPasscode, &by_id(dev::AE_DEDICATED)),
                Duration::from_secs(8),
            )
            .await,
    );
    reply.assert_error(429, "throttled");
    reply.assert_says("WRITE_BUDGET_PER_20S");
    assert!(
        reply.headers["retry-after"].is_string(),
        "{:?}",
        reply.headers
    );
    assert_eq!(world.total_posts().await, 0);
    // Nothing was sent, so the idempotency claim was given back: a retry
    // later runs the request.
    assert!(
        world
            .audit_records()
            .iter()
            .any(|a| a["errorCode"] == json!("throttled")),
        "audited"
    );
}
