//! The request stream: logical requests drawn from the seed, each with what a
//! correct function must answer and how it is sent (trigger, identifier form,
//! caller, duplicate copies, retry). The stream depends on the seed alone (for
//! the `fastrand` version in `Cargo.lock`), so a failing run can be repeated.

use fastrand::Rng;
use graph_sim::seed::devices as seed;
use passcode_core::Action;
use passcode_core::action::EVENT_DETAIL_TYPE;
use serde_json::{Value, json};

use super::SoakConfig;
use super::devices::SoakDevice;
use crate::events::{self, Caller};

/// What a correct function must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// Eligible device: `accepted` or `alreadyPending` (or a replay of one).
    Send,
    /// The device can't take the action: `unsupportedPlatform` / `deviceNotManaged`.
    Refuse,
    Status,
    DryRun,
    NotFound,
    Ambiguous,
    Invalid,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Via {
    ApiV2,
    ApiV1,
    EventBridge,
}

/// One logical request and how to send it.
#[derive(Debug)]
pub(super) struct Plan {
    pub n: usize,
    pub action: Action,
    pub expect: Expect,
    /// Id of the device asked for, for the per-device lock and the checks.
    pub device_id: Option<String>,
    pub via: Via,
    /// API: method, path and `{deviceId}` path parameter.
    method: &'static str,
    path: String,
    path_id: Option<String>,
    /// API body, EventBridge detail. `raw_body` replaces it with bytes that are not JSON.
    body: Option<Value>,
    raw_body: Option<String>,
    caller: Caller,
    event_id: String,
    /// Processes (indices) that get a copy at the same instant; one entry = no duplicate.
    pub copies: Vec<usize>,
    /// Resend once after a transient answer.
    pub retry: bool,
    /// The rival sent at the same instant: another logical request (its
    /// own caller and key) for the same device and action.
    pub rival: Option<usize>,
    /// Set on a rival: the request it is sent with, which sends it.
    pub sent_with: Option<usize>,
}

impl Plan {
    /// The Lambda event that carries this request.
    pub fn event(&self) -> Value {
        match self.via {
            Via::EventBridge => events::eventbridge_with(
                "com.example.helpdesk",
                EVENT_DETAIL_TYPE,
                &self.event_id,
                self.body.as_ref().unwrap_or(&Value::Null),
            ),
            Via::ApiV2 | Via::ApiV1 => {
                let build = if matches!(self.via, Via::ApiV2) {
                    events::api_v2
                } else {
                    events::api_v1
                };
                let path_param = self.path_id.as_deref().map(|id| ("deviceId", id));
                let mut event = build(
                    self.method,
                    &self.path,
                    path_param,
                    self.body.as_ref(),
                    &self.caller,
                );
                if let Some(raw) = &self.raw_body {
                    event["body"] = json!(raw);
                }
                event
            }
        }
    }

    /// `request 12 (reset-passcode Send via ApiV2, 2 copies)`, for the report.
    pub fn describe(&self) -> String {
        format!(
            "request {} ({} {:?} via {:?}, {} cop{})",
            self.n,
            self.action.function_name(),
            self.expect,
            self.via,
            self.copies.len(),
            if self.copies.len() == 1 { "y" } else { "ies" }
        )
    }
}

/// The whole stream of `config.requests` logical requests. With the
/// idempotency table, some single-copy writes get a rival (the device lease
/// must keep the two to one POST); without it the pending check alone is not
/// atomic across requests, so none do.
pub(super) fn stream(config: &SoakConfig, pool: &[SoakDevice]) -> Vec<Plan> {
    let mut rng = Rng::with_seed(config.seed);
    let mut plans: Vec<Plan> = Vec::with_capacity(config.requests);
    while plans.len() < config.requests {
        let mut first = plan(plans.len(), config, pool, &mut rng, None);
        let rivalled = config.idempotency
            && config.processes >= 2
            && first.expect == Expect::Send
            && first.copies.len() == 1
            && plans.len() + 2 <= config.requests
            && chance(&mut rng, config.rival_fraction);
        if rivalled {
            let mut rival = plan(first.n + 1, config, pool, &mut rng, Some(&first));
            first.rival = Some(rival.n);
            rival.sent_with = Some(first.n);
            plans.push(first);
            plans.push(rival);
        } else {
            plans.push(first);
        }
    }
    plans
}

fn plan(
    n: usize,
    config: &SoakConfig,
    pool: &[SoakDevice],
    rng: &mut Rng,
    rival_of: Option<&Plan>,
) -> Plan {
    let action = match rng.usize(..100) {
        0..15 => Action::Status,
        15..55 => Action::ResetPasscode,
        55..85 => Action::RemovePasscode,
        _ => Action::ResetWindowsPin,
    };
    let roll = rng.usize(..100);
    let expect = if roll < 12 {
        Expect::Invalid
    } else if action == Action::Status {
        match roll {
            0..92 => Expect::Status,
            92..96 => Expect::NotFound,
            _ => Expect::Ambiguous,
        }
    } else {
        match roll {
            0..72 => Expect::Send,
            72..86 => Expect::Refuse,
            86..91 => Expect::DryRun,
            91..96 => Expect::NotFound,
            _ => Expect::Ambiguous,
        }
    };
    let via = match rng.usize(..100) {
        0..55 => Via::ApiV2,
        55..70 => Via::ApiV1,
        _ => Via::EventBridge,
    };
    let device = match expect {
        Expect::Send | Expect::DryRun => Some(pick_device(pool, rng, |d| d.takes == Some(action))),
        Expect::Refuse => Some(pick_device(pool, rng, |d| d.takes != Some(action))),
        Expect::Status | Expect::Invalid => Some(rng.usize(..pool.len())),
        Expect::NotFound | Expect::Ambiguous => None,
    };
    // A rival asks the same of the same device, in its own words.
    let (action, expect, device) = match rival_of {
        Some(first) => (
            first.action,
            Expect::Send,
            pool.iter()
                .position(|d| Some(&d.id) == first.device_id.as_ref()),
        ),
        None => (action, expect, device),
    };
    let expect = match (expect, device) {
        (Expect::Status, Some(i)) if pool[i].unmanaged => Expect::Refuse,
        _ => expect,
    };
    let api = !matches!(via, Via::EventBridge);
    // The device: in the path (API only) or one of the body's identifier forms.
    let (mut identifier, mut path_id) = (None, None);
    match (expect, device) {
        (Expect::NotFound, _) => {
            identifier = Some(if rng.bool() {
                json!({"serialNumber": format!("NOSUCH{n:06}")})
            } else {
                json!({"id": format!("66666666-0000-4000-8000-{n:012}")})
            });
        }
        (Expect::Ambiguous, _) => {
            identifier = Some(if rng.bool() {
                json!({"serialNumber": "DUPSERIAL01"})
            } else {
                json!({"userPrincipalName": "morgan@contoso.com"})
            });
        }
        // Status has only a GET path route, without a body to break.
        (_, Some(i))
            if api
                && !(action == Action::Status && expect == Expect::Invalid)
                && chance(rng, 0.3) =>
        {
            path_id = Some(pool[i].id.clone())
        }
        (_, Some(i)) => identifier = Some(identifier_form(&pool[i], rng)),
        (_, None) => {}
    }

    let mut body = json!({});
    if let Some(identifier) = &identifier {
        body["device"] = identifier.clone();
    }
    if action.writes() || rng.bool() {
        body["reason"] = json!(format!("soak request {n}"));
    }
    if chance(rng, 0.3) {
        body["ticket"] = json!(format!("INC{n:07}"));
    }
    if expect == Expect::DryRun {
        body["dryRun"] = json!(true);
    }
    // API: half carry an idempotencyKey, the rest get a key derived from
    // caller + device; EventBridge: the event id, sometimes a key as well.
    let keyed = if api { rng.bool() } else { chance(rng, 0.3) };
    if keyed {
        body["idempotencyKey"] = json!(format!("soak-{}-{n}", config.seed));
    }
    if !api {
        body["action"] = json!(action.event_action());
        body["requestedBy"] = json!(format!("agent{}@contoso.com", n % 7));
    }
    let mut raw_body = None;
    if expect == Expect::Invalid {
        make_invalid(&mut body, &mut raw_body, &mut path_id, action, api, n, rng);
    }

    // A keyless API request is its own caller, so that a derived key only
    // ever joins the copies of one logical request.
    let caller = match rng.usize(..4) {
        0 if matches!(via, Via::ApiV2) => {
            Caller::jwt(format!("sub-{n}"), Some(&format!("agent{n}@contoso.com")))
        }
        _ if keyed => Caller::iam("arn:aws:iam::123456789012:user/helpdesk-integration"),
        _ => Caller::iam(format!("arn:aws:iam::123456789012:user/agent-{n}")),
    };
    let (method, path) = match (&path_id, action) {
        (Some(id), Action::Status) => {
            // The GET route has no body; reason and ticket would go in the query.
            body = Value::Null;
            (
                "GET",
                format!("/v1/devices/{id}/{}", action.function_name()),
            )
        }
        (Some(id), _) => (
            "POST",
            format!("/v1/devices/{id}/{}", action.function_name()),
        ),
        (None, _) => ("POST", format!("/v1/{}", action.function_name())),
    };

    let copies = if let Some(first) = rival_of {
        vec![(first.copies[0] + 1) % config.processes]
    } else if config.processes >= 2 && chance(rng, config.duplicate_fraction) {
        let k = 2 + rng.usize(..config.processes.min(3) - 1);
        let mut chosen: Vec<usize> = (0..config.processes).collect();
        rng.shuffle(&mut chosen);
        chosen.truncate(k);
        chosen.sort_unstable();
        chosen
    } else {
        vec![rng.usize(..config.processes)]
    };
    Plan {
        n,
        action,
        expect,
        device_id: device.map(|i| pool[i].id.clone()),
        via,
        method,
        path,
        path_id,
        body: (!body.is_null()).then_some(body),
        raw_body,
        caller,
        event_id: uuid::Uuid::from_u64_pair(config.seed, n as u64).to_string(),
        copies,
        retry: rival_of.is_none() && chance(rng, 0.4),
        rival: None,
        sent_with: None,
    }
}

/// True with probability `p`.
fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.f64() < p
}

fn pick_device(pool: &[SoakDevice], rng: &mut Rng, keep: impl Fn(&SoakDevice) -> bool) -> usize {
    let candidates: Vec<usize> = (0..pool.len()).filter(|&i| keep(&pool[i])).collect();
    candidates[rng.usize(..candidates.len())]
}

/// Every identifier form the device has, picked at random.
fn identifier_form(d: &SoakDevice, rng: &mut Rng) -> Value {
    let mut forms = vec![
        json!({"id": d.id}),
        json!({"serialNumber": d.serial}),
        json!({"azureAdDeviceId": d.azure_ad_device_id}),
    ];
    if let Some(imei) = &d.imei {
        forms.push(json!({"imei": imei}));
    }
    if let Some(upn) = &d.upn {
        forms.push(json!({"userPrincipalName": upn}));
        forms.push(json!({"userPrincipalName": upn, "deviceName": d.name}));
    }
    let i = rng.usize(..forms.len());
    forms.swap_remove(i)
}

/// Breaks a request in one of the ways callers do.
fn make_invalid(
    body: &mut Value,
    raw_body: &mut Option<String>,
    path_id: &mut Option<String>,
    action: Action,
    api: bool,
    n: usize,
    rng: &mut Rng,
) {
    match rng.usize(..7) {
        0 if api => *raw_body = Some(r#"{"device": {"id": "#.to_string()),
        1 => body["serial"] = json!(format!("SOAK{n:06}")),
        2 if path_id.is_some() => *path_id = Some("12345".into()),
        2 => body["device"] = json!({"id": "not-a-guid"}),
        3 if action.writes() => {
            if let Some(obj) = body.as_object_mut() {
                obj.remove("reason");
            }
        }
        4 => {
            body["device"] = json!({"id": seed::AE_DEDICATED, "serialNumber": "R58N10AE001"});
            *path_id = None;
        }
        5 if api => body["requestedBy"] = json!("someone@contoso.com"),
        _ => {
            body["device"] = json!({"imei": "12345"});
            *path_id = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::devices::TEMPLATES;
    use super::*;

    /// A pool like the soak's, without a simulator: the last template of
    /// every twelve is not managed.
    fn pool(count: usize) -> Vec<SoakDevice> {
        (0..count)
            .map(|n| SoakDevice {
                id: format!("id{n}"),
                serial: format!("s{n}"),
                imei: None,
                azure_ad_device_id: format!("a{n}"),
                upn: None,
                name: format!("n{n}"),
                takes: TEMPLATES[n % TEMPLATES.len()].1,
                unmanaged: n % TEMPLATES.len() == TEMPLATES.len() - 1,
            })
            .collect()
    }

    #[test]
    fn the_stream_depends_on_the_seed_only() {
        let pool = pool(24);
        let stream = |seed: u64| {
            let config = SoakConfig {
                seed,
                requests: 200,
                ..SoakConfig::short()
            };
            stream(&config, &pool)
                .iter()
                .map(|p| format!("{:?}{:?}{:?}{:?}", p.expect, p.device_id, p.body, p.copies))
                .collect::<Vec<_>>()
        };
        assert_eq!(stream(1), stream(1));
        assert_ne!(stream(1), stream(2));
    }

    #[test]
    fn the_short_stream_has_every_kind_of_request() {
        let config = SoakConfig::short();
        let plans = stream(&config, &pool(config.device_count()));
        for expect in [
            Expect::Send,
            Expect::Refuse,
            Expect::Status,
            Expect::Invalid,
        ] {
            assert!(plans.iter().any(|p| p.expect == expect), "{expect:?}");
        }
        assert!(plans.iter().any(|p| p.copies.len() > 1));
        assert!(plans.iter().any(|p| p.retry));
        assert!(plans.iter().any(|p| matches!(p.via, Via::EventBridge)));
        assert!(plans.iter().any(|p| matches!(p.via, Via::ApiV1)));
    }

    #[test]
    fn rivals_ask_the_same_of_the_same_device_in_their_own_words() {
        let config = SoakConfig::long();
        let plans = stream(&config, &pool(config.device_count()));
        assert_eq!(plans.len(), config.requests);
        let pairs: Vec<(&Plan, &Plan)> = plans
            .iter()
            .filter_map(|p| Some((p, &plans[p.rival?])))
            .collect();
        assert!(pairs.len() > 50, "{} rival pairs", pairs.len());
        for (first, rival) in pairs {
            assert_eq!(rival.sent_with, Some(first.n));
            assert_eq!((rival.action, rival.expect), (first.action, Expect::Send));
            assert_eq!(rival.device_id, first.device_id);
            assert_ne!(rival.copies, first.copies, "another process");
            assert_ne!(
                (rival.event(), &rival.caller),
                (first.event(), &first.caller),
                "another request"
            );
            assert!(!rival.retry);
        }
        // Without the table the pending check alone is not atomic across
        // requests: no rivals.
        let without = SoakConfig {
            idempotency: false,
            ..SoakConfig::long()
        };
        let plans = stream(&without, &pool(without.device_count()));
        assert!(
            plans
                .iter()
                .all(|p| p.rival.is_none() && p.sent_with.is_none())
        );
    }

    #[test]
    fn every_request_fits_what_it_expects() {
        let config = SoakConfig {
            requests: 2000,
            ..SoakConfig::long()
        };
        let pool = pool(config.device_count());
        let device = |id: &str| pool.iter().find(|d| d.id == id).expect("a pool device");
        for p in stream(&config, &pool) {
            let named = p.device_id.as_deref().map(device);
            match p.expect {
                Expect::Send | Expect::DryRun => {
                    assert_eq!(named.and_then(|d| d.takes), Some(p.action), "{p:?}")
                }
                Expect::Refuse => {
                    let d = named.expect("a refused request names a device");
                    assert!(d.takes != Some(p.action) || d.unmanaged, "{p:?}");
                }
                Expect::Status => assert!(named.is_some_and(|d| !d.unmanaged), "{p:?}"),
                Expect::NotFound | Expect::Ambiguous => assert!(named.is_none(), "{p:?}"),
                Expect::Invalid => {}
            }
            assert_eq!(
                p.expect == Expect::DryRun,
                p.body.as_ref().is_some_and(|b| b["dryRun"] == true)
            );
            // Two or three distinct processes in ascending order, or one.
            assert!((1..=3).contains(&p.copies.len()), "{p:?}");
            assert!(p.copies.windows(2).all(|w| w[0] < w[1]), "{p:?}");
            assert!(p.copies.iter().all(|&i| i < config.processes), "{p:?}");
            // A path id is an API route; the status route is a GET without a body.
            if p.path_id.is_some() {
                assert!(!matches!(p.via, Via::EventBridge), "{p:?}");
                assert_eq!(p.method == "GET", p.action == Action::Status, "{p:?}");
            }
        }
    }
}
