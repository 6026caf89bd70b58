//! The request log records what happened and never any credential.

use graph_sim::seed::{self, devices};
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn log_never_contains_secrets_tokens_assertions_or_passcodes() {
    let (a, _) = certs();
    let sim = sim_with_certificate(a).await;
    let control = sim.control();
    let token = token(&sim).await;
    let jwt = assertion(a, a, &claims(&sim));
    let assertion_token: Value = token_with_assertion(&sim, &jwt).await.json().await.unwrap();
    let assertion_token = assertion_token["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Wrong secret, secret in a query string, and a bogus bearer token too.
    token_with_secret(&sim, "wrong-secret-value").await;
    client()
        .post(format!(
            "{}?client_secret=query-secret-value",
            token_url(&sim)
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    get(
        &sim,
        "bogus-bearer-value",
        "/v1.0/deviceManagement/managedDevices",
    )
    .await;
    post(&sim, &token, &reset_path("v1.0", devices::AE_DEDICATED)).await;
    control
        .advance_action(
            devices::AE_DEDICATED,
            "resetPasscode",
            "done",
            Some("97531864"),
        )
        .await
        .unwrap();
    get(
        &sim,
        &assertion_token,
        &format!(
            "/v1.0/deviceManagement/managedDevices/{}",
            devices::AE_DEDICATED
        ),
    )
    .await;

    let raw = client()
        .get(format!("{}/_sim/requests", sim.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [
        SECRET,
        "wrong-secret-value",
        "query-secret-value",
        "bogus-bearer-value",
        token.as_str(),
        assertion_token.as_str(),
        jwt.as_str(),
        &jwt[..40],
        "97531864",
        "Bearer",
    ] {
        assert!(!raw.contains(secret), "log leaks {secret}");
    }

    let log = control.requests().await;
    assert_eq!(log.len(), 7);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    let tokens: Vec<_> = log.iter().filter(|r| r.endpoint == "token").collect();
    assert_eq!(tokens.len(), 4);
    assert_eq!(tokens[0].credential.as_deref(), Some("secret"));
    assert_eq!(tokens[1].credential.as_deref(), Some("assertion"));
    assert_eq!(tokens[2].credential.as_deref(), Some("secret"));
    assert_eq!(tokens[2].status, Some(401));
    assert_eq!(tokens[3].credential, None);
    assert_eq!(tokens[3].status, Some(400));
    assert!(tokens[3].query.contains("[redacted]"));
    assert!(tokens.iter().all(|r| r.auth.is_none()));
    let graph: Vec<_> = log.iter().filter(|r| r.endpoint == "graph").collect();
    assert_eq!(graph[0].auth.as_deref(), Some("invalid"));
    assert_eq!(graph[0].status, Some(401));
    let reset = graph[1];
    assert_eq!(reset.method, "POST");
    assert_eq!(reset.status, Some(204));
    assert_eq!(reset.device_id.as_deref(), Some(devices::AE_DEDICATED));
    assert_eq!(reset.action.as_deref(), Some("resetPasscode"));
    assert_eq!(reset.auth.as_deref(), Some("valid"));
    assert_eq!(reset.path, reset_path("v1.0", devices::AE_DEDICATED));
    assert!(reset.fault.is_none());
    assert_eq!(graph[2].action, None);
    assert_eq!(graph[2].device_id.as_deref(), Some(devices::AE_DEDICATED));

    control.clear_requests().await.unwrap();
    assert!(control.requests().await.is_empty());
    assert_eq!(seed::TENANT_ID.len(), 36);
}

#[tokio::test]
async fn log_records_decoded_query() {
    let (sim, token) = sim_with_token().await;
    sim.control().clear_requests().await.unwrap();
    get(
        &sim,
        &token,
        "/v1.0/deviceManagement/managedDevices?$filter=deviceName+eq+%27Kim%27%27s%20Pixel%27",
    )
    .await;
    let log = sim.control().requests().await;
    assert_eq!(log[0].query, "$filter=deviceName eq 'Kim''s Pixel'");
    assert_eq!(log[0].status, Some(200));
}
