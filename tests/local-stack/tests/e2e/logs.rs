//! What the functions log: nothing secret in any line (a full run at
//! `trace` level, both secret forms, a rotation, a finished Android reset
//! with its passcode returned, searched for every secret, token, assertion,
//! key and passcode); the Lambda request id on every line an invocation
//! writes; and an audit line per invocation that CloudWatch can read as an
//! Embedded Metric Format document.

use crate::common::*;
use graph_sim::FaultRule;
use local_stack::stack::SecretForm;
use passcode_core::Action;
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn full_run(form: SecretForm) {
    let world = World::start_with(form, &[("AWS_LAMBDA_LOG_LEVEL", "trace")]).await;
    let sim = world.sim();
    let passcode = "73915208";

    assert_eq!(world.reset_kiosk().await.status, 202);
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
            short_reason(),
        )
        .await;
    // Token expiry and a refused call, so the error paths log too.
    sim.expire_tokens().await.unwrap();
    world.reset(dev::AOSP_USERLESS).await;
    sim.set_secrets(&["not-the-stored-one"]).await.unwrap();
    sim.set_certificate(None).await.unwrap();
    sim.expire_tokens().await.unwrap();
    let refused = world.reset(dev::AE_FULLY_MANAGED).await;
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

    assert_request_id_on_every_line(&world);
}

/// Every line a function writes while it handles an invocation names that
/// invocation: the application's lines (with `level`) carry `requestId`, and
/// each such id is one an audit record was written for. Lines written before
/// the first invocation (start-up) have no invocation to name.
fn assert_request_id_on_every_line(world: &World) {
    let audited: BTreeSet<String> = world
        .audit_records()
        .iter()
        .map(|r| r["requestId"].as_str().unwrap().to_string())
        .collect();
    assert!(audited.len() >= 7, "one audit record per invocation");
    let mut seen = BTreeSet::new();
    for action in Action::ALL {
        let mut invocation_started = false;
        for line in world.function(action).logs() {
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                panic!(
                    "{}: a line that is not JSON: {line}",
                    action.function_name()
                );
            };
            if value["type"] == "audit" {
                invocation_started = true;
                continue;
            }
            if value.get("level").is_none() {
                continue;
            }
            match value["requestId"].as_str() {
                Some(id) => {
                    invocation_started = true;
                    assert!(audited.contains(id), "{id} matches no invocation: {line}");
                    seen.insert(id.to_string());
                }
                None => assert!(
                    !invocation_started,
                    "{}: a line without requestId after the first invocation: {line}",
                    action.function_name()
                ),
            }
        }
    }
    assert!(
        seen.len() >= 5,
        "most invocations log at trace level ({} did)",
        seen.len()
    );
}

/// CloudWatch's reading of an Embedded Metric Format document: a `_aws`
/// block with a millisecond timestamp and one directive whose metrics and
/// dimensions all name top-level fields (metrics numbers, dimensions strings).
fn assert_emf(record: &Value) {
    let aws = &record["_aws"];
    assert!(
        aws["Timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000)
    );
    let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
    assert_eq!(directives.len(), 1);
    let directive = &directives[0];
    assert_eq!(directive["Namespace"], "IntunePasscode");
    let metrics: BTreeSet<&str> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m["Unit"].is_string(), "{m}");
            m["Name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        metrics,
        BTreeSet::from([
            "durationMs",
            "graphCalls",
            "graphRetries",
            "graphThrottledWaits"
        ])
    );
    for name in &metrics {
        assert!(record[name].is_u64(), "metric {name} is a number: {record}");
    }
    let sets = directive["Dimensions"].as_array().unwrap();
    assert!(!sets.is_empty());
    for set in sets {
        let keys = set.as_array().unwrap();
        assert!(!keys.is_empty() && keys.len() <= 30);
        for key in keys {
            let key = key.as_str().unwrap();
            assert!(
                record[key].is_string(),
                "dimension {key} is a field: {record}"
            );
        }
    }
    let names = |set: &Value| -> Vec<String> {
        set.as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&sets[0]), ["function", "outcome"]);
    if record.get("errorCode").is_some() {
        assert_eq!(sets.len(), 2);
        assert_eq!(names(&sets[1]), ["function", "outcome", "errorCode"]);
    } else {
        assert_eq!(sets.len(), 1, "no errorCode dimension without one");
    }
}

#[tokio::test]
async fn audit_lines_are_emf_with_graph_counts() {
    let world = World::start().await;
    world
        .fault_on_reset_post(FaultRule::status_retry_after(429, 0).times(1))
        .await;
    let throttled_once = world.reset_kiosk().await;
    assert_eq!(throttled_once.status, 202);
    let unknown = world.status("00000000-0000-0000-0000-00000000dead").await;
    assert_eq!(unknown.error_code(), "deviceNotFound");

    let records = world.audit_records();
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_emf(record);
    }
    let reset = records.iter().find(|r| r["outcome"] == "accepted").unwrap();
    assert_eq!(reset["function"], "reset-passcode");
    assert_eq!(reset["graphRetries"], 1, "{reset}");
    assert_eq!(reset["graphThrottledWaits"], 1, "{reset}");
    assert!(
        reset["graphCalls"].as_u64().unwrap() >= 3,
        "look-up, refused POST, POST: {reset}"
    );
    let missing = records.iter().find(|r| r["outcome"] == "rejected").unwrap();
    assert_eq!(missing["errorCode"], "deviceNotFound");
    assert!(missing["graphCalls"].as_u64().unwrap() >= 1, "{missing}");
    assert_eq!(missing["graphRetries"], 0);
}

one_test_per_case! {
    full_run:
    no_secret_reaches_the_logs_with_a_client_secret => SecretForm::ClientSecret,
    no_secret_reaches_the_logs_with_a_certificate => SecretForm::Certificate,
}
