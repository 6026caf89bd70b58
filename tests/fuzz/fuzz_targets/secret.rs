//! The Secrets Manager SecretString: `parse_secret` never panics, and an
//! error message never repeats anything of the secret. Stronger than "the
//! clientSecret is not in the message": every message must be one of the
//! fixed texts below (numbers aside), so nothing of the input can be in it.
//!
//! Half of the inputs are raw text; the other half are JSON objects built
//! from fuzzed fields, with the test certificate and key from
//! `shared/testdata` (whole or mutated) so the PEM and RSA parsers are
//! reached too.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use passcode_core::auth::client_assertion;
use passcode_core::credentials::{Credential, parse_secret};
use passcode_core::error::ErrorCode;
use serde_json::{Map, Value, json};

const SECRET_ID: &str = "fuzz/graph-app";
const TEST_KEY: &str = include_str!("../../../shared/testdata/test-key.pem");
const TEST_CERT: &str = include_str!("../../../shared/testdata/test-cert.pem");

/// Every message `parse_secret` may give, after the
/// `secret "fuzz/graph-app" is malformed: ` prefix, with digit runs as `#`.
const MESSAGES: &[&str] = &[
    "not valid JSON (line #, column #); expected {\"tenantId\", \"clientId\", \"clientSecret\"} or {\"tenantId\", \"clientId\", \"certificate\", \"privateKey\"}",
    "the JSON is not an object",
    "\"tenantId\" must be a string",
    "\"clientId\" must be a string",
    "\"clientSecret\" must be a string",
    "\"certificate\" must be a string",
    "\"privateKey\" must be a string",
    "\"tenantId\" is missing",
    "\"clientId\" is missing",
    "\"tenantId\" must be the tenant's id or domain, not common/organizations",
    "\"tenantId\" must be a GUID or a domain name",
    "\"certificate\" is not PEM text",
    "\"certificate\" holds no \"BEGIN CERTIFICATE\" block",
    "\"certificate\" is not an X.509 certificate (its validity could not be read)",
    "give either \"clientSecret\" or \"certificate\" + \"privateKey\", not both",
    "\"privateKey\" is missing",
    "\"certificate\" is missing",
    "no credential: add \"clientSecret\", or \"certificate\" and \"privateKey\"",
];

/// `"privateKey" is not an RSA private key ...`: its exact wording may grow
/// (key sizes, forms), so only its fixed start is required, and the rest
/// must not come from the input (checked by `no_echo`).
const KEY_MESSAGE_START: &str = "\"privateKey\" is not an RSA private key in PEM";

fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

#[derive(Arbitrary, Debug)]
enum Field {
    Absent,
    Null,
    Number(i64),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Pem {
    Field(Field),
    /// The test certificate or key.
    Valid,
    /// ... with one byte replaced.
    Mutated {
        at: u16,
        byte: u8,
    },
    /// ... cut short.
    Cut(u16),
    /// ... with text before and after.
    Wrapped(String, String),
}

#[derive(Arbitrary, Debug)]
struct Structured {
    tenant_id: Field,
    client_id: Field,
    client_secret: Field,
    certificate: Pem,
    private_key: Pem,
    extra: Vec<(String, String)>,
}

fn field(f: &Field) -> Option<Value> {
    match f {
        Field::Absent => None,
        Field::Null => Some(Value::Null),
        Field::Number(n) => Some(json!(n)),
        Field::Text(t) => Some(json!(t)),
    }
}

fn pem(p: &Pem, valid: &str) -> Option<Value> {
    let text = match p {
        Pem::Field(f) => return field(f),
        Pem::Valid => valid.to_string(),
        Pem::Mutated { at, byte } => {
            let mut bytes = valid.as_bytes().to_vec();
            let at = *at as usize % bytes.len();
            bytes[at] = *byte;
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Pem::Cut(n) => valid[..(*n as usize % valid.len())].to_string(),
        Pem::Wrapped(before, after) => format!("{before}{valid}{after}"),
    };
    Some(json!(text))
}

fn build(s: &Structured) -> String {
    let mut map = Map::new();
    for (k, v) in &s.extra {
        map.insert(k.clone(), json!(v));
    }
    let fields = [
        ("tenantId", field(&s.tenant_id)),
        ("clientId", field(&s.client_id)),
        ("clientSecret", field(&s.client_secret)),
        ("certificate", pem(&s.certificate, TEST_CERT)),
        ("privateKey", pem(&s.private_key, TEST_KEY)),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            map.insert(name.to_string(), v);
        }
    }
    Value::Object(map).to_string()
}

/// Strings in the input a message must not repeat: every JSON string value
/// (the secret's fields) longer than 8 characters that is not a part of a
/// fixed message.
fn values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
        for v in map.values() {
            if let Value::String(s) = v {
                out.push(s.clone());
            }
        }
    }
    out
}

fn no_echo(message: &str, text: &str) {
    for value in values(text) {
        let value = value.trim();
        if value.chars().count() > 8 && !MESSAGES.iter().any(|m| m.contains(value)) {
            assert!(
                !message.contains(value),
                "the message repeats a value of the secret: {message:?}"
            );
        }
    }
}

fn check(text: &str) {
    let parsed = parse_secret(SECRET_ID, text, 7);
    let fields: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    match parsed {
        Ok(c) => {
            assert_eq!(c.generation, 7);
            assert!(!c.tenant_id.trim().is_empty() && !c.client_id.trim().is_empty());
            assert!(
                c.tenant_id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.')
            );
            let debug = format!("{c:?}");
            match &c.credential {
                Credential::ClientSecret(secret) => {
                    assert_eq!(Some(secret.expose()), fields["clientSecret"].as_str());
                    let s = secret.expose();
                    if s.len() > 8 && !c.tenant_id.contains(s) && !c.client_id.contains(s) {
                        assert!(!debug.contains(s), "Debug shows the client secret");
                    }
                }
                Credential::Certificate {
                    thumbprint_sha256,
                    key,
                    ..
                } => {
                    assert_eq!(thumbprint_sha256.len(), 43);
                    // Debug shows the ids, which may hold anything.
                    let ids = format!("{:?}{:?}", c.tenant_id, c.client_id);
                    assert!(!debug.contains("PRIVATE KEY") || ids.contains("PRIVATE KEY"));
                    // A key that parsed must sign, or fail cleanly.
                    let aud = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
                    let _ = client_assertion(aud, &c.client_id, thumbprint_sha256, key);
                }
            }
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::ConfigurationError);
            let prefix = format!("secret {SECRET_ID:?} is malformed: ");
            let rest = e
                .message
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("unexpected message {:?}", e.message));
            // Digits aside on both sides ("X.509" has some too).
            let known = MESSAGES.iter().any(|m| normalise(m) == normalise(rest))
                || rest.starts_with(KEY_MESSAGE_START);
            assert!(known, "message not one of the fixed texts: {rest:?}");
            no_echo(&e.message, text);
            if let Some(Value::String(secret)) = fields.get("clientSecret")
                && !secret.trim().is_empty()
            {
                assert!(
                    !e.message.contains(secret.as_str())
                        || MESSAGES.iter().any(|m| m.contains(secret.as_str()))
                        || prefix.contains(secret.as_str()),
                    "the message repeats the clientSecret"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check(text);
        }
    } else if let Ok(s) = Structured::arbitrary_take_rest(Unstructured::new(rest)) {
        check(&build(&s));
    }
});
