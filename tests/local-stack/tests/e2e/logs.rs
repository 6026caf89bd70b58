//! Nothing secret in any log line: a full run at `trace` level (both secret
//! forms, a rotation, a finished Android reset with its passcode returned)
//! is searched for every secret, token, assertion, key and passcode.

use crate::common::*;
use local_stack::stack::SecretForm;
use passcode_core::Action;
use serde_json::json;

async fn full_run(form: SecretForm) {
    let world = World::start_with(form, &[("AWS_LAMBDA_LOG_LEVEL", "trace")]).await;
    let sim = world.sim();
    let passcode = "73915208";

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
    sim.advance_action(dev::AE_DEDICATED, "resetPasscode", "done", Some(passcode))
        .await
        .unwrap();
    let revealed = world
        .api_body(
            Action::RevealPasscode,
            json!({"device": {"id": dev::AE_DEDICATED}, "reason": "r", "ticket": "INC1"}),
        )
        .await;
    assert_eq!(
        revealed.body["passcode"], passcode,
        "the passcode does reach the caller"
    );
    world
        .event(Action::Status, json!({"device": {"id": dev::AE_DEDICATED}}))
        .await;
    world
        .event(
            Action::RemovePasscode,
            json!({"device": {"serialNumber": "F2LXK0AAAA10"}, "reason": "r"}),
        )
        .await;
    world
        .api_path(
            Action::ResetWindowsPin,
            dev::WINDOWS_10_MOBILE,
            json!({"reason": "r"}),
        )
        .await;
    // Token expiry and a refused call, so the error paths log too.
    sim.expire_tokens().await.unwrap();
    world
        .api_path(
            Action::ResetPasscode,
            dev::AOSP_USERLESS,
            json!({"reason": "r"}),
        )
        .await;
    sim.set_secrets(&["not-the-stored-one"]).await.unwrap();
    sim.set_certificate(None).await.unwrap();
    sim.expire_tokens().await.unwrap();
    let refused = world
        .api_path(
            Action::ResetPasscode,
            dev::AE_FULLY_MANAGED,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(refused.error_code(), "configurationError");

    let logs = world.all_logs();
    assert!(logs.len() > 20, "the run logged ({} lines)", logs.len());
    assert!(
        logs.iter()
            .any(|l| l.contains("\"level\":\"TRACE\"") || l.contains("\"level\":\"DEBUG\"")),
        "debug output is on"
    );

    let mut forbidden: Vec<String> = world.stack.secret_values();
    forbidden.push(passcode.to_string());
    let tokens = sim.issued_tokens().await.unwrap();
    assert!(!tokens.is_empty());
    forbidden.extend(tokens);
    let text = logs.join("\n");
    for secret in &forbidden {
        assert!(
            !text.contains(secret.as_str()),
            "a secret value appears in the logs"
        );
    }
    for marker in [
        "PRIVATE KEY",
        "client_assertion=",
        "eyJ",
        "Bearer ",
        "\"passcode\"",
    ] {
        assert!(!text.contains(marker), "{marker:?} appears in the logs");
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs_with_a_client_secret() {
    full_run(SecretForm::ClientSecret).await;
}

#[tokio::test]
async fn no_secret_reaches_the_logs_with_a_certificate() {
    full_run(SecretForm::Certificate).await;
}
