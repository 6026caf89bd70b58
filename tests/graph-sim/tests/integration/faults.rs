//! Injected faults: statuses with and without Retry-After, dropped
//! connections before and after commit, delays, token endpoint faults.

use std::time::{Duration, Instant};

use graph_sim::seed::devices;
use graph_sim::{DropPoint, Endpoint, FaultRule, LoggedRequest, RunningSim};
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn status_faults_with_and_without_retry_after() {
    let (sim, token) = sim_with_token().await;
    let control = sim.control();
    let path = reset_path("v1.0", devices::AE_DEDICATED);
    control
        .add_fault(&FaultRule::status_retry_after(429, 2).path_contains("resetPasscode"))
        .await
        .unwrap();
    control
        .add_fault(&FaultRule::status(429).method("POST"))
        .await
        .unwrap();
    control
        .add_fault(&FaultRule::status_retry_after(503, 7).endpoint(Endpoint::Graph))
        .await
        .unwrap();

    let resp = post(&sim, &token, &path).await;
    assert_eq!(resp.headers()["retry-after"], "2");
    let body = assert_graph_error(resp, 429, "TooManyRequests").await;
    assert_eq!(body["error"]["message"], "Too many requests.");

    let resp = post(&sim, &token, &path).await;
    assert!(resp.headers().get("retry-after").is_none());
    assert_graph_error(resp, 429, "TooManyRequests").await;

    let resp = post(&sim, &token, &path).await;
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_graph_error(resp, 503, "ServiceUnavailable").await;

    // Faults are used up; nothing was recorded by the faulted requests.
    assert_eq!(post(&sim, &token, &path).await.status(), 204);
    assert_eq!(control.post_count(devices::AE_DEDICATED).await, 1);
    let log = control.requests().await;
    let faulted: Vec<_> = log.iter().filter_map(|r| r.fault.clone()).collect();
    assert_eq!(faulted, vec!["status:429", "status:429", "status:503"]);
}

#[tokio::test]
async fn gateway_and_server_errors_and_times() {
    let (sim, token) = sim_with_token().await;
    let control = sim.control();
    control
        .add_fault(&FaultRule::status(500).times(2))
        .await
        .unwrap();
    control.add_fault(&FaultRule::status(504)).await.unwrap();
    let list = "/beta/deviceManagement/managedDevices?$top=1";
    assert_graph_error(get(&sim, &token, list).await, 500, "InternalServerError").await;
    assert_graph_error(get(&sim, &token, list).await, 500, "InternalServerError").await;
    assert_graph_error(get(&sim, &token, list).await, 504, "GatewayTimeout").await;
    assert_eq!(get(&sim, &token, list).await.status(), 200);
    assert!(control.faults().await.unwrap().is_empty());
}

#[tokio::test]
async fn token_endpoint_faults_use_entra_shape() {
    let sim = sim().await;
    let control = sim.control();
    control.set_secrets(&[SECRET]).await.unwrap();
    control
        .add_fault(&FaultRule::status_retry_after(503, 1).endpoint(Endpoint::Token))
        .await
        .unwrap();
    let resp = token_with_secret(&sim, SECRET).await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_codes"].is_array());
    assert_eq!(token_with_secret(&sim, SECRET).await.status(), 200);
}

/// Arm `drop` (a dropped-connection rule), POST a reset of `id` and assert
/// that the connection closes without an HTTP answer and that the request
/// log names the fault `logged_as`; returns the log's entry for the reset.
async fn reset_is_dropped(
    sim: &RunningSim,
    token: &str,
    id: &str,
    drop: FaultRule,
    logged_as: &str,
) -> LoggedRequest {
    sim.control().add_fault(&drop).await.unwrap();
    let err = post_request(sim, token, &reset_path("v1.0", id))
        .send()
        .await
        .expect_err("the connection is dropped");
    assert!(err.status().is_none(), "{err:?}");
    let entry = sim.control().requests().await.into_iter().last().unwrap();
    assert_eq!(entry.fault.as_deref(), Some(logged_as));
    entry
}

#[tokio::test]
async fn drop_after_commit_records_the_action_but_sends_nothing() {
    let (sim, token) = sim_with_token().await;
    let id = devices::AE_CORPORATE_WORK_PROFILE;
    let drop = FaultRule::drop_connection(DropPoint::AfterCommit).path_contains("resetPasscode");
    let entry = reset_is_dropped(&sim, &token, id, drop, "drop:afterCommit").await;
    assert_eq!(entry.status, None);
    assert!(entry.reached_device);
    // The reset was queued all the same.
    let control = sim.control();
    let results = control.action_results(id).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["actionState"], "pending");
    assert_eq!(control.post_count(id).await, 1);
    // The server keeps serving on new connections.
    assert_eq!(
        get(&sim, &token, "/v1.0/deviceManagement/managedDevices?$top=1")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn drop_before_commit_does_nothing() {
    let (sim, token) = sim_with_token().await;
    let id = devices::AE_CORPORATE_WORK_PROFILE;
    let drop = FaultRule::drop_connection(DropPoint::BeforeCommit).method("POST");
    let entry = reset_is_dropped(&sim, &token, id, drop, "drop:beforeCommit").await;
    assert_eq!(entry.device_id.as_deref(), Some(id));
    let control = sim.control();
    assert!(control.action_results(id).await.unwrap().is_empty());
    assert_eq!(control.post_count(id).await, 0);
}

#[tokio::test]
async fn delay_then_normal_answer() {
    let (sim, token) = sim_with_token().await;
    sim.control()
        .add_fault(&FaultRule::delay_ms(300))
        .await
        .unwrap();
    let started = Instant::now();
    let resp = get(&sim, &token, "/v1.0/deviceManagement/managedDevices?$top=1").await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let entry = sim.control().requests().await.into_iter().last().unwrap();
    assert_eq!(entry.fault.as_deref(), Some("delay:300ms"));
    assert_eq!(entry.status, Some(200));
}

#[tokio::test]
async fn fault_rules_are_validated_and_clearable() {
    let sim = sim().await;
    let control = sim.control();
    let resp = client()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&serde_json::json!({"fault": {"explode": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    control
        .add_fault(&FaultRule::status(500).times(5))
        .await
        .unwrap();
    assert_eq!(control.faults().await.unwrap()[0]["remaining"], 5);
    control.clear_faults().await.unwrap();
    assert!(control.faults().await.unwrap().is_empty());
}
