//! A concurrency and fault soak: several execution environments (processes)
//! per function, a mixed stream of requests in which the same logical request
//! is sometimes sent at the same instant to different processes (and, with
//! the table, two different requests for one device are), random Graph
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
//! 2. no device got more than one committed POST. No action is ever
//!    advanced, so every request after the first committed POST must find it
//!    pending. With the idempotency table, different logical write requests
//!    for one device overlap freely and the device lease must keep them to
//!    one POST. Without it they run one after another (only the copies of
//!    one request overlap), since the pending check alone is not atomic
//!    across requests: a second POST can then only come from one logical
//!    request being sent twice;
//! 3. every POST went to a device that a valid request for that action named,
//!    and every `accepted` answer is backed by a committed POST;
//! 4. every answer came before the deadline the invocation was given.
//!
//! The soak is built from one file per step: `devices` (the managed devices it
//! adds), `plan` (the seeded request stream), `faults` (what the simulator
//! injects), `run` (sending the stream), `answer` (what each answer means under
//! the contract), `check` (the invariants) and `report` (the figures).

mod answer;
mod check;
mod devices;
mod faults;
mod plan;
mod report;
mod run;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use graph_sim::WriteLimit;
use serde::Serialize;

pub use report::{Latency, SoakReport};

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
    /// With the table: share of single-copy writes sent at the same instant
    /// as a rival, another request for the same device.
    pub rival_fraction: f64,
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
            rival_fraction: 0.15,
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
            rival_fraction: 0.1,
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
    let pool = devices::add_devices(&stack, config.device_count()).await?;
    let runner = Arc::new(run::Runner::start(&stack, config, &pool).await?);
    let plans: Vec<Arc<plan::Plan>> = plan::stream(config, &pool)
        .into_iter()
        .map(Arc::new)
        .collect();

    control.clear_requests().await?;
    faults::arm(&control, config).await?;
    let records = runner.send_all(&plans).await?;
    // A POST whose caller stopped waiting may still be in its delay.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fired = faults::disarm(&control, config).await?;
    let log = control.requests().await;
    let wall = started.elapsed();
    drop(runner);
    drop(stack);

    let violations = check::violations(config, &pool, &plans, &records, &log);
    Ok(report::build(
        config, &plans, &records, &log, fired, wall, violations,
    ))
}
