//! One tracker run: the due open actions, each polled once within the read
//! budget and the run's own deadline, each rescheduled or reported.
//!
//! A run stops taking actions a safety margin before its deadline; what it
//! did not reach stays due and is first in line for the next run (the index
//! is ordered by next poll). A run that dies holds its leases for at most
//! `LEASE`, then another run takes the records up again.

use super::events::EventPublisher;
use super::settings::TrackerSettings;
use super::store::{ActionLog, Closing};
use super::verdict::{self, Verdict};
use super::record::{ActionRecord, BATCH_ACTION};
use crate::bulk::settle::BatchSettler;
use crate::clock;
use crate::graph::Graph;
use crate::retry::Deadline;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one run may hold a record: far more than one poll needs.
const LEASE: Duration = Duration::from_secs(120);
/// No new record is started with less than this left of the run.
const STOP_MARGIN: Duration = Duration::from_secs(10);
/// The most one poll may take (Graph retries included).
const POLL_BUDGET: Duration = Duration::from_secs(60);
/// A record whose poll or event failed is due again this soon.
const RETRY_SOON: Duration = Duration::from_secs(60);
/// Polls in flight at once; the pacer, not this, sets the rate.
const WORKERS: usize = 4;
/// Due records read per index page.
const PAGE: i32 = 200;

pub struct Tracker {
    pub graph: Graph,
    pub log: ActionLog,
    /// Where bulk batches are counted (the idempotency table); `None`
    /// without `IDEMPOTENCY_TABLE`.
    pub batches: Option<BatchSettler>,
    pub events: EventPublisher,
    pub settings: TrackerSettings,
}

/// What one run did; the run's log line and its answer.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub due: u32,
    pub polled: u32,
    pub waiting: u32,
    pub completed: u32,
    pub expired: u32,
    /// Held by another run, or moved on by one since it was read.
    pub skipped: u32,
    /// Graph, DynamoDB or EventBridge failures; those records are due again.
    pub failures: u32,
    /// Due records left for the next run because time ran out.
    pub left_for_next_run: u32,
}

enum Step {
    Skipped,
    Waiting,
    Reported { expired: bool },
    Failed,
}

pub async fn handle(tracker: &Tracker, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let started = Instant::now();
    let deadline = Deadline::from_epoch_ms(event.context.deadline);
    let owner = event.context.request_id.clone();
    let summary = run(tracker, &owner, &deadline).await;
    let summary = match summary {
        Ok(summary) => summary,
        Err(message) => {
            tracing::error!("tracker run stopped: {message}");
            return Err(Diagnostic {
                error_type: "TrackerRunFailed".into(),
                error_message: message,
            });
        }
    };
    emit_metrics(&summary, started.elapsed(), &tracker.graph.config().metrics_namespace);
    if summary.failures > 0 {
        // The records are due again; an error makes the failures visible
        // (the function's Errors alarm) without losing anything.
        return Err(Diagnostic {
            error_type: "TrackerPartialFailure".into(),
            error_message: format!(
                "{} of {} due actions could not be followed this run; they are due again in a minute",
                summary.failures, summary.due
            ),
        });
    }
    Ok(serde_json::to_value(&summary).unwrap_or_default())
}

/// Reads the due records (at most what the read budget allows before the
/// deadline), then follows them with a few concurrent workers.
async fn run(tracker: &Tracker, owner: &str, deadline: &Deadline) -> Result<RunSummary, String> {
    let interval = tracker.settings.read_interval();
    let usable = deadline.remaining().saturating_sub(STOP_MARGIN);
    let capacity = (usable.as_millis() / interval.as_millis().max(1)).max(1) as usize;

    let now_ms = clock::now_ms();
    let mut due = VecDeque::new();
    let mut start = None;
    loop {
        let page = tracker
            .log
            .due(now_ms, PAGE, start)
            .await
            .map_err(|e| format!("could not read the open actions from {} ({e})", tracker.log.table()))?;
        due.extend(page.records);
        start = page.next;
        if start.is_none() || due.len() >= capacity {
            break;
        }
    }
    let mut summary = RunSummary {
        due: due.len() as u32,
        ..RunSummary::default()
    };
    let queue = Mutex::new(due);
    let pacer = Pacer::new(interval);
    let worker = || async {
        let mut steps = Vec::new();
        loop {
            if deadline.remaining() < STOP_MARGIN {
                break;
            }
            let Some(record) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                break;
            };
            steps.push(follow(tracker, owner, &record, &pacer, deadline).await);
        }
        steps
    };
    let (a, b, c, d) = tokio::join!(worker(), worker(), worker(), worker());
    debug_assert_eq!(WORKERS, 4);
    for step in [a, b, c, d].into_iter().flatten() {
        match step {
            Step::Skipped => summary.skipped += 1,
            Step::Waiting => {
                summary.polled += 1;
                summary.waiting += 1;
            }
            Step::Reported { expired } => {
                summary.polled += 1;
                if expired {
                    summary.expired += 1;
                } else {
                    summary.completed += 1;
                }
            }
            Step::Failed => summary.failures += 1,
        }
    }
    summary.left_for_next_run = queue.lock().map(|q| q.len() as u32).unwrap_or(0);
    tracing::info!(
        due = summary.due,
        polled = summary.polled,
        completed = summary.completed,
        expired = summary.expired,
        waiting = summary.waiting,
        skipped = summary.skipped,
        failures = summary.failures,
        left = summary.left_for_next_run,
        "tracker run finished"
    );
    Ok(summary)
}

/// Claims one record, reads its device, then reschedules or reports it.
async fn follow(
    tracker: &Tracker,
    owner: &str,
    record: &ActionRecord,
    pacer: &Pacer,
    deadline: &Deadline,
) -> Step {
    let log = &tracker.log;
    let now_ms = clock::now_ms();
    match log
        .claim(record, owner, now_ms, now_ms + LEASE.as_millis() as i64)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Step::Skipped,
        Err(e) => {
            tracing::warn!(device_id = %record.device_id, "could not claim a tracked action ({e})");
            return Step::Failed;
        }
    }
    if record.action == BATCH_ACTION {
        return follow_batch(tracker, owner, record).await;
    }
    pacer.wait().await;
    let poll_deadline = Deadline::after(
        deadline
            .remaining()
            .saturating_sub(STOP_MARGIN / 2)
            .min(POLL_BUDGET),
    );
    let device = match tracker.graph.get_device(&record.device_id, &poll_deadline).await {
        Ok(device) => device,
        Err(e) => {
            let why = format!("reading the device failed ({}: {})", e.code.as_str(), e.message);
            return retry_soon(log, owner, record, why).await;
        }
    };
    let now = clock::now();
    let polled_at = clock::format(now);
    let accepted = clock::from_unix_ms(record.accepted_at_ms);
    let age = (now - accepted).try_into().unwrap_or(Duration::ZERO);
    let verdict = match verdict::judge(accepted, device.as_ref()) {
        Verdict::Waiting if age >= tracker.settings.expire_after => {
            Verdict::Final(verdict::expired(tracker.settings.expire_after))
        }
        verdict => verdict,
    };
    let outcome = match verdict {
        Verdict::Waiting => return look_again_later(log, owner, record, now, age).await,
        Verdict::Final(outcome) => outcome,
    };
    if let Err(e) = tracker.events.publish(record, &outcome, &polled_at).await {
        return retry_soon(log, owner, record, format!("the result event could not be published ({e})")).await;
    }
    tracing::info!(
        device_id = %record.device_id,
        request_id = %record.request_id,
        final_state = outcome.state,
        "reported a tracked action"
    );
    let closing = Closing {
        state: outcome.state,
        intune_error_code: outcome.intune_error_code,
        at: polled_at,
    };
    close(log, owner, record, &closing).await;
    Step::Reported {
        expired: outcome.is_expiry(),
    }
}

/// A bulk batch: reported once all its devices are settled (or when it
/// expires with some still unsettled); otherwise looked at again later.
/// Its counts are one DynamoDB read, not a Graph read: no pacing.
async fn follow_batch(tracker: &Tracker, owner: &str, record: &ActionRecord) -> Step {
    let log = &tracker.log;
    let Some(batches) = &tracker.batches else {
        return retry_soon(log, owner, record, "IDEMPOTENCY_TABLE is not set, so the batch's counts cannot be read".into()).await;
    };
    // The record's device is the batch's key (`bulk::settle::batch_key`).
    let batch_id = record.device_id.trim_start_matches("bulk#");
    let counts = match batches.counts(batch_id).await {
        Ok(counts) => counts.unwrap_or_default(),
        Err(e) => return retry_soon(log, owner, record, format!("the batch could not be read ({e})")).await,
    };
    let now = clock::now();
    let at = clock::format(now);
    let age: Duration = (now - clock::from_unix_ms(record.accepted_at_ms)).try_into().unwrap_or(Duration::ZERO);
    let expired = age >= tracker.settings.expire_after;
    // A batch that is gone (its items expired) has nothing left to wait for.
    let gone = counts.to_send == 0;
    if !counts.complete() && !expired && !gone {
        return look_again_later(log, owner, record, now, age).await;
    }
    if let Err(e) = tracker.events.publish_batch(record, &counts, &at).await {
        return retry_soon(log, owner, record, format!("the batch's event could not be published ({e})")).await;
    }
    tracing::info!(batch_id, settled = counts.settled, to_send = counts.to_send, "reported a bulk batch");
    let state = if counts.complete() && !gone { "done" } else { "expired" };
    let closing = Closing {
        state,
        intune_error_code: None,
        at,
    };
    close(log, owner, record, &closing).await;
    Step::Reported {
        expired: state == "expired",
    }
}

/// Still open: due again after the backoff for its age (`verdict`).
async fn look_again_later(
    log: &ActionLog,
    owner: &str,
    record: &ActionRecord,
    now: time::OffsetDateTime,
    age: Duration,
) -> Step {
    let next = clock::unix_ms(now) + verdict::next_poll_after(age).as_millis() as i64;
    match log.reschedule(record, owner, Some(&clock::format(now)), next).await {
        Ok(_) => Step::Waiting,
        Err(e) => {
            tracing::warn!(device_id = %record.device_id, "could not reschedule ({e}); its lease runs out in two minutes");
            Step::Failed
        }
    }
}

/// Gives the record back, due again in a minute.
async fn retry_soon(log: &ActionLog, owner: &str, record: &ActionRecord, why: String) -> Step {
    tracing::warn!(device_id = %record.device_id, request_id = %record.request_id, "{why}; due again in a minute");
    let next = clock::now_ms() + RETRY_SOON.as_millis() as i64;
    if let Err(e) = log.reschedule(record, owner, None, next).await {
        tracing::warn!(device_id = %record.device_id, "could not give the record back ({e}); its lease runs out in two minutes");
    }
    Step::Failed
}

async fn close(log: &ActionLog, owner: &str, record: &ActionRecord, closing: &Closing<'_>) {
    match log.close(record, owner, closing).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(device_id = %record.device_id, "the lease ran out before the record was closed; another run may report it again (same trackingId)"),
        Err(e) => tracing::warn!(device_id = %record.device_id, "could not close the record ({e}); it is reported again once its lease runs out (same trackingId)"),
    }
}

/// Spaces Graph reads `interval` apart across the run's workers. A read
/// may start only once `interval` has passed since the previous one
/// actually started (not since its planned time), so a late worker never
/// lets the next read follow closer: any 20 s then holds at most the
/// budget's reads.
struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(interval: Duration) -> Pacer {
        Pacer {
            interval,
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait(&self) {
        loop {
            let wait = {
                let mut next = self.next.lock().await;
                let now = tokio::time::Instant::now();
                if now >= *next {
                    *next = now + self.interval;
                    return;
                }
                *next - now
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// The run as CloudWatch metrics (Embedded Metric Format, one line).
fn emit_metrics(summary: &RunSummary, duration: Duration, namespace: &str) {
    let names = ["due", "polled", "completed", "expired", "failures", "leftForNextRun", "durationMs"];
    let metrics: Vec<Value> = names
        .iter()
        .map(|name| {
            let unit = if *name == "durationMs" { "Milliseconds" } else { "Count" };
            serde_json::json!({"Name": name, "Unit": unit})
        })
        .collect();
    let mut line = serde_json::to_value(summary).unwrap_or_default();
    line["kind"] = "trackerRun".into();
    line["function"] = "passcode-tracker".into();
    line["durationMs"] = (duration.as_millis() as u64).into();
    line["_aws"] = serde_json::json!({
        "Timestamp": clock::unix_ms(time::OffsetDateTime::now_utc()),
        "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [["function"]],
            "Metrics": metrics,
        }],
    });
    println!("{line}");
}
