//! The Entra ID v2 token endpoint, client-credentials grant only.
//!
//! Accepts a client secret (form field or HTTP Basic) or a certificate-signed
//! client assertion, and answers errors in Entra's shape with the AADSTS
//! numbers its documentation lists. Issued tokens are opaque random strings
//! remembered with their expiry and the app's roles at issue time.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::{Method, StatusCode};
use jsonwebtoken::Algorithm;
use rand::RngCore;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::graph::Outcome;
use crate::http::{self, EntraError, SimRequest};
use crate::seed;
use crate::state::{IssuedToken, RegisteredCert, Sim};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Resource id of Microsoft Graph, accepted in place of its URL.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Clock skew Entra tolerates on assertion `exp`/`nbf`.
const SKEW_SECONDS: i64 = 300;
const CERT_DOCS: &str = "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .";

/// Does `path` address the token endpoint? Returns the tenant segment.
pub(crate) fn tenant_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (tenant, tail) = rest.split_once('/')?;
    let tail = tail.trim_end_matches('/');
    (!tenant.is_empty() && tail.eq_ignore_ascii_case("oauth2/v2.0/token")).then_some(tenant)
}

/// The parts of a token request the grant looks at.
struct TokenForm {
    grant_type: Option<String>,
    /// `client_id` from the form body.
    client_id: Option<String>,
    /// Client id and secret from HTTP Basic authentication.
    basic: Option<(String, String)>,
    scope: Option<String>,
    /// `client_secret`, or the Basic password.
    secret: Option<String>,
    assertion_type: Option<String>,
    assertion: Option<String>,
}

impl TokenForm {
    fn parse(req: &SimRequest) -> TokenForm {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let basic = basic_credentials(req);
        TokenForm {
            grant_type: field("grant_type"),
            client_id: field("client_id"),
            scope: field("scope"),
            secret: field("client_secret").or_else(|| basic.as_ref().map(|(_, s)| s.clone())),
            assertion_type: field("client_assertion_type"),
            assertion: field("client_assertion"),
            basic,
        }
    }

    /// Which kind of credential was presented, for the request log.
    fn credential(&self) -> Option<&'static str> {
        match (&self.secret, &self.assertion) {
            (_, Some(_)) => Some("assertion"),
            (Some(_), None) => Some("secret"),
            (None, None) => None,
        }
    }
}

pub(crate) fn handle(sim: &Sim, req: &SimRequest, tenant: &str) -> Outcome {
    let form = TokenForm::parse(req);
    let mut response = match issue(sim, req, tenant, &form) {
        Ok(body) => {
            let mut resp =
                http::json_with(StatusCode::OK, &body, "application/json; charset=utf-8");
            http::add_entra_headers(&mut resp, req);
            resp
        }
        Err(err) => err.into_response(&sim.base_url, req),
    };
    // Keep the log's request id equal to the trace id in the body.
    if let Ok(v) = hyper::header::HeaderValue::from_str(&req.request_id) {
        response.headers_mut().insert("x-ms-request-id", v);
    }
    let mut out = Outcome::new(response);
    out.credential = form.credential();
    out
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))`, RFC 6749 §2.3.1.
fn basic_credentials(req: &SimRequest) -> Option<(String, String)> {
    let value = req.header("authorization")?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((unescape(id), unescape(secret)))
}

/// Run the client-credentials grant; checks follow the order Entra reports
/// them in (endpoint, tenant, grant, client, scope, credential).
fn issue(sim: &Sim, req: &SimRequest, tenant: &str, form: &TokenForm) -> Result<Value, EntraError> {
    if req.method != Method::POST {
        return Err(EntraError::invalid_request(
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                req.method
            ),
        ));
    }
    if ["common", "consumers", "organizations"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tenant))
    {
        return Err(EntraError::invalid_request(
            9001023,
            "The grant type 'client_credentials' is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        ));
    }
    if !tenant.eq_ignore_ascii_case(seed::TENANT_ID) {
        return Err(EntraError::invalid_request(
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    }
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        other => {
            return Err(EntraError::bad(
                "unsupported_grant_type",
                70003,
                format!(
                    "The app requested an unsupported grant type '{}'.",
                    other.unwrap_or("")
                ),
            ));
        }
    }
    let client_id = match (&form.client_id, &form.basic) {
        (Some(form_id), Some((basic_id, _))) if form_id != basic_id => {
            return Err(EntraError::invalid_request(
                900144,
                "The client_id in the request body does not match the one in the Authorization header.",
            ));
        }
        (Some(id), _) => id.clone(),
        (None, Some((basic_id, _))) => basic_id.clone(),
        (None, None) => {
            return Err(EntraError::invalid_request(
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            ));
        }
    };
    if !client_id.eq_ignore_ascii_case(seed::CLIENT_ID) {
        return Err(EntraError::bad(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    check_scope(sim, form.scope.as_deref())?;

    let app = sim.lock().app.clone();
    match (form.secret.as_deref(), form.assertion.as_deref()) {
        (None, None) => Err(EntraError::invalid_request(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        (Some(_), Some(_)) => Err(EntraError::invalid_request(
            // Not a documented combination; refused like an ambiguous credential.
            7000218,
            "The request must contain exactly one of 'client_assertion' or 'client_secret'.",
        )),
        (Some(secret), None) => {
            // Compare every registered secret in constant time.
            let ok = app.secrets.iter().fold(false, |acc, s| {
                acc | bool::from(s.as_bytes().ct_eq(secret.as_bytes()))
            });
            if !ok {
                return Err(EntraError::invalid_client(
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        seed::CLIENT_ID
                    ),
                ));
            }
            Ok(grant(sim, &app.roles))
        }
        (None, Some(assertion)) => {
            if form.assertion_type.as_deref() != Some(JWT_BEARER) {
                // Entra's generic credential-validation failure.
                return Err(EntraError::invalid_request(
                    70002,
                    format!(
                        "Error validating credentials. The client_assertion_type must be '{JWT_BEARER}'."
                    ),
                ));
            }
            let audience = format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url);
            let audience_by_id = format!("{}/{}/oauth2/v2.0/token", sim.base_url, seed::TENANT_ID);
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let jti = validate_assertion(
                assertion,
                app.certificate.as_ref(),
                &[audience, audience_by_id],
                now,
            )?;
            if !sim.lock().seen_jti.insert(jti) {
                // Entra documents no number for a replayed assertion; the
                // simulator reports it as AADSTS700025 (invalid_client).
                return Err(EntraError::invalid_client(
                    700025,
                    "Client assertion has already been used: the 'jti' claim must be unique per assertion.",
                ));
            }
            Ok(grant(sim, &app.roles))
        }
    }
}

/// `scope` must be exactly one `<resource>/.default` for Graph: either the
/// public Graph URL, Graph's app id, or this server's own base URL.
fn check_scope(sim: &Sim, scope: Option<&str>) -> Result<(), EntraError> {
    let Some(scope) = scope else {
        return Err(EntraError::bad(
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter.",
        ));
    };
    let invalid = || {
        EntraError::bad(
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    };
    let parts: Vec<&str> = scope.split_whitespace().collect();
    let [only] = parts.as_slice() else {
        return Err(invalid());
    };
    let resource = only.strip_suffix("/.default").ok_or_else(invalid)?;
    let resource = resource.trim_end_matches('/');
    let known = resource.eq_ignore_ascii_case("https://graph.microsoft.com")
        || resource.eq_ignore_ascii_case(GRAPH_APP_ID)
        || resource.eq_ignore_ascii_case(&sim.base_url);
    if known { Ok(()) } else { Err(invalid()) }
}

/// Issue a token carrying `roles`.
fn grant(sim: &Sim, roles: &[String]) -> Value {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let mut state = sim.lock();
    let lifetime = state.settings.token_lifetime_seconds;
    state.tokens.insert(
        token.clone(),
        IssuedToken {
            client_id: seed::CLIENT_ID.to_string(),
            roles: roles.to_vec(),
            expires_at: Instant::now() + Duration::from_secs(lifetime),
            force_expired: false,
        },
    );
    json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    })
}

fn b64_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn malformed() -> EntraError {
    EntraError::invalid_client(50027, "JWT token is invalid or malformed.")
}

/// Hex spelling of a base64url thumbprint, as Entra quotes it in messages.
fn thumbprint_hex(b64: &str) -> String {
    match URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')) {
        Ok(bytes) => bytes.iter().map(|b| format!("{b:02X}")).collect(),
        Err(_) => b64.to_string(),
    }
}

/// Check a client assertion the way Entra's certificate-credential docs
/// describe it. Returns the `jti` to be checked for reuse.
fn validate_assertion(
    assertion: &str,
    certificate: Option<&RegisteredCert>,
    audiences: &[String],
    now: i64,
) -> Result<String, EntraError> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, signature] = parts.as_slice() else {
        return Err(malformed());
    };
    let header = b64_json(header_b64).ok_or_else(malformed)?;
    let claims = b64_json(claims_b64).ok_or_else(malformed)?;

    // Key selection: the current docs use PS256 with `x5t#S256`; the
    // previous ones RS256 with a SHA-1 `x5t`. Both are accepted.
    let algorithm = match header.get("alg").and_then(Value::as_str) {
        Some("PS256") => Algorithm::PS256,
        Some("RS256") => Algorithm::RS256,
        other => {
            return Err(EntraError::invalid_client(
                700027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The signing algorithm '{}' is not supported.]",
                    other.unwrap_or("")
                ),
            ));
        }
    };
    let s256 = header.get("x5t#S256").and_then(Value::as_str);
    let sha1 = header.get("x5t").and_then(Value::as_str);
    let presented = s256.or(sha1).unwrap_or("");
    let key_not_found = || {
        EntraError::invalid_client(
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                thumbprint_hex(presented),
                seed::CLIENT_ID
            ),
        )
    };
    let cert = certificate.ok_or_else(key_not_found)?;
    let matches = match (s256, sha1) {
        (Some(t), _) => t.trim_end_matches('=') == cert.x5t_s256,
        (None, Some(t)) => t.trim_end_matches('=') == cert.x5t_sha1,
        (None, None) => false,
    };
    if !matches {
        return Err(key_not_found());
    }
    let message = format!("{header_b64}.{claims_b64}");
    let verified =
        jsonwebtoken::crypto::verify(signature, message.as_bytes(), &cert.key, algorithm)
            .unwrap_or(false);
    if !verified {
        return Err(EntraError::invalid_client(
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{}']",
                thumbprint_hex(presented)
            ),
        ));
    }

    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let number = |name: &str| claims.get(name).and_then(Value::as_f64).map(|n| n as i64);
    let (Some(iss), Some(sub), Some(jti), Some(exp)) =
        (text("iss"), text("sub"), text("jti"), number("exp"))
    else {
        return Err(malformed());
    };
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(malformed()),
    };
    if !iss.eq_ignore_ascii_case(seed::CLIENT_ID) || !sub.eq_ignore_ascii_case(seed::CLIENT_ID) {
        return Err(EntraError::invalid_client(
            700021,
            format!(
                "Client assertion application identifier doesn't match 'client_id' parameter. {CERT_DOCS}"
            ),
        ));
    }
    let aud_ok = aud.iter().any(|a| {
        audiences
            .iter()
            .any(|want| a.trim_end_matches('/').eq_ignore_ascii_case(want))
    });
    if !aud_ok {
        // Entra reports a wrong `aud` as AADSTS700023.
        return Err(EntraError::invalid_client(
            700023,
            format!("Client assertion audience claim does not match Realm issuer. {CERT_DOCS}"),
        ));
    }
    let nbf = number("nbf");
    if exp + SKEW_SECONDS < now || nbf.is_some_and(|nbf| nbf - SKEW_SECONDS > now) {
        return Err(EntraError::invalid_client(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. {CERT_DOCS}",
                fmt_unix(now),
                nbf.map(fmt_unix).unwrap_or_default(),
                fmt_unix(exp)
            ),
        ));
    }
    Ok(jti.to_string())
}

fn fmt_unix(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| {
            let fmt = time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].0000000Z"
            );
            t.format(&fmt).unwrap_or_default()
        })
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_paths() {
        assert_eq!(tenant_of("/abc/oauth2/v2.0/token"), Some("abc"));
        assert_eq!(tenant_of("/abc/oauth2/v2.0/token/"), Some("abc"));
        assert_eq!(tenant_of("/v1.0/deviceManagement/managedDevices"), None);
        assert_eq!(tenant_of("/abc/oauth2/token"), None);
    }

    #[test]
    fn malformed_assertions_are_50027() {
        for bad in ["", "a.b", "a.b.c", "!!.!!.!!"] {
            let err = validate_assertion(bad, None, &[], 0).unwrap_err();
            assert_eq!(err.code, 50027, "{bad}");
        }
    }

    #[test]
    fn assertion_without_registered_certificate_is_700027() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"PS256","typ":"JWT","x5t#S256":"AAAA"}"#);
        let claims = URL_SAFE_NO_PAD.encode(br#"{"aud":"x"}"#);
        let err = validate_assertion(&format!("{header}.{claims}.sig"), None, &[], 0).unwrap_err();
        assert_eq!(err.code, 700027);
        assert_eq!(err.error, "invalid_client");
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    }
}
