//! Entra token endpoint and Graph authentication/authorisation.

use graph_sim::{AppCredentials, seed};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use crate::common::*;

const DEVICES: &str = "/v1.0/deviceManagement/managedDevices";

/// Assert that the token endpoint refuses `assertion` as `invalid_client`
/// with the AADSTS `code`.
async fn assert_assertion_refused(sim: &graph_sim::RunningSim, assertion: &str, code: u64) {
    assert_invalid_client(token_with_assertion(sim, assertion).await, code).await;
}

/// Assert Graph's 401 `InvalidAuthenticationToken`; returns the body.
async fn assert_unauthenticated(resp: reqwest::Response) -> Value {
    assert_graph_error(resp, 401, "InvalidAuthenticationToken").await
}

#[tokio::test]
async fn secret_grant_issues_an_opaque_token() {
    let sim = sim().await;
    sim.control().set_secrets(&[SECRET]).await.unwrap();
    let resp = token_with_secret(&sim, SECRET).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 40);
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    assert_eq!(get(&sim, token, DEVICES).await.status(), 200);
}

#[tokio::test]
async fn wrong_secret_is_invalid_client_401() {
    let sim = sim().await;
    // The seeded app has no secret at all until one is registered.
    assert_invalid_client(token_with_secret(&sim, SECRET).await, 7000215).await;
    sim.control().set_secrets(&[SECRET]).await.unwrap();
    assert_invalid_client(token_with_secret(&sim, "nope").await, 7000215).await;
}

#[tokio::test]
async fn secret_rotation_replaces_accepted_secrets() {
    let sim = sim().await;
    let control = sim.control();
    control.set_secrets(&["old", "new"]).await.unwrap();
    assert_eq!(token_with_secret(&sim, "old").await.status(), 200);
    control.set_secrets(&["new"]).await.unwrap();
    assert_eq!(token_with_secret(&sim, "old").await.status(), 401);
    assert_eq!(token_with_secret(&sim, "new").await.status(), 200);
}

#[tokio::test]
async fn secret_via_http_basic_is_accepted() {
    let sim = sim().await;
    sim.control().set_secrets(&[SECRET]).await.unwrap();
    let resp = client()
        .post(token_url(&sim))
        .basic_auth(seed::CLIENT_ID, Some(SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn token_request_validation_errors() {
    let sim = sim().await;
    sim.control().set_secrets(&[SECRET]).await.unwrap();
    type Fields = Vec<(&'static str, String)>;
    let send = |tenant: &str, fields: Fields| {
        let url = format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url());
        async move { client().post(url).form(&fields).send().await.unwrap() }
    };
    let good = || -> Fields {
        vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", seed::CLIENT_ID.into()),
            ("scope", "https://graph.microsoft.com/.default".into()),
            ("client_secret", SECRET.into()),
        ]
    };
    let with = |key: &'static str, value: &str| {
        let mut f = good();
        f.retain(|(k, _)| *k != key);
        f.push((key, value.to_string()));
        f
    };
    let without = |key: &'static str| {
        let mut f = good();
        f.retain(|(k, _)| *k != key);
        f
    };
    let t = seed::TENANT_ID;
    // (case, tenant, form fields, expected `error`, expected AADSTS code)
    let cases = [
        (
            "unknown tenant",
            "00000000-0000-0000-0000-000000000000",
            good(),
            "invalid_request",
            90002,
        ),
        (
            "unknown client id",
            t,
            with("client_id", "00000000-0000-0000-0000-000000000001"),
            "unauthorized_client",
            700016,
        ),
        (
            "password grant",
            t,
            with("grant_type", "password"),
            "unsupported_grant_type",
            70003,
        ),
        (
            "no grant type",
            t,
            without("grant_type"),
            "unsupported_grant_type",
            70003,
        ),
        (
            "delegated scope",
            t,
            with("scope", "https://graph.microsoft.com/User.Read"),
            "invalid_scope",
            70011,
        ),
        (
            "another resource's scope",
            t,
            with("scope", "https://management.azure.com/.default"),
            "invalid_scope",
            70011,
        ),
        ("no scope", t, without("scope"), "invalid_scope", 70011),
        (
            "no credential",
            t,
            without("client_secret"),
            "invalid_request",
            7000218,
        ),
    ];
    for (case, tenant, fields, error, code) in cases {
        assert_entra_error_in(case, send(tenant, fields).await, 400, error, code).await;
    }
    // This server's own base URL is an accepted resource.
    let own_scope = format!("{}/.default", sim.base_url());
    assert_eq!(send(t, with("scope", &own_scope)).await.status(), 200);
}

#[tokio::test]
async fn certificate_assertions() {
    let (a, b) = certs();
    let sim = sim_with_certificate(a).await;

    // Valid PS256 with x5t#S256.
    let first = claims(&sim);
    let ok = assertion(a, a, &first);
    let resp = token_with_assertion(&sim, &ok).await;
    assert_eq!(resp.status(), 200);
    let token: Value = resp.json().await.unwrap();
    assert_eq!(
        get(&sim, token["access_token"].as_str().unwrap(), DEVICES)
            .await
            .status(),
        200
    );

    // The same assertion again: jti replay.
    assert_assertion_refused(&sim, &ok, 700025).await;

    // Signed by another key while naming the registered certificate.
    let forged = assertion(b, a, &claims(&sim));
    assert_assertion_refused(&sim, &forged, 700027).await;

    // Thumbprint of a certificate that is not registered.
    let unknown = assertion(b, b, &claims(&sim));
    assert_assertion_refused(&sim, &unknown, 700027).await;

    // Expired beyond the five-minute skew.
    let mut old = claims(&sim);
    old["exp"] = json!(now() - 3600);
    old["nbf"] = json!(now() - 4000);
    assert_assertion_refused(&sim, &assertion(a, a, &old), 700024).await;

    // Not valid yet.
    let mut early = claims(&sim);
    early["nbf"] = json!(now() + 3600);
    assert_assertion_refused(&sim, &assertion(a, a, &early), 700024).await;

    // Within the skew is fine.
    let mut skewed = claims(&sim);
    skewed["exp"] = json!(now() - 60);
    assert_eq!(
        token_with_assertion(&sim, &assertion(a, a, &skewed))
            .await
            .status(),
        200
    );

    // Audience of the public cloud instead of this endpoint.
    let mut aud = claims(&sim);
    aud["aud"] = json!(format!(
        "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
        seed::TENANT_ID
    ));
    assert_assertion_refused(&sim, &assertion(a, a, &aud), 700023).await;

    // Issuer / subject not the client id.
    let mut iss = claims(&sim);
    iss["sub"] = json!("someone-else");
    assert_assertion_refused(&sim, &assertion(a, a, &iss), 700021).await;

    // Missing jti.
    let mut no_jti = claims(&sim);
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_assertion_refused(&sim, &assertion(a, a, &no_jti), 50027).await;

    // Garbage.
    assert_assertion_refused(&sim, "not-a-jwt", 50027).await;
}

#[tokio::test]
async fn legacy_rs256_with_sha1_thumbprint_is_accepted() {
    let (a, _) = certs();
    let sim = sim_with_certificate(a).await;
    let mut header = Header::new(Algorithm::RS256);
    header.x5t = Some(a.x5t_sha1());
    let jwt = jsonwebtoken::encode(&header, &claims(&sim), &a.encoding_key()).unwrap();
    assert_eq!(token_with_assertion(&sim, &jwt).await.status(), 200);
}

#[tokio::test]
async fn removing_the_certificate_rejects_assertions() {
    let (a, _) = certs();
    let sim = sim_with_certificate(a).await;
    let control = sim.control();
    control
        .set_app(&AppCredentials {
            certificate_pem: Some(None),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_assertion_refused(&sim, &assertion(a, a, &claims(&sim)), 700027).await;
    // A malformed certificate is refused by the control API.
    assert!(
        control
            .set_certificate(Some(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
            ))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn graph_401_missing_invalid_expired() {
    let sim = sim().await;
    let resp = client().get(url(&sim, DEVICES)).send().await.unwrap();
    assert!(resp.headers().contains_key("www-authenticate"));
    let body = assert_unauthenticated(resp).await;
    assert_eq!(body["error"]["message"], "Access token is empty.");

    let body = assert_unauthenticated(get(&sim, "made-up-token", DEVICES).await).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid audience")
    );

    let token = token(&sim).await;
    assert_eq!(get(&sim, &token, DEVICES).await.status(), 200);
    sim.control().expire_tokens().await.unwrap();
    let body = assert_unauthenticated(get(&sim, &token, DEVICES).await).await;
    assert_eq!(
        body["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
}

#[tokio::test]
async fn token_lifetime_setting_applies() {
    let sim = sim().await;
    sim.control().set_token_lifetime_seconds(1).await.unwrap();
    sim.control().set_secrets(&[SECRET]).await.unwrap();
    let body: Value = token_with_secret(&sim, SECRET).await.json().await.unwrap();
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_unauthenticated(get(&sim, &token, DEVICES).await).await;
}

#[tokio::test]
async fn graph_403_without_role() {
    let sim = sim().await;
    let control = sim.control();
    control.set_roles(&[seed::ROLE_READ_ALL]).await.unwrap();
    let token = token(&sim).await;
    let reset = reset_path("v1.0", seed::devices::AE_DEDICATED);
    assert_eq!(get(&sim, &token, DEVICES).await.status(), 200);
    let body = assert_graph_error(post(&sim, &token, &reset).await, 403, "Forbidden").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("DeviceManagementManagedDevices.PrivilegedOperations.All"),
        "{message}"
    );
    assert!(
        message.contains("Operation ID (for customer support)"),
        "{message}"
    );

    // Privileged operations alone do not grant reads.
    control
        .set_roles(&[seed::ROLE_PRIVILEGED_OPERATIONS])
        .await
        .unwrap();
    let token = crate::common::token(&sim).await;
    assert_graph_error(get(&sim, &token, DEVICES).await, 403, "Forbidden").await;
    assert_eq!(post(&sim, &token, &reset).await.status(), 204);

    // Roles are captured at issue time.
    control.set_roles(&[]).await.unwrap();
    assert_eq!(post(&sim, &token, &reset).await.status(), 204);
}

#[tokio::test]
async fn reset_restores_defaults_and_drops_tokens() {
    let sim = sim().await;
    let control = sim.control();
    let token = token(&sim).await;
    control.set_page_size(3).await.unwrap();
    control.reset().await.unwrap();
    assert!(control.requests().await.is_empty());
    assert_unauthenticated(get(&sim, &token, DEVICES).await).await;
    assert_eq!(
        control.settings().await.unwrap(),
        graph_sim::Settings::default()
    );
    assert_eq!(control.app().await.unwrap()["secretCount"], 0);
    assert_eq!(control.requests().await[0].seq, 1);
}
