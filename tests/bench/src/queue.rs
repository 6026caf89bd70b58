//! Queued writes paced by the tenant's write budget: many devices sent as
//! one message each through the SQS event source mapping stand-in to two
//! release `reset-passcode` environments (the template's maximum
//! concurrency), against the Graph simulator enforcing Intune's write limit
//! (200 per 20 s per app). Measured: 429s from the simulator (the budget
//! should leave none), the sustained write rate against the budget
//! (`WRITE_BUDGET_PER_20S`, default 100), the total time against the
//! budget's minimum, and per device: DynamoDB calls and CPU.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use graph_sim::seed::devices as dev;
use local_stack::stack::{SecretForm, Stack};
use local_stack::{FunctionProcess, FunctionSpec, SqsMapping, SqsMappingOptions};
use passcode_core::Action;
use serde::Serialize;
use serde_json::json;

use crate::proxy::CountingProxy;

/// The template's default budget: half of Intune's 200 writes per 20 s.
const BUDGET_PER_20S: u64 = 100;
/// The template's function timeout and the queue's visibility (6x).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueReport {
    pub devices: usize,
    pub budget_per_20s: u64,
    pub posts: u64,
    pub throttled_by_graph: u64,
    /// First to last POST.
    pub sending_ms: u64,
    /// `devices` at exactly the budget's rate.
    pub minimum_ms: u64,
    /// POSTs per 20 s while sending, as a share of the budget.
    pub rate_of_budget: f64,
    pub dynamodb_calls: u64,
    pub cpu_ms: f64,
    pub per_device: PerDevice,
    pub dead_letters: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PerDevice {
    pub dynamodb_calls: f64,
    pub cpu_us: f64,
}

pub async fn run(bin_dir: &Path, devices: usize, log_level: &str) -> anyhow::Result<QueueReport> {
    let mut stack = Stack::start(SecretForm::ClientSecret).await?;
    stack.enable_idempotency().await?;
    let control = stack.sim.control();
    let proxy = CountingProxy::start(stack.moto.endpoint()).await?;
    let mut env = crate::proxied_env(&stack, &proxy, log_level);
    env.push(("WRITE_BUDGET_PER_20S".into(), BUDGET_PER_20S.to_string()));
    let ids = stack
        .add_device_clones(dev::AE_DEDICATED, devices, "aaaaaaaa")
        .await?;
    let (queue_url, dlq_url) = stack
        .moto
        .create_queue_with_dlq("bench-bulk-reset", 6 * FUNCTION_TIMEOUT.as_secs() as u32, 5)
        .await?;
    for (chunk_no, chunk) in ids.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let body = json!({"action": "resetPasscode", "device": {"id": id},
                                  "reason": "benchmark", "ticket": "BENCH-BULK"});
                SendMessageBatchRequestEntry::builder()
                    .id(format!("{chunk_no}-{i}"))
                    .message_body(body.to_string())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        stack
            .moto
            .sqs()
            .send_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("SendMessageBatch")?;
    }

    let mut processes = Vec::new();
    for _ in 0..2 {
        let spec = FunctionSpec {
            name: Action::ResetPasscode.function_name().into(),
            env: env.clone(),
        };
        let process = FunctionProcess::spawn_at(&bin_dir.join(&spec.name), spec).await?;
        process.ready().await?;
        processes.push(Arc::new(process));
    }
    control.clear_requests().await?;
    let before = proxy.counts();
    let cpu_before: Duration = processes.iter().filter_map(|p| p.cpu_time()).sum();
    let started = Instant::now();
    let options = SqsMappingOptions {
        batch_size: 10,
        maximum_concurrency: 2,
        function_timeout: FUNCTION_TIMEOUT,
        ..SqsMappingOptions::default()
    };
    let mapping = SqsMapping::start(
        stack.moto.endpoint(),
        &queue_url,
        processes.clone(),
        options,
    )
    .await?;
    let expected = Duration::from_millis(devices as u64 * 20_000 / BUDGET_PER_20S);
    mapping
        .wait_until_drained(expected * 2 + Duration::from_secs(60))
        .await?;
    mapping.stop().await;
    let _wall = started.elapsed();
    let cpu: Duration = processes
        .iter()
        .filter_map(|p| p.cpu_time())
        .sum::<Duration>()
        .saturating_sub(cpu_before);
    let aws = proxy.counts().since(&before);
    let log = control.try_requests().await?;
    let posts: Vec<&graph_sim::LoggedRequest> = log
        .iter()
        .filter(|r| r.method == "POST" && r.device_id.is_some())
        .collect();
    let accepted: Vec<time::OffsetDateTime> = posts
        .iter()
        .filter(|r| r.status.is_some_and(|s| s < 300))
        .filter_map(|r| {
            time::OffsetDateTime::parse(&r.at, &time::format_description::well_known::Rfc3339).ok()
        })
        .collect();
    let throttled = posts.iter().filter(|r| r.status == Some(429)).count() as u64;
    if accepted.len() != devices {
        bail!(
            "{} of {devices} devices got their POST accepted",
            accepted.len()
        );
    }
    let first = accepted
        .iter()
        .min()
        .copied()
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let last = accepted.iter().max().copied().unwrap_or(first);
    let sending = (last - first).unsigned_abs();
    let minimum = Duration::from_millis((devices as u64 - 1) * 20_000 / BUDGET_PER_20S);
    let dead_letters = stack
        .moto
        .sqs()
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .send()
        .await?
        .messages
        .unwrap_or_default()
        .len();
    let n = devices.max(1) as f64;
    let dynamodb_calls = aws.service("DynamoDB_");
    Ok(QueueReport {
        devices,
        budget_per_20s: BUDGET_PER_20S,
        posts: posts.len() as u64,
        throttled_by_graph: throttled,
        sending_ms: sending.as_millis() as u64,
        minimum_ms: minimum.as_millis() as u64,
        rate_of_budget: if sending.is_zero() {
            0.0
        } else {
            (devices as f64 - 1.0) / sending.as_secs_f64() * 20.0 / BUDGET_PER_20S as f64
        },
        dynamodb_calls,
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        per_device: PerDevice {
            dynamodb_calls: dynamodb_calls as f64 / n,
            cpu_us: cpu.as_secs_f64() * 1e6 / n,
        },
        dead_letters,
    })
}

impl QueueReport {
    pub fn table(&self) -> String {
        format!(
            "\nqueued writes: {} devices through the SQS mapping (2 environments), budget {} per 20 s\n  \
             POSTs {} ({} answered 429 by Graph{}); sending {:.1} s vs minimum {:.1} s; rate {:.0} % of the budget{}\n  \
             DynamoDB {} ({:.2} per device); CPU {:.0} ms ({:.0} µs per device); dead letters {}\n",
            self.devices,
            self.budget_per_20s,
            self.posts,
            self.throttled_by_graph,
            if self.throttled_by_graph > 0 {
                " !"
            } else {
                ""
            },
            self.sending_ms as f64 / 1000.0,
            self.minimum_ms as f64 / 1000.0,
            self.rate_of_budget * 100.0,
            if self.rate_of_budget < 0.9 { " !" } else { "" },
            self.dynamodb_calls,
            self.per_device.dynamodb_calls,
            self.cpu_ms,
            self.per_device.cpu_us,
            self.dead_letters,
        )
    }
}
