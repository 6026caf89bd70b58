//! Shared set-up for the end-to-end tests: a fresh local stack (Graph
//! simulator + moto) per test, the four real function binaries running under
//! the Runtime API emulator, and helpers to call them the way API Gateway and
//! EventBridge do.

use graph_sim::{Control, DropPoint, FaultRule, Profile};
use local_stack::events::{self, Caller};
use local_stack::stack::{SecretForm, Stack};
use local_stack::{FunctionProcess, Invocation, InvokeOutcome};
use passcode_core::Action;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

pub use graph_sim::seed::devices as dev;

/// One `#[tokio::test]` per case, each with its own name, that runs the
/// shared async check on the case's value:
///
/// ```ignore
/// one_test_per_case! {
///     check_matrix:
///     reset_passcode_on_every_platform_row => Action::ResetPasscode,
///     remove_passcode_on_every_platform_row => Action::RemovePasscode,
/// }
/// ```
macro_rules! one_test_per_case {
    ($check:ident: $($name:ident => $case:expr),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $check($case).await;
            }
        )+
    };
}
pub(crate) use one_test_per_case;

pub const TIMEOUT: Duration = Duration::from_secs(20);
pub const HELPDESK: &str = "arn:aws:iam::123456789012:user/helpdesk-integration";

pub struct World {
    pub stack: Stack,
    functions: HashMap<Action, FunctionProcess>,
    /// Logs of processes replaced by `respawn`, so no line is lost.
    retired_logs: Vec<String>,
}

impl World {
    /// Client-secret credentials, every function with its default settings.
    pub async fn start() -> World {
        World::start_with(SecretForm::ClientSecret, &[]).await
    }

    pub async fn start_with(form: SecretForm, extra_env: &[(&str, &str)]) -> World {
        let stack = Stack::start(form).await.expect("local stack starts");
        World::spawn_all(stack, extra_env).await
    }

    /// Like [`World::start`], with `env` added to reset-passcode's
    /// environment.
    pub async fn start_with_reset_env(env: &[(&str, &str)]) -> World {
        let mut world = World::start().await;
        world.respawn(Action::ResetPasscode, env).await;
        world
    }

    /// Like [`World::start`], with an idempotency table in moto.
    pub async fn start_idempotent() -> World {
        World::spawn_all(World::idempotent_stack().await, &[]).await
    }

    /// Like [`World::start_idempotent`], with completion tracking: the
    /// action log, a bus and a queue of its result events in moto.
    pub async fn start_tracking() -> World {
        let mut stack = World::idempotent_stack().await;
        stack.enable_tracking().await.expect("tracking set up");
        World::spawn_all(stack, &[]).await
    }

    async fn idempotent_stack() -> Stack {
        let mut stack = Stack::start(SecretForm::ClientSecret)
            .await
            .expect("local stack starts");
        stack
            .enable_idempotency()
            .await
            .expect("idempotency table created");
        stack
    }

    async fn spawn_all(stack: Stack, extra_env: &[(&str, &str)]) -> World {
        let mut world = World {
            stack,
            functions: HashMap::new(),
            retired_logs: Vec::new(),
        };
        for action in Action::ALL {
            world.respawn(action, extra_env).await;
        }
        world
    }

    /// (Re)starts one function with extra environment (a fresh execution environment).
    pub async fn respawn(&mut self, action: Action, env: &[(&str, &str)]) {
        if let Some(old) = self.functions.remove(&action) {
            self.retired_logs.extend(old.logs());
            old.kill().await;
        }
        let process = self
            .stack
            .spawn(action, env)
            .await
            .expect("function starts");
        self.functions.insert(action, process);
    }

    /// One more execution environment of `action`, beside the one `World` runs.
    pub async fn another_process(&self, action: Action) -> FunctionProcess {
        self.stack
            .spawn(action, &[])
            .await
            .expect("function starts")
    }

    pub fn function(&self, action: Action) -> &FunctionProcess {
        &self.functions[&action]
    }

    pub fn sim(&self) -> Control {
        self.stack.sim.control()
    }

    /// The simulator profile this run uses (`GRAPH_SIM_PROFILE`). Tests whose
    /// expectation depends on how Graph spells its answer say so through this.
    pub fn profile(&self) -> Profile {
        self.stack.sim.profile()
    }

    /// The status Graph answers an accepted `resetPasscode` with: the
    /// documented 204, or 200 with a body in the variants profile.
    pub fn action_accepted_status(&self) -> u16 {
        match self.profile() {
            Profile::Standard => 204,
            Profile::Variants => 200,
        }
    }

    /// Injects `rule` into the simulator.
    pub async fn add_fault(&self, rule: FaultRule) {
        self.sim()
            .add_fault(&rule)
            .await
            .expect("fault rule accepted");
    }

    /// Injects `rule` on the `resetPasscode` POSTs only.
    pub async fn fault_on_reset_post(&self, rule: FaultRule) {
        self.add_fault(rule.method("POST").path_contains("resetPasscode"))
            .await;
    }

    /// Drops the connection of the next `resetPasscode` POST at `point`:
    /// before Intune saw it, or after it recorded the action.
    pub async fn drop_next_reset_post(&self, point: DropPoint) {
        self.fault_on_reset_post(FaultRule::drop_connection(point).times(1))
            .await;
    }

    pub async fn invoke(&self, action: Action, event: Value) -> Invocation {
        self.invoke_within(action, event, TIMEOUT).await
    }

    pub async fn invoke_within(
        &self,
        action: Action,
        event: Value,
        timeout: Duration,
    ) -> Invocation {
        self.function(action).invoke(event, timeout).await
    }

    /// Invokes `action`'s function with an API Gateway `event`; returns its answer.
    pub async fn api(&self, action: Action, event: Value) -> Reply {
        Reply::from(self.invoke(action, event).await)
    }

    /// HTTP API (2.0) call with the device in the path; returns status and body.
    pub async fn api_path(&self, action: Action, device_id: &str, body: Value) -> Reply {
        self.api(action, api_path_event(action, device_id, &body))
            .await
    }

    /// `action` on one device as the helpdesk asks for it: HTTP API (2.0),
    /// device in the path, the usual reason.
    pub async fn act(&self, action: Action, device_id: &str) -> Reply {
        self.api_path(action, device_id, just_reason()).await
    }

    /// The device's passcode status (`GET`, device in the path).
    pub async fn status(&self, device_id: &str) -> Reply {
        self.api_path(Action::Status, device_id, json!({})).await
    }

    /// HTTP API (2.0) call naming the device by `device` (its identifiers),
    /// with the usual reason.
    pub async fn api_device(&self, action: Action, device: Value) -> Reply {
        self.api_body(action, with_device(device)).await
    }

    /// HTTP API (2.0) call with the device in the body.
    pub async fn api_body(&self, action: Action, body: Value) -> Reply {
        self.api(action, api_body_event(action, &body)).await
    }

    /// EventBridge event with `detail` = request + action.
    pub async fn event(&self, action: Action, mut detail: Value) -> Invocation {
        detail["action"] = json!(action.event_action());
        self.invoke(action, events::eventbridge(&detail)).await
    }

    /// Stores `value` as the functions' Graph secret in Secrets Manager
    /// (read on their next secret read).
    pub async fn put_secret(&self, value: &str) {
        self.stack
            .moto
            .put_secret(&self.stack.secret_name, value)
            .await
            .expect("PutSecretValue");
    }

    /// Every log line of every function so far.
    pub fn all_logs(&self) -> Vec<String> {
        let mut logs = self.retired_logs.clone();
        logs.extend(self.functions.values().flat_map(|f| f.logs()));
        logs
    }

    /// Puts one item into the idempotency table (which the write budget
    /// and the bulk stop switch share), as another writer would.
    pub async fn put_idempotency_item(
        &self,
        item: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) {
        let table = self
            .stack
            .idempotency_table
            .clone()
            .expect("idempotency table");
        let mut put = self.stack.moto.dynamodb().put_item().table_name(table);
        for (name, value) in item {
            put = put.item(*name, value.clone());
        }
        put.send().await.expect("PutItem");
    }

    /// Every item in the idempotency table (request records, device leases,
    /// the write budget's window counters).
    pub async fn idempotency_items(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let table = self.stack.idempotency_table.clone().expect("table");
        self.stack
            .moto
            .dynamodb()
            .scan()
            .table_name(table)
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default()
    }

    /// The audit records the functions printed.
    pub fn audit_records(&self) -> Vec<Value> {
        self.all_logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "audit")
            .collect()
    }

    /// A passcode reset of one device, as most fault and credential tests
    /// send it (HTTP API, device id in the path, IAM caller, reason "r").
    pub async fn reset(&self, device_id: &str) -> Reply {
        self.api_path(Action::ResetPasscode, device_id, short_reason())
            .await
    }

    /// A reset of the device (by id, in the body) with an idempotency key.
    pub async fn reset_keyed(&self, device_id: &str, key: &str) -> Reply {
        self.api_body(Action::ResetPasscode, keyed(device_id, key))
            .await
    }

    /// [`World::reset`] of the lobby kiosk.
    pub async fn reset_kiosk(&self) -> Reply {
        self.reset(dev::AE_DEDICATED).await
    }

    /// [`World::reset`] as a dry run: what would be sent, sending nothing.
    pub async fn reset_dry_run(&self, device_id: &str) -> Reply {
        let body = json!({"reason": "r", "dryRun": true});
        self.api_path(Action::ResetPasscode, device_id, body).await
    }

    /// [`World::reset_kiosk`] for tests of the deadline: the answer must
    /// come within `limit`.
    pub async fn reset_kiosk_within(&self, limit: Duration) -> Reply {
        let event = api_path_event(Action::ResetPasscode, dev::AE_DEDICATED, &short_reason());
        let invocation = self
            .invoke_within(Action::ResetPasscode, event, limit)
            .await;
        assert!(
            invocation.duration < limit,
            "answered within {limit:?}: {:?}",
            invocation.duration
        );
        Reply::from(invocation)
    }

    /// The same reset from EventBridge: the device by id, reason "r".
    pub async fn event_reset(&self, device_id: &str) -> Invocation {
        self.event(
            Action::ResetPasscode,
            json!({"device": {"id": device_id}, "reason": "r"}),
        )
        .await
    }

    /// Every request the simulator received so far.
    pub async fn requests(&self) -> Vec<graph_sim::LoggedRequest> {
        self.sim().requests().await
    }

    /// The requests that reached Entra's token endpoint.
    pub async fn token_requests(&self) -> Vec<graph_sim::LoggedRequest> {
        let mut requests = self.requests().await;
        requests.retain(|r| r.endpoint == "token");
        requests
    }

    /// The status Graph answered each POST with, in order.
    pub async fn graph_post_statuses(&self) -> Vec<Option<u16>> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r.method == "POST" && r.endpoint == "graph")
            .map(|r| r.status)
            .collect()
    }

    pub async fn posts(&self, device_id: &str) -> usize {
        self.sim().post_count(device_id).await
    }

    /// Every POST that reached any device.
    pub async fn total_posts(&self) -> usize {
        self.sim()
            .requests()
            .await
            .iter()
            .filter(|r| r.method == "POST" && r.device_id.is_some() && r.fault.is_none())
            .count()
    }

    pub async fn graph_calls(&self) -> usize {
        self.sim()
            .requests()
            .await
            .iter()
            .filter(|r| r.endpoint == "graph")
            .count()
    }
}

/// Every test ends by checking that no request the functions sent broke
/// Graph's published schema (`$select` properties that the API version lacks,
/// `$filter` on properties or with operators the schema does not document).
/// Skipped when the test already failed, so its own message stays on top.
impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let violations = self.stack.sim.schema_violations();
        assert!(
            violations.is_empty(),
            "requests broke Graph's published managedDevice schema:\n{violations:#?}"
        );
    }
}

/// The HTTP API (2.0) event of a POST with the device in the body, from [`HELPDESK`].
pub fn api_body_event(action: Action, body: &Value) -> Value {
    let path = format!("/v1/{}", action.function_name());
    events::api_v2("POST", &path, None, Some(body), &Caller::iam(HELPDESK))
}

/// The HTTP API (2.0) event of the action's route with the device in the
/// path, from [`HELPDESK`]; `body` is sent only on a POST route.
pub fn api_path_event(action: Action, device_id: &str, body: &Value) -> Value {
    let (method, path) = path_route(action, device_id);
    let body = (method == "POST").then_some(body);
    events::api_v2(
        &method,
        &path,
        Some(("deviceId", device_id)),
        body,
        &Caller::iam(HELPDESK),
    )
}

/// The action's `/v1/devices/{deviceId}/...` route for one device.
pub fn path_route(action: Action, device_id: &str) -> (String, String) {
    let (method, template) = action.routes()[0];
    (
        method.to_string(),
        template.replace("{deviceId}", device_id),
    )
}

/// An API Gateway answer, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Value,
    pub body: Value,
}

impl From<Invocation> for Reply {
    fn from(inv: Invocation) -> Reply {
        let value = match inv.outcome {
            InvokeOutcome::Response(v) => v,
            other => panic!("API invocation did not answer: {other:?}"),
        };
        let status = value["statusCode"].as_u64().expect("statusCode") as u16;
        let body: Value =
            serde_json::from_str(value["body"].as_str().expect("body string")).expect("JSON body");
        Reply {
            status,
            headers: value["headers"].clone(),
            body,
        }
    }
}

/// Asserts that an EventBridge / direct invocation failed with `error_type`
/// (so Lambda would retry it, then hand it to the failure destination).
pub fn assert_failed_with(invocation: &Invocation, error_type: &str) {
    assert!(
        matches!(&invocation.outcome, InvokeOutcome::Error { error_type: t, .. } if t == error_type),
        "expected a failed invocation ({error_type}): {:?}",
        invocation.outcome
    );
}

impl Reply {
    pub fn outcome(&self) -> &str {
        self.body["outcome"].as_str().unwrap_or("")
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts an error answer: its HTTP status and stable code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.error_code()),
            (status, code),
            "{:?}",
            self.body
        );
    }

    /// The error message, for tests that check what it tells the caller.
    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// The `Retry-After` header, in whole seconds.
    pub fn retry_after_seconds(&self) -> u64 {
        let header = self.headers["retry-after"].as_str();
        let seconds = header.and_then(|h| h.parse().ok());
        seconds.unwrap_or_else(|| panic!("Retry-After in seconds: {:?}", self.headers))
    }

    /// Asserts the HTTP status.
    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(self.status, status, "{:?}", self.body);
    }

    /// Asserts the HTTP status and the device the answer is about.
    #[track_caller]
    pub fn assert_device(&self, status: u16, device_id: &str) {
        assert_eq!(
            (self.status, self.body["device"]["id"].as_str()),
            (status, Some(device_id)),
            "{:?}",
            self.body
        );
    }

    /// Asserts the HTTP status and the `outcome` of a successful answer.
    #[track_caller]
    pub fn assert_outcome(&self, status: u16, outcome: &str) {
        assert_eq!(
            (self.status, self.outcome()),
            (status, outcome),
            "{:?}",
            self.body
        );
    }

    /// [`Reply::assert_outcome`] for one of several cases, which a failure
    /// names.
    #[track_caller]
    pub fn assert_outcome_for(&self, case: impl std::fmt::Debug, status: u16, outcome: &str) {
        assert_eq!(
            (self.status, self.outcome()),
            (status, outcome),
            "{case:?}: {:?}",
            self.body
        );
    }

    /// Asserts that the error message contains `text`.
    #[track_caller]
    pub fn assert_says(&self, text: &str) {
        let message = self.error_message();
        assert!(message.contains(text), "{text:?} not in: {message}");
    }

    /// [`Reply::assert_error`] and [`Reply::assert_says`] at once.
    #[track_caller]
    pub fn assert_error_saying(&self, status: u16, code: &str, text: &str) {
        self.assert_error(status, code);
        self.assert_says(text);
    }
}

/// A request body for the device (by id) with an idempotency key.
pub fn keyed(device_id: &str, key: &str) -> Value {
    json!({"device": {"id": device_id}, "reason": reason(), "idempotencyKey": key})
}

pub fn reason() -> Value {
    json!("user locked out (e2e test)")
}

/// The shortest valid body of a `/v1/devices/{deviceId}/...` POST.
pub fn short_reason() -> Value {
    json!({"reason": "r"})
}

/// Body for a `/v1/devices/{deviceId}/...` route: the device is in the path.
pub fn just_reason() -> Value {
    json!({"reason": reason()})
}

/// Request body naming the device by id.
pub fn by_id(id: &str) -> Value {
    json!({"device": {"id": id}, "reason": reason()})
}

pub fn with_device(device: Value) -> Value {
    json!({"device": device, "reason": reason()})
}

/// Changes fields of a seeded device the way a real tenant may hold them
/// (another `operatingSystem` spelling, a spaced IMEI, an older pending
/// action), keeping everything else.
pub async fn patch_device(world: &World, id: &str, patch: Value) {
    let mut device = world.sim().device(id).await.expect("seeded device");
    for (key, value) in patch.as_object().expect("patch is an object") {
        device[key] = value.clone();
    }
    world
        .sim()
        .put_device(&device)
        .await
        .expect("device replaced");
}

/// The `$filter`s of the device lists Graph was asked for.
pub async fn list_filters(world: &World) -> Vec<String> {
    world
        .sim()
        .requests()
        .await
        .iter()
        .filter(|r| r.method == "GET" && r.device_id.is_none() && r.endpoint == "graph")
        .filter_map(|r| filter_of(&r.query))
        .collect()
}

/// `$filter=...` out of a logged (already percent-decoded) query string;
/// the next option starts at `&$`.
fn filter_of(query: &str) -> Option<String> {
    let start = query.find("$filter=")? + "$filter=".len();
    let rest = &query[start..];
    Some(rest.split("&$").next().unwrap_or(rest).to_string())
}
