//! The tracker's cost: one run over many open actions, the way the schedule
//! starts it, against the Graph simulator and moto behind the counting
//! proxy.
//!
//! The open actions are made the real way: the release `reset-passcode`
//! sends one reset per cloned kiosk (so each is in the action log as in
//! production), then half of them are marked `done` in the simulator and
//! the benchmark waits until every one is past its first poll. One
//! tracker run then has to report half and reschedule the other half. Measured: the run's wall
//! time, its CPU time, Graph reads (and the most in any 20 s, against the
//! configured share of Intune's 2,000 per 20 s), DynamoDB and EventBridge
//! calls, and the events that reached the bus.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use graph_sim::seed::devices as dev;
use local_stack::events::{Caller, api_v2};
use local_stack::stack::{SecretForm, Stack};
use local_stack::{FunctionProcess, FunctionSpec, InvokeOutcome};
use passcode_core::Action;
use passcode_core::action::TRACKER_FUNCTION;
use serde::Serialize;
use serde_json::json;

use crate::proxy::CountingProxy;

/// The template's default share of Intune's read budget.
const READ_FRACTION: f64 = 0.1;
/// When the tracker first polls a new action (the core's `FIRST_POLL_MS`).
const FIRST_POLL: Duration = Duration::from_secs(60);
/// The template's function timeout for the tracker.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackerReport {
    pub open_actions: usize,
    pub finished_before_run: usize,
    /// The tracker's init (spawn to its first `GET /invocation/next`).
    pub init_ms: f64,
    pub read_fraction: f64,
    pub read_budget_per_20s: u64,
    pub run_ms: u64,
    /// The run's own answer (due, polled, completed, waiting, ...).
    pub summary: serde_json::Value,
    pub graph_reads: u64,
    pub max_graph_reads_in_any_20s: u64,
    pub dynamodb_calls: u64,
    pub eventbridge_calls: u64,
    pub cpu_ms: f64,
    pub events_on_bus: usize,
    pub per_action: PerAction,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PerAction {
    pub graph_reads: f64,
    pub dynamodb_calls: f64,
    pub eventbridge_calls: f64,
    pub cpu_us: f64,
    pub wall_ms: f64,
}

pub async fn run(
    bin_dir: &Path,
    open_actions: usize,
    log_level: &str,
) -> anyhow::Result<TrackerReport> {
    let mut stack = Stack::start(SecretForm::ClientSecret).await?;
    stack.enable_idempotency().await?;
    stack.enable_tracking().await?;
    let control = stack.sim.control();
    // The resets that make the open actions are not what is measured.
    control.set_write_limit(None).await?;
    let proxy = CountingProxy::start(stack.moto.endpoint()).await?;
    let mut env = crate::proxied_env(&stack, &proxy, log_level);
    env.push((
        "TRACK_READ_BUDGET_FRACTION".into(),
        READ_FRACTION.to_string(),
    ));

    let devices = stack
        .add_device_clones(dev::AE_DEDICATED, open_actions, "88888888")
        .await?;
    let writer = FunctionProcess::spawn_at(
        &bin_dir.join(Action::ResetPasscode.function_name()),
        FunctionSpec {
            name: Action::ResetPasscode.function_name().into(),
            env: env.clone(),
        },
    )
    .await?;
    for id in &devices {
        let path = format!("/v1/devices/{id}/reset-passcode");
        let body = json!({"reason": "benchmark", "ticket": "BENCH-1"});
        let event = api_v2(
            "POST",
            &path,
            Some(("deviceId", id)),
            Some(&body),
            &Caller::iam("arn:aws:iam::123456789012:user/bench"),
        );
        match writer.invoke(event, Duration::from_secs(20)).await.outcome {
            InvokeOutcome::Response(answer) if answer["statusCode"] == 202 => {}
            other => bail!("the reset of {id} was not accepted: {other:?}"),
        }
    }
    writer.kill().await;
    let finished: Vec<&String> = devices.iter().step_by(2).collect();
    for id in &finished {
        control
            .advance_action(id, "resetPasscode", "done", None)
            .await?;
    }
    // Release builds read the real clock (only debug builds take the test
    // clock): wait until the last action is past its first poll.
    tokio::time::sleep(FIRST_POLL + Duration::from_secs(1)).await;
    control.clear_requests().await?;

    let mut tracker_env = env.clone();
    tracker_env.retain(|(k, _)| k != "IDEMPOTENCY_TABLE");
    let tracker = FunctionProcess::spawn_at(
        &bin_dir.join(TRACKER_FUNCTION),
        FunctionSpec {
            name: TRACKER_FUNCTION.into(),
            env: tracker_env,
        },
    )
    .await?;
    let init = tracker.ready().await?;
    let before = proxy.counts();
    let cpu_before = tracker.cpu_time().unwrap_or_default();
    let started = Instant::now();
    let invocation = tracker.invoke(json!({}), RUN_TIMEOUT).await;
    let run_time = started.elapsed();
    let cpu = tracker
        .cpu_time()
        .unwrap_or_default()
        .saturating_sub(cpu_before);
    let summary = match invocation.outcome {
        InvokeOutcome::Response(summary) => summary,
        other => bail!("the tracker run failed: {other:?}"),
    };
    let aws = proxy.counts().since(&before);
    let log = control.try_requests().await?;
    let reads: Vec<time::OffsetDateTime> = log
        .iter()
        .filter(|r| r.endpoint == "graph" && r.method == "GET")
        .filter_map(|r| {
            time::OffsetDateTime::parse(&r.at, &time::format_description::well_known::Rfc3339).ok()
        })
        .collect();
    let events = stack
        .take_result_events()
        .await
        .context("reading the result events")?;
    tracker.kill().await;

    let n = open_actions.max(1) as f64;
    let graph_reads = reads.len() as u64;
    let dynamodb_calls = aws.service("DynamoDB_");
    let eventbridge_calls = aws.service("AWSEvents.");
    Ok(TrackerReport {
        open_actions,
        finished_before_run: finished.len(),
        init_ms: init.as_secs_f64() * 1000.0,
        read_fraction: READ_FRACTION,
        read_budget_per_20s: (2000.0 * READ_FRACTION) as u64,
        run_ms: run_time.as_millis() as u64,
        summary,
        graph_reads,
        max_graph_reads_in_any_20s: most_in_window(reads, time::Duration::seconds(20)),
        dynamodb_calls,
        eventbridge_calls,
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        events_on_bus: events.len(),
        per_action: PerAction {
            graph_reads: graph_reads as f64 / n,
            dynamodb_calls: dynamodb_calls as f64 / n,
            eventbridge_calls: eventbridge_calls as f64 / n,
            cpu_us: cpu.as_secs_f64() * 1e6 / n,
            wall_ms: run_time.as_secs_f64() * 1000.0 / n,
        },
    })
}

/// The most timestamps in any window of `width` (sliding).
fn most_in_window(mut times: Vec<time::OffsetDateTime>, width: time::Duration) -> u64 {
    times.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= width {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most as u64
}

impl TrackerReport {
    pub fn table(&self) -> String {
        let s = &self.summary;
        let over = self.max_graph_reads_in_any_20s > self.read_budget_per_20s;
        format!(
            "\npasscode-tracker: init {:.1} ms; one run over {} open actions ({} finished before the run)\n  \
             run {:.1} s; completed {} / waiting {} / failures {} / left for the next run {}; events on the bus {}\n  \
             Graph reads {} (most in any 20 s: {}, budget {}{}); DynamoDB {}; EventBridge {}; CPU {:.0} ms\n  \
             per open action: {:.2} Graph reads, {:.2} DynamoDB calls, {:.2} EventBridge calls, {:.0} µs CPU, {:.1} ms wall\n",
            self.init_ms,
            self.open_actions,
            self.finished_before_run,
            self.run_ms as f64 / 1000.0,
            s["completed"],
            s["waiting"],
            s["failures"],
            s["leftForNextRun"],
            self.events_on_bus,
            self.graph_reads,
            self.max_graph_reads_in_any_20s,
            self.read_budget_per_20s,
            if over { " !" } else { "" },
            self.dynamodb_calls,
            self.eventbridge_calls,
            self.cpu_ms,
            self.per_action.graph_reads,
            self.per_action.dynamodb_calls,
            self.per_action.eventbridge_calls,
            self.per_action.cpu_us,
            self.per_action.wall_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_busiest_window() {
        let t0 = time::OffsetDateTime::UNIX_EPOCH;
        let at = |s: i64| t0 + time::Duration::seconds(s);
        let times = vec![at(0), at(5), at(19), at(20), at(21), at(39), at(60)];
        assert_eq!(most_in_window(times, time::Duration::seconds(20)), 4);
        assert_eq!(most_in_window(vec![], time::Duration::seconds(20)), 0);
    }
}
