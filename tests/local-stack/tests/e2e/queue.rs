//! Queued requests: messages on an SQS queue, delivered in AWS's event
//! shape by the event source mapping stand-in to real `reset-passcode`
//! processes, each message through the single-request path. What goes in
//! must come out exactly once: one outcome per message, at most one POST
//! per device, transient failures delivered again, nothing left behind.

use super::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use graph_sim::FaultRule;
use local_stack::{FunctionProcess, FunctionSpec, InvokeOutcome, SqsMapping, SqsMappingOptions};
use passcode_core::Action;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Long enough for a batch of ten writes in a debug build.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(12);
/// Longer than the function timeout, as AWS advises (the template uses 6x):
/// a message that comes back finds the idempotency claim of an invocation
/// that died already expired, instead of racing it into `requestInProgress`.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(18);
const DRAINED: Duration = Duration::from_secs(90);

/// Lambda's execution environments for one function: a slot per allowed
/// concurrent invocation, refilled with a fresh process when one died.
struct Environments {
    spec: FunctionSpec,
    slots: Vec<tokio::sync::Mutex<Option<Arc<FunctionProcess>>>>,
    /// Every process started, so a test can kill one mid-invocation.
    pids: std::sync::Mutex<Vec<u32>>,
}

impl Environments {
    async fn invoke(&self, event: Value, timeout: Duration) -> InvokeOutcome {
        let mut slot = match self.slots.iter().find_map(|s| s.try_lock().ok()) {
            Some(slot) => slot,
            None => self.slots[0].lock().await,
        };
        let process = match slot.as_ref().filter(|p| !p.has_exited()) {
            Some(process) => process.clone(),
            None => {
                let fresh = Arc::new(
                    FunctionProcess::spawn(self.spec.clone())
                        .await
                        .expect("environment starts"),
                );
                self.pids.lock().unwrap().push(fresh.pid());
                *slot = Some(fresh.clone());
                fresh
            }
        };
        process.invoke(event, timeout).await.outcome
    }

    /// Kills every environment at once, as a crash or a host failure would.
    fn kill_all(&self) {
        for pid in self.pids.lock().unwrap().iter() {
            // SAFETY: kill(2) on a child process id; no memory is involved.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
    }

    fn logs(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter_map(|s| s.try_lock().ok().and_then(|p| p.clone()))
            .flat_map(|p| p.logs())
            .collect()
    }
}

/// A bulk queue in moto, consumed by `reset-passcode` environments through
/// the event source mapping stand-in (also used by the bulk tests).
pub(super) struct Queued {
    pub(super) world: World,
    pub(super) queue_url: String,
    dlq_url: String,
    environments: Arc<Environments>,
}

impl Queued {
    pub(super) async fn start(extra_env: &[(&str, &str)]) -> Queued {
        Queued::start_in(World::start_idempotent().await, extra_env).await
    }

    /// [`Queued::start`] in a world of the caller's (e.g. with tracking).
    pub(super) async fn start_in(world: World, extra_env: &[(&str, &str)]) -> Queued {
        let name = format!(
            "bulk-reset-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let (queue_url, dlq_url) = world
            .stack
            .moto
            .create_queue_with_dlq(&name, VISIBILITY_TIMEOUT.as_secs() as u32, 5)
            .await
            .expect("queue created");
        let mut env = world.stack.function_env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let environments = Arc::new(Environments {
            spec: FunctionSpec {
                name: Action::ResetPasscode.function_name().into(),
                env,
            },
            slots: (0..2).map(|_| tokio::sync::Mutex::new(None)).collect(),
            pids: Default::default(),
        });
        Queued {
            world,
            queue_url,
            dlq_url,
            environments,
        }
    }

    /// `count` Android dedicated devices of their own (`prefix`: eight hex digits).
    pub(super) async fn kiosks(&self, count: usize, prefix: &str) -> Vec<String> {
        self.world
            .stack
            .add_device_clones(dev::AE_DEDICATED, count, prefix)
            .await
            .expect("devices added")
    }

    /// One plain reset message per device.
    async fn send_resets(&self, device_ids: &[String]) {
        let bodies: Vec<Value> = device_ids.iter().map(|id| reset(id, json!({}))).collect();
        self.send(&bodies).await;
    }

    async fn send(&self, bodies: &[Value]) {
        for (chunk_no, chunk) in bodies.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    let text = match body {
                        Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    };
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("{chunk_no}-{i}"))
                        .message_body(text)
                        .build()
                        .unwrap()
                })
                .collect();
            self.world
                .stack
                .moto
                .sqs()
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("messages sent");
        }
    }

    /// Runs the mapping until the queue is empty; returns it for its stats.
    pub(super) async fn deliver_all(&self) -> SqsMapping {
        let environments = self.environments.clone();
        let invoke = move |event: Value, timeout: Duration| {
            let environments = environments.clone();
            async move { environments.invoke(event, timeout).await }
        };
        let options = SqsMappingOptions {
            batch_size: 5,
            maximum_concurrency: 2,
            function_timeout: FUNCTION_TIMEOUT,
            ..SqsMappingOptions::default()
        };
        let mapping = SqsMapping::start_with(
            self.world.stack.moto.endpoint(),
            &self.queue_url,
            invoke,
            options,
        )
        .await
        .expect("mapping starts");
        mapping
            .wait_until_drained(DRAINED)
            .await
            .expect("queue drained");
        mapping.stop().await;
        mapping
    }

    /// The audit lines of the queued requests, by device id.
    pub(super) fn audits(&self) -> Vec<Value> {
        self.environments
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "audit" && v["source"] == "sqs")
            .collect()
    }

    pub(super) async fn dead_letters(&self) -> usize {
        let out = self
            .world
            .stack
            .moto
            .sqs()
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        out.messages.unwrap_or_default().len()
    }
}

fn reset(device_id: &str, extra: Value) -> Value {
    let mut body = json!({"action": "resetPasscode", "device": {"id": device_id},
                          "reason": "lost shipment", "ticket": "INC-BULK", "requestedBy": "incident-7"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

#[tokio::test]
async fn every_message_ends_in_one_outcome_and_no_device_gets_two_posts() {
    let q = Queued::start(&[]).await;
    let kiosks = q.kiosks(6, "99999999").await;
    let mut bodies: Vec<Value> = kiosks.iter().map(|id| reset(id, json!({}))).collect();
    // A second message for the first kiosk (another sender), the same
    // keyed request twice, a device that can't take it, and garbage.
    bodies.push(reset(&kiosks[0], json!({})));
    bodies.push(reset(&kiosks[1], json!({"idempotencyKey": "k-1"})));
    bodies.push(reset(&kiosks[1], json!({"idempotencyKey": "k-1"})));
    bodies.push(reset(dev::WINDOWS_DESKTOP, json!({})));
    bodies.push(json!("not json"));
    q.send(&bodies).await;

    let mapping = q.deliver_all().await;
    let stats = mapping.stats();
    assert_eq!(
        stats.messages_deleted,
        bodies.len() as u64,
        "{stats:?} {:?}",
        mapping.notes()
    );
    assert_eq!(q.dead_letters().await, 0);

    for id in &kiosks {
        assert_eq!(q.world.posts(id).await, 1, "one POST for {id}");
    }
    assert_eq!(q.world.posts(dev::WINDOWS_DESKTOP).await, 0);
    let audits = q.audits();
    assert_eq!(
        audits.len(),
        bodies.len(),
        "one audit line per message: {audits:#?}"
    );
    let count = |outcome: &str| audits.iter().filter(|a| a["outcome"] == outcome).count();
    // Six accepted (one per kiosk); the second message for kiosk 0 and the
    // first keyed one for kiosk 1 find an action pending, the keyed repeat
    // is answered with the keyed request's first answer.
    assert_eq!(count("accepted"), 6, "{audits:#?}");
    assert_eq!(count("alreadyPending"), 2, "{audits:#?}");
    assert_eq!(count("replayed"), 1, "{audits:#?}");
    assert_eq!(count("rejected"), 2, "{audits:#?}");
    assert!(audits.iter().all(|a| a["caller"]["kind"] == "sqs"));
    let accepted = audits.iter().find(|a| a["outcome"] == "accepted").unwrap();
    assert_eq!(accepted["caller"]["requestedBy"], "incident-7");
    assert_eq!(accepted["ticket"], "INC-BULK");
}

#[tokio::test]
async fn throttling_and_a_dying_environment_deliver_again_without_a_second_post() {
    let q = Queued::start(&[]).await;
    let kiosks = q.kiosks(4, "99999998").await;
    // The first POST hangs and the environment is killed mid-batch, with
    // the POST's outcome unknown. Graph throttles some reads too.
    q.world
        .fault_on_reset_post(FaultRule::delay_ms(20_000).times(1))
        .await;
    q.world
        .add_fault(FaultRule::status_retry_after(429, 1).method("GET").times(3))
        .await;
    q.send_resets(&kiosks).await;

    let (mapping, ()) = tokio::join!(q.deliver_all(), async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        q.environments.kill_all();
    });
    let stats = mapping.stats();
    assert!(
        stats.batches_failed_whole >= 1,
        "{stats:?} {:?}",
        mapping.notes()
    );
    assert_eq!(q.dead_letters().await, 0);
    for id in &kiosks {
        let entries = q.world.sim().action_count(id, "resetPasscode").await;
        assert_eq!(entries, 1, "exactly one reset on {id}");
    }
}

#[tokio::test]
async fn the_stop_switch_consumes_queued_writes_without_sending() {
    let q = Queued::start(&[("BULK_STOP_CHECK_SECONDS", "1")]).await;
    q.world
        .put_idempotency_item(&[
            ("id", AttributeValue::S("bulk#stop".into())),
            ("stopped", AttributeValue::Bool(true)),
        ])
        .await;
    let kiosks = q.kiosks(3, "99999997").await;
    q.send_resets(&kiosks).await;
    q.deliver_all().await;
    assert_eq!(q.world.total_posts().await, 0, "nothing sent while stopped");
    let stopped = q.audits();
    assert_eq!(stopped.len(), 3);
    assert!(
        stopped.iter().all(|a| a["errorCode"] == "bulkStopped"),
        "{stopped:#?}"
    );
    // The audit still names the device and the ticket of what was not sent.
    assert!(
        stopped
            .iter()
            .all(|a| a["ticket"] == "INC-BULK" && a["deviceRef"].is_string()),
        "{stopped:#?}"
    );

    // Released: the same devices, sent again, go out.
    let table = q.world.stack.idempotency_table.clone().unwrap();
    q.world
        .stack
        .moto
        .dynamodb()
        .delete_item()
        .table_name(&table)
        .key("id", AttributeValue::S("bulk#stop".into()))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    q.send_resets(&kiosks).await;
    q.deliver_all().await;
    for id in &kiosks {
        assert_eq!(q.world.posts(id).await, 1);
    }
}
