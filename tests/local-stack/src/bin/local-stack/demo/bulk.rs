//! The bulk part of the tour: a lost shipment of kiosks, previewed, queued
//! one message per device, taken by `reset-passcode` from the queue at the
//! tenant's write budget, followed by its progress and its completion
//! event.

use std::sync::Arc;
use std::time::Duration;

use graph_sim::seed::devices;
use local_stack::events::{self, Caller};
use local_stack::{FunctionProcess, SqsMapping, SqsMappingOptions};
use passcode_core::Action;
use passcode_core::action::BULK_FUNCTION;
use serde_json::{Value, json};

use super::{ADMIN, TIMEOUT, Tour};
use crate::show::{self, Verdict};

/// The template's function timeout; the queue's visibility is six times it.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);

impl Tour {
    pub(super) async fn bulk_story(&mut self) -> anyhow::Result<()> {
        let moto = &self.stack.moto;
        let (queue_url, _dlq) = moto
            .create_queue_with_dlq("demo-bulk-reset", 6 * FUNCTION_TIMEOUT.as_secs() as u32, 5)
            .await?;
        let bulk = self
            .stack
            .spawn_bulk(&[("BULK_RESET_QUEUE_URL", &queue_url)])
            .await?;
        let kiosks = self
            .stack
            .add_device_clones(devices::AE_DEDICATED, 3, "5eed0001")
            .await?;
        let mut references: Vec<Value> = kiosks.iter().map(|id| json!({"id": id})).collect();
        // Pat's iPhone was in the box too: an Android reset cannot reach it.
        references.push(json!({"serialNumber": "F2LXK0AAAA10"}));
        let mut body = json!({
            "devices": references,
            "reason": "Shipment of store kiosks lost in transit",
            "ticket": "INC-3000",
            "dryRun": true,
        });
        self.bulk_submit(
            &bulk,
            "A lost shipment: preview a bulk reset. Each device is checked as a single request would be; nothing is sent",
            &body,
        )
        .await;

        body["dryRun"] = json!(false);
        body["expectedCount"] = json!(kiosks.len());
        body["idempotencyKey"] = json!("INC-3000-kiosks");
        let answer = self
            .bulk_submit(
                &bulk,
                "Send it, confirming the preview's count: one queued message per device that can take it",
                &body,
            )
            .await;
        let batch_id = answer
            .and_then(|a| serde_json::from_str::<Value>(a["body"].as_str()?).ok())
            .and_then(|b| b["batchId"].as_str().map(str::to_owned))
            .unwrap_or_default();

        // Lambda's event source mapping hands the messages to
        // reset-passcode, a few at a time, paced by the write budget.
        let mut consumers = Vec::new();
        for _ in 0..2 {
            consumers.push(Arc::new(
                self.stack.spawn(Action::ResetPasscode, &[]).await?,
            ));
        }
        let options = SqsMappingOptions {
            batch_size: 10,
            maximum_concurrency: 2,
            function_timeout: FUNCTION_TIMEOUT,
            ..SqsMappingOptions::default()
        };
        let mapping =
            SqsMapping::start(self.stack.moto.endpoint(), &queue_url, consumers, options).await?;
        mapping.wait_until_drained(Duration::from_secs(60)).await?;
        mapping.stop().await;
        let stats = mapping.stats();
        println!(
            "   ⇒ the queue's event source mapping delivered {} message(s) to reset-passcode; {} deleted",
            stats.messages_delivered, stats.messages_deleted
        );

        let progress_path = format!("/v1/bulk/reset-passcode/{batch_id}");
        self.bulk_call(
            &bulk,
            "The batch's progress: every device with how its queued request ended",
            "GET",
            &progress_path,
            &[("action", "reset-passcode"), ("batchId", &batch_id)],
            None,
        )
        .await;
        self.tracker_run(
            "The tracker's next run reports the finished batch on the bus",
            120,
        )
        .await?;
        bulk.kill().await;
        Ok(())
    }

    /// `POST /v1/bulk/reset-passcode` with `body`; its answer, when it gave one.
    async fn bulk_submit(
        &mut self,
        bulk: &FunctionProcess,
        title: &str,
        body: &Value,
    ) -> Option<Value> {
        self.bulk_call(
            bulk,
            title,
            "POST",
            "/v1/bulk/reset-passcode",
            &[("action", "reset-passcode")],
            Some(body),
        )
        .await
    }

    /// An HTTP API call to `bulk-passcode`; its answer, when it gave one.
    async fn bulk_call(
        &mut self,
        bulk: &FunctionProcess,
        title: &str,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Option<Value> {
        self.step += 1;
        show::heading(self.step, title);
        show::request(
            &format!("{method} {path}   (HTTP API → {BULK_FUNCTION})"),
            body,
        );
        let mut event = events::api_v2(method, path, None, body, &Caller::iam(ADMIN));
        let template = params.iter().fold(path.to_owned(), |p, (name, value)| {
            p.replacen(value, &format!("{{{name}}}"), 1)
        });
        event["routeKey"] = json!(format!("{method} {template}"));
        event["requestContext"]["routeKey"] = event["routeKey"].clone();
        event["pathParameters"] = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let invocation = bulk.invoke(event, TIMEOUT).await;
        if let Verdict::Broken = show::result(&invocation) {
            self.broken = true;
        }
        invocation.response().ok().cloned()
    }
}
