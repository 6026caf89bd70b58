//! App-only access tokens from Entra ID (OAuth 2.0 client credentials).
//!
//! Either a client secret or a certificate: for the certificate, a client
//! assertion JWT signed PS256 with an `x5t#S256` header, the form Microsoft's
//! current certificate-credentials page gives. Tokens are cached until
//! shortly before `expires_in` runs out (Entra's lifetimes vary between 60
//! and 90 minutes, so the value is never assumed).

use crate::config::Config;
use crate::credentials::{Credential, GraphCredentials, SigningKey};
use crate::error::{ErrorCode, ServiceError};
use crate::http::{self, MAX_TOKEN_RESPONSE_BYTES, Reply};
use crate::retry::{self, Attempt, Deadline, Failed, RetryPolicy};
use crate::sensitive::Sensitive;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What a caller is told to wait when the token endpoint stayed unavailable
/// through the invocation and sent no `Retry-After`: Entra's outages are
/// seldom over in seconds, and a caller retrying at once only adds load.
pub const TOKEN_UNAVAILABLE_RETRY_HINT: Duration = Duration::from_secs(30);

/// Why a token could not be had.
#[derive(Debug)]
pub enum AuthError {
    /// Entra refused the credentials themselves (wrong or expired secret,
    /// unknown certificate, unknown app). Worth re-reading the secret once:
    /// it may just have been rotated.
    CredentialsRefused(ServiceError),
    Other(ServiceError),
}

impl AuthError {
    pub fn into_service_error(self) -> ServiceError {
        match self {
            AuthError::CredentialsRefused(e) | AuthError::Other(e) => e,
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::CredentialsRefused(e) | AuthError::Other(e) => e.fmt(f),
        }
    }
}

/// The JOSE header of a client assertion, in the field order JWT libraries use.
#[derive(Serialize)]
struct AssertionHeader<'a> {
    typ: &'static str,
    alg: &'static str,
    #[serde(rename = "x5t#S256")]
    x5t_s256: &'a str,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
struct EntraError {
    error: String,
    error_codes: Vec<u64>,
}

struct CachedToken {
    token: Sensitive,
    refresh_at: Instant,
    generation: u64,
}

pub struct TokenProvider {
    http: reqwest::Client,
    scope: String,
    cache: Mutex<Option<CachedToken>>,
}

impl TokenProvider {
    pub fn new(http: reqwest::Client, config: &Config) -> TokenProvider {
        TokenProvider {
            http,
            scope: config.graph_scope(),
            cache: Mutex::new(None),
        }
    }

    /// Forget the cached token (Graph said 401).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// A bearer token for Graph, from cache or from Entra.
    pub async fn token(
        &self,
        config: &Config,
        credentials: &GraphCredentials,
        deadline: &Deadline,
        policy: &RetryPolicy,
    ) -> Result<Sensitive, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.generation == credentials.generation
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let (token, lifetime) = self.request(config, credentials, deadline, policy).await?;
        // Refresh a quarter of the lifetime early, at most five minutes.
        let skew = (lifetime / 4).min(Duration::from_secs(300));
        *cache = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime - skew,
            generation: credentials.generation,
        });
        Ok(token)
    }

    async fn request(
        &self,
        config: &Config,
        credentials: &GraphCredentials,
        deadline: &Deadline,
        policy: &RetryPolicy,
    ) -> Result<(Sensitive, Duration), AuthError> {
        let url = config.token_url(&credentials.tenant_id);
        // Graph's answer margin and attempts, with backoff in seconds.
        let policy = RetryPolicy {
            base_delay: policy
                .base_delay
                .max(RetryPolicy::token_endpoint().base_delay),
            ..*policy
        };
        let result = retry::run("token request", &policy, deadline, |timeout| {
            self.attempt(&url, credentials, timeout)
        })
        .await;
        match result {
            Ok(token) => Ok(token),
            Err(Failed::Error {
                error: AuthError::Other(mut error),
                hint,
            }) if error.transient => {
                // Tell the caller when to come back: Entra's hint (whole
                // seconds, rounded up), else a pause in the tens of seconds.
                error.retry_after =
                    Some(hint.map_or(TOKEN_UNAVAILABLE_RETRY_HINT, http::whole_seconds));
                Err(AuthError::Other(error))
            }
            Err(Failed::Error { error, .. }) => Err(error),
            Err(Failed::OutOfTime) => Err(AuthError::Other(ServiceError::new(
                ErrorCode::GraphUnavailable,
                "ran out of time before a Graph token could be requested",
            ))),
            // Token requests are safe to repeat; nothing classifies them so.
            Err(Failed::OutcomeUnknown(why)) => Err(AuthError::Other(ServiceError::new(
                ErrorCode::GraphUnavailable,
                format!("the Entra ID token endpoint did not answer clearly ({why})"),
            ))),
        }
    }

    /// One token request, classified for the retry loop.
    async fn attempt(
        &self,
        url: &str,
        credentials: &GraphCredentials,
        timeout: Duration,
    ) -> Attempt<(Sensitive, Duration), AuthError> {
        // A fresh assertion per attempt: each needs its own `jti`.
        let form = match token_form(url, &self.scope, credentials) {
            Ok(form) => form,
            Err(e) => return Attempt::Stop(e),
        };
        match self
            .http
            .post(url)
            .form(&form)
            .timeout(timeout)
            .send()
            .await
        {
            Err(e) => Attempt::Retry {
                error: AuthError::Other(ServiceError::new(
                    ErrorCode::GraphUnavailable,
                    format!(
                        "the Entra ID token endpoint could not be reached ({})",
                        http::error_kind(&e)
                    ),
                )),
                hint: None,
            },
            Ok(resp) => {
                let mut reply = Reply::head(&resp);
                reply.body = http::read_body(resp, MAX_TOKEN_RESPONSE_BYTES)
                    .await
                    .unwrap_or_default();
                classify_token_reply(&reply)
            }
        }
    }
}

/// What a token endpoint answer means: a token, a transient failure worth
/// retrying (after Entra's `Retry-After` if it sent one), or a refusal.
fn classify_token_reply(reply: &Reply) -> Attempt<(Sensitive, Duration), AuthError> {
    if reply.status == 200 {
        return match parse_token_response(&reply.body) {
            Some(token) => Attempt::Done(token),
            None => Attempt::Stop(AuthError::Other(ServiceError::new(
                ErrorCode::GraphError,
                "the Entra ID token endpoint answered 200 without a usable token",
            ))),
        };
    }
    let entra: EntraError = serde_json::from_slice(&reply.body).unwrap_or_default();
    match classify_token_error(reply.status, &entra) {
        TokenFailure::Transient(msg) => Attempt::Retry {
            error: AuthError::Other(ServiceError::new(ErrorCode::GraphUnavailable, msg)),
            hint: reply.retry_after,
        },
        TokenFailure::CredentialsRefused(msg) => {
            Attempt::Stop(AuthError::CredentialsRefused(ServiceError::config(msg)))
        }
        TokenFailure::Configuration(msg) => {
            Attempt::Stop(AuthError::Other(ServiceError::config(msg)))
        }
    }
}

/// Longest token lifetime believed: Entra's tokens live at most a day.
/// Without a cap, an absurd `expires_in` overflowed `Instant + Duration`
/// when the token was cached (a panic, an abort in release builds).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The access token and its lifetime (1 s to [`MAX_TOKEN_LIFETIME`]) from
/// the token endpoint's 200 body, `None` when there is no token in it.
/// Public for the fuzz tests.
pub fn parse_token_response(body: &[u8]) -> Option<(Sensitive, Duration)> {
    let parsed: TokenResponse = serde_json::from_slice(body).ok()?;
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3599).max(1));
    Some((
        Sensitive::new(parsed.access_token),
        lifetime.min(MAX_TOKEN_LIFETIME),
    ))
}

/// The message a failed token request (`status`, Entra's error body) ends
/// with, whatever the class of failure. Public for the fuzz tests; the token
/// request makes the same two steps.
#[cfg(any(test, feature = "fuzzing"))]
pub fn token_error_message(status: u16, body: &[u8]) -> String {
    let entra: EntraError = serde_json::from_slice(body).unwrap_or_default();
    match classify_token_error(status, &entra) {
        TokenFailure::Transient(m)
        | TokenFailure::CredentialsRefused(m)
        | TokenFailure::Configuration(m) => m,
    }
}

fn token_form(
    url: &str,
    scope: &str,
    credentials: &GraphCredentials,
) -> Result<Vec<(&'static str, String)>, AuthError> {
    let mut form = vec![
        ("grant_type", "client_credentials".to_string()),
        ("client_id", credentials.client_id.clone()),
        ("scope", scope.to_string()),
    ];
    match &credentials.credential {
        Credential::ClientSecret(secret) => {
            form.push(("client_secret", secret.expose().to_string()));
        }
        Credential::Certificate {
            thumbprint_sha256,
            key,
            ..
        } => {
            let assertion = client_assertion(url, &credentials.client_id, thumbprint_sha256, key)?;
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ));
            form.push(("client_assertion", assertion.expose().to_string()));
        }
    }
    Ok(form)
}

/// The signed JWT that stands in for a client secret. Short-lived (5 min)
/// and unique (`jti`), as Entra recommends: `base64url(header)`.`base64url(claims)`.`base64url(signature)`.
pub fn client_assertion(
    audience: &str,
    client_id: &str,
    thumbprint_sha256: &str,
    key: &SigningKey,
) -> Result<Sensitive, AuthError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = AssertionHeader {
        typ: "JWT",
        alg: "PS256",
        x5t_s256: thumbprint_sha256,
    };
    let claims = AssertionClaims {
        aud: audience,
        iss: client_id,
        sub: client_id,
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: now,
        iat: now,
        exp: now + 300,
    };
    let signed = (|| {
        let header = serde_json::to_vec(&header).ok()?;
        let claims = serde_json::to_vec(&claims).ok()?;
        let mut jwt = URL_SAFE_NO_PAD.encode(header);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut jwt);
        let signature = key.sign_ps256(jwt.as_bytes())?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Some(jwt)
    })();
    signed.map(Sensitive::new).ok_or_else(|| {
        AuthError::Other(ServiceError::config(
            "the private key in the secret could not sign a client assertion",
        ))
    })
}

enum TokenFailure {
    Transient(String),
    CredentialsRefused(String),
    Configuration(String),
}

/// Maps Entra's answer to what the function should do. Decisions use
/// `error` and the AADSTS numbers, never `error_description` (which can echo
/// request details).
fn classify_token_error(status: u16, e: &EntraError) -> TokenFailure {
    let code = e.error_codes.first().copied();
    let aadsts = code.map(|c| format!(" (AADSTS{c})")).unwrap_or_default();
    if status == 429 || status >= 500 || e.error == "temporarily_unavailable" {
        return TokenFailure::Transient(format!(
            "the Entra ID token endpoint is unavailable (HTTP {status}){aadsts}"
        ));
    }
    let refused = |what: &str| {
        TokenFailure::CredentialsRefused(format!(
            "Entra ID refused the app credentials{aadsts}: {what}"
        ))
    };
    match code {
        Some(7000215) => refused(
            "the client secret is wrong (check that the secret's value, not its id, is stored)",
        ),
        Some(7000222) => {
            refused("the client secret has expired: create a new one and update the secret")
        }
        Some(700027) => refused(
            "the certificate assertion failed validation: is this certificate uploaded to the app registration, and does the private key match it?",
        ),
        Some(700024) => {
            refused("the certificate assertion is outside its validity time (check the clock)")
        }
        Some(700016) => refused(
            "no app with this clientId exists in the tenant (or the app is registered in another cloud)",
        ),
        Some(7000112) => refused("the app is disabled"),
        Some(90002) => TokenFailure::Configuration(format!(
            "Entra ID does not know the tenant{aadsts}: check tenantId in the secret and GRAPH_CLOUD"
        )),
        Some(70011) => TokenFailure::Configuration(format!(
            "Entra ID refused the Graph scope{aadsts}: check GRAPH_CLOUD / GRAPH_ENDPOINT"
        )),
        Some(53003) => TokenFailure::Configuration(format!(
            "a Conditional Access policy for workload identities blocks this app{aadsts}"
        )),
        _ if e.error == "invalid_client" || e.error == "unauthorized_client" => {
            refused("the credentials were not accepted")
        }
        _ => TokenFailure::Configuration(format!(
            "Entra ID refused the token request (HTTP {status}, {}){aadsts}",
            if e.error.is_empty() {
                "no error code"
            } else {
                e.error.as_str()
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine;

    const TEST_KEY: &str = include_str!("../testdata/test-key.pem");

    fn entra(error: &str, code: u64) -> EntraError {
        EntraError {
            error: error.into(),
            error_codes: vec![code],
        }
    }

    #[test]
    fn assertion_has_the_documented_header_and_claims() {
        let key = SigningKey::from_pem(TEST_KEY).unwrap();
        let aud = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
        let jwt = client_assertion(aud, "client-1", "THUMB", &key).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| -> serde_json::Value {
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .unwrap(),
            )
            .unwrap()
        };
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["x5t#S256"], "THUMB");
        let claims = decode(parts[1]);
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
            300
        );
        let other = client_assertion(aud, "client-1", "THUMB", &key).unwrap();
        assert_ne!(
            decode(other.expose().split('.').nth(1).unwrap())["jti"],
            claims["jti"]
        );
    }

    #[test]
    fn token_errors_are_classified() {
        use TokenFailure::{Configuration, CredentialsRefused, Transient};
        let none = EntraError::default();
        // (status, Entra's answer, the class, a word its message must carry)
        let cases = [
            (401, entra("invalid_client", 7000215), "refused", "AADSTS7000215"),
            (401, entra("invalid_client", 700027), "refused", ""),
            (400, entra("unauthorized_client", 700016), "refused", ""),
            (400, entra("invalid_request", 90002), "configuration", "tenant"),
            (503, entra("temporarily_unavailable", 0), "transient", ""),
            (429, none.clone(), "transient", ""),
            (400, none, "configuration", ""),
        ];
        for (status, answer, class, word) in cases {
            let (got, message) = match classify_token_error(status, &answer) {
                Transient(m) => ("transient", m),
                CredentialsRefused(m) => ("refused", m),
                Configuration(m) => ("configuration", m),
            };
            assert_eq!(got, class, "{status} {answer:?}");
            assert!(message.contains(word), "{status} {answer:?}: {message}");
        }
    }

    fn token_reply(status: u16, retry_after: Option<Duration>, body: &str) -> Reply {
        Reply {
            status,
            request_id: None,
            retry_after,
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn token_replies_are_classified_for_the_retry_loop() {
        let hint = Some(Duration::from_millis(1500));
        assert!(matches!(
            classify_token_reply(&token_reply(200, None, r#"{"access_token":"t","expires_in":60}"#)),
            Attempt::Done((_, lifetime)) if lifetime == Duration::from_secs(60)
        ));
        assert!(matches!(
            classify_token_reply(&token_reply(200, None, "{}")),
            Attempt::Stop(AuthError::Other(e)) if e.code == ErrorCode::GraphError
        ));
        for status in [429, 500, 503, 504] {
            assert!(matches!(
                classify_token_reply(&token_reply(status, hint, "")),
                Attempt::Retry { error: AuthError::Other(e), hint: h }
                    if e.code == ErrorCode::GraphUnavailable && h == hint
            ));
        }
        assert!(matches!(
            classify_token_reply(&token_reply(
                401,
                None,
                r#"{"error":"invalid_client","error_codes":[7000215]}"#
            )),
            Attempt::Stop(AuthError::CredentialsRefused(_))
        ));
        assert!(matches!(
            classify_token_reply(&token_reply(400, None, r#"{"error":"invalid_request","error_codes":[90002]}"#)),
            Attempt::Stop(AuthError::Other(e)) if e.code == ErrorCode::ConfigurationError
        ));
    }

    #[test]
    fn token_responses_are_read_with_a_sane_lifetime() {
        let (token, lifetime) = parse_token_response(
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0"}"#,
        )
        .unwrap();
        assert_eq!(token.expose(), "eyJ0");
        assert_eq!(lifetime, Duration::from_secs(3599));
        let (_, lifetime) =
            parse_token_response(br#"{"access_token":"t","expires_in":0}"#).unwrap();
        assert_eq!(lifetime, Duration::from_secs(1));
        // This lifetime used to overflow `Instant + Duration` in `token()`.
        let (_, lifetime) =
            parse_token_response(br#"{"access_token":"t","expires_in":18446744073709551615}"#)
                .unwrap();
        assert_eq!(lifetime, MAX_TOKEN_LIFETIME);
        let _refresh_at = Instant::now() + lifetime - (lifetime / 4).min(Duration::from_secs(300));
        for bad in [
            &b""[..],
            b"{}",
            b"{\"access_token\":5}",
            b"{\"access_token\":\"t\",\"expires_in\":-1}",
        ] {
            assert!(parse_token_response(bad).is_none());
        }
    }

    #[test]
    fn token_error_messages_never_repeat_the_description() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. s3cr3t","error_codes":[7000215]}"#;
        let msg = token_error_message(401, body);
        assert!(
            msg.contains("AADSTS7000215") && !msg.contains("s3cr3t"),
            "{msg}"
        );
        assert!(token_error_message(400, b"<html>").contains("no error code"));
    }
}
