//! Device actions: recording, outcomes, refusals, 411 and the write throttle.

use std::io::{Read, Write};

use graph_sim::WriteLimit;
use graph_sim::seed::devices;
use serde_json::Value;

use crate::common::*;

fn is_graph_timestamp(s: &str) -> bool {
    // 2026-11-26T05:10:11.1234567Z
    s.len() == 28
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

#[tokio::test]
async fn reset_records_pending_then_done_with_passcode() {
    let (sim, token) = sim_with_token().await;
    let control = sim.control();
    let id = devices::AE_DEDICATED;

    let resp = post(&sim, &token, &reset_path("v1.0", id)).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key("request-id"));
    assert_eq!(control.post_count(id).await, 1);

    let device = get_json(
        &sim,
        &token,
        &format!("/v1.0/deviceManagement/managedDevices/{id}?$select=id,deviceActionResults"),
    )
    .await;
    let results = device["deviceActionResults"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let entry = &results[0];
    assert_eq!(
        entry["@odata.type"],
        "#microsoft.graph.resetPasscodeActionResult"
    );
    assert_eq!(entry["actionName"], "resetPasscode");
    assert_eq!(entry["actionState"], "pending");
    assert_eq!(entry["passcode"], Value::Null);
    assert_eq!(entry["errorCode"], 0);
    assert!(
        is_graph_timestamp(entry["startDateTime"].as_str().unwrap()),
        "{entry}"
    );
    assert_eq!(entry["startDateTime"], entry["lastUpdatedDateTime"]);

    // The list still shows no action results.
    let list = get_json(
        &sim,
        &token,
        "/v1.0/deviceManagement/managedDevices?$filter=serialNumber eq 'R58N10AE001'",
    )
    .await;
    assert_eq!(
        list["value"][0]["deviceActionResults"],
        serde_json::json!([])
    );

    let done = control
        .advance_action(id, "resetPasscode", "done", Some("24681357"))
        .await
        .unwrap();
    assert_eq!(done["actionState"], "done");
    assert_eq!(done["passcode"], "24681357");
    let device = get_json(
        &sim,
        &token,
        &format!("/beta/deviceManagement/managedDevices/{id}"),
    )
    .await;
    assert_eq!(device["deviceActionResults"][0]["actionState"], "done");
    assert_eq!(device["deviceActionResults"][0]["passcode"], "24681357");
}

#[tokio::test]
async fn android_done_generates_a_passcode_and_latest_entry_wins() {
    let (sim, token) = sim_with_token().await;
    let control = sim.control();
    let id = devices::AE_FULLY_MANAGED;
    assert_eq!(
        post(&sim, &token, &reset_path("beta", id)).await.status(),
        204
    );
    let done = control
        .advance_action(id, "resetPasscode", "done", None)
        .await
        .unwrap();
    let passcode = done["passcode"].as_str().unwrap();
    assert_eq!(passcode.len(), 8);
    assert!(passcode.chars().all(|c| c.is_ascii_digit()));

    // A second reset replaces the finished entry with a new pending one.
    assert_eq!(
        post(&sim, &token, &reset_path("beta", id)).await.status(),
        204
    );
    let results = control.action_results(id).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["actionState"], "pending");
    assert_eq!(results[0]["passcode"], Value::Null);
    assert_eq!(control.post_count(id).await, 2);

    // iOS removal completes without a passcode.
    assert_eq!(
        post(&sim, &token, &reset_path("v1.0", devices::IOS_ADE))
            .await
            .status(),
        204
    );
    let done = control
        .advance_action(devices::IOS_ADE, "resetPasscode", "done", None)
        .await
        .unwrap();
    assert_eq!(done["passcode"], Value::Null);

    // Other outcomes and bad input to the control endpoint.
    let failed = control
        .advance_action(id, "resetPasscode", "notSupported", None)
        .await
        .unwrap();
    assert_eq!(failed["actionState"], "notSupported");
    assert!(
        control
            .advance_action(id, "remoteLock", "done", None)
            .await
            .is_err()
    );
    assert!(
        control
            .advance_action(id, "resetPasscode", "finished", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn other_actions_are_recorded_with_their_types() {
    let (sim, token) = sim_with_token().await;
    let id = devices::MACOS;
    let lock = format!("/v1.0/deviceManagement/managedDevices/{id}/remoteLock");
    assert_eq!(post(&sim, &token, &lock).await.status(), 204);
    let recover = format!(
        "/v1.0/deviceManagement/managedDevices/{}/recoverPasscode",
        devices::WINDOWS_10_MOBILE
    );
    assert_eq!(post(&sim, &token, &recover).await.status(), 204);
    let control = sim.control();
    let lock_entry = &control.action_results(id).await.unwrap()[0];
    assert_eq!(
        lock_entry["@odata.type"],
        "#microsoft.graph.remoteLockActionResult"
    );
    assert_eq!(lock_entry["actionName"], "remoteLock");
    let recover_entry = &control
        .action_results(devices::WINDOWS_10_MOBILE)
        .await
        .unwrap()[0];
    assert_eq!(
        recover_entry["@odata.type"],
        "#microsoft.graph.deviceActionResult"
    );
    assert_eq!(recover_entry["actionName"], "recoverPasscode");
    assert_eq!(control.post_count(id).await, 0);
    assert_eq!(control.action_count(id, "remoteLock").await, 1);
}

#[tokio::test]
async fn refusals() {
    let (sim, token) = sim_with_token().await;
    let control = sim.control();
    for id in [
        devices::WINDOWS_DESKTOP,
        devices::MACOS,
        devices::RETIRE_PENDING,
    ] {
        let resp = post(&sim, &token, &reset_path("v1.0", id)).await;
        let body = assert_graph_error(resp, 400, "BadRequest").await;
        let nested: Value =
            serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
        assert!(
            nested["Message"]
                .as_str()
                .unwrap()
                .contains("resetPasscode"),
            "{nested}"
        );
        assert!(control.action_results(id).await.unwrap().is_empty());
        // The request reached the device, so it counts as a POST to it.
        assert_eq!(control.post_count(id).await, 1, "{id}");
    }
    let missing = "11111111-0000-4000-8000-999999999999";
    assert_graph_error(
        post(&sim, &token, &reset_path("v1.0", missing)).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_graph_error(
        post(&sim, &token, &reset_path("v1.0", "not-a-guid")).await,
        400,
        "BadRequest",
    )
    .await;

    // A body is refused and nothing is recorded.
    let resp = client()
        .post(url(&sim, &reset_path("v1.0", devices::AE_DEDICATED)))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_graph_error(resp, 400, "BadRequest").await;
    assert!(
        control
            .action_results(devices::AE_DEDICATED)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(control.post_count(devices::AE_DEDICATED).await, 0);

    // GET on an action path.
    let resp = get(&sim, &token, &reset_path("v1.0", devices::AE_DEDICATED)).await;
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn reqwest_post_without_explicit_length_is_411() {
    // reqwest omits Content-Length on an empty body unless the header is set.
    let (sim, token) = sim_with_token().await;
    let resp = client()
        .post(url(&sim, &reset_path("v1.0", devices::AE_DEDICATED)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_graph_error(resp, 411, "LengthRequired").await;
    let log = sim.control().requests().await;
    assert_eq!(log.last().unwrap().status, Some(411));
    assert_eq!(log.last().unwrap().auth, None);
    assert_eq!(sim.control().post_count(devices::AE_DEDICATED).await, 0);
}

#[tokio::test]
async fn post_without_length_is_411() {
    let (sim, token) = sim_with_token().await;
    let addr = sim.addr();
    let path = reset_path("v1.0", devices::AE_DEDICATED);
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 411"), "{response}");
    assert!(response.contains("LengthRequired"), "{response}");
    assert!(
        sim.control()
            .action_results(devices::AE_DEDICATED)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn write_limit_throttles_with_retry_after() {
    let (sim, token) = sim_with_token().await;
    let control = sim.control();
    control
        .set_write_limit(Some(WriteLimit {
            max: 2,
            window_seconds: 3,
        }))
        .await
        .unwrap();
    let path = reset_path("v1.0", devices::AE_DEDICATED);
    assert_eq!(post(&sim, &token, &path).await.status(), 204);
    assert_eq!(post(&sim, &token, &path).await.status(), 204);
    let resp = post(&sim, &token, &path).await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry), "{retry}");
    let body = assert_graph_error(resp, 429, "TooManyRequests").await;
    assert_eq!(body["error"]["message"], "Too many requests.");
    // Throttled requests did nothing and did not count.
    assert_eq!(control.post_count(devices::AE_DEDICATED).await, 2);
    // Reads are not throttled by the write limit.
    assert_eq!(
        get(&sim, &token, "/v1.0/deviceManagement/managedDevices?$top=1")
            .await
            .status(),
        200
    );

    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    assert_eq!(post(&sim, &token, &path).await.status(), 204);
    assert_eq!(
        control.settings().await.unwrap().write_limit,
        Some(WriteLimit {
            max: 2,
            window_seconds: 3
        })
    );
    control.set_write_limit(None).await.unwrap();
    for _ in 0..3 {
        assert_eq!(post(&sim, &token, &path).await.status(), 204);
    }
}
