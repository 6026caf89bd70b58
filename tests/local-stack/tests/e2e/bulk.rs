//! Bulk requests end to end: the real `bulk-passcode` binary plans a batch
//! against the Graph simulator, keeps it in the idempotency table (moto)
//! and queues one message per device on SQS (moto); the event source
//! mapping stand-in hands those to real `reset-passcode` environments, which
//! settle each device in the batch. Every device ends in exactly one
//! recorded outcome, and no device gets two POSTs.

use super::common::*;
use super::queue::Queued;
use aws_sdk_dynamodb::types::AttributeValue;
use graph_sim::FaultRule;
use local_stack::events::{self, Caller};
use local_stack::{FunctionProcess, InvokeOutcome};
use serde_json::{Value, json};

struct Bulk {
    q: Queued,
    bulk: FunctionProcess,
}

impl Bulk {
    /// A bulk queue for resets and the bulk function, with `env` on top of
    /// its defaults.
    async fn start(env: &[(&str, &str)]) -> Bulk {
        Bulk::start_in(World::start_idempotent().await, env).await
    }

    async fn start_in(world: World, env: &[(&str, &str)]) -> Bulk {
        let q = Queued::start_in(world, &[("BULK_STOP_CHECK_SECONDS", "1")]).await;
        let mut bulk_env = vec![
            ("BULK_RESET_QUEUE_URL", q.queue_url.as_str()),
            ("BULK_STOP_CHECK_SECONDS", "1"),
        ];
        bulk_env.extend_from_slice(env);
        let bulk = q
            .world
            .stack
            .spawn_bulk(&bulk_env)
            .await
            .expect("bulk-passcode starts");
        Bulk { q, bulk }
    }

    async fn call(&self, event: Value) -> Reply {
        Reply::from(self.bulk.invoke(event, TIMEOUT).await)
    }

    /// `POST /v1/bulk/reset-passcode` from the helpdesk's IAM role.
    async fn submit(&self, body: Value) -> Reply {
        self.call(submit_event(&body, &Caller::iam(HELPDESK))).await
    }

    /// `GET /v1/bulk/reset-passcode/{batchId}`.
    async fn progress(&self, batch_id: &str) -> Reply {
        let path = format!("/v1/bulk/reset-passcode/{batch_id}");
        let mut event = events::api_v2("GET", &path, None, None, &Caller::iam(HELPDESK));
        let route_key = json!("GET /v1/bulk/{action}/{batchId}");
        event["routeKey"] = route_key.clone();
        event["requestContext"]["routeKey"] = route_key;
        event["pathParameters"] = json!({"action": "reset-passcode", "batchId": batch_id});
        self.call(event).await
    }

    /// Messages waiting in the bulk queue (not yet delivered).
    async fn queued_messages(&self) -> usize {
        let out = self
            .q
            .world
            .stack
            .moto
            .sqs()
            .get_queue_attributes()
            .queue_url(&self.q.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        out.attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    async fn stop_switch(&self, on: bool) {
        let world = &self.q.world;
        if on {
            world
                .put_idempotency_item(&[
                    ("id", AttributeValue::S("bulk#stop".into())),
                    ("stopped", AttributeValue::Bool(true)),
                ])
                .await;
        } else {
            let table = world.stack.idempotency_table.clone().unwrap();
            world
                .stack
                .moto
                .dynamodb()
                .delete_item()
                .table_name(table)
                .key("id", AttributeValue::S("bulk#stop".into()))
                .send()
                .await
                .unwrap();
        }
        // Each environment reads the switch at most once a second here.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }

    fn bulk_audits(&self) -> Vec<Value> {
        self.bulk
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "bulkAudit")
            .collect()
    }
}

fn submit_event(body: &Value, caller: &Caller) -> Value {
    events::api_v2(
        "POST",
        "/v1/bulk/reset-passcode",
        Some(("action", "reset-passcode")),
        Some(body),
        caller,
    )
}

fn ids(devices: &[String]) -> Value {
    json!(
        devices
            .iter()
            .map(|id| json!({"id": id}))
            .collect::<Vec<_>>()
    )
}

/// The devices of an answer whose `result` is `result`.
fn with_result<'a>(reply: &'a Reply, result: &str) -> Vec<&'a Value> {
    reply.body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["result"] == result)
        .collect()
}

#[tokio::test]
async fn a_preview_checks_every_reference_and_sends_nothing() {
    let b = Bulk::start(&[]).await;
    let kiosks = b.q.kiosks(2, "b0000001").await;
    let body = json!({
        "devices": [
            {"id": kiosks[0]}, {"id": kiosks[1]},
            {"serialNumber": "NO-SUCH-SERIAL"},
            {"serialNumber": "DUPSERIAL01"},
            {"id": dev::WINDOWS_DESKTOP},
            {"id": kiosks[0]},
        ],
        "reason": reason(), "ticket": "INC-PREVIEW", "dryRun": true,
    });
    let reply = b.submit(body).await;
    reply.assert_outcome(200, "preview");
    let counts = &reply.body["counts"];
    assert_eq!(
        (
            &counts["references"],
            &counts["toSend"],
            &counts["notFound"],
            &counts["ambiguous"],
            &counts["refused"],
            &counts["duplicate"]
        ),
        (
            &json!(6),
            &json!(2),
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1)
        ),
        "{:#}",
        reply.body
    );
    let refused = with_result(&reply, "refused");
    assert_eq!(refused[0]["code"], "unsupportedPlatform");
    assert!(
        refused[0]["message"].as_str().unwrap().len() > 20,
        "a reason an agent can act on"
    );
    assert_eq!(
        with_result(&reply, "ambiguous")[0]["code"],
        "ambiguousDevice"
    );
    assert!(reply.body["batchId"].is_null());
    assert_eq!(b.q.world.total_posts().await, 0);
    assert_eq!(b.queued_messages().await, 0, "a preview queues nothing");

    // A user's devices: each checked for the action (only Android resets).
    let reply = b
        .submit(
            json!({"userPrincipalName": "morgan@contoso.com", "allDevices": true,
                       "reason": reason(), "dryRun": true}),
        )
        .await;
    reply.assert_status(200);
    let lines = reply.body["devices"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{:#}", reply.body);
    let send = with_result(&reply, "send");
    assert_eq!(send.len(), 1, "{:#}", reply.body);
    assert_eq!(send[0]["deviceId"], dev::MULTI_USER_ANDROID);
}

#[tokio::test]
async fn a_batch_reaches_each_device_once_and_reports_every_outcome() {
    let b = Bulk::start(&[]).await;
    let kiosks = b.q.kiosks(5, "b0000002").await;
    // A single request for the first kiosk, before the batch is consumed.
    let single =
        b.q.world
            .api_path(
                passcode_core::Action::ResetPasscode,
                &kiosks[0],
                json!({"reason": reason()}),
            )
            .await;
    assert_eq!(single.outcome(), "accepted", "{:#}", single.body);

    let mut refs = ids(&kiosks);
    refs.as_array_mut()
        .unwrap()
        .push(json!({"serialNumber": "NO-SUCH-SERIAL"}));
    let body = json!({"devices": refs, "reason": reason(), "ticket": "INC-LOST-BOX",
                      "idempotencyKey": "lost-box-7", "replacePending": false});
    let reply = b.submit(body.clone()).await;
    reply.assert_outcome(202, "queued");
    let batch_id = reply.body["batchId"].as_str().unwrap().to_string();
    // The kiosk of the single request is already pending: not queued.
    assert_eq!(reply.body["counts"]["toSend"], 4, "{:#}", reply.body);
    assert_eq!(reply.body["counts"]["alreadyPending"], 1);

    // The same request again: the same batch, nothing queued twice.
    let again = b.submit(body).await;
    assert_eq!(
        (again.status, again.body["batchId"].as_str()),
        (202, Some(batch_id.as_str()))
    );
    assert_eq!(again.body["replayed"], true);
    assert_eq!(b.queued_messages().await, 4);
    // Another request under the same key is refused.
    let other = b
        .submit(json!({"devices": [{"id": kiosks[1]}], "reason": reason(), "idempotencyKey": "lost-box-7"}))
        .await;
    other.assert_error(422, "idempotencyKeyReused");

    let progress = b.progress(&batch_id).await;
    assert_eq!(progress.body["state"], "inProgress", "{:#}", progress.body);
    assert_eq!(progress.body["counts"]["outcomes"]["queued"], 4);

    b.q.deliver_all().await;
    assert_eq!(b.q.dead_letters().await, 0);
    for id in &kiosks {
        assert_eq!(b.q.world.posts(id).await, 1, "one POST for {id}");
    }
    let progress = b.progress(&batch_id).await;
    progress.assert_status(200);
    assert_eq!(progress.body["state"], "done", "{:#}", progress.body);
    assert_eq!(progress.body["counts"]["outcomes"], json!({"accepted": 4}));
    assert_eq!(progress.body["ticket"], "INC-LOST-BOX");
    let states: Vec<&Value> = progress.body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["state"])
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "accepted").count(),
        4,
        "{states:?}"
    );

    // Every device's audit line names the batch and who asked for it.
    let audits = b.q.audits();
    assert_eq!(audits.len(), 4, "{audits:#?}");
    assert!(
        audits
            .iter()
            .all(|a| a["caller"]["batchId"] == batch_id.as_str()),
        "{audits:#?}"
    );
    assert!(
        audits
            .iter()
            .all(|a| a["caller"]["requestedBy"] == HELPDESK),
        "{audits:#?}"
    );
    let bulk_audits = b.bulk_audits();
    assert!(
        bulk_audits
            .iter()
            .any(|a| a["outcome"] == "queued" && a["batchId"] == batch_id.as_str()),
        "{bulk_audits:#?}"
    );

    // A later batch naming the same devices finds them pending: no POSTs.
    let later = b
        .submit(json!({"devices": ids(&kiosks[1..3]), "reason": reason()}))
        .await;
    later.assert_outcome(200, "nothingToSend");
    assert_eq!(b.q.world.total_posts().await, 5);
    assert!(b.progress("0123456789abcdef0123456789abcdef").await.status == 404);
}

#[tokio::test]
async fn the_brake_caps_counts_and_stops_a_batch_mid_way() {
    let b = Bulk::start(&[
        ("BULK_MAX_DEVICES", "4"),
        ("BULK_MAX_DEVICES_PER_HOUR", "5"),
        ("BULK_EXPECTED_COUNT_ABOVE", "2"),
    ])
    .await;
    let kiosks = b.q.kiosks(5, "b0000003").await;
    let too_many = b
        .submit(json!({"devices": ids(&kiosks), "reason": reason()}))
        .await;
    too_many.assert_error(400, "invalidRequest");
    too_many.assert_says("at most 4");
    let three = ids(&kiosks[..3]);
    let unsaid = b
        .submit(json!({"devices": three, "reason": reason()}))
        .await;
    unsaid.assert_error(409, "expectedCountMismatch");
    unsaid.assert_says("\"expectedCount\": 3");
    let wrong = b
        .submit(json!({"devices": three, "reason": reason(), "expectedCount": 2}))
        .await;
    wrong.assert_error(409, "expectedCountMismatch");
    assert_eq!(
        b.queued_messages().await,
        0,
        "refused requests queue nothing"
    );

    let first = b
        .submit(
            json!({"devices": three, "reason": reason(), "expectedCount": 3, "ticket": "INC-STOP"}),
        )
        .await;
    first.assert_status(202);
    let batch_id = first.body["batchId"].as_str().unwrap().to_string();
    // Three of the hour's five are taken: three more do not fit.
    let over = b
        .submit(json!({"devices": ids(&kiosks[2..5]), "reason": reason(), "expectedCount": 3}))
        .await;
    over.assert_error(429, "bulkHourlyLimit");
    assert!(
        over.headers["retry-after"].is_string(),
        "{:?}",
        over.headers
    );

    // The switch is pulled before the queue is consumed: nothing is sent,
    // and the batch says so per device.
    b.stop_switch(true).await;
    let refused = b
        .submit(json!({"devices": [{"id": kiosks[4]}], "reason": reason()}))
        .await;
    refused.assert_error(409, "bulkStopped");
    b.q.deliver_all().await;
    assert_eq!(b.q.world.total_posts().await, 0);
    let progress = b.progress(&batch_id).await;
    assert_eq!(progress.body["state"], "done", "{:#}", progress.body);
    assert_eq!(
        progress.body["counts"]["outcomes"],
        json!({"bulkStopped": 3}),
        "{:#}",
        progress.body
    );
    b.stop_switch(false).await;
}

#[tokio::test]
async fn bad_requests_and_graph_outages_queue_nothing() {
    let b = Bulk::start(&[]).await;
    let kiosks = b.q.kiosks(2, "b0000004").await;
    let bad = b
        .submit(json!({"devices": [{"id": kiosks[0]}, {"id": "not-a-guid"}], "reason": reason()}))
        .await;
    bad.assert_error(400, "invalidRequest");
    assert!(
        bad.error_message().starts_with("devices[1]:"),
        "{}",
        bad.error_message()
    );

    // A JWT caller needs the bulk right.
    let jwt = submit_event(
        &json!({"devices": ids(&kiosks), "reason": reason()}),
        &Caller::jwt("agent", Some("agent@contoso.com")),
    );
    b.call(jwt).await.assert_error(403, "forbidden");

    // Graph unavailable while planning: the whole request fails, retryable.
    b.q.world
        .add_fault(FaultRule::status(503).method("GET").times(100))
        .await;
    let down = b
        .submit(json!({"devices": ids(&kiosks), "reason": reason()}))
        .await;
    down.assert_status(503);
    assert_eq!(b.queued_messages().await, 0);

    // An EventBridge request that cannot be planned fails the invocation,
    // so Lambda retries it.
    let mut event =
        events::eventbridge(&json!({"action": "resetPasscode", "devices": ids(&kiosks),
                                                "reason": reason(), "requestedBy": "soar"}));
    event["detail-type"] = json!(passcode_core::action::BULK_DETAIL_TYPE);
    let invocation = b.bulk.invoke(event, TIMEOUT).await;
    assert!(
        matches!(invocation.outcome, InvokeOutcome::Error { .. }),
        "{:?}",
        invocation.outcome
    );
    assert_eq!(b.q.world.total_posts().await, 0);
}

#[tokio::test]
async fn a_finished_batch_is_reported_once_on_the_bus() {
    let b = Bulk::start_in(World::start_tracking().await, &[]).await;
    let tracker =
        b.q.world
            .stack
            .spawn_tracker(&[])
            .await
            .expect("tracker starts");
    let run = || async {
        match tracker.invoke(json!({}), TIMEOUT).await.outcome {
            InvokeOutcome::Response(summary) => summary,
            other => panic!("tracker run failed: {other:?}"),
        }
    };
    let kiosks = b.q.kiosks(3, "b0000005").await;
    let reply = b
        .submit(json!({"devices": ids(&kiosks), "reason": reason(), "ticket": "INC-DONE"}))
        .await;
    reply.assert_status(202);
    let batch_id = reply.body["batchId"].as_str().unwrap().to_string();

    // Before the devices are handled the batch is not due: nothing to report.
    run().await;
    let events = b.q.world.stack.take_result_events().await.unwrap();
    assert!(events.is_empty(), "{events:#?}");

    // The last settled device makes the batch due: the next run reports it.
    b.q.deliver_all().await;
    let summary = run().await;
    assert_eq!(summary["completed"], 1, "{summary:#}");
    let events = b.q.world.stack.take_result_events().await.unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["detail-type"], "Passcode Bulk Action Completed");
    let detail = &event["detail"];
    assert_eq!(detail["batchId"], batch_id.as_str());
    assert_eq!(
        (&detail["complete"], &detail["toSend"], &detail["settled"]),
        (&json!(true), &json!(3), &json!(3))
    );
    assert_eq!(detail["outcomes"], json!({"accepted": 3}));
    assert_eq!(
        (&detail["ticket"], &detail["action"]),
        (&json!("INC-DONE"), &json!("resetPasscode"))
    );
    assert_eq!(detail["requestedBy"], HELPDESK);

    // Reported once: later runs find nothing more to say about it.
    run().await;
    assert!(
        b.q.world
            .stack
            .take_result_events()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_batch_left_half_queued_is_finished_by_its_repeat() {
    let b = Bulk::start(&[]).await;
    let kiosks = b.q.kiosks(3, "b0000006").await;
    // The first attempt cannot reach its queue (a queue URL that does not
    // exist): the batch is recorded, its messages are not.
    let missing = b.q.queue_url.replace("bulk-reset-", "missing-");
    let broken =
        b.q.world
            .stack
            .spawn_bulk(&[("BULK_RESET_QUEUE_URL", &missing)])
            .await
            .unwrap();
    let body =
        json!({"devices": ids(&kiosks), "reason": reason(), "idempotencyKey": "half-queued"});
    let first = Reply::from(
        broken
            .invoke(submit_event(&body, &Caller::iam(HELPDESK)), TIMEOUT)
            .await,
    );
    first.assert_error(503, "queueUnavailable");
    first.assert_says("same idempotencyKey");
    broken.kill().await;

    // Soon after, a repeat finds the first attempt possibly still sending
    // and queues nothing more.
    let soon = b.submit(body.clone()).await;
    assert_eq!(
        (soon.status, &soon.body["replayed"]),
        (202, &json!(true)),
        "{:#}",
        soon.body
    );
    assert_eq!(b.queued_messages().await, 0);
    // A minute later the first attempt is over: the repeat queues it all.
    b.q.world.stack.set_clock_offset(90).await.unwrap();
    let later = b.submit(body).await;
    later.assert_status(202);
    assert_eq!(b.queued_messages().await, 3);
    b.q.deliver_all().await;
    for id in &kiosks {
        assert_eq!(b.q.world.posts(id).await, 1, "one POST for {id}");
    }
    let batch_id = later.body["batchId"].as_str().unwrap().to_string();
    let progress = b.progress(&batch_id).await;
    assert_eq!(
        progress.body["counts"]["outcomes"],
        json!({"accepted": 3}),
        "{:#}",
        progress.body
    );
}
