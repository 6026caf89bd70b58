//! Everything the simulator remembers between requests.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::Decode;

use crate::faults::ArmedFault;
use crate::log::LoggedRequest;
use crate::profile::Profile;
use crate::schema::Violation;
use crate::seed;
use crate::timefmt;

/// Knobs a test can turn through `PUT /_sim/settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Server page size for the device list (Graph picks its own; clients
    /// must follow `@odata.nextLink`).
    pub page_size: usize,
    /// Ignore every `$filter`, as Intune does for unsupported ones, to prove
    /// that clients re-check what they get back.
    pub silent_filter_mode: bool,
    /// `expires_in` of issued tokens.
    pub token_lifetime_seconds: u64,
    /// Per-app write throttle; `None` disables it.
    pub write_limit: Option<WriteLimit>,
    /// Seconds an accepted action stays out of `deviceActionResults` in
    /// GET-by-id answers. Microsoft does not document whether an action is
    /// listed as soon as it is accepted; a delay proves that clients do not
    /// count on it. 0 (the default) lists it at once.
    pub action_listing_delay_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            page_size: 100,
            silent_filter_mode: false,
            token_lifetime_seconds: 3599,
            write_limit: Some(WriteLimit::default()),
            action_listing_delay_seconds: 0,
        }
    }
}

/// Sliding-window limit on POSTs per app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteLimit {
    /// Requests admitted per window.
    pub max: u32,
    /// Window length in seconds.
    pub window_seconds: u64,
}

impl Default for WriteLimit {
    /// Intune's published devices-service limit for writes: 200 requests per
    /// 20 seconds per app per tenant.
    fn default() -> Self {
        WriteLimit {
            max: 200,
            window_seconds: 20,
        }
    }
}

/// The app's registered certificate, reduced to what assertion checks need.
#[derive(Clone)]
pub(crate) struct RegisteredCert {
    /// base64url(SHA-256(DER)): the `x5t#S256` header value.
    pub x5t_s256: String,
    /// base64url(SHA-1(DER)): the legacy `x5t` header value.
    pub x5t_sha1: String,
    /// RSA public key from the certificate.
    pub key: DecodingKey,
}

impl RegisteredCert {
    /// Parse a PEM certificate as a portal upload would.
    pub(crate) fn from_pem(pem_text: &str) -> Result<RegisteredCert, String> {
        let block = pem::parse(pem_text.trim()).map_err(|e| format!("certificatePem: {e}"))?;
        if block.tag() != "CERTIFICATE" {
            return Err(format!(
                "certificatePem: expected a CERTIFICATE block, got {}",
                block.tag()
            ));
        }
        let der = block.contents();
        let cert = Certificate::from_der(der).map_err(|e| format!("certificatePem: {e}"))?;
        let spki = &cert.tbs_certificate.subject_public_key_info;
        // rsaEncryption; the assertion algorithms Entra accepts are RSA ones.
        if spki.algorithm.oid.to_string() != "1.2.840.113549.1.1.1" {
            return Err("certificatePem: only RSA certificates are supported".to_string());
        }
        let pkcs1 = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| "certificatePem: malformed public key".to_string())?;
        Ok(RegisteredCert {
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
            x5t_sha1: URL_SAFE_NO_PAD.encode(Sha1::digest(der)),
            key: DecodingKey::from_rsa_der(pkcs1),
        })
    }
}

/// The single app registration of the tenant.
#[derive(Clone)]
pub(crate) struct App {
    pub secrets: Vec<String>,
    pub certificate: Option<RegisteredCert>,
    pub roles: Vec<String>,
}

impl Default for App {
    fn default() -> Self {
        App {
            secrets: Vec::new(),
            certificate: None,
            roles: seed::DEFAULT_ROLES.iter().map(|r| r.to_string()).collect(),
        }
    }
}

/// An issued access token.
pub(crate) struct IssuedToken {
    pub client_id: String,
    /// Roles of the app when the token was issued (like the `roles` claim).
    pub roles: Vec<String>,
    pub expires_at: Instant,
    pub force_expired: bool,
}

/// What authentication concluded about a Graph request.
pub(crate) enum AuthResult {
    Missing,
    Invalid,
    Expired,
    Valid {
        client_id: String,
        roles: Vec<String>,
    },
}

pub(crate) struct State {
    /// Devices keyed by lower-case id; the list endpoint pages in key order.
    pub devices: BTreeMap<String, Map<String, Value>>,
    pub app: App,
    pub tokens: HashMap<String, IssuedToken>,
    pub seen_jti: HashSet<String>,
    pub settings: Settings,
    pub faults: Vec<ArmedFault>,
    pub log: Vec<LoggedRequest>,
    pub next_seq: u64,
    /// Admission times of recent POSTs per client id.
    pub writes: HashMap<String, VecDeque<Instant>>,
}

impl State {
    /// The seeded tenant, spelled as `profile` spells it.
    pub(crate) fn seeded(profile: Profile) -> State {
        let devices = seed::devices_at(timefmt::now())
            .into_iter()
            .map(|mut d| {
                profile.respell_device(&mut d);
                (crate::device::str_prop(&d, "id").to_ascii_lowercase(), d)
            })
            .collect();
        State {
            devices,
            app: App::default(),
            tokens: HashMap::new(),
            seen_jti: HashSet::new(),
            settings: Settings::default(),
            faults: Vec::new(),
            log: Vec::new(),
            next_seq: 1,
            writes: HashMap::new(),
        }
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    pub(crate) fn authenticate(&self, bearer: Option<&str>) -> AuthResult {
        let Some(token) = bearer else {
            return AuthResult::Missing;
        };
        match self.tokens.get(token) {
            None => AuthResult::Invalid,
            Some(t) if t.force_expired || Instant::now() >= t.expires_at => AuthResult::Expired,
            Some(t) => AuthResult::Valid {
                client_id: t.client_id.clone(),
                roles: t.roles.clone(),
            },
        }
    }

    /// Admit one write for `client_id` or say how long until a slot frees.
    pub(crate) fn admit_write(&mut self, client_id: &str) -> Result<(), u64> {
        let Some(limit) = self.settings.write_limit else {
            return Ok(());
        };
        let window = Duration::from_secs(limit.window_seconds);
        let now = Instant::now();
        let times = self.writes.entry(client_id.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() >= limit.max as usize {
            let wait = times
                .front()
                .map(|oldest| window.saturating_sub(now.duration_since(*oldest)))
                .unwrap_or(window);
            // Round up: a client waiting exactly this long must get through.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(secs.max(1));
        }
        times.push_back(now);
        Ok(())
    }
}

/// Shared simulator: the base URL it answers on, its profile and its state.
pub(crate) struct Sim {
    pub base_url: String,
    /// Fixed for the simulator's lifetime; a reset re-seeds with it.
    pub profile: Profile,
    state: Mutex<State>,
    /// Schema violations of the requests so far. Kept outside [`State`] so
    /// that a reset in the middle of a test does not wipe them.
    violations: Mutex<Vec<Violation>>,
    /// Seconds the simulated tenant's clock runs ahead of the real one
    /// (`PUT /_sim/clock`), so a test can let a week pass for the actions
    /// Intune records. Like the violations, it survives a reset.
    clock_offset_seconds: AtomicI64,
}

impl Sim {
    /// The tenant's current time: real time plus the test's offset.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        timefmt::now() + time::Duration::seconds(self.clock_offset_seconds.load(Ordering::Relaxed))
    }

    pub(crate) fn set_clock_offset(&self, seconds: i64) {
        self.clock_offset_seconds.store(seconds, Ordering::Relaxed);
    }

    pub(crate) fn clock_offset(&self) -> i64 {
        self.clock_offset_seconds.load(Ordering::Relaxed)
    }

    pub(crate) fn new(base_url: String, profile: Profile) -> Sim {
        Sim {
            base_url,
            profile,
            state: Mutex::new(State::seeded(profile)),
            violations: Mutex::new(Vec::new()),
            clock_offset_seconds: AtomicI64::new(0),
        }
    }

    /// Remember a request that breaks the published schema.
    pub(crate) fn record_violation(&self, violation: Violation) {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(violation);
    }

    /// Every violation recorded so far.
    pub(crate) fn violations(&self) -> Vec<Violation> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forget the recorded violations.
    pub(crate) fn clear_violations(&self) {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Lock the state. A panic while holding the lock must not wedge every
    /// later request, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_limit_rejects_beyond_max_with_wait() {
        let mut s = State::seeded(Profile::Standard);
        s.settings.write_limit = Some(WriteLimit {
            max: 2,
            window_seconds: 20,
        });
        assert!(s.admit_write("a").is_ok());
        assert!(s.admit_write("a").is_ok());
        let wait = s.admit_write("a").unwrap_err();
        assert!((19..=20).contains(&wait), "{wait}");
        // Another app has its own budget; rejected writes did not count.
        assert!(s.admit_write("b").is_ok());
        assert_eq!(s.writes["a"].len(), 2);
        s.settings.write_limit = None;
        assert!(s.admit_write("a").is_ok());
    }
}
