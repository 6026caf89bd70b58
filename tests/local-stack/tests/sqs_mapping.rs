//! The SQS event source mapping stand-in against moto's SQS and the echo
//! function: deletes, partial batch responses, whole-batch failures,
//! concurrency and the dead-letter queue.
//!
//! What the function saw is read from its own log (`sqs-record ...` lines),
//! not from the mapping's counters, so the two check each other.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use local_stack::{
    FunctionProcess, FunctionSpec, InvokeOutcome, Moto, SqsMapping, SqsMappingOptions,
};
use serde_json::{Value, json};

const ECHO: &str = env!("CARGO_BIN_EXE_echo-function");
const DRAINED: Duration = Duration::from_secs(30);

async fn echoes(n: usize) -> Vec<Arc<FunctionProcess>> {
    let mut processes = Vec::new();
    for _ in 0..n {
        let process =
            FunctionProcess::spawn_at(Path::new(ECHO), FunctionSpec::new("bulk-consumer"))
                .await
                .expect("spawn echo-function");
        processes.push(Arc::new(process));
    }
    processes
}

/// `n` echo processes behind a mapping of `queue_url`, run until the queue
/// is drained; the mapping is left running.
async fn drained_by_echoes(
    moto: &Moto,
    queue_url: &str,
    n: usize,
    options: SqsMappingOptions,
) -> (SqsMapping, Vec<Arc<FunctionProcess>>) {
    let processes = echoes(n).await;
    let mapping = SqsMapping::start(moto.endpoint(), queue_url, processes.clone(), options)
        .await
        .unwrap();
    mapping.wait_until_drained(DRAINED).await.unwrap();
    (mapping, processes)
}

async fn queue(moto: &Moto, name: &str, visibility_secs: u32) -> String {
    let (url, _dlq) = moto
        .create_queue_with_dlq(name, visibility_secs, 100)
        .await
        .unwrap();
    url
}

/// Sends `bodies` in one SendMessageBatch per ten, so a poller finds them together.
async fn send(moto: &Moto, queue_url: &str, bodies: &[Value]) {
    for (chunk_no, chunk) in bodies.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("{chunk_no}-{i}"))
                    .message_body(body.to_string())
                    .build()
                    .unwrap()
            })
            .collect();
        let out = moto
            .sqs()
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(out.failed.is_empty(), "{:?}", out.failed);
    }
}

fn options(function_timeout_secs: u64) -> SqsMappingOptions {
    SqsMappingOptions {
        function_timeout: Duration::from_secs(function_timeout_secs),
        ..SqsMappingOptions::default()
    }
}

/// `(n, receive count, item failed)` for every message the processes handled.
fn deliveries(processes: &[Arc<FunctionProcess>]) -> Vec<(u64, u64, bool)> {
    let mut seen = Vec::new();
    for line in processes.iter().flat_map(|p| p.logs()) {
        let Some(rest) = line.strip_prefix("sqs-record ") else {
            continue;
        };
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} in {line}"))
        };
        seen.push((
            field("n="),
            field("receiveCount="),
            rest.ends_with("item-failure"),
        ));
    }
    seen.sort();
    seen
}

/// The mapping's message counters: `(delivered, deleted, reported failed,
/// batches failed whole)`.
fn message_counts(mapping: &SqsMapping) -> (u64, u64, u64, u64) {
    let stats = mapping.stats();
    (
        stats.messages_delivered,
        stats.messages_deleted,
        stats.messages_reported_failed,
        stats.batches_failed_whole,
    )
}

async fn messages_in(moto: &Moto, queue_url: &str) -> Vec<Value> {
    moto.drain_events(queue_url).await.unwrap()
}

#[tokio::test]
async fn all_success_deletes_every_message_in_batches_of_at_most_ten() {
    let moto = Moto::start().await.unwrap();
    let url = queue(&moto, "all-ok", 5).await;
    let bodies: Vec<Value> = (0..25).map(|n| json!({ "n": n })).collect();
    send(&moto, &url, &bodies).await;

    let (mapping, processes) = drained_by_echoes(&moto, &url, 2, options(3)).await;
    mapping.stop().await;

    let expected: Vec<_> = (0..25).map(|n| (n, 1, false)).collect();
    assert_eq!(deliveries(&processes), expected);
    // (delivered, deleted, reported failed, batches failed whole)
    assert_eq!(message_counts(&mapping), (25, 25, 0, 0));
    let stats = mapping.stats();
    assert!(stats.invocations >= 3, "{stats:?}");
    let sizes = processes.iter().flat_map(|p| p.logs()).filter_map(|l| {
        l.strip_prefix("sqs-batch start ")
            .and_then(|r| r.split("size=").nth(1)?.parse::<usize>().ok())
    });
    assert!(sizes.into_iter().all(|size| (1..=10).contains(&size)));
    assert!(mapping.notes().is_empty(), "{:?}", mapping.notes());
}

#[tokio::test]
async fn events_from_moto_have_the_aws_shape() {
    let moto = Moto::start().await.unwrap();
    let url = queue(&moto, "shape", 5).await;
    moto.sqs()
        .send_message()
        .queue_url(&url)
        .message_body(r#"{"n":1}"#)
        .message_attributes(
            "ticket",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("INC-42")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let mapping = SqsMapping::start_with(
        moto.endpoint(),
        &url,
        move |event: Value, _timeout| {
            record.lock().unwrap().push(event);
            async { InvokeOutcome::Response(json!({"batchItemFailures": []})) }
        },
        options(3),
    )
    .await
    .unwrap();
    mapping.wait_until_drained(DRAINED).await.unwrap();

    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    let record = &events[0]["Records"][0];
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(
            local_stack::workspace_root().join("tests/fixtures/aws-events/example-sqs-event.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let sample_record = &sample["Records"][0];
    assert_eq!(keys(record), keys(sample_record));
    assert_eq!(
        keys(&record["attributes"]),
        keys(&sample_record["attributes"])
    );
    assert_eq!(
        keys(&record["messageAttributes"]["ticket"]),
        keys(&sample_record["messageAttributes"]["Attribute1"])
    );
    assert_eq!(
        record["messageAttributes"]["ticket"]["stringValue"],
        "INC-42"
    );
    assert_eq!(record["body"], r#"{"n":1}"#);
    assert_eq!(record["eventSource"], "aws:sqs");
    assert_eq!(
        record["eventSourceARN"],
        "arn:aws:sqs:us-east-1:123456789012:shape"
    );
    assert_eq!(record["awsRegion"], "us-east-1");
    assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
}

#[tokio::test]
async fn partial_failures_redeliver_exactly_the_failed_messages() {
    let moto = Moto::start().await.unwrap();
    let url = queue(&moto, "partial", 1).await;
    // Messages 0, 3, 6 and 9 fail on their first delivery only.
    let bodies: Vec<Value> = (0..10)
        .map(|n| {
            if n % 3 == 0 {
                json!({"n": n, "failItemTimes": 1})
            } else {
                json!({ "n": n })
            }
        })
        .collect();
    send(&moto, &url, &bodies).await;

    let (mapping, processes) = drained_by_echoes(&moto, &url, 2, options(1)).await;

    let mut expected: Vec<_> = (0..10).map(|n| (n, 1, n % 3 == 0)).collect();
    expected.extend([0, 3, 6, 9].map(|n| (n, 2, false)));
    expected.sort();
    assert_eq!(deliveries(&processes), expected);
    // (delivered, deleted, reported failed, batches failed whole)
    assert_eq!(message_counts(&mapping), (14, 10, 4, 0));
}

#[tokio::test]
async fn an_invocation_error_redelivers_the_whole_batch() {
    let moto = Moto::start().await.unwrap();
    let url = queue(&moto, "whole", 1).await;
    let mut bodies: Vec<Value> = (0..5).map(|n| json!({ "n": n })).collect();
    bodies[2]["failBatchTimes"] = json!(1);
    send(&moto, &url, &bodies).await;

    let (mapping, processes) = drained_by_echoes(&moto, &url, 2, options(1)).await;

    // Every message, the four good ones too, came back once.
    let mut expected: Vec<_> = (0..5)
        .flat_map(|n| [(n, 1, false), (n, 2, false)])
        .collect();
    expected.sort();
    assert_eq!(deliveries(&processes), expected);
    let stats = mapping.stats();
    assert_eq!(stats.batches_failed_whole, 1);
    assert_eq!(stats.messages_delivered, 10);
    assert_eq!(stats.messages_deleted, 5);
    assert!(
        mapping.notes()[0].contains("EchoBatchError"),
        "{:?}",
        mapping.notes()
    );
}

#[tokio::test]
async fn a_crashed_environment_is_replaced_and_its_batch_comes_back() {
    let moto = Moto::start().await.unwrap();
    let url = queue(&moto, "crash", 1).await;
    send(
        &moto,
        &url,
        &[json!({"n": 0, "exitTimes": 1}), json!({"n": 1})],
    )
    .await;

    // The closure form lets a test respawn an environment, as Lambda would.
    let current: Arc<tokio::sync::Mutex<Vec<Arc<FunctionProcess>>>> = Arc::default();
    let environments = current.clone();
    let invoke = move |event: Value, timeout: Duration| {
        let environments = environments.clone();
        async move {
            let process = {
                let mut all = environments.lock().await;
                match all.last() {
                    Some(p) if !p.has_exited() => p.clone(),
                    _ => {
                        let fresh = echoes(1).await.remove(0);
                        all.push(fresh.clone());
                        fresh
                    }
                }
            };
            process.invoke(event, timeout).await.outcome
        }
    };
    let mapping = SqsMapping::start_with(moto.endpoint(), &url, invoke, options(1))
        .await
        .unwrap();
    mapping.wait_until_drained(DRAINED).await.unwrap();

    let stats = mapping.stats();
    assert_eq!(stats.batches_failed_whole, 1, "{:?}", mapping.notes());
    assert!(
        mapping.notes()[0].contains("Crashed"),
        "{:?}",
        mapping.notes()
    );
    assert_eq!(stats.messages_deleted, 2);
    let all = current.lock().await.clone();
    assert_eq!(all.len(), 2, "one environment died, one replaced it");
    let second = deliveries(&all[1..]);
    assert_eq!(second, vec![(0, 2, false), (1, 2, false)]);
}

#[tokio::test]
async fn maximum_concurrency_is_honoured() {
    let moto = Moto::start().await.unwrap();
    let url = queue(&moto, "concurrency", 10).await;
    let bodies: Vec<Value> = (0..12).map(|n| json!({"n": n, "sleepMs": 300})).collect();
    send(&moto, &url, &bodies).await;

    // One more process than allowed: it must stay idle.
    let (mapping, processes) = drained_by_echoes(
        &moto,
        &url,
        4,
        SqsMappingOptions {
            batch_size: 1,
            maximum_concurrency: 3,
            ..options(5)
        },
    )
    .await;

    // Overlap of the functions' own start/end stamps.
    let mut edges = Vec::new();
    for line in processes.iter().flat_map(|p| p.logs()) {
        let mut words = line.split_whitespace();
        if words.next() != Some("sqs-batch") {
            continue;
        }
        let kind = words.next().unwrap();
        let ms: u128 = words.next().unwrap().parse().unwrap();
        // At equal stamps count the end first: touching is not overlapping.
        edges.push((ms, if kind == "start" { 1 } else { -1 }));
    }
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    assert_eq!(most, 3, "three environments worked at once, never more");
    assert_eq!(mapping.stats().peak_concurrency, 3);
    assert_eq!(mapping.stats().invocations, 12);
    assert!(
        deliveries(&processes[3..]).is_empty(),
        "the fourth process was used"
    );
}

#[tokio::test]
async fn a_message_failing_max_receive_count_times_ends_in_the_dlq() {
    let moto = Moto::start().await.unwrap();
    let (url, dlq) = moto.create_queue_with_dlq("redrive", 1, 2).await.unwrap();
    send(
        &moto,
        &url,
        &[json!({"n": 0, "failItemTimes": 100}), json!({"n": 1})],
    )
    .await;

    let (mapping, processes) = drained_by_echoes(&moto, &url, 2, options(1)).await;

    assert_eq!(
        deliveries(&processes),
        vec![(0, 1, true), (0, 2, true), (1, 1, false)]
    );
    assert_eq!(
        messages_in(&moto, &dlq).await,
        vec![json!({"n": 0, "failItemTimes": 100})]
    );
    assert_eq!(mapping.stats().messages_reported_failed, 2);
}

#[tokio::test]
async fn a_malformed_batch_response_fails_the_whole_batch() {
    let moto = Moto::start().await.unwrap();
    // One receive before the DLQ: both messages are only ever seen together.
    let (url, dlq) = moto.create_queue_with_dlq("malformed", 1, 1).await.unwrap();
    // AWS: an empty itemIdentifier makes the whole batch a failure, so the
    // good message is not deleted either and both end in the DLQ.
    let bad = json!({"n": 0, "respond": {"batchItemFailures": [{"itemIdentifier": ""}]}});
    send(&moto, &url, &[bad.clone(), json!({"n": 1})]).await;

    let (mapping, _processes) = drained_by_echoes(&moto, &url, 2, options(1)).await;

    let mut in_dlq = messages_in(&moto, &dlq).await;
    in_dlq.sort_by_key(|m| m["n"].as_u64());
    assert_eq!(in_dlq, vec![bad, json!({"n": 1})]);
    let stats = mapping.stats();
    assert_eq!(stats.messages_deleted, 0);
    assert_eq!(stats.batches_failed_whole, 1, "{stats:?}");
    assert_eq!(stats.messages_delivered, 2);
}

#[tokio::test]
async fn settings_aws_would_refuse_are_refused() {
    let moto = Moto::start().await.unwrap();
    let url = queue(&moto, "settings", 2).await;
    let start = |options: SqsMappingOptions| {
        let url = url.clone();
        let endpoint = moto.endpoint().to_owned();
        async move {
            let invoke = |_: Value, _: Duration| async { InvokeOutcome::Response(Value::Null) };
            SqsMapping::start_with(&endpoint, &url, invoke, options)
                .await
                .map(|_| ())
        }
    };
    let refused = [
        options(3), // the visibility timeout (2 s) is shorter than the function's
        SqsMappingOptions {
            maximum_concurrency: 1,
            ..options(1)
        },
        SqsMappingOptions {
            batch_size: 11,
            ..options(1)
        },
        SqsMappingOptions {
            batch_size: 0,
            ..options(1)
        },
    ];
    for options in refused {
        assert!(start(options.clone()).await.is_err(), "{options:?}");
    }
    let batched = SqsMappingOptions {
        batch_size: 100,
        batching_window: Some(Duration::from_secs(1)),
        ..options(2)
    };
    start(batched).await.unwrap();
    assert!(
        SqsMapping::start(moto.endpoint(), &url, echoes(1).await, options(1))
            .await
            .is_err(),
        "one process for two pollers"
    );
}
