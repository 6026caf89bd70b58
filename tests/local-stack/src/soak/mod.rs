//! A concurrency and fault soak: several execution environments (processes)
//! per function, a mixed stream of requests in which the same logical request
//! is sometimes sent at the same instant to different processes, random Graph
//! faults and a scaled-down write throttle. Afterwards every answer and the
//! simulator's request log are checked; each breach is one line in
//! [`SoakReport::violations`]:
//!
//! 1. every invocation got a definite answer that fits the request: an
//!    outcome, or an error code of the contract (EventBridge: a result, or a
//!    failed invocation with a transient `errorType`); never a timeout, a
//!    crash or an unknown code. An invalid request is `invalidRequest`, a
//!    device that can't take the action is refused, answers name the device
//!    asked for, and one logical request is accepted fresh at most once;
//! 2. no device got more than one committed POST. Logical write requests for
//!    one device run one after another (only their duplicates overlap) and no
//!    action is ever advanced, so every request after the first committed
//!    POST must find it pending: a second one can only come from one logical
//!    request being sent twice;
//! 3. every POST went to a device that a valid request for that action named,
//!    and every `accepted` answer is backed by a committed POST;
//! 4. every answer came before the deadline the invocation was given.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use graph_sim::seed::devices as seed;
use graph_sim::{DropPoint, Endpoint, Fault, FaultRule, LoggedRequest, WriteLimit};
use passcode_core::Action;
use passcode_core::action::EVENT_DETAIL_TYPE;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Barrier, Mutex, OwnedMutexGuard, Semaphore};
use tokio::task::JoinSet;

use crate::events::{self, Caller};
use crate::runtime::{FunctionProcess, Invocation, InvokeOutcome};
use crate::stack::{SecretForm, Stack};

/// What to run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakConfig {
    /// Execution environments (processes) per function.
    pub processes: usize,
    /// Logical requests; duplicates and retries come on top.
    pub requests: usize,
    /// Share of logical requests sent to 2 or 3 processes at the same instant.
    pub duplicate_fraction: f64,
    /// Chance that a Graph request is hit by an injected failure.
    pub fault_rate: f64,
    /// The simulator's per-app write throttle (Intune: 200 per 20 s).
    pub write_limit: WriteLimit,
    /// Drives the request stream and the fault draws.
    pub seed: u64,
    /// Give the functions an idempotency table.
    pub idempotency: bool,
    /// Deadline of every invocation (the Lambda timeout), milliseconds.
    pub deadline_ms: u64,
    /// Managed devices added for the soak; 0 picks one per three requests.
    pub devices: usize,
}

impl SoakConfig {
    /// Small enough for `cargo test` on a busy machine.
    pub fn short() -> SoakConfig {
        SoakConfig {
            processes: 2,
            requests: 90,
            duplicate_fraction: 0.35,
            fault_rate: 0.12,
            write_limit: WriteLimit {
                max: 5,
                window_seconds: 2,
            },
            seed: 20_261_126,
            idempotency: true,
            deadline_ms: 8_000,
            devices: 60,
        }
    }

    /// The default of `local-stack soak`.
    pub fn long() -> SoakConfig {
        SoakConfig {
            processes: 3,
            requests: 2000,
            duplicate_fraction: 0.3,
            fault_rate: 0.1,
            devices: 0,
            ..SoakConfig::short()
        }
    }

    fn device_count(&self) -> usize {
        if self.devices > 0 {
            self.devices
        } else {
            (self.requests / 3).max(24)
        }
    }

    fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

/// The figures of one run and what it found wrong.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakReport {
    pub config: SoakConfig,
    pub wall_seconds: f64,
    pub logical_requests: usize,
    /// Every invocation: first copies, duplicates and retries.
    pub invocations: usize,
    /// Logical requests sent to several processes at once.
    pub duplicate_groups: usize,
    /// Invocations beyond the first copy of a duplicate group.
    pub duplicate_copies: usize,
    /// Resends after a transient answer (same key or event id).
    pub retries: usize,
    /// Answers by kind: an outcome (`accepted`, `replayed:accepted`, ...),
    /// `rejected:<code>`, `transient:<code>` or `undefined`.
    pub outcomes: BTreeMap<String, usize>,
    /// Replays + `requestInProgress` + `alreadyPending`: answers that sent nothing
    /// because the request (or one for the same device) had already run.
    pub duplicates_suppressed: usize,
    pub graph_requests: usize,
    /// POSTs that reached the simulator, whatever happened to them.
    pub post_attempts: usize,
    /// POSTs that queued an action (2xx, or dropped after the commit).
    pub committed_posts: usize,
    /// POSTs refused by the write throttle.
    pub write_limited: usize,
    /// What each POST got: HTTP status, `+fault` when injected, `dropped`.
    pub post_results: BTreeMap<String, usize>,
    /// Injected failures (statuses, dropped connections, hung reads); the
    /// short delays that only stretch a request are not counted.
    pub faults_injected: usize,
    /// Hits per fault rule, delays included (`POST status:429 retryAfter=1`, ...).
    pub faults: BTreeMap<String, usize>,
    pub latency_ms: Latency,
    /// The five slowest invocations, with what they answered.
    pub slowest: Vec<String>,
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl SoakReport {
    /// Answers of one kind (0 when there were none).
    pub fn count(&self, kind: &str) -> usize {
        self.outcomes.get(kind).copied().unwrap_or(0)
    }

    /// Answers whose kind starts with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.outcomes
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// The figures as a table for a reader.
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(out, "  {label:<28} {value}");
        };
        line(
            "run",
            format!(
                "seed {}, {} processes per function, idempotency {}, deadline {} ms",
                c.seed,
                c.processes,
                if c.idempotency { "on" } else { "off" },
                c.deadline_ms
            ),
        );
        line(
            "stress",
            format!(
                "fault rate {:.2}, duplicates {:.2}, write limit {} POSTs / {} s, {} devices",
                c.fault_rate,
                c.duplicate_fraction,
                c.write_limit.max,
                c.write_limit.window_seconds,
                c.device_count()
            ),
        );
        line("wall time", format!("{:.1} s", self.wall_seconds));
        line("logical requests", self.logical_requests.to_string());
        line(
            "invocations",
            format!(
                "{} ({} duplicate groups, +{} copies, {} retries)",
                self.invocations, self.duplicate_groups, self.duplicate_copies, self.retries
            ),
        );
        line("outcomes", String::new());
        for (kind, n) in &self.outcomes {
            line(&format!("  {kind}"), n.to_string());
        }
        line(
            "duplicates suppressed",
            self.duplicates_suppressed.to_string(),
        );
        line("Graph requests", self.graph_requests.to_string());
        line(
            "POSTs",
            format!(
                "{} sent, {} committed, {} write-limited (429)",
                self.post_attempts, self.committed_posts, self.write_limited
            ),
        );
        for (result, n) in &self.post_results {
            line(&format!("  {result}"), n.to_string());
        }
        line("faults injected", self.faults_injected.to_string());
        for (label, n) in &self.faults {
            line(&format!("  {label}"), n.to_string());
        }
        line(
            "latency",
            format!(
                "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                self.latency_ms.p50, self.latency_ms.p99, self.latency_ms.max
            ),
        );
        for slow in &self.slowest {
            line("", slow.clone());
        }
        line("violations", self.violations.len().to_string());
        for v in &self.violations {
            let _ = writeln!(out, "    - {v}");
        }
        out
    }
}

/// Runs one soak against a fresh local stack.
pub async fn run(config: &SoakConfig) -> anyhow::Result<SoakReport> {
    anyhow::ensure!(config.processes >= 1, "at least one process per function");
    let started = Instant::now();
    let mut stack = Stack::start(SecretForm::ClientSecret).await?;
    if config.idempotency {
        stack.enable_idempotency().await?;
    }
    let control = stack.sim.control();
    control
        .set_write_limit(Some(config.write_limit))
        .await
        .context("setting the write limit")?;
    let pool = add_devices(&stack, config.device_count()).await?;

    // Nothing advances an action during the run, so "pending" must hold for
    // its whole length: a stale pending action would allow a legitimate
    // second POST and blur invariant 2.
    let env = [("PENDING_WINDOW_MINUTES", "1440")];
    let mut functions: HashMap<Action, Vec<Arc<Slot>>> = HashMap::new();
    for action in Action::ALL {
        let mut slots = Vec::new();
        for _ in 0..config.processes {
            let process = stack.spawn(action, &env).await?;
            slots.push(Arc::new(Slot {
                process,
                busy: Arc::new(Mutex::new(())),
            }));
        }
        functions.insert(action, slots);
    }
    for slot in functions.values().flatten() {
        slot.process.ready().await?;
    }

    let mut rng = Rng::new(config.seed);
    let plans: Vec<Arc<Plan>> = (0..config.requests)
        .map(|n| Arc::new(plan(n, config, &pool, &mut rng)))
        .collect();

    control.clear_requests().await?;
    for rule in fault_rules(config) {
        control.add_fault(&rule).await?;
    }

    let shared = Arc::new(Shared {
        functions,
        device_locks: pool
            .iter()
            .map(|d| (d.id.clone(), Arc::new(Mutex::new(()))))
            .collect(),
        deadline: config.deadline(),
    });
    // Enough groups in flight to keep every process busy, not so many that
    // thousands of tasks queue on the locks.
    let in_flight = Arc::new(Semaphore::new(config.processes * Action::ALL.len() * 2));
    let mut running = JoinSet::new();
    for plan in &plans {
        let permit = in_flight.clone().acquire_owned().await?;
        let (plan, shared) = (plan.clone(), shared.clone());
        running.spawn(async move {
            let records = run_plan(&plan, &shared).await;
            drop(permit);
            records
        });
    }
    let mut records = Vec::new();
    while let Some(done) = running.join_next().await {
        records.extend(done.context("a request task panicked")?);
    }
    // A POST whose caller stopped waiting may still be in its delay.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Rule counters, not the log: a request hung past its caller's timeout
    // is only logged once the simulator finishes it, if ever.
    let armed = control.faults().await?;
    control.clear_faults().await?;
    let fired = fault_rules(config)
        .iter()
        .zip(&armed)
        .map(|(rule, armed)| {
            let remaining = armed["remaining"].as_u64().unwrap_or(u64::from(u32::MAX));
            (
                fault_label(rule),
                (u64::from(u32::MAX) - remaining) as usize,
            )
        })
        .collect();
    let log = control.requests().await;
    let wall = started.elapsed();
    drop(shared);
    drop(stack);
    Ok(report(config, &pool, &plans, &records, &log, fired, wall))
}

// ---------------------------------------------------------------- devices

/// One managed device added for the soak, cloned from a seeded one.
#[derive(Debug, Clone)]
struct SoakDevice {
    id: String,
    serial: String,
    imei: Option<String>,
    azure_ad_device_id: String,
    upn: Option<String>,
    name: String,
    /// The write action this device can take (`None`: none of them).
    takes: Option<Action>,
    /// `managementState` is not `managed`: even `passcode-status` refuses it.
    unmanaged: bool,
}

/// Seeded devices to clone, with the write action each can take. Repeats
/// weight the mix; the last five refuse every write action.
const TEMPLATES: [(&str, Option<Action>); 12] = [
    (seed::AE_FULLY_MANAGED, Some(Action::ResetPasscode)),
    (seed::AE_DEDICATED, Some(Action::ResetPasscode)),
    (seed::AOSP_USERLESS, Some(Action::ResetPasscode)),
    (seed::AE_CORPORATE_WORK_PROFILE, Some(Action::ResetPasscode)),
    (seed::IOS_ADE, Some(Action::RemovePasscode)),
    (seed::IPADOS_DEVICE_ENROLLMENT, Some(Action::RemovePasscode)),
    (seed::VISIONOS, Some(Action::RemovePasscode)),
    (seed::WINDOWS_10_MOBILE, Some(Action::ResetWindowsPin)),
    (seed::WINDOWS_DESKTOP, None),
    (seed::IOS_USER_ENROLLMENT, None),
    (seed::ANDROID_DEVICE_ADMIN_10, None),
    (seed::RETIRE_PENDING, None),
];

/// Adds `count` devices with identifiers of their own (so each identifier
/// form names exactly one device) and no action history.
async fn add_devices(stack: &Stack, count: usize) -> anyhow::Result<Vec<SoakDevice>> {
    let control = stack.sim.control();
    let mut templates = HashMap::new();
    for (id, _) in TEMPLATES {
        templates.insert(id, control.device(id).await?);
    }
    let mut pool = Vec::with_capacity(count);
    for n in 0..count {
        let (template, takes) = TEMPLATES[n % TEMPLATES.len()];
        let mut device = templates[template].clone();
        let had = |field: &str| device[field].as_str().is_some_and(|v| !v.is_empty());
        let soak = SoakDevice {
            id: format!("44444444-0000-4000-8000-{n:012}"),
            serial: format!("SOAK{n:06}"),
            imei: had("imei").then(|| format!("35399{n:010}")),
            azure_ad_device_id: format!("55555555-0000-4000-8000-{n:012}"),
            upn: had("userPrincipalName").then(|| format!("soak.{n:05}@contoso.com")),
            name: format!("SOAK-{n:05}"),
            takes,
            unmanaged: device["managementState"] != "managed",
        };
        let upn = soak.upn.clone().unwrap_or_default();
        for (field, value) in [
            ("id", json!(soak.id)),
            ("serialNumber", json!(soak.serial)),
            ("imei", json!(soak.imei.clone().unwrap_or_default())),
            ("azureADDeviceId", json!(soak.azure_ad_device_id)),
            ("userPrincipalName", json!(upn)),
            ("emailAddress", json!(upn)),
            ("deviceName", json!(soak.name)),
            ("deviceActionResults", json!([])),
        ] {
            device[field] = value;
        }
        control.put_device(&device).await?;
        pool.push(soak);
    }
    Ok(pool)
}

// ------------------------------------------------------------------ faults

/// Random failures on Graph (never on the token endpoint or the control API)
/// plus delays. The delay on the POST is what makes duplicates race: the
/// simulator sleeps before it queues the action, so two processes that both
/// read "nothing pending" are both still inside the read→POST window.
/// `GET timeout`, `POST status:429 retryAfter=1`, `GET delay:120ms`, ...
fn fault_label(rule: &FaultRule) -> String {
    let method = rule.matcher.method.as_deref().unwrap_or("any");
    match &rule.fault {
        Fault::Delay { delay_ms } if *delay_ms > LONGEST_STRETCH_MS => format!("{method} timeout"),
        Fault::Status {
            retry_after: Some(seconds),
            ..
        } => format!("{method} {} retryAfter={seconds}", rule.fault.label()),
        fault => format!("{method} {}", fault.label()),
    }
}

/// Delays up to this long only stretch a request; longer ones are timeouts.
const LONGEST_STRETCH_MS: u64 = 1000;

fn fault_rules(config: &SoakConfig) -> Vec<FaultRule> {
    let r = config.fault_rate;
    let post = |rule: FaultRule| rule.method("POST").path_contains("resetPasscode");
    let get = |rule: FaultRule| rule.method("GET");
    // Longer than any call may wait: the function's own timeout cuts it off.
    let hang = config.deadline_ms + 1000;
    let rules = [
        (post(FaultRule::status_retry_after(429, 1)), r * 0.25),
        (post(FaultRule::status(429)), r * 0.15),
        (post(FaultRule::status(503)), r * 0.15),
        (post(FaultRule::status(504)), r * 0.1),
        (
            post(FaultRule::drop_connection(DropPoint::BeforeCommit)),
            r * 0.15,
        ),
        (
            post(FaultRule::drop_connection(DropPoint::AfterCommit)),
            r * 0.2,
        ),
        (post(FaultRule::delay_ms(250)), 0.7),
        (get(FaultRule::status_retry_after(429, 1)), r * 0.3),
        (get(FaultRule::status(503)), r * 0.3),
        (
            get(FaultRule::drop_connection(DropPoint::BeforeCommit)),
            r * 0.3,
        ),
        (get(FaultRule::delay_ms(hang)), r * 0.05),
        (get(FaultRule::delay_ms(120)), 0.25),
    ];
    rules
        .into_iter()
        .enumerate()
        .map(|(i, (rule, p))| {
            rule.endpoint(Endpoint::Graph)
                .times(u32::MAX)
                .probability(p, config.seed.wrapping_mul(1000).wrapping_add(i as u64))
        })
        .collect()
}

// ------------------------------------------------------------------ stream

/// What a correct function must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
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
enum Via {
    ApiV2,
    ApiV1,
    EventBridge,
}

/// One logical request and how to send it.
#[derive(Debug)]
struct Plan {
    n: usize,
    action: Action,
    expect: Expect,
    /// Id of the device asked for, for the per-device lock and the checks.
    device_id: Option<String>,
    via: Via,
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
    copies: Vec<usize>,
    /// Resend once after a transient answer.
    retry: bool,
}

impl Plan {
    fn event(&self) -> Value {
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
}

fn plan(n: usize, config: &SoakConfig, pool: &[SoakDevice], rng: &mut Rng) -> Plan {
    let action = match rng.below(100) {
        0..15 => Action::Status,
        15..55 => Action::ResetPasscode,
        55..85 => Action::RemovePasscode,
        _ => Action::ResetWindowsPin,
    };
    let roll = rng.below(100);
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
    let via = match rng.below(100) {
        0..55 => Via::ApiV2,
        55..70 => Via::ApiV1,
        _ => Via::EventBridge,
    };
    let device = match expect {
        Expect::Send | Expect::DryRun => Some(pick_device(pool, rng, |d| d.takes == Some(action))),
        Expect::Refuse => Some(pick_device(pool, rng, |d| d.takes != Some(action))),
        Expect::Status | Expect::Invalid => Some(rng.below(pool.len())),
        Expect::NotFound | Expect::Ambiguous => None,
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
            identifier = Some(if rng.chance(0.5) {
                json!({"serialNumber": format!("NOSUCH{n:06}")})
            } else {
                json!({"id": format!("66666666-0000-4000-8000-{n:012}")})
            });
        }
        (Expect::Ambiguous, _) => {
            identifier = Some(if rng.chance(0.5) {
                json!({"serialNumber": "DUPSERIAL01"})
            } else {
                json!({"userPrincipalName": "morgan@contoso.com"})
            });
        }
        // Status has only a GET path route, without a body to break.
        (_, Some(i))
            if api
                && !(action == Action::Status && expect == Expect::Invalid)
                && rng.chance(0.3) =>
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
    if action.writes() || rng.chance(0.5) {
        body["reason"] = json!(format!("soak request {n}"));
    }
    if rng.chance(0.3) {
        body["ticket"] = json!(format!("INC{n:07}"));
    }
    if expect == Expect::DryRun {
        body["dryRun"] = json!(true);
    }
    // API: half carry an idempotencyKey, the rest get a key derived from
    // caller + device; EventBridge: the event id, sometimes a key as well.
    let keyed = if api {
        rng.chance(0.5)
    } else {
        rng.chance(0.3)
    };
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
    let caller = match rng.below(4) {
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

    let copies = if config.processes >= 2 && rng.chance(config.duplicate_fraction) {
        let k = 2 + rng.below(config.processes.min(3) - 1);
        let mut chosen: Vec<usize> = (0..config.processes).collect();
        rng.shuffle(&mut chosen);
        chosen.truncate(k);
        chosen.sort_unstable();
        chosen
    } else {
        vec![rng.below(config.processes)]
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
        retry: rng.chance(0.4),
    }
}

fn pick_device(pool: &[SoakDevice], rng: &mut Rng, keep: impl Fn(&SoakDevice) -> bool) -> usize {
    let candidates: Vec<usize> = (0..pool.len()).filter(|&i| keep(&pool[i])).collect();
    candidates[rng.below(candidates.len())]
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
    let i = rng.below(forms.len());
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
    match rng.below(7) {
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

// ----------------------------------------------------------------- running

/// One execution environment; `busy` is held by whoever is about to invoke it,
/// so that the copies of a duplicate group start together instead of queueing.
struct Slot {
    process: FunctionProcess,
    busy: Arc<Mutex<()>>,
}

struct Shared {
    functions: HashMap<Action, Vec<Arc<Slot>>>,
    device_locks: HashMap<String, Arc<Mutex<()>>>,
    deadline: Duration,
}

/// One invocation and its answer.
struct Record {
    plan: usize,
    retry: bool,
    latency: Duration,
    answer: Answer,
}

async fn run_plan(plan: &Plan, shared: &Shared) -> Vec<Record> {
    // Logical write requests for one device never overlap (invariant 2);
    // only the copies of one request do.
    let _device = match (&plan.device_id, plan.action.writes()) {
        (Some(id), true) => Some(shared.device_locks[id].clone().lock_owned().await),
        _ => None,
    };
    let slots = &shared.functions[&plan.action];
    let mut records = Vec::new();
    let transient = {
        let guards = if plan.copies.len() == 1 {
            vec![any_free(slots, plan.copies[0]).await]
        } else {
            // Ascending order, so two groups can never wait on each other.
            let mut guards = Vec::new();
            for &i in &plan.copies {
                guards.push((i, slots[i].busy.clone().lock_owned().await));
            }
            guards
        };
        let barrier = Arc::new(Barrier::new(guards.len()));
        let mut copies = JoinSet::new();
        for (i, _) in &guards {
            let (slot, barrier, event) = (slots[*i].clone(), barrier.clone(), plan.event());
            let deadline = shared.deadline;
            copies.spawn(async move {
                barrier.wait().await;
                slot.process.invoke(event, deadline).await
            });
        }
        while let Some(done) = copies.join_next().await {
            let invocation = done.unwrap_or_else(|e| panic!("invocation task failed: {e}"));
            records.push(record(plan, false, &invocation));
        }
        records
            .iter()
            .any(|r| matches!(r.answer, Answer::Transient(_)))
    };
    if transient {
        // A POST the function stopped waiting for may still be inside the
        // simulator's 250 ms delay; let it land before the device's next
        // logical request reads it. A retrying client waits like this too.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if plan.retry && transient {
        // A client retrying with the same key or event id.
        let (i, _guard) = any_free(slots, plan.n % slots.len()).await;
        let invocation = slots[i].process.invoke(plan.event(), shared.deadline).await;
        records.push(record(plan, true, &invocation));
    }
    records
}

/// A free process, starting the search at `first`; waits for `first` when all are busy.
async fn any_free(slots: &[Arc<Slot>], first: usize) -> (usize, OwnedMutexGuard<()>) {
    for k in 0..slots.len() {
        let i = (first + k) % slots.len();
        if let Ok(guard) = slots[i].busy.clone().try_lock_owned() {
            return (i, guard);
        }
    }
    (first, slots[first].busy.clone().lock_owned().await)
}

fn record(plan: &Plan, retry: bool, invocation: &Invocation) -> Record {
    Record {
        plan: plan.n,
        retry,
        latency: invocation.duration,
        answer: classify(&invocation.outcome),
    }
}

// ---------------------------------------------------------------- checking

/// Every error code of the contract: HTTP status, EventBridge `errorType`, transient.
const CODES: [(&str, u16, &str, bool); 12] = [
    ("invalidRequest", 400, "InvalidRequest", false),
    ("deviceNotFound", 404, "DeviceNotFound", false),
    ("ambiguousDevice", 409, "AmbiguousDevice", false),
    ("unsupportedPlatform", 422, "UnsupportedPlatform", false),
    ("deviceNotManaged", 422, "DeviceNotManaged", false),
    ("throttled", 429, "Throttled", true),
    ("graphError", 502, "GraphError", false),
    ("graphUnavailable", 503, "GraphUnavailable", true),
    ("configurationError", 500, "ConfigurationError", true),
    ("requestInProgress", 409, "RequestInProgress", true),
    ("idempotencyKeyReused", 422, "IdempotencyKeyReused", false),
    (
        "idempotencyUnavailable",
        503,
        "IdempotencyUnavailable",
        true,
    ),
];

/// Outcomes of the contract with their HTTP status.
const OUTCOMES: [(&str, u16); 4] = [
    ("accepted", 202),
    ("alreadyPending", 200),
    ("dryRun", 200),
    ("status", 200),
];

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Outcome {
        name: String,
        replayed: bool,
        device: Option<String>,
    },
    Rejected(String),
    Transient(String),
    /// Not a definite answer; says what came instead.
    Undefined(String),
}

impl Answer {
    fn kind(&self) -> String {
        match self {
            Answer::Outcome {
                name,
                replayed: true,
                ..
            } => format!("replayed:{name}"),
            Answer::Outcome { name, .. } => name.clone(),
            Answer::Rejected(code) => format!("rejected:{code}"),
            Answer::Transient(code) => format!("transient:{code}"),
            Answer::Undefined(_) => "undefined".into(),
        }
    }
}

fn classify(outcome: &InvokeOutcome) -> Answer {
    let clip = |v: &Value| v.to_string().chars().take(300).collect::<String>();
    match outcome {
        InvokeOutcome::Response(v) if v.get("statusCode").is_some() => {
            let status = v["statusCode"].as_u64().unwrap_or(0) as u16;
            let Some(body) = v["body"]
                .as_str()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
            else {
                return Answer::Undefined(format!("API answer without a JSON body: {}", clip(v)));
            };
            if let Some(code) = body["error"]["code"].as_str() {
                return match CODES.iter().find(|c| c.0 == code) {
                    Some(c) if c.1 != status => {
                        Answer::Undefined(format!("{code} with HTTP {status}, not {}", c.1))
                    }
                    Some(c) if c.3 => Answer::Transient(code.into()),
                    Some(_) => Answer::Rejected(code.into()),
                    None => Answer::Undefined(format!("unknown error code: {}", clip(&body))),
                };
            }
            outcome_answer(&body, Some(status))
        }
        InvokeOutcome::Response(v) if v["outcome"] == "rejected" => {
            let code = v["error"]["code"].as_str().unwrap_or("");
            match CODES.iter().find(|c| c.0 == code) {
                Some(c) if !c.3 => Answer::Rejected(code.into()),
                _ => Answer::Undefined(format!("rejected with an odd code: {}", clip(v))),
            }
        }
        InvokeOutcome::Response(v) => outcome_answer(v, None),
        InvokeOutcome::Error {
            error_type,
            error_message,
        } => match CODES.iter().find(|c| c.2 == error_type) {
            Some(c) if c.3 => Answer::Transient(c.0.into()),
            _ => Answer::Undefined(format!(
                "failed invocation {error_type}: {}",
                error_message.chars().take(200).collect::<String>()
            )),
        },
        InvokeOutcome::Timeout => Answer::Undefined("no answer: timed out".into()),
        InvokeOutcome::Crashed(why) => Answer::Undefined(format!(
            "crashed: {}",
            why.chars().take(300).collect::<String>()
        )),
    }
}

/// A result object (API body or EventBridge result) with an `outcome`.
fn outcome_answer(body: &Value, status: Option<u16>) -> Answer {
    let name = body["outcome"].as_str().unwrap_or("");
    match OUTCOMES.iter().find(|o| o.0 == name) {
        Some(o) if status.is_none_or(|s| s == o.1) => Answer::Outcome {
            name: name.into(),
            replayed: body["replayed"] == true,
            device: body["device"]["id"].as_str().map(str::to_ascii_lowercase),
        },
        _ => Answer::Undefined(format!(
            "no known outcome (HTTP {status:?}): {}",
            body.to_string().chars().take(300).collect::<String>()
        )),
    }
}

/// Whether `answer` fits what the request asked for (invariant 1). `None` if it does.
fn misfit(plan: &Plan, answer: &Answer, idempotency: bool) -> Option<String> {
    let outcome = |names: &[&str]| match answer {
        Answer::Outcome { name, device, .. } if names.contains(&name.as_str()) => {
            (device.as_deref() != plan.device_id.as_deref())
                .then(|| format!("answer names device {device:?}"))
        }
        _ => Some("wrong kind of answer".into()),
    };
    let rejected = |codes: &[&str]| match answer {
        Answer::Rejected(code) if codes.contains(&code.as_str()) => None,
        _ => Some("wrong kind of answer".into()),
    };
    match (plan.expect, answer) {
        (_, Answer::Undefined(why)) => Some(why.clone()),
        (Expect::Invalid, _) => rejected(&["invalidRequest"]),
        (_, Answer::Transient(code)) => match code.as_str() {
            "requestInProgress" if !idempotency => Some("requestInProgress without a table".into()),
            // Nothing injected explains a setup error.
            "configurationError" => Some("configurationError under transient faults".into()),
            _ => None,
        },
        (Expect::Send, _) => outcome(&["accepted", "alreadyPending"]),
        (Expect::Refuse, _) => rejected(&["unsupportedPlatform", "deviceNotManaged"]),
        (Expect::Status, _) => outcome(&["status"]),
        (Expect::DryRun, _) => outcome(&["dryRun"]),
        (Expect::NotFound, _) => rejected(&["deviceNotFound"]),
        (Expect::Ambiguous, _) => rejected(&["ambiguousDevice"]),
    }
}

fn committed(r: &LoggedRequest) -> bool {
    r.reached_device
        && (r.status.is_some_and(|s| (200..300).contains(&s))
            || r.fault.as_deref() == Some("drop:afterCommit"))
}

fn report(
    config: &SoakConfig,
    pool: &[SoakDevice],
    plans: &[Arc<Plan>],
    records: &[Record],
    log: &[LoggedRequest],
    faults: BTreeMap<String, usize>,
    wall: Duration,
) -> SoakReport {
    let mut violations = Vec::new();
    let describe = |plan: &Plan| {
        format!(
            "request {} ({} {:?} via {:?}, {} cop{})",
            plan.n,
            plan.action.function_name(),
            plan.expect,
            plan.via,
            plan.copies.len(),
            if plan.copies.len() == 1 { "y" } else { "ies" }
        )
    };

    // Invariants 1 and 4, per invocation.
    let mut outcomes = BTreeMap::new();
    let mut fresh_accepts: HashMap<usize, usize> = HashMap::new();
    for r in records {
        let plan = &plans[r.plan];
        *outcomes.entry(r.answer.kind()).or_insert(0) += 1;
        if let Some(why) = misfit(plan, &r.answer, config.idempotency) {
            violations.push(format!(
                "{}{}: {} — {why}",
                describe(plan),
                if r.retry { " retry" } else { "" },
                r.answer.kind()
            ));
        }
        if r.latency >= config.deadline() {
            violations.push(format!(
                "{}: answered after {} ms, deadline {} ms",
                describe(plan),
                r.latency.as_millis(),
                config.deadline_ms
            ));
        }
        if let Answer::Outcome {
            name,
            replayed: false,
            ..
        } = &r.answer
            && name == "accepted"
        {
            *fresh_accepts.entry(r.plan).or_insert(0) += 1;
        }
    }
    for (&n, &accepts) in &fresh_accepts {
        if accepts > 1 {
            violations.push(format!(
                "{}: accepted {accepts} times (not as replays)",
                describe(&plans[n])
            ));
        }
    }

    // Invariants 2 and 3, from the simulator's log.
    let allowed: BTreeSet<(String, &str)> = plans
        .iter()
        .filter(|p| p.expect == Expect::Send)
        .filter_map(|p| p.device_id.clone().map(|d| (d, p.action.function_name())))
        .collect();
    let takes: HashMap<&str, Option<Action>> =
        pool.iter().map(|d| (d.id.as_str(), d.takes)).collect();
    let mut committed_per_device: BTreeMap<String, usize> = BTreeMap::new();
    let (mut post_attempts, mut write_limited, mut graph_requests) = (0, 0, 0);
    let mut post_results = BTreeMap::new();
    for entry in log {
        if entry.endpoint == "graph" {
            graph_requests += 1;
        }
        let (Some(device), Some(_)) = (&entry.device_id, &entry.action) else {
            continue;
        };
        if entry.method != "POST" {
            continue;
        }
        post_attempts += 1;
        let result = match (entry.status, &entry.fault) {
            (Some(status), None) => status.to_string(),
            (Some(status), Some(fault)) => format!("{status} ({fault})"),
            (None, fault) => format!("dropped ({})", fault.as_deref().unwrap_or("?")),
        };
        *post_results.entry(result).or_insert(0) += 1;
        // The throttle's own 429s, not injected ones (a delay may precede it).
        if entry.status == Some(429)
            && !entry
                .fault
                .as_deref()
                .is_some_and(|f| f.starts_with("status:"))
        {
            write_limited += 1;
        }
        // All three write actions are the same Graph call; the device decides.
        let asked = takes
            .get(device.as_str())
            .copied()
            .flatten()
            .is_some_and(|a| allowed.contains(&(device.clone(), a.function_name())));
        if !asked {
            violations.push(format!(
                "POST #{} reached device {device}, which no valid request for its action named",
                entry.seq
            ));
        }
        if entry.reached_device && entry.status == Some(400) {
            violations.push(format!(
                "POST #{} was refused by device {device}: it can't take the action",
                entry.seq
            ));
        }
        if committed(entry) {
            *committed_per_device.entry(device.clone()).or_insert(0) += 1;
        }
    }
    for (device, n) in &committed_per_device {
        if *n > 1 {
            violations.push(format!(
                "device {device} got {n} committed POSTs (one logical request sent twice)"
            ));
        }
    }
    for r in records {
        if let Answer::Outcome {
            name,
            device: Some(device),
            ..
        } = &r.answer
            && name == "accepted"
            && !committed_per_device.contains_key(device)
        {
            violations.push(format!(
                "{}: accepted, but no POST on {device} was committed",
                describe(&plans[r.plan])
            ));
        }
    }

    let mut latencies: Vec<f64> = records
        .iter()
        .map(|r| r.latency.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1]
    };
    let mut by_latency: Vec<&Record> = records.iter().collect();
    by_latency.sort_by_key(|r| std::cmp::Reverse(r.latency));
    let slowest = by_latency
        .iter()
        .take(5)
        .map(|r| {
            format!(
                "{} ms: {} → {}",
                r.latency.as_millis(),
                describe(&plans[r.plan]),
                r.answer.kind()
            )
        })
        .collect();
    let suppressed = outcomes
        .iter()
        .filter(|(k, _)| {
            k.starts_with("replayed:")
                || *k == "transient:requestInProgress"
                || *k == "alreadyPending"
        })
        .map(|(_, n)| n)
        .sum();
    let groups: Vec<&Arc<Plan>> = plans.iter().filter(|p| p.copies.len() > 1).collect();
    SoakReport {
        config: SoakConfig {
            devices: config.device_count(),
            ..config.clone()
        },
        wall_seconds: wall.as_secs_f64(),
        logical_requests: plans.len(),
        invocations: records.len(),
        duplicate_groups: groups.len(),
        duplicate_copies: groups.iter().map(|p| p.copies.len() - 1).sum(),
        retries: records.iter().filter(|r| r.retry).count(),
        outcomes,
        duplicates_suppressed: suppressed,
        graph_requests,
        post_attempts,
        committed_posts: committed_per_device.values().sum(),
        write_limited,
        post_results,
        faults_injected: faults
            .iter()
            .filter(|(label, _)| !label.contains(" delay:"))
            .map(|(_, n)| n)
            .sum(),
        faults,
        latency_ms: Latency {
            p50: percentile(0.5),
            p99: percentile(0.99),
            max: latencies.last().copied().unwrap_or(0.0),
        },
        slowest,
        violations,
    }
}

// -------------------------------------------------------------------- rng

/// splitmix64: the stream depends on the seed only, not on any crate's version.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n ≥ 1).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_by_the_contract() {
        let api = |status: u16, body: Value| {
            classify(&InvokeOutcome::Response(
                json!({"statusCode": status, "body": body.to_string()}),
            ))
        };
        assert_eq!(
            api(202, json!({"outcome": "accepted", "device": {"id": "A"}})),
            Answer::Outcome {
                name: "accepted".into(),
                replayed: false,
                device: Some("a".into())
            }
        );
        assert_eq!(
            api(409, json!({"error": {"code": "requestInProgress"}})).kind(),
            "transient:requestInProgress"
        );
        assert_eq!(
            api(404, json!({"error": {"code": "deviceNotFound"}})).kind(),
            "rejected:deviceNotFound"
        );
        assert_eq!(
            api(400, json!({"error": {"code": "deviceNotFound"}})).kind(),
            "undefined"
        );
        assert_eq!(
            api(200, json!({"error": {"code": "teapot"}})).kind(),
            "undefined"
        );
        assert_eq!(api(200, json!({"outcome": "accepted"})).kind(), "undefined");
        let eb = classify(&InvokeOutcome::Error {
            error_type: "GraphUnavailable".into(),
            error_message: "x".into(),
        });
        assert_eq!(eb.kind(), "transient:graphUnavailable");
        let eb = classify(&InvokeOutcome::Error {
            error_type: "Runtime.Panic".into(),
            error_message: "x".into(),
        });
        assert_eq!(eb.kind(), "undefined");
        let eb = classify(&InvokeOutcome::Response(
            json!({"outcome": "rejected", "error": {"code": "unsupportedPlatform"}}),
        ));
        assert_eq!(eb.kind(), "rejected:unsupportedPlatform");
        let eb = classify(&InvokeOutcome::Response(
            json!({"outcome": "alreadyPending", "replayed": true, "device": {"id": "a"}}),
        ));
        assert_eq!(eb.kind(), "replayed:alreadyPending");
        assert_eq!(classify(&InvokeOutcome::Timeout).kind(), "undefined");
    }

    #[test]
    fn the_stream_depends_on_the_seed_only() {
        let config = SoakConfig::short();
        let pool: Vec<SoakDevice> = (0..24)
            .map(|n| SoakDevice {
                id: format!("id{n}"),
                serial: format!("s{n}"),
                imei: None,
                azure_ad_device_id: format!("a{n}"),
                upn: None,
                name: format!("n{n}"),
                takes: TEMPLATES[n % TEMPLATES.len()].1,
                unmanaged: false,
            })
            .collect();
        let stream = |seed: u64| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|n| {
                    let p = plan(n, &config, &pool, &mut rng);
                    format!("{:?}{:?}{:?}{:?}", p.expect, p.device_id, p.body, p.copies)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(stream(1), stream(1));
        assert_ne!(stream(1), stream(2));
        // Every kind of request shows up in a stream of this size.
        let mut rng = Rng::new(config.seed);
        let plans: Vec<Plan> = (0..config.requests)
            .map(|n| plan(n, &config, &pool, &mut rng))
            .collect();
        for expect in [
            Expect::Send,
            Expect::Refuse,
            Expect::Status,
            Expect::Invalid,
        ] {
            assert!(plans.iter().any(|p| p.expect == expect), "{expect:?}");
        }
        assert!(plans.iter().any(|p| p.copies.len() > 1));
        assert!(plans.iter().any(|p| matches!(p.via, Via::EventBridge)));
    }
}
