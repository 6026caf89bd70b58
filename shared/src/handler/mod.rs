//! One invocation from event to answer:
//!
//! ```text
//! event ─ trigger ─ request ─ idempotency claim ─ lookup ─ eligibility ─ device lease ─ pending check ─ POST ─ response
//!                                                                                                              └─ audit
//! ```
//!
//! This is the only module that writes to Intune (the write itself is in
//! `send`), and it writes at most one `resetPasscode` per invocation. `run`
//! returns what happened, an [`Outcome`] or a failure that says whether the
//! POST may have reached Intune; the idempotency record and the audit take
//! what they need from that. What the handler decides on its own (the
//! pending window) is its [`Policy`]; what a JWT caller must hold, its
//! [`RequiredRight`].

mod send;

pub(crate) use send::pending_reset;
use send::send_unless_pending;

use crate::action::Action;
use crate::audit;
use crate::batch;
use crate::budget::WriteBudget;
use crate::bulk::settle::BatchSettler;
use crate::stop::StopSwitch;
use crate::config::Config;
use crate::device_lease::{DeviceLeases, Ending};
use crate::device::{ManagedDevice, parse_time};
use crate::eligibility::{self, Platform};
use crate::error::ServiceError;
use crate::graph::Graph;
use crate::idempotency::{self, Claim, IdempotencyStore, RequestKey};
use crate::lookup;
use crate::outcome::{ActionStatus, Outcome, PlatformNotice, status_hint};
use crate::request::PasscodeRequest;
use crate::response;
use crate::retry::Deadline;
use crate::reveal;
use crate::rights::RequiredRight;
use crate::tracking::{ActionLog, ActionRecord, TrackedAction};
use crate::origin::{Caller, Source};
use crate::trigger;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Everything an execution environment builds once and reuses.
pub struct App {
    pub action: Action,
    pub graph: Graph,
    /// `None` without `IDEMPOTENCY_TABLE`: the pending check stands alone.
    pub idempotency: Option<IdempotencyStore>,
    /// One sender per device; `None` without `IDEMPOTENCY_TABLE`.
    pub leases: Option<DeviceLeases>,
    /// `None` without `ACTIONS_TABLE`: accepted actions are not tracked.
    pub actions: Option<ActionLog>,
    pub policy: Policy,
    /// What JWT callers must be granted to run `action`.
    pub right: RequiredRight,
    /// `None` without `IDEMPOTENCY_TABLE` or with `WRITE_BUDGET_PER_20S=0`.
    pub budget: Option<WriteBudget>,
    /// The brake on queued writes; `None` without `IDEMPOTENCY_TABLE`.
    pub stop: Option<StopSwitch>,
    /// Where queued requests of a bulk batch are settled; `None` without
    /// `IDEMPOTENCY_TABLE`.
    pub batches: Option<BatchSettler>,
}

/// What the handler decides on its own, apart from how Graph is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A `resetPasscode` started within this window and still pending
    /// blocks a new one (`alreadyPending`) unless the request says
    /// `replacePending`. The default is a full Android check-in cycle
    /// (8 hours): a shorter window lets a retry issue a second passcode
    /// while the first is still on its way to the device.
    pub pending_window: Duration,
}

impl Policy {
    pub fn from_config(config: &Config) -> Policy {
        Policy {
            pending_window: config.pending_window,
        }
    }
}

/// What one invocation knows about itself.
struct Invocation<'a> {
    request_id: &'a str,
    deadline: Deadline,
    source: Source,
    caller: &'a Caller,
}

/// How a run ended without an outcome: the error, and whether the POST
/// may have reached Intune (then the idempotency claim is kept).
struct Failure {
    error: ServiceError,
    post_maybe_sent: bool,
}

impl From<ServiceError> for Failure {
    fn from(error: ServiceError) -> Failure {
        Failure {
            error,
            post_maybe_sent: false,
        }
    }
}

pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let started = Instant::now();
    let (payload, context) = event.into_parts();
    let deadline = Deadline::from_epoch_ms(context.deadline);
    if let Some(messages) = trigger::queued_requests(app.action, &payload) {
        drop(payload);
        return Ok(batch::handle(app, messages, &context.request_id, deadline).await);
    }
    let incoming = trigger::parse_event(app.action, &payload);
    drop(payload);
    let result = serve(app, &incoming, &context.request_id, deadline, started, Ok(())).await;
    response::render(incoming.source, app.action, &context.request_id, &result)
}

/// One request from start to audit line: rights, the request's own
/// preconditions, the run, the audit. `gate` is what the caller of this
/// function already decided (the bulk brake): an error there ends the
/// request after the rights check, with the request still in the audit.
pub(crate) async fn serve(
    app: &App,
    incoming: &trigger::Incoming,
    request_id: &str,
    deadline: Deadline,
    started: Instant,
    gate: Result<(), ServiceError>,
) -> Result<Outcome, ServiceError> {
    let invocation = Invocation {
        request_id,
        deadline,
        source: incoming.source,
        caller: &incoming.caller,
    };
    // Rights first: a caller without them learns nothing about the request.
    let result = match (authorize(app, &invocation).and(gate), &incoming.request) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(e.clone()),
        (Ok(()), Ok(request)) => match reveal_preconditions(app.action, request, &invocation) {
            Err(e) => Err(e),
            Ok(()) => run_once(app, request, &invocation).await,
        },
    };

    let input = audit::AuditInput {
        action: app.action,
        request_id,
        source: incoming.source,
        caller: &incoming.caller,
        request: incoming.request.as_ref().ok(),
        result: &result,
        passcode_returned: result.as_ref().is_ok_and(Outcome::passcode_returned),
        duration: started.elapsed(),
        metrics_namespace: &app.graph.config().metrics_namespace,
    };
    audit::emit(&audit::record(&input));
    if let Err(e) = &result {
        tracing::info!(
            code = e.code.as_str(),
            transient = e.transient,
            "request ended with an error: {}",
            e.message
        );
    }
    result
}

/// JWT callers need the action's right (see `rights`); IAM, EventBridge
/// and direct callers were authorized by IAM before the function ran.
fn authorize(app: &App, invocation: &Invocation<'_>) -> Result<(), ServiceError> {
    match &invocation.caller.grants {
        Some(grants) => app.right.check(app.action, grants),
        None => Ok(()),
    }
}

/// A reveal hands out a passcode: only to API callers (EventBridge results
/// are copied onto the bus, direct results into whatever invoked the
/// function), and only with a ticket that says why.
fn reveal_preconditions(
    action: Action,
    request: &PasscodeRequest,
    invocation: &Invocation<'_>,
) -> Result<(), ServiceError> {
    if action != Action::RevealPasscode {
        return Ok(());
    }
    if !invocation.source.is_api() {
        return Err(ServiceError::invalid(
            "reveal-passcode answers API callers only: its answer holds a passcode, and EventBridge or direct results are copied to places that keep them. Call GET /v1/devices/{deviceId}/passcode.",
        ));
    }
    if request.ticket.is_none() {
        return Err(ServiceError::invalid(
            "a reveal needs a \"ticket\" (and a \"reason\") so the audit trail says why the passcode was shown",
        ));
    }
    Ok(())
}

/// Runs a request at most once across execution environments when an
/// idempotency table is configured (see `idempotency`). Reads and dry runs
/// change nothing and skip the table.
async fn run_once(
    app: &App,
    request: &PasscodeRequest,
    invocation: &Invocation<'_>,
) -> Result<Outcome, ServiceError> {
    let store = app
        .idempotency
        .as_ref()
        .filter(|_| app.action.writes() && !request.dry_run);
    let Some(store) = store else {
        return run(app, request, invocation).await.map_err(|f| f.error);
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let key = RequestKey::for_request(app.action, request, invocation.caller, now, store.window());
    match store
        .claim(&key, invocation.request_id, &invocation.deadline)
        .await?
    {
        Claim::Owned => {}
        Claim::Completed {
            outcome,
            request_id,
        } => {
            return Ok(Outcome::Replayed {
                original: outcome,
                original_request_id: request_id,
            });
        }
        Claim::InProgress { retry_after } => {
            return Err(idempotency::in_progress_error(&key, retry_after));
        }
    }
    match run(app, request, invocation).await {
        Ok(outcome) => {
            store.complete(&key, invocation.request_id, &outcome).await;
            Ok(outcome)
        }
        // The POST may have reached Intune: keep the claim until it expires
        // so an immediate retry cannot send a second passcode.
        Err(failure) if failure.post_maybe_sent => Err(failure.error),
        Err(failure) => {
            store.release(&key, invocation.request_id).await;
            Err(failure.error)
        }
    }
}

async fn run(
    app: &App,
    request: &PasscodeRequest,
    invocation: &Invocation<'_>,
) -> Result<Outcome, Failure> {
    let deadline = &invocation.deadline;
    let device = lookup::find_device(&app.graph, &request.device, deadline).await?;
    let platform = eligibility::check(app.action, &device)
        .map_err(|r| ServiceError::new(r.code, r.message))?;

    match app.action {
        Action::Status => {
            return Ok(Outcome::Status {
                device: device.summary(),
                actions: action_statuses(&device, platform),
                tracking: tracked_actions(app, &device.id).await,
            });
        }
        Action::RevealPasscode => {
            let revealed = reveal::passcode(&device, crate::clock::now())?;
            return Ok(Outcome::Revealed {
                device: device.summary(),
                passcode: revealed.passcode,
                completed_at: revealed.completed_at,
                expires_at: revealed
                    .expires_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            });
        }
        Action::ResetPasscode | Action::RemovePasscode | Action::ResetWindowsPin => {}
    }

    let notice = PlatformNotice::for_platform(platform);
    if request.dry_run {
        let window = app.policy.pending_window;
        let pending = pending_reset(&device, None, crate::clock::now(), window);
        return Ok(Outcome::DryRun {
            device: device.summary(),
            would_send: pending.is_none() || request.replace_pending,
            would_replace: pending.filter(|_| request.replace_pending),
            notice,
        });
    }

    // One sender per device from here to the POST's answer (`device_lease`).
    let Some(leases) = &app.leases else {
        return send_unless_pending(app, request, invocation, &device, notice, None).await;
    };
    let lease = leases
        .take(&device.id, invocation.request_id, &invocation.deadline)
        .await?;
    let result =
        send_unless_pending(app, request, invocation, &device, notice, lease.last_sent).await;
    let ending = match &result {
        Ok(Outcome::Accepted { .. }) => Ending::Sent,
        Err(failure) if failure.post_maybe_sent => Ending::OutcomeUnknown,
        _ => Ending::NothingSent,
    };
    leases.finish(lease, ending).await;
    result
}

/// The device's newest tracked actions for the status answer.
async fn tracked_actions(app: &App, device_id: &str) -> Option<Vec<TrackedAction>> {
    let log = app.actions.as_ref()?;
    match log.for_device(device_id, 5).await {
        Ok(records) => Some(records.iter().map(ActionRecord::view).collect()),
        Err(e) => {
            tracing::warn!(table = log.table(), "the action log could not be read ({e}); the status shows no tracking");
            None
        }
    }
}

/// The status never carries a passcode: revealing one is a right of its
/// own (`reveal-passcode`).
fn action_statuses(device: &ManagedDevice, platform: Platform) -> Vec<ActionStatus> {
    let mut results: Vec<_> = device.device_action_results.iter().flatten().collect();
    results.sort_by_key(|r| std::cmp::Reverse(r.start_date_time.as_deref().and_then(parse_time)));
    results
        .into_iter()
        .map(|r| {
            let state = r.action_state.clone().unwrap_or_else(|| "none".into());
            ActionStatus {
                action: r.action_name.clone().unwrap_or_else(|| "unknown".into()),
                hint: r
                    .is_reset_passcode()
                    .then(|| status_hint(&state, platform))
                    .flatten()
                    .map(str::to_string),
                state,
                started_at: r.start_date_time.clone(),
                updated_at: r.last_updated_date_time.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceActionResult;

    pub(super) fn with_reset(state: &str, start: &str) -> ManagedDevice {
        ManagedDevice {
            id: "d".into(),
            operating_system: Some("Android".into()),
            device_action_results: Some(vec![DeviceActionResult {
                odata_type: Some("#microsoft.graph.resetPasscodeActionResult".into()),
                action_name: Some("resetPasscode".into()),
                action_state: Some(state.into()),
                start_date_time: Some(start.into()),
                passcode: Some("13572468".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn status_never_carries_the_passcode() {
        let android = Platform::AndroidEnterpriseDedicated;
        let d = with_reset("done", "2026-11-26T05:00:00Z");
        let statuses = action_statuses(&d, android);
        assert_eq!(statuses[0].state, "done");
        assert!(
            !serde_json::to_string(&statuses)
                .unwrap()
                .contains("13572468")
        );
        let d = with_reset("pending", "2026-11-26T05:00:00Z");
        let pending = &action_statuses(&d, android)[0];
        assert!(pending.hint.as_deref().unwrap().contains("check in"));
    }

    #[test]
    fn a_finished_windows_mobile_reset_speaks_of_a_new_pin() {
        let mut d = with_reset("done", "2026-11-26T05:00:00Z");
        d.operating_system = Some("Windows".into());
        let status = &action_statuses(&d, Platform::Windows10Mobile)[0];
        let hint = status.hint.as_deref().unwrap();
        assert!(
            hint.contains("new PIN") && !hint.contains("removed"),
            "{hint}"
        );
    }
}
