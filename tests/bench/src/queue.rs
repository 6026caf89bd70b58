//! A bulk request paced by the tenant's write budget: many devices in one
//! request to the release `bulk-passcode` (which plans them and queues one
//! message per device), then through the SQS event source mapping stand-in to two
//! release `reset-passcode` environments (the template's maximum
//! concurrency), against the Graph simulator enforcing Intune's write limit
//! (200 per 20 s per app). Measured: 429s from the simulator (the budget
//! should leave none), the sustained write rate against the budget
//! (`WRITE_BUDGET_PER_20S`, default 100), the total time against the
//! budget's minimum, and per device: DynamoDB calls and CPU.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use graph_sim::seed::devices as dev;
use local_stack::events::{self, Caller};
use local_stack::stack::{SecretForm, Stack};
use local_stack::{FunctionProcess, FunctionSpec, SqsMapping, SqsMappingOptions};
use passcode_core::Action;
use serde::Serialize;
use serde_json::{Value, json};

use crate::proxy::CountingProxy;

/// The template's default budget: half of Intune's 200 writes per 20 s.
const BUDGET_PER_20S: u64 = 100;
/// The template's function timeout and the queue's visibility (6x).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueReport {
    pub devices: usize,
    /// The bulk request that queued them.
    pub entry: EntryReport,
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

/// The bulk function's one invocation: plan (a Graph read per device),
/// batch record, `SendMessageBatch` calls.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryReport {
    pub status: u16,
    pub duration_ms: u64,
    pub graph_reads: u64,
    pub sqs_calls: u64,
    pub dynamodb_calls: u64,
    pub cpu_ms: f64,
    pub init_ms: f64,
}

/// One `POST /v1/bulk/reset-passcode` with every device, to a release
/// `bulk-passcode` whose AWS calls go through the counting proxy.
async fn submit_batch(
    bin_dir: &Path,
    stack: &Stack,
    proxy: &CountingProxy,
    env: &[(String, String)],
    queue_url: &str,
    ids: &[String],
) -> anyhow::Result<EntryReport> {
    let mut env = env.to_vec();
    env.push(("BULK_RESET_QUEUE_URL".into(), queue_url.to_owned()));
    env.push(("BULK_MAX_DEVICES".into(), ids.len().max(1).to_string()));
    let name = passcode_core::action::BULK_FUNCTION;
    let spec = FunctionSpec {
        name: name.into(),
        env,
    };
    let bulk = FunctionProcess::spawn_at(&bin_dir.join(name), spec).await?;
    let init = bulk.ready().await?;
    let control = stack.sim.control();
    control.clear_requests().await?;
    let before = proxy.counts();
    let cpu_before = bulk.cpu_time().unwrap_or_default();
    let devices: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    let body = json!({"devices": devices, "reason": "benchmark", "ticket": "BENCH-BULK",
                      "expectedCount": ids.len()});
    let event = events::api_v2(
        "POST",
        "/v1/bulk/reset-passcode",
        Some(("action", "reset-passcode")),
        Some(&body),
        &Caller::iam("arn:aws:iam::123456789012:user/bench"),
    );
    let started = Instant::now();
    // API Gateway's integration timeout.
    let invocation = bulk.invoke(event, Duration::from_secs(29)).await;
    let duration = started.elapsed();
    let reply = invocation.response()?.clone();
    let status = reply["statusCode"].as_u64().unwrap_or(0) as u16;
    if status != 202 {
        bail!("the bulk request answered {status}: {}", reply["body"]);
    }
    let aws = proxy.counts().since(&before);
    let graph_reads = control
        .try_requests()
        .await?
        .iter()
        .filter(|r| r.method == "GET" && r.device_id.is_some())
        .count() as u64;
    let cpu = bulk
        .cpu_time()
        .unwrap_or_default()
        .saturating_sub(cpu_before);
    bulk.kill().await;
    Ok(EntryReport {
        status,
        duration_ms: duration.as_millis() as u64,
        graph_reads,
        sqs_calls: aws.service("AmazonSQS."),
        dynamodb_calls: aws.service("DynamoDB_"),
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        init_ms: init.as_secs_f64() * 1000.0,
    })
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
    let entry = submit_batch(bin_dir, &stack, &proxy, &env, &queue_url, &ids).await?;

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
        entry,
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
            "\nbulk request: {} devices in one POST to bulk-passcode: {} in {:.1} s; Graph reads {}, SQS calls {}, DynamoDB {}; CPU {:.0} ms; init {:.1} ms\n  \
             then through the SQS mapping (2 environments), budget {} per 20 s\n  \
             POSTs {} ({} answered 429 by Graph{}); sending {:.1} s vs minimum {:.1} s; rate {:.0} % of the budget{}\n  \
             DynamoDB {} ({:.2} per device); CPU {:.0} ms ({:.0} µs per device); dead letters {}\n",
            self.devices,
            self.entry.status,
            self.entry.duration_ms as f64 / 1000.0,
            self.entry.graph_reads,
            self.entry.sqs_calls,
            self.entry.dynamodb_calls,
            self.entry.cpu_ms,
            self.entry.init_ms,
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
