//! Shared helpers: a running simulator, an HTTP client, tokens, and a test
//! certificate pair made once per test binary with the openssl CLI.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use graph_sim::{RunningSim, seed};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Digest;

pub const SECRET: &str = "s3cr3t~value.for_tests";

pub async fn sim() -> RunningSim {
    graph_sim::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub fn token_url(sim: &RunningSim) -> String {
    sim.token_url()
}

/// Client-credentials token request for the seeded app, proving itself
/// with `credential` (form fields); returns the raw response.
async fn token_request(sim: &RunningSim, credential: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", seed::CLIENT_ID),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    form.extend_from_slice(credential);
    client()
        .post(token_url(sim))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Token request with a client secret; returns the raw response.
pub async fn token_with_secret(sim: &RunningSim, secret: &str) -> reqwest::Response {
    token_request(sim, &[("client_secret", secret)]).await
}

/// Register [`SECRET`] and return a fresh access token.
pub async fn token(sim: &RunningSim) -> String {
    sim.control().set_secrets(&[SECRET]).await.unwrap();
    let resp = token_with_secret(sim, SECRET).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// `path` (with its query) on `sim`'s Graph endpoint.
pub fn url(sim: &RunningSim, path: &str) -> String {
    format!("{}{path}", sim.base_url())
}

/// A fresh simulator and an access token for its seeded app.
pub async fn sim_with_token() -> (RunningSim, String) {
    let sim = sim().await;
    let token = token(&sim).await;
    (sim, token)
}

pub async fn get(sim: &RunningSim, token: &str, path: &str) -> reqwest::Response {
    client()
        .get(url(sim, path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// GET `path`, assert 200 and return the JSON body.
pub async fn get_json(sim: &RunningSim, token: &str, path: &str) -> Value {
    let resp = get(sim, token, path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// A body-less POST as Graph wants it: reqwest sends no `Content-Length`
/// for an empty body unless told to, and Graph may answer 411 without it.
pub fn post_request(sim: &RunningSim, token: &str, path: &str) -> reqwest::RequestBuilder {
    client()
        .post(url(sim, path))
        .bearer_auth(token)
        .header("content-length", "0")
}

pub async fn post(sim: &RunningSim, token: &str, path: &str) -> reqwest::Response {
    post_request(sim, token, path).send().await.unwrap()
}

pub fn reset_path(version: &str, id: &str) -> String {
    format!("/{version}/deviceManagement/managedDevices/{id}/resetPasscode")
}

/// A key pair and self-signed certificate, as PEM text.
pub struct TestCert {
    pub key_pem: String,
    pub cert_pem: String,
}

impl TestCert {
    fn der(&self) -> Vec<u8> {
        let body: String = self
            .cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        STANDARD.decode(body).unwrap()
    }

    /// base64url SHA-256 thumbprint (`x5t#S256`).
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(self.der()))
    }

    /// base64url SHA-1 thumbprint (legacy `x5t`).
    pub fn x5t_sha1(&self) -> String {
        URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(self.der()))
    }

    pub fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).unwrap()
    }
}

fn make_cert(dir: &Path, name: &str) -> TestCert {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.crt"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN=graph-sim-{name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl CLI is installed");
    assert!(status.status.success(), "openssl failed: {status:?}");
    TestCert {
        key_pem: std::fs::read_to_string(key).unwrap(),
        cert_pem: std::fs::read_to_string(cert).unwrap(),
    }
}

/// Two independent certificates, generated once per test binary (RSA key
/// generation is the slow part).
pub fn certs() -> &'static (TestCert, TestCert) {
    static CERTS: OnceLock<(TestCert, TestCert)> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("graph-sim-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pair = (make_cert(&dir, "a"), make_cert(&dir, "b"));
        let _ = std::fs::remove_dir_all(&dir);
        pair
    })
}

/// A fresh simulator with `cert` registered for the seeded app.
pub async fn sim_with_certificate(cert: &TestCert) -> RunningSim {
    let sim = sim().await;
    sim.control()
        .set_certificate(Some(&cert.cert_pem))
        .await
        .unwrap();
    sim
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Standard claims for the seeded app and `sim`'s token endpoint.
pub fn claims(sim: &RunningSim) -> Value {
    let now = now();
    json!({
        "aud": token_url(sim),
        "iss": seed::CLIENT_ID,
        "sub": seed::CLIENT_ID,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    })
}

/// Sign `claims` with `signer`, naming `named` in the header thumbprint.
pub fn assertion(signer: &TestCert, named: &TestCert, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::PS256);
    header.x5t_s256 = Some(named.x5t_s256());
    jsonwebtoken::encode(&header, claims, &signer.encoding_key()).unwrap()
}

/// Token request with a signed client assertion; returns the raw response.
pub async fn token_with_assertion(sim: &RunningSim, assertion: &str) -> reqwest::Response {
    token_request(
        sim,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// Assert an Entra error: status, `error`, and the AADSTS code.
pub async fn assert_entra_error(
    resp: reqwest::Response,
    status: u16,
    error: &str,
    code: u64,
) -> Value {
    assert_entra_error_in("", resp, status, error, code).await
}

/// [`assert_entra_error`] for one `case` of a table, named in every
/// failure message.
pub async fn assert_entra_error_in(
    case: &str,
    resp: reqwest::Response,
    status: u16,
    error: &str,
    code: u64,
) -> Value {
    assert_eq!(resp.status(), status, "{case}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{case} {body}");
    assert_eq!(body["error_codes"], json!([code]), "{case} {body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{case} {description}"
    );
    for line in ["\r\nTrace ID: ", "\r\nCorrelation ID: "] {
        assert!(description.contains(line), "{case} {description}");
    }
    assert!(
        body["error_uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/error?code={code}")),
        "{case} {body}"
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{case} {field} missing in {body}");
    }
    body
}

/// Assert Entra's 401 `invalid_client` with the AADSTS `code`.
pub async fn assert_invalid_client(resp: reqwest::Response, code: u64) -> Value {
    assert_entra_error(resp, 401, "invalid_client", code).await
}

/// Assert a Graph error: status and `error.code`; returns the body.
pub async fn assert_graph_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert!(resp.headers().contains_key("request-id"));
    assert!(resp.headers().contains_key("client-request-id"));
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    let inner = &body["error"]["innerError"];
    assert!(inner["request-id"].is_string(), "{body}");
    assert!(inner["client-request-id"].is_string(), "{body}");
    let date = inner["date"].as_str().unwrap();
    assert_eq!(date.len(), 19, "{date}");
    body
}
