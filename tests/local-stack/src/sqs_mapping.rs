//! A stand-in for Lambda's SQS event source mapping: pollers that receive
//! batches from a moto queue, invoke the function with AWS's SQS event, and
//! delete what succeeded, honouring partial batch responses
//! (`FunctionResponseTypes: [ReportBatchItemFailures]`).
//!
//! What is left to SQS (moto) stays there: a message that is not deleted
//! comes back after the queue's visibility timeout, and the queue's
//! RedrivePolicy moves it to the dead-letter queue once it has been received
//! `maxReceiveCount` times (moto does the move on a later receive).
//!
//! Not modelled: Lambda's back-off (fewer pollers) after function errors,
//! throttling, the 6 MB payload limit, FIFO ordering.

mod event;
mod poller;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::moto::Moto;
use crate::runtime::{FunctionProcess, InvokeOutcome};
use poller::{Shared, poll};

/// The mapping's settings, named as in `AWS::Lambda::EventSourceMapping`.
#[derive(Clone, Debug)]
pub struct SqsMappingOptions {
    /// `BatchSize`: at most this many messages per invocation (1..=10000;
    /// above 10 needs a batching window, as in AWS).
    pub batch_size: usize,
    /// `ScalingConfig.MaximumConcurrency` (2..=1000): invocations at once,
    /// each in its own execution environment (function process).
    pub maximum_concurrency: usize,
    /// The function's timeout, passed to each invoke. AWS refuses a mapping
    /// whose queue's visibility timeout is shorter, and so does `start`.
    pub function_timeout: Duration,
    /// `MaximumBatchingWindowInSeconds`: keep receiving until the batch is
    /// full or this long has passed. `None`: invoke with what one receive got.
    pub batching_window: Option<Duration>,
    /// Pause after a receive that found nothing (stands in for long polling).
    pub idle_poll_interval: Duration,
}

impl Default for SqsMappingOptions {
    fn default() -> Self {
        SqsMappingOptions {
            batch_size: 10,
            maximum_concurrency: 2,
            // Lambda's default function timeout.
            function_timeout: Duration::from_secs(3),
            batching_window: None,
            idle_poll_interval: Duration::from_millis(100),
        }
    }
}

/// Counters since `start`. A redelivered message counts again each time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SqsMappingStats {
    pub invocations: u64,
    /// Messages handed to the function, summed over invocations.
    pub messages_delivered: u64,
    /// Messages deleted after a successful (or partly successful) batch.
    pub messages_deleted: u64,
    /// Messages named in a valid `batchItemFailures` list.
    pub messages_reported_failed: u64,
    /// Batches of which nothing was deleted: invocation error, timeout,
    /// crash, or a response AWS would reject.
    pub batches_failed_whole: u64,
    /// Most invocations running at the same moment.
    pub peak_concurrency: u64,
}

type BoxedInvoke = Arc<
    dyn Fn(Value, Duration) -> Pin<Box<dyn Future<Output = InvokeOutcome> + Send>> + Send + Sync,
>;

/// A running mapping; dropping it stops polling (an invocation under way is abandoned).
pub struct SqsMapping {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl SqsMapping {
    /// Polls `queue_url` on the moto server at `moto_endpoint` with
    /// `options.maximum_concurrency` pollers, each invoking its own process
    /// from `processes` (at least that many). A process that timed out or
    /// crashed is not replaced, so every later batch of its poller fails:
    /// use [`SqsMapping::start_with`] to respawn environments.
    pub async fn start(
        moto_endpoint: &str,
        queue_url: &str,
        processes: Vec<Arc<FunctionProcess>>,
        options: SqsMappingOptions,
    ) -> anyhow::Result<SqsMapping> {
        anyhow::ensure!(
            processes.len() >= options.maximum_concurrency,
            "{} function processes for a maximum concurrency of {}",
            processes.len(),
            options.maximum_concurrency
        );
        let invokers = processes
            .into_iter()
            .take(options.maximum_concurrency)
            .map(|process| {
                let invoke: BoxedInvoke = Arc::new(move |event, timeout| {
                    let process = process.clone();
                    Box::pin(async move { process.invoke(event, timeout).await.outcome })
                });
                invoke
            })
            .collect();
        SqsMapping::launch(moto_endpoint, queue_url, invokers, options).await
    }

    /// Like [`SqsMapping::start`], with `invoke(event, timeout)` called by
    /// every poller (up to `maximum_concurrency` calls at once).
    pub async fn start_with<F, Fut>(
        moto_endpoint: &str,
        queue_url: &str,
        invoke: F,
        options: SqsMappingOptions,
    ) -> anyhow::Result<SqsMapping>
    where
        F: Fn(Value, Duration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = InvokeOutcome> + Send + 'static,
    {
        let invoke: BoxedInvoke = Arc::new(move |event, timeout| Box::pin(invoke(event, timeout)));
        let invokers = vec![invoke; options.maximum_concurrency];
        SqsMapping::launch(moto_endpoint, queue_url, invokers, options).await
    }

    async fn launch(
        moto_endpoint: &str,
        queue_url: &str,
        invokers: Vec<BoxedInvoke>,
        options: SqsMappingOptions,
    ) -> anyhow::Result<SqsMapping> {
        validate(&options)?;
        let sqs = Moto::sqs_client_at(moto_endpoint);
        let attributes = queue_attributes(
            &sqs,
            queue_url,
            &[
                QueueAttributeName::QueueArn,
                QueueAttributeName::VisibilityTimeout,
            ],
        )
        .await?;
        let queue_arn = attributes
            .first()
            .cloned()
            .flatten()
            .context("no queue ARN")?;
        let visibility: u64 = attributes[1].as_deref().unwrap_or("30").parse()?;
        // CreateEventSourceMapping fails the same way: the batch would come
        // back while the function still works on it.
        anyhow::ensure!(
            Duration::from_secs(visibility) >= options.function_timeout,
            "queue visibility timeout {visibility} s is less than the function timeout {:?}",
            options.function_timeout
        );
        let shared = Arc::new(Shared {
            sqs,
            queue_url: queue_url.to_owned(),
            queue_arn,
            options,
            stopping: watch::Sender::new(false),
            busy: AtomicUsize::new(0),
            running: AtomicU64::new(0),
            invocations: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            reported_failed: AtomicU64::new(0),
            failed_whole: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            notes: Mutex::new(Vec::new()),
        });
        let workers = invokers
            .into_iter()
            .map(|invoke| tokio::spawn(poll(shared.clone(), invoke)))
            .collect();
        Ok(SqsMapping {
            shared,
            workers: Mutex::new(workers),
        })
    }

    pub fn stats(&self) -> SqsMappingStats {
        let s = &self.shared;
        let get = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        SqsMappingStats {
            invocations: get(&s.invocations),
            messages_delivered: get(&s.delivered),
            messages_deleted: get(&s.deleted),
            messages_reported_failed: get(&s.reported_failed),
            batches_failed_whole: get(&s.failed_whole),
            peak_concurrency: get(&s.peak),
        }
    }

    /// Why recent batches failed whole, and SQS calls that failed (latest last).
    pub fn notes(&self) -> Vec<String> {
        self.shared.notes.lock().unwrap().clone()
    }

    /// Stops polling and waits for the invocations under way to finish and
    /// be settled, as disabling a mapping does. Safe to call twice.
    pub async fn stop(&self) {
        self.shared.stopping.send_replace(true);
        let workers = std::mem::take(&mut *self.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.await;
        }
    }

    /// Waits until the queue has no visible, in-flight or delayed message
    /// and no batch is being received, invoked or settled.
    pub async fn wait_until_drained(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            // Counts first: a batch taken after they were read keeps `busy` up.
            let counts = queue_attributes(
                &self.shared.sqs,
                &self.shared.queue_url,
                &[
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    QueueAttributeName::ApproximateNumberOfMessagesDelayed,
                ],
            )
            .await?;
            let empty = counts.iter().all(|c| c.as_deref().unwrap_or("0") == "0");
            if empty && self.shared.busy.load(Ordering::SeqCst) == 0 {
                return Ok(());
            }
            if started.elapsed() > timeout {
                anyhow::bail!(
                    "queue not drained after {timeout:?}: visible/in flight/delayed {counts:?}, \
                     {} pollers busy, {:?}; notes: {:#?}",
                    self.shared.busy.load(Ordering::SeqCst),
                    self.stats(),
                    self.notes()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SqsMapping {
    fn drop(&mut self) {
        self.shared.stopping.send_replace(true);
        for worker in self.workers.lock().unwrap().iter() {
            worker.abort();
        }
    }
}

/// The limits `CreateEventSourceMapping` enforces for a standard queue.
fn validate(options: &SqsMappingOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=10_000).contains(&options.batch_size),
        "batch size {} not in 1..=10000",
        options.batch_size
    );
    anyhow::ensure!(
        options.batch_size <= 10 || options.batching_window.is_some_and(|w| !w.is_zero()),
        "a batch size above 10 needs a batching window of at least 1 s"
    );
    anyhow::ensure!(
        options
            .batching_window
            .is_none_or(|w| w <= Duration::from_secs(300)),
        "batching window above 300 s"
    );
    anyhow::ensure!(
        (2..=1000).contains(&options.maximum_concurrency),
        "maximum concurrency {} not in 2..=1000",
        options.maximum_concurrency
    );
    Ok(())
}

/// The queue's attributes `names`, in that order.
async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    names: &[QueueAttributeName],
) -> anyhow::Result<Vec<Option<String>>> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .with_context(|| format!("GetQueueAttributes {queue_url}"))?;
    let attributes = out.attributes.unwrap_or_default();
    Ok(names.iter().map(|n| attributes.get(n).cloned()).collect())
}

/// The queue's ARN (for a RedrivePolicy or an event's `eventSourceARN`).
pub(crate) async fn queue_arn(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> anyhow::Result<String> {
    queue_attributes(sqs, queue_url, &[QueueAttributeName::QueueArn])
        .await?
        .pop()
        .flatten()
        .context("no queue ARN")
}
