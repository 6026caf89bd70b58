//! The Graph app's credentials: what the secret holds, parsed and checked.
//!
//! The secret is a JSON SecretString in one of two forms:
//! `{"tenantId","clientId","clientSecret"}` or
//! `{"tenantId","clientId","certificate":"<PEM>","privateKey":"<PEM PKCS#8>"}`.
//!
//! For a certificate this module also computes what the token flow needs
//! (the `x5t#S256` thumbprint and the signing key) and reads the
//! certificate's `notAfter`, so an expiring certificate is noticed before
//! Entra refuses it. The secret store (`secrets`) and the token flow
//! (`auth`) both depend on this module, not on each other. Error messages
//! name fields, never values.

use crate::error::ServiceError;
use crate::sensitive::Sensitive;
use base64::Engine;
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// How the app proves who it is to Entra ID.
pub enum Credential {
    ClientSecret(Sensitive),
    Certificate {
        /// `x5t#S256` header: base64url SHA-256 of the certificate's DER.
        thumbprint_sha256: String,
        key: SigningKey,
        /// The certificate's `notAfter`: Entra refuses it from then on.
        not_after: OffsetDateTime,
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
        f.debug_struct("GraphCredentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &self.kind())
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

    /// When the certificate stops being valid; `None` for a client secret
    /// (its expiry is not in the secret).
    pub fn certificate_not_after(&self) -> Option<OffsetDateTime> {
        match &self.credential {
            Credential::Certificate { not_after, .. } => Some(*not_after),
            Credential::ClientSecret(_) => None,
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
        (None, Some(cert), Some(key)) => {
            let der = certificate_der(cert).map_err(bad)?;
            Credential::Certificate {
                thumbprint_sha256: base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(&der)),
                not_after: not_after(&der).ok_or_else(|| {
                    bad("\"certificate\" is not an X.509 certificate (its validity could not be read)".into())
                })?,
                key: SigningKey::from_pem(key).ok_or_else(|| {
                    bad("\"privateKey\" is not an RSA private key in PEM (PKCS#8 \"BEGIN PRIVATE KEY\" or PKCS#1, 2048 to 8192 bits)".into())
                })?,
            }
        }
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

/// The DER of the first certificate in a PEM text.
fn certificate_der(pem_text: &str) -> Result<Vec<u8>, String> {
    let blocks =
        pem::parse_many(pem_text).map_err(|_| "\"certificate\" is not PEM text".to_string())?;
    blocks
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .ok_or_else(|| "\"certificate\" holds no \"BEGIN CERTIFICATE\" block".to_string())
}

/// `notAfter` of an X.509 certificate (RFC 5280 §4.1), found by walking
/// the DER just far enough: Certificate → tbsCertificate → (version,
/// serialNumber, signature, issuer) → validity. The rest is not needed and
/// the signature is not checked (Entra checks the certificate itself).
pub fn not_after(der: &[u8]) -> Option<OffsetDateTime> {
    const SEQUENCE: u8 = 0x30;
    let (tag, certificate, _) = der_element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = der_element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    // Skip the optional [0] version, then serial, signature and issuer.
    let (tag, _, rest) = der_element(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    for expected in [0x02, SEQUENCE, SEQUENCE] {
        let (tag, _, rest) = der_element(tbs)?;
        if tag != expected {
            return None;
        }
        tbs = rest;
    }
    let (tag, validity, _) = der_element(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, rest) = der_element(validity)?; // notBefore
    let (tag, text, _) = der_element(rest)?;
    asn1_time(tag, text)
}

/// One DER element: tag, contents, and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        (
            bytes
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b)),
            rest,
        )
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// UTCTime (`YYMMDDHHMMSSZ`, 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), the two forms RFC 5280 §4.1.2.5 allows.
fn asn1_time(tag: u8, text: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i32 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let two = |i: usize| rest[i..i + 2].parse::<u8>().ok();
    let month = time::Month::try_from(two(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, two(2)?).ok()?;
    let clock = time::Time::from_hms(two(4)?, two(6)?, two(8)?).ok()?;
    Some(date.with_time(clock).assume_utc())
}

/// The RSA private key of the app's certificate, which signs client
/// assertions (PS256: RSASSA-PSS with SHA-256, salt length 32).
pub struct SigningKey(Box<RsaKeyPair>);

impl SigningKey {
    /// The first RSA private key in a PEM text: PKCS#8 (`BEGIN PRIVATE KEY`)
    /// or PKCS#1 (`BEGIN RSA PRIVATE KEY`), 2048 to 8192 bits. `None` when
    /// there is none or it cannot be used.
    pub fn from_pem(text: &str) -> Option<SigningKey> {
        let blocks = pem::parse_many(text).ok()?;
        blocks
            .iter()
            .find_map(|block| match block.tag() {
                "PRIVATE KEY" => RsaKeyPair::from_pkcs8(block.contents()).ok(),
                "RSA PRIVATE KEY" => RsaKeyPair::from_der(block.contents()).ok(),
                _ => None,
            })
            .map(|key| SigningKey(Box::new(key)))
    }

    pub fn sign_ps256(&self, message: &[u8]) -> Option<Vec<u8>> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PSS_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .ok()?;
        Some(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

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
        // `openssl x509 -noout -enddate`: notAfter=Nov 23 05:15:09 2036 GMT
        assert_eq!(
            c.certificate_not_after(),
            Some(time::macros::datetime!(2036-11-23 05:15:09 UTC))
        );
    }

    fn test_cert_der() -> Vec<u8> {
        pem::parse(TEST_CERT).unwrap().into_contents()
    }

    fn pem_of(der: Vec<u8>) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", der))
    }

    /// The test certificate with its notAfter (UTCTime) replaced: a
    /// certificate that expires when a test needs it to. Its signature no
    /// longer verifies, which nothing here checks (Entra checks the
    /// registered certificate).
    fn cert_expiring(utc_time: &str) -> Vec<u8> {
        let mut der = test_cert_der();
        let old = b"361123051509Z";
        let at = der.windows(old.len()).position(|w| w == old).unwrap();
        der[at..at + old.len()].copy_from_slice(utc_time.as_bytes());
        der
    }

    #[test]
    fn not_after_is_read_from_the_certificate() {
        use time::macros::datetime;
        assert_eq!(
            not_after(&cert_expiring("261210083000Z")),
            Some(datetime!(2026-12-10 08:30:00 UTC))
        );
        // UTCTime years 50-99 are 1950-1999 (RFC 5280 §4.1.2.5.1).
        assert_eq!(
            not_after(&cert_expiring("991231235959Z")),
            Some(datetime!(1999-12-31 23:59:59 UTC))
        );
        let json = serde_json::json!({"tenantId":"t","clientId":"c","certificate":pem_of(cert_expiring("250201000000Z")),"privateKey":TEST_KEY});
        assert_eq!(
            parse(&json.to_string()).unwrap().certificate_not_after(),
            Some(datetime!(2025-02-01 00:00:00 UTC))
        );
    }

    /// From 2050 on, certificates carry GeneralizedTime; a minimal
    /// tbsCertificate without the optional version shows the walk needs
    /// nothing else.
    #[test]
    fn generalized_time_and_the_minimal_layout() {
        let time = b"20510102030405Z";
        let mut validity = vec![0x18, time.len() as u8];
        validity.extend_from_slice(time);
        let validity = [validity.clone(), validity].concat();
        let mut tbs = vec![
            0x02,
            0x01,
            0x01,
            0x30,
            0x00,
            0x30,
            0x00,
            0x30,
            validity.len() as u8,
        ];
        tbs.extend_from_slice(&validity);
        let mut cert = vec![0x30, (tbs.len() + 2) as u8, 0x30, tbs.len() as u8];
        cert.extend_from_slice(&tbs);
        assert_eq!(
            not_after(&cert),
            Some(time::macros::datetime!(2051-01-02 03:04:05 UTC))
        );
    }

    #[test]
    fn broken_certificates_are_refused_without_panicking() {
        let der = test_cert_der();
        for len in 0..der.len().min(400) {
            let _ = not_after(&der[..len]);
        }
        for bad in [
            "261310083000Z",
            "261232083000Z",
            "26121008300Z ",
            "2612100830000",
        ] {
            assert_eq!(not_after(&cert_expiring(bad)), None, "{bad}");
        }
        let json = serde_json::json!({"tenantId":"t","clientId":"c","certificate":pem_of(b"not a certificate".to_vec()),"privateKey":TEST_KEY});
        let err = parse(&json.to_string()).unwrap_err();
        assert!(
            err.message.contains("not an X.509 certificate"),
            "{}",
            err.message
        );
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
