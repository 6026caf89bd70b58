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
    world.reset_kiosk().await.assert_status(202);
    let token_calls = world.token_requests().await;
    assert_eq!(token_calls.len(), 1);
    assert_eq!(token_calls[0].credential.as_deref(), Some("assertion"));
    assert_eq!(token_calls[0].status, Some(200));
}

#[tokio::test]
async fn one_secret_read_and_one_token_serve_many_invocations() {
    let world = World::start().await;
    for id in [dev::AE_DEDICATED, dev::AE_FULLY_MANAGED, dev::AOSP_USERLESS] {
        world.reset(id).await.assert_status(202);
    }
    assert_eq!(
        world.token_requests().await.len(),
        1,
        "token cached across invocations"
    );
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
        .put_secret(r#"{"tenantId": "t", "clientId": "c", "clientSecret": 73737373}"#)
        .await;
    let reply = world.reset_kiosk().await;
    reply.assert_error(500, "configurationError");
    reply.assert_says("clientSecret");
    reply.assert_says("must be a string");
    assert!(!reply.error_message().contains("73737373"));

    world.put_secret("not json at all").await;
    let ev = world.event_reset(dev::AE_DEDICATED).await;
    assert_failed_with(&ev, "ConfigurationError");
    assert_eq!(world.graph_calls().await, 0);
}

#[tokio::test]
async fn missing_secret_names_the_secret_and_the_fix() {
    let world =
        World::start_with_reset_env(&[("GRAPH_SECRET_ID", "passcode/does-not-exist")]).await;
    world.reset_kiosk().await.assert_error_saying(
        500,
        "configurationError",
        "passcode/does-not-exist",
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
    world
        .reset_kiosk()
        .await
        .assert_error_saying(500, "configurationError", "AADSTS7000215");
    assert_eq!(world.graph_calls().await, 0);
    assert_eq!(
        world.token_requests().await.len(),
        2,
        "tried once more after re-reading the secret, then stopped"
    );
}

#[tokio::test]
async fn expired_token_is_renewed_transparently() {
    let world = World::start().await;
    world.reset_kiosk().await.assert_status(202);
    world.sim().expire_tokens().await.unwrap();
    world.reset(dev::AE_FULLY_MANAGED).await.assert_status(202);
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
    world.reset_kiosk().await.assert_status(202);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    world.reset(dev::AE_FULLY_MANAGED).await.assert_status(202);
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
    world.reset_kiosk().await.assert_status(202);
    // Rotation: the app gets a new secret, the old one is revoked, Secrets Manager has the new value.
    let new_secret = "rotated-secret-value-7f1c2d";
    world.sim().set_secrets(&[new_secret]).await.unwrap();
    world.sim().expire_tokens().await.unwrap();
    let rotated = json!({"tenantId": graph_sim::seed::TENANT_ID, "clientId": graph_sim::seed::CLIENT_ID, "clientSecret": new_secret});
    world.put_secret(&rotated.to_string()).await;

    world.reset(dev::AE_FULLY_MANAGED).await.assert_status(202);
    let tokens: Vec<_> = world
        .token_requests()
        .await
        .into_iter()
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
    world.reset_kiosk().await.assert_error_saying(
        500,
        "configurationError",
        "DeviceManagementManagedDevices.PrivilegedOperations.All",
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

/// How long a test certificate is valid.
enum Validity {
    /// From now for this many days.
    Days(u32),
    /// January 2025 only: long expired.
    Expired,
}

/// An RSA key (PKCS#8 PEM) and a self-signed certificate made with openssl
/// for this test: from now, the local stack's own generator; long expired,
/// `openssl ca`, which takes any start and end date.
async fn certificate(validity: Validity) -> (String, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let days = match validity {
        Validity::Days(days) => days,
        Validity::Expired => return expired_certificate(dir.path()),
    };
    local_stack::stack::self_signed(dir.path(), days)
        .await
        .expect("openssl makes a certificate")
}

fn expired_certificate(dir: &std::path::Path) -> (String, String) {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (key, cert) = (path("key.pem"), path("cert.pem"));
    // `openssl req -x509` only dates from now; `openssl ca` takes
    // any start and end date.
    std::fs::create_dir(dir.join("db")).unwrap();
    std::fs::write(dir.join("db/index.txt"), "").unwrap();
    std::fs::write(
                dir.join("ca.cnf"),
                "[ca]\ndefault_ca = local\n[local]\ndatabase = db/index.txt\nnew_certs_dir = db\nserial = db/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n",
            )
            .unwrap();
    let csr = path("req.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=expired",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    openssl(&[
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-selfsign",
        "-keyfile",
        &key,
        "-in",
        &csr,
        "-out",
        &cert,
        "-startdate",
        "20250101000000Z",
        "-enddate",
        "20250201000000Z",
        "-create_serial",
        "-notext",
    ]);
    let key_pem = std::fs::read_to_string(&key).unwrap();
    assert!(key_pem.contains("BEGIN PRIVATE KEY"), "PKCS#8 key");
    (std::fs::read_to_string(&cert).unwrap(), key_pem)
}

/// Registers the certificate with the simulated app and stores it with its
/// key as the function's secret (read on the next invocation).
async fn use_certificate(world: &World, (cert, key): &(String, String)) {
    world.sim().set_certificate(Some(cert)).await.unwrap();
    let secret = json!({
        "tenantId": graph_sim::seed::TENANT_ID,
        "clientId": graph_sim::seed::CLIENT_ID,
        "certificate": cert,
        "privateKey": key,
    });
    world.put_secret(&secret.to_string()).await;
}

#[tokio::test]
async fn a_certificate_near_expiry_warns_and_reports_its_days_left() {
    let world = World::start_with(
        SecretForm::ClientSecret,
        &[("METRICS_NAMESPACE", "PasscodeE2E")],
    )
    .await;
    use_certificate(&world, &certificate(Validity::Days(10)).await).await;
    let reply = world.reset_kiosk().await;
    assert_eq!(reply.status, 202, "still works: {:?}", reply.body);
    let lines: Vec<serde_json::Value> = world
        .function(Action::ResetPasscode)
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Ten days from a moment ago: nine whole days left.
    let warnings: Vec<_> = lines
        .iter()
        .filter(|v| v["level"] == "WARN" && v["days_left"] == 9)
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:?}");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("certificate expires in 9 days"),
        "{}",
        warnings[0]
    );
    // The audit line is an EMF document too; this is the credential's own.
    let metrics: Vec<_> = lines
        .iter()
        .filter(|v| v.get("_aws").is_some() && v.get("CertificateDaysLeft").is_some())
        .collect();
    assert_eq!(metrics.len(), 1, "one line per secret read: {metrics:?}");
    let emf = metrics[0];
    assert!(emf["_aws"]["Timestamp"].as_u64().is_some());
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "PasscodeE2E");
    assert_eq!(directive["Dimensions"], json!([[]]));
    assert_eq!(
        directive["Metrics"],
        json!([{"Name": "CertificateDaysLeft", "Unit": "None"}])
    );
    assert_eq!(emf["CertificateDaysLeft"], 9);
    // The token came from the certificate.
    let requests = world.sim().requests().await;
    assert!(
        requests
            .iter()
            .any(|r| r.endpoint == "token" && r.credential.as_deref() == Some("assertion"))
    );
}

#[tokio::test]
async fn an_expired_certificate_is_a_configuration_error_without_asking_entra() {
    let world = World::start().await;
    use_certificate(&world, &certificate(Validity::Expired).await).await;
    let reply = world.reset_kiosk().await;
    reply.assert_error(500, "configurationError");
    reply.assert_says("certificate");
    reply.assert_says("expired on 2025-02-01");
    let failed = world.event_reset(dev::AE_DEDICATED).await;
    assert_failed_with(&failed, "ConfigurationError");
    assert!(
        world.token_requests().await.is_empty(),
        "Entra was not asked"
    );
    assert_eq!(world.graph_calls().await, 0);
    // Even an expired certificate reports its (negative) days left.
    let days: Vec<i64> = world
        .function(Action::ResetPasscode)
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["CertificateDaysLeft"].as_i64())
        .collect();
    assert!(!days.is_empty() && days.iter().all(|d| *d < 0), "{days:?}");
}
