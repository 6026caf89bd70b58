//! One poller of the mapping: receive a batch, invoke the function with it,
//! delete what succeeded.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::event::{self, BatchVerdict};
use super::{BoxedInvoke, SqsMappingOptions};
use crate::runtime::InvokeOutcome;

/// Whole-batch failure reasons and SQS errors kept for diagnostics.
const NOTES_KEPT: usize = 50;

pub(super) struct Shared {
    pub(super) sqs: aws_sdk_sqs::Client,
    pub(super) queue_url: String,
    pub(super) queue_arn: String,
    pub(super) options: SqsMappingOptions,
    pub(super) stopping: watch::Sender<bool>,
    /// Workers between the start of a receive and the end of settling its batch.
    pub(super) busy: AtomicUsize,
    pub(super) running: AtomicU64,
    pub(super) invocations: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) deleted: AtomicU64,
    pub(super) reported_failed: AtomicU64,
    pub(super) failed_whole: AtomicU64,
    pub(super) peak: AtomicU64,
    pub(super) notes: Mutex<Vec<String>>,
}

/// One poller: receive a batch, invoke, settle, until stopped.
pub(super) async fn poll(shared: Arc<Shared>, invoke: BoxedInvoke) {
    let mut stopping = shared.stopping.subscribe();
    while !*stopping.borrow() {
        shared.busy.fetch_add(1, Ordering::SeqCst);
        let batch = shared.receive_batch(&stopping).await;
        let idle = batch.is_empty();
        if !idle {
            shared.deliver(&invoke, batch).await;
        }
        shared.busy.fetch_sub(1, Ordering::SeqCst);
        if idle {
            tokio::select! {
                () = tokio::time::sleep(shared.options.idle_poll_interval) => {}
                _ = stopping.changed() => {}
            }
        }
    }
}

impl Shared {
    /// Short polls (WaitTimeSeconds 0), unlike Lambda's long polls: moto's
    /// server handles one request at a time here, and a long poll would hold
    /// every other request (the functions' own DynamoDB calls too) for its
    /// whole wait. The idle pause in `poll` stands in for the wait.
    async fn receive_batch(&self, stopping: &watch::Receiver<bool>) -> Vec<Message> {
        let window_ends = self.options.batching_window.map(|w| Instant::now() + w);
        let mut batch = Vec::new();
        loop {
            let wanted = (self.options.batch_size - batch.len()).min(10);
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(wanted as i32)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await;
            let got = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(error) => {
                    self.note(format!("ReceiveMessage: {error:?}"));
                    return batch;
                }
            };
            let got_none = got.is_empty();
            batch.extend(got);
            let Some(window_ends) = window_ends else {
                return batch;
            };
            let now = Instant::now();
            if batch.len() >= self.options.batch_size || now >= window_ends || *stopping.borrow() {
                return batch;
            }
            if got_none {
                let pause = self.options.idle_poll_interval.min(window_ends - now);
                tokio::time::sleep(pause).await;
            }
        }
    }

    async fn deliver(&self, invoke: &BoxedInvoke, batch: Vec<Message>) {
        let records: Vec<Value> = batch
            .iter()
            .map(|message| event::record(message, &self.queue_arn))
            .collect();
        let ids: HashSet<String> = batch
            .iter()
            .filter_map(|m| m.message_id().map(str::to_owned))
            .collect();
        self.invocations.fetch_add(1, Ordering::SeqCst);
        self.delivered
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(running, Ordering::SeqCst);
        let outcome = invoke(json!({ "Records": records }), self.options.function_timeout).await;
        self.running.fetch_sub(1, Ordering::SeqCst);

        let verdict = match outcome {
            InvokeOutcome::Response(response) => event::read_response(&response, &ids),
            other => BatchVerdict::WholeBatchFailed(format!("{other:?}")),
        };
        match verdict {
            BatchVerdict::Partial(failed) => {
                self.reported_failed
                    .fetch_add(failed.len() as u64, Ordering::SeqCst);
                let done: Vec<&Message> = batch
                    .iter()
                    .filter(|m| m.message_id().is_none_or(|id| !failed.contains(id)))
                    .collect();
                self.delete(&done).await;
            }
            BatchVerdict::WholeBatchFailed(reason) => {
                self.failed_whole.fetch_add(1, Ordering::SeqCst);
                self.note(format!("batch of {} failed whole: {reason}", batch.len()));
            }
        }
    }

    /// A handle that expired (the batch outlived the visibility timeout)
    /// fails to delete, and the message comes back, as in AWS.
    async fn delete(&self, messages: &[&Message]) {
        for chunk in messages.chunks(10) {
            let entries: Result<Vec<_>, _> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                })
                .collect();
            let sent = match entries {
                Ok(entries) => {
                    self.sqs
                        .delete_message_batch()
                        .queue_url(&self.queue_url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                }
                Err(error) => {
                    self.note(format!("DeleteMessageBatch entry: {error}"));
                    continue;
                }
            };
            match sent {
                Ok(out) => {
                    self.deleted
                        .fetch_add(out.successful.len() as u64, Ordering::SeqCst);
                    for failed in out.failed {
                        self.note(format!("DeleteMessageBatch: {failed:?}"));
                    }
                }
                Err(error) => self.note(format!("DeleteMessageBatch: {error:?}")),
            }
        }
    }

    fn note(&self, note: String) {
        let mut notes = self.notes.lock().unwrap();
        if notes.len() == NOTES_KEPT {
            notes.remove(0);
        }
        notes.push(note);
    }
}
