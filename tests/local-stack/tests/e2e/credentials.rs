//! Graph app credentials: both secret forms, broken and wrong secrets, token
//! expiry, rotation, missing permissions, and configuration at init.

use crate::common::*;
use local_stack::InvokeOutcome;
use local_stack::stack::SecretForm;
use passcode_core::Action;
use serde_json::json;

#[tokio::test]
async fn certificate_credentials_work_end_to_end() {
    let world = World::start_with(SecretForm::Certificate, &[]).await;
    let reply = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_DEDICATED,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let token_calls: Vec<_> = world
        .sim()
        .requests()
        .await
        .into_iter()
        .filter(|r| r.endpoint == "token")
        .collect();
    assert_eq!(token_calls.len(), 1);
    assert_eq!(token_calls[0].credential.as_deref(), Some("assertion"));
    assert_eq!(token_calls[0].status, Some(200));
}

#[tokio::test]
async fn one_secret_read_and_one_token_serve_many_invocations() {
    let world = World::start().await;
    for id in [dev::AE_DEDICATED, dev::AE_FULLY_MANAGED, dev::AOSP_USERLESS] {
        assert_eq!(
            world
                .api_path(Action::ResetPasscode, id, json!({"reason": "r"}))
                .await
                .status,
            202
        );
    }
    let tokens = world
        .sim()
        .requests()
        .await
        .into_iter()
        .filter(|r| r.endpoint == "token")
        .count();
    assert_eq!(tokens, 1, "token cached across invocations");
    let reads = world
        .function(Action::ResetPasscode)
        .logs()
        .iter()
        .filter(|l| l.contains("read Graph credentials from Secrets Manager"))
        .count();
    assert_eq!(reads, 1, "secret cached across invocations");
}

#[tokio::test]
async fn malformed_secret_is_a_configuration_error_that_names_no_value() {
    let world = World::start().await;
    world
        .stack
        .moto
        .put_secret(
            &world.stack.secret_name,
            r#"{"tenantId": "t", "clientId": "c", "clientSecret": 73737373}"#,
        )
        .await
        .unwrap();
    let reply = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_DEDICATED,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (500, "configurationError"),
        "{:?}",
        reply.body
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("clientSecret") && message.contains("must be a string"),
        "{message}"
    );
    assert!(!message.contains("73737373"));

    world
        .stack
        .moto
        .put_secret(&world.stack.secret_name, "not json at all")
        .await
        .unwrap();
    let ev = world
        .event(
            Action::ResetPasscode,
            json!({"device": {"id": dev::AE_DEDICATED}, "reason": "r"}),
        )
        .await;
    assert_failed_with(&ev, "ConfigurationError");
    assert_eq!(world.graph_calls().await, 0);
}

#[tokio::test]
async fn missing_secret_names_the_secret_and_the_fix() {
    let mut world = World::start().await;
    world
        .respawn(
            Action::ResetPasscode,
            &[("GRAPH_SECRET_ID", "passcode/does-not-exist")],
        )
        .await;
    let reply = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_DEDICATED,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (500, "configurationError")
    );
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("passcode/does-not-exist")
    );
}

#[tokio::test]
async fn wrong_client_secret_is_refused_without_touching_graph() {
    let world = World::start().await;
    world
        .sim()
        .set_secrets(&["a-different-secret-value"])
        .await
        .unwrap();
    let reply = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_DEDICATED,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (500, "configurationError"),
        "{:?}",
        reply.body
    );
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AADSTS7000215")
    );
    assert_eq!(world.graph_calls().await, 0);
    let tokens = world
        .sim()
        .requests()
        .await
        .into_iter()
        .filter(|r| r.endpoint == "token")
        .count();
    assert_eq!(
        tokens, 2,
        "tried once more after re-reading the secret, then stopped"
    );
}

#[tokio::test]
async fn expired_token_is_renewed_transparently() {
    let world = World::start().await;
    assert_eq!(
        world
            .api_path(
                Action::ResetPasscode,
                dev::AE_DEDICATED,
                json!({"reason": "r"})
            )
            .await
            .status,
        202
    );
    world.sim().expire_tokens().await.unwrap();
    let reply = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_FULLY_MANAGED,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let requests = world.sim().requests().await;
    assert!(
        requests
            .iter()
            .any(|r| r.auth.as_deref() == Some("expired") && r.status == Some(401))
    );
    assert_eq!(requests.iter().filter(|r| r.endpoint == "token").count(), 2);
}

#[tokio::test]
async fn short_token_lifetimes_are_refreshed_before_expiry() {
    let world = World::start().await;
    world.sim().set_token_lifetime_seconds(2).await.unwrap();
    assert_eq!(
        world
            .api_path(
                Action::ResetPasscode,
                dev::AE_DEDICATED,
                json!({"reason": "r"})
            )
            .await
            .status,
        202
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        world
            .api_path(
                Action::ResetPasscode,
                dev::AE_FULLY_MANAGED,
                json!({"reason": "r"})
            )
            .await
            .status,
        202
    );
    let requests = world.sim().requests().await;
    assert_eq!(requests.iter().filter(|r| r.endpoint == "token").count(), 2);
    assert!(
        !requests.iter().any(|r| r.status == Some(401)),
        "no call was made with an expired token"
    );
}

#[tokio::test]
async fn a_rotated_secret_is_picked_up_without_a_restart() {
    let world = World::start().await;
    assert_eq!(
        world
            .api_path(
                Action::ResetPasscode,
                dev::AE_DEDICATED,
                json!({"reason": "r"})
            )
            .await
            .status,
        202
    );
    // Rotation: the app gets a new secret, the old one is revoked, Secrets Manager has the new value.
    let new_secret = "rotated-secret-value-7f1c2d";
    world.sim().set_secrets(&[new_secret]).await.unwrap();
    world.sim().expire_tokens().await.unwrap();
    let rotated = json!({"tenantId": graph_sim::seed::TENANT_ID, "clientId": graph_sim::seed::CLIENT_ID, "clientSecret": new_secret});
    world
        .stack
        .moto
        .put_secret(&world.stack.secret_name, &rotated.to_string())
        .await
        .unwrap();

    let reply = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_FULLY_MANAGED,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let tokens: Vec<_> = world
        .sim()
        .requests()
        .await
        .into_iter()
        .filter(|r| r.endpoint == "token")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        tokens,
        [Some(200), Some(200)],
        "old token refused by Graph, secret re-read, new token issued"
    );
    assert!(!world.all_logs().iter().any(|l| l.contains(new_secret)));
}

#[tokio::test]
async fn missing_graph_permission_says_which() {
    let world = World::start().await;
    world
        .sim()
        .set_roles(&[graph_sim::seed::ROLE_READ_ALL])
        .await
        .unwrap();
    let reply = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_DEDICATED,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (500, "configurationError"),
        "{:?}",
        reply.body
    );
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DeviceManagementManagedDevices.PrivilegedOperations.All")
    );
}

#[tokio::test]
async fn bad_configuration_stops_the_function_at_init_with_one_line() {
    for (env, expected) in [
        (vec![], "GRAPH_SECRET_ID is not set"),
        (
            vec![("GRAPH_SECRET_ID", "s"), ("GRAPH_CLOUD", "mars")],
            "GRAPH_CLOUD",
        ),
        (
            vec![
                ("GRAPH_SECRET_ID", "s"),
                ("GRAPH_ENDPOINT", "http://graph.example.com"),
            ],
            "only allowed for loopback",
        ),
    ] {
        let mut spec = local_stack::FunctionSpec::new("reset-passcode");
        for (k, v) in env {
            spec = spec.with_env(k, v);
        }
        let process = local_stack::FunctionProcess::spawn(spec).await.unwrap();
        let inv = process
            .invoke(json!({}), std::time::Duration::from_secs(10))
            .await;
        match &inv.outcome {
            InvokeOutcome::Crashed(_) | InvokeOutcome::Error { .. } => {}
            other => panic!("expected the function to stop at init, got {other:?}"),
        }
        let logs = process.logs();
        let config_lines: Vec<_> = logs
            .iter()
            .filter(|l| l.contains("configuration error"))
            .collect();
        assert_eq!(config_lines.len(), 1, "{logs:?}");
        assert!(config_lines[0].contains(expected), "{}", config_lines[0]);
    }
}
