//! The Graph app credentials, read from AWS Secrets Manager and cached.
//!
//! The secret is a JSON SecretString in one of two forms:
//! `{"tenantId","clientId","clientSecret"}` or
//! `{"tenantId","clientId","certificate":"<PEM>","privateKey":"<PEM PKCS#8>"}`.
//!
//! It is fetched on first use (not at init, so a cold start pays for it only
//! when a request needs Graph), kept for `SECRET_CACHE_TTL_SECONDS`, and read
//! again at once when Entra or Graph refuses the credentials, which is how a
//! rotated secret is picked up. Only `GetSecretValue` is called, so the IAM
//! policy needs nothing else. Error messages name fields, never values.

use crate::auth::SigningKey;
use crate::error::{ErrorCode, ServiceError};
use crate::sensitive::Sensitive;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How the app proves who it is to Entra ID.
pub enum Credential {
    ClientSecret(Sensitive),
    Certificate {
        /// `x5t#S256` header: base64url SHA-256 of the certificate's DER.
        thumbprint_sha256: String,
        key: SigningKey,
    },
}

pub struct GraphCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Credential,
    /// Increases with every fetch, so cached tokens from older credentials
    /// are not reused.
    pub generation: u64,
}

impl std::fmt::Debug for GraphCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.credential {
            Credential::ClientSecret(_) => "clientSecret",
            Credential::Certificate { .. } => "certificate",
        };
        f.debug_struct("GraphCredentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &kind)
            .finish()
    }
}

impl GraphCredentials {
    pub fn kind(&self) -> &'static str {
        match self.credential {
            Credential::ClientSecret(_) => "clientSecret",
            Credential::Certificate { .. } => "certificate",
        }
    }
}

/// Parses the SecretString. `secret_id` only appears in messages.
pub fn parse_secret(
    secret_id: &str,
    text: &str,
    generation: u64,
) -> Result<GraphCredentials, ServiceError> {
    let bad =
        |what: String| ServiceError::config(format!("secret {secret_id:?} is malformed: {what}"));
    // serde_json's messages can quote the input, so only its position is kept.
    let json: Value = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "not valid JSON (line {}, column {}); expected {{\"tenantId\", \"clientId\", \"clientSecret\"}} or {{\"tenantId\", \"clientId\", \"certificate\", \"privateKey\"}}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(fields) = json else {
        return Err(bad("the JSON is not an object".into()));
    };
    let field = |name: &str| -> Result<Option<&str>, ServiceError> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(bad(format!("\"{name}\" must be a string"))),
        }
    };
    let tenant_id = field("tenantId")?.ok_or_else(|| bad("\"tenantId\" is missing".into()))?;
    let client_id = field("clientId")?.ok_or_else(|| bad("\"clientId\" is missing".into()))?;
    if tenant_id.eq_ignore_ascii_case("common") || tenant_id.eq_ignore_ascii_case("organizations") {
        return Err(bad(
            "\"tenantId\" must be the tenant's id or domain, not common/organizations".into(),
        ));
    }
    if !tenant_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(bad("\"tenantId\" must be a GUID or a domain name".into()));
    }
    let credential = match (
        field("clientSecret")?,
        field("certificate")?,
        field("privateKey")?,
    ) {
        (Some(secret), None, None) => Credential::ClientSecret(Sensitive::new(secret)),
        (None, Some(cert), Some(key)) => Credential::Certificate {
            thumbprint_sha256: certificate_thumbprint(cert).map_err(bad)?,
            key: SigningKey::from_pem(key).ok_or_else(|| {
                bad("\"privateKey\" is not an RSA private key in PEM (PKCS#8 \"BEGIN PRIVATE KEY\" or PKCS#1, 2048 to 8192 bits)".into())
            })?,
        },
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(bad(
                "give either \"clientSecret\" or \"certificate\" + \"privateKey\", not both".into(),
            ));
        }
        (None, Some(_), None) => return Err(bad("\"privateKey\" is missing".into())),
        (None, None, Some(_)) => return Err(bad("\"certificate\" is missing".into())),
        (None, None, None) => {
            return Err(bad(
                "no credential: add \"clientSecret\", or \"certificate\" and \"privateKey\"".into(),
            ));
        }
    };
    Ok(GraphCredentials {
        tenant_id: tenant_id.to_string(),
        client_id: client_id.to_string(),
        credential,
        generation,
    })
}

/// Base64url SHA-256 of the first certificate in a PEM text.
fn certificate_thumbprint(pem_text: &str) -> Result<String, String> {
    let blocks =
        pem::parse_many(pem_text).map_err(|_| "\"certificate\" is not PEM text".to_string())?;
    let cert = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .ok_or("\"certificate\" holds no \"BEGIN CERTIFICATE\" block")?;
    let digest = Sha256::digest(cert.contents());
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

struct Cached {
    credentials: Arc<GraphCredentials>,
    fetched_at: Instant,
}

/// Secrets Manager reader with a TTL cache, one per execution environment.
pub struct SecretStore {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    ttl: Duration,
    cache: Mutex<Option<Cached>>,
    generation: std::sync::atomic::AtomicU64,
}

impl SecretStore {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
        ttl: Duration,
    ) -> SecretStore {
        SecretStore {
            client,
            secret_id,
            ttl,
            cache: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The cached credentials, or freshly read ones when the cache is empty,
    /// older than the TTL, or `refresh` is set.
    pub async fn get(&self, refresh: bool) -> Result<Arc<GraphCredentials>, ServiceError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && !refresh
            && cached.fetched_at.elapsed() < self.ttl
        {
            return Ok(cached.credentials.clone());
        }
        let text = self.fetch().await?;
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let credentials = Arc::new(parse_secret(&self.secret_id, &text, generation)?);
        tracing::debug!(
            secret_id = %self.secret_id,
            credential = credentials.kind(),
            generation,
            "read Graph credentials from Secrets Manager"
        );
        *cache = Some(Cached {
            credentials: credentials.clone(),
            fetched_at: Instant::now(),
        });
        Ok(credentials)
    }

    async fn fetch(&self) -> Result<String, ServiceError> {
        let id = &self.secret_id;
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().map(str::to_string);
                match code.as_deref() {
                    Some("ResourceNotFoundException") => ServiceError::config(format!(
                        "secret {id:?} does not exist (or has no current value): create it and put the Graph app credentials in it"
                    )),
                    Some("AccessDeniedException") => ServiceError::config(format!(
                        "the function's role may not read secret {id:?}: allow secretsmanager:GetSecretValue on it (and kms:Decrypt for a customer-managed key)"
                    )),
                    Some("DecryptionFailure") => ServiceError::config(format!(
                        "secret {id:?} could not be decrypted: the function's role needs kms:Decrypt on the secret's key"
                    )),
                    Some("InvalidRequestException") => ServiceError::config(format!(
                        "secret {id:?} can't be read now (it may be scheduled for deletion)"
                    )),
                    Some(other) => ServiceError::config(format!(
                        "reading secret {id:?} failed: {other}"
                    )),
                    None => ServiceError::new(
                        ErrorCode::GraphUnavailable,
                        format!("Secrets Manager could not be reached to read secret {id:?}; retry later"),
                    ),
                }
            })?;
        out.secret_string().map(str::to_string).ok_or_else(|| {
            ServiceError::config(format!(
                "secret {id:?} has no SecretString (binary secrets are not supported)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway 2048-bit key and self-signed certificate made for these tests only.
    const TEST_KEY: &str = include_str!("../testdata/test-key.pem");
    const TEST_CERT: &str = include_str!("../testdata/test-cert.pem");

    fn parse(text: &str) -> Result<GraphCredentials, ServiceError> {
        parse_secret("graph/app", text, 1)
    }

    #[test]
    fn client_secret_form() {
        let c =
            parse(r#"{"tenantId":"t-1","clientId":"c-1","clientSecret":"s3cr3t~value"}"#).unwrap();
        assert_eq!(c.tenant_id, "t-1");
        assert!(
            matches!(&c.credential, Credential::ClientSecret(s) if s.expose() == "s3cr3t~value")
        );
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn certificate_form_has_sha256_thumbprint() {
        let json = serde_json::json!({"tenantId":"contoso.onmicrosoft.com","clientId":"c","certificate":TEST_CERT,"privateKey":TEST_KEY});
        let c = parse(&json.to_string()).unwrap();
        let Credential::Certificate {
            thumbprint_sha256, ..
        } = &c.credential
        else {
            panic!()
        };
        assert_eq!(thumbprint_sha256.len(), 43, "base64url of 32 bytes");
        assert!(!thumbprint_sha256.contains('=') && !thumbprint_sha256.contains('+'));
    }

    #[test]
    fn malformed_secrets_name_the_problem_but_never_the_value() {
        let cases = [
            ("not json at all s3cr3t", "not valid JSON"),
            (r#"["s3cr3t"]"#, "not an object"),
            (
                r#"{"clientId":"c","clientSecret":"s3cr3t"}"#,
                "\"tenantId\" is missing",
            ),
            (
                r#"{"tenantId":"t","clientSecret":"s3cr3t"}"#,
                "\"clientId\" is missing",
            ),
            (r#"{"tenantId":"t","clientId":"c"}"#, "no credential"),
            (
                r#"{"tenantId":"t","clientId":"c","clientSecret":12345}"#,
                "must be a string",
            ),
            (
                r#"{"tenantId":"common","clientId":"c","clientSecret":"s3cr3t"}"#,
                "not common",
            ),
            (
                r#"{"tenantId":"t","clientId":"c","certificate":"s3cr3t"}"#,
                "\"privateKey\" is missing",
            ),
            (
                r#"{"tenantId":"t","clientId":"c","certificate":"s3cr3t","privateKey":"s3cr3t"}"#,
                "BEGIN CERTIFICATE",
            ),
            (
                r#"{"tenantId":"t","clientId":"c","clientSecret":"s3cr3t","certificate":"x"}"#,
                "not both",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigurationError, "{text}");
            assert!(err.message.contains(expected), "{text}: {}", err.message);
            assert!(!err.message.contains("s3cr3t"), "{text}: {}", err.message);
            assert!(!err.message.contains("12345"), "{}", err.message);
        }
        let json = serde_json::json!({"tenantId":"t","clientId":"c","certificate":TEST_CERT,"privateKey":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"});
        let err = parse(&json.to_string()).unwrap_err();
        assert!(
            err.message.contains("not an RSA private key"),
            "{}",
            err.message
        );
    }
}
