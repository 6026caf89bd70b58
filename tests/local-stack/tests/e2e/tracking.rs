//! Completion tracking end to end: the write functions record what Intune
//! accepted, `passcode-tracker` runs as the schedule would start it, the
//! simulator finishes actions when a test says so, and both clocks move
//! forward on demand. Result events arrive in a queue that a rule on the
//! project's bus (moto) fills, as a deployer's rule would.

use super::common::*;
use graph_sim::FaultRule;
use local_stack::{FunctionProcess, InvokeOutcome};
use passcode_core::Action;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const MINUTE: i64 = 60;
const DAY: i64 = 86_400;
/// Half of Intune's read budget keeps the runs short in tests.
const TRACKER_ENV: &[(&str, &str)] = &[("TRACK_READ_BUDGET_FRACTION", "0.5")];
/// Intune's code for a reset without a passcode policy, as an example.
const NO_PASSCODE_POLICY: i64 = -2016345060;

struct Tracked {
    world: World,
    tracker: FunctionProcess,
    clock: i64,
}

impl Tracked {
    async fn start() -> Tracked {
        let world = World::start_tracking().await;
        let tracker = world
            .stack
            .spawn_tracker(TRACKER_ENV)
            .await
            .expect("tracker starts");
        Tracked {
            world,
            tracker,
            clock: 0,
        }
    }

    /// Lets `seconds` pass for the functions and the simulated tenant.
    async fn later(&mut self, seconds: i64) {
        self.clock += seconds;
        self.world
            .stack
            .set_clock_offset(self.clock)
            .await
            .expect("clock moved");
    }

    /// One scheduled run; its summary.
    async fn run(&self) -> Value {
        run_on(&self.tracker).await
    }

    async fn events(&self) -> Vec<Value> {
        self.world
            .stack
            .take_result_events()
            .await
            .expect("result events read")
    }

    async fn reset(&self, device_id: &str, ticket: &str) {
        let reply = self
            .world
            .api_path(
                Action::ResetPasscode,
                device_id,
                json!({"reason": reason(), "ticket": ticket}),
            )
            .await;
        assert_eq!(reply.outcome(), "accepted", "{:?}", reply.body);
    }

    async fn finish(&self, device_id: &str, state: &str) {
        self.world
            .sim()
            .advance_action(device_id, "resetPasscode", state, None)
            .await
            .expect("action advanced");
    }

    /// `count` kiosks whose resets Intune accepted and finished, with both
    /// clocks past their first poll.
    async fn finished_kiosks(&mut self, count: usize) -> Vec<String> {
        let devices = kiosks(&self.world, count).await;
        for (n, id) in devices.iter().enumerate() {
            self.reset(id, &format!("INC-{n}")).await;
        }
        self.later(2 * MINUTE).await;
        for id in &devices {
            self.finish(id, "done").await;
        }
        devices
    }

    /// Injects `rule` on the tracker's device reads.
    async fn fault_on_device_reads(&self, rule: FaultRule) {
        self.world
            .add_fault(rule.method("GET").path_contains("managedDevices/"))
            .await;
    }

    async fn status_tracking(&self, device_id: &str) -> Value {
        let reply = self.world.status(device_id).await;
        reply.assert_status(200);
        reply.body["tracking"].clone()
    }
}

async fn run_on(tracker: &FunctionProcess) -> Value {
    match tracker.invoke(json!({}), TIMEOUT).await.outcome {
        InvokeOutcome::Response(summary) => summary,
        other => panic!("tracker run failed: {other:?}"),
    }
}

/// Events by device id; fails on a device reported twice.
fn by_device(events: &[Value]) -> HashMap<String, Value> {
    let mut map = HashMap::new();
    for event in events {
        let id = event["detail"]["deviceId"].as_str().unwrap().to_string();
        assert!(
            map.insert(id.clone(), event.clone()).is_none(),
            "device {id} reported twice: {events:#?}"
        );
    }
    map
}

/// `count` Android dedicated devices with ids of their own.
async fn kiosks(world: &World, count: usize) -> Vec<String> {
    world
        .stack
        .add_device_clones(dev::AE_DEDICATED, count, "66666666")
        .await
        .expect("devices added")
}

#[tokio::test]
async fn every_action_ends_in_one_event_and_a_silent_device_expires() {
    let mut t = Tracked::start().await;
    t.reset(dev::AE_DEDICATED, "INC-DONE").await;
    t.reset(dev::AE_FULLY_MANAGED, "INC-FAILED").await;
    t.reset(dev::AE_CORPORATE_WORK_PROFILE, "INC-NOTSUPPORTED")
        .await;
    t.reset(dev::AOSP_USERLESS, "INC-CANCELED").await;
    // An automation's request through EventBridge, with its own requester.
    let asked = t
        .world
        .event(
            Action::RemovePasscode,
            json!({"device": {"id": dev::IOS_ADE}, "reason": reason(), "ticket": "INC-IOS",
                   "requestedBy": "agent@contoso.com", "idempotencyKey": "ios-1"}),
        )
        .await;
    assert!(
        matches!(asked.outcome, InvokeOutcome::Response(_)),
        "{asked:?}"
    );
    let silent = t
        .world
        .api_path(
            Action::RemovePasscode,
            dev::IPADOS_DEVICE_ENROLLMENT,
            json!({"reason": reason(), "ticket": "INC-SILENT"}),
        )
        .await;
    assert_eq!(silent.outcome(), "accepted");

    // Nothing is due before the first poll time.
    let summary = t.run().await;
    assert_eq!(summary["due"], 0, "{summary}");
    assert!(t.events().await.is_empty());
    let open = t.status_tracking(dev::AE_DEDICATED).await;
    assert_eq!(open[0]["tracking"], "open", "{open}");
    assert_eq!(open[0]["ticket"], "INC-DONE");
    assert!(open[0]["nextPollAt"].is_string(), "{open}");

    t.later(2 * MINUTE).await;
    t.finish(dev::AE_DEDICATED, "done").await;
    t.world
        .sim()
        .finish_action_with_error(
            dev::AE_FULLY_MANAGED,
            "resetPasscode",
            "failed",
            NO_PASSCODE_POLICY,
        )
        .await
        .unwrap();
    t.finish(dev::AE_CORPORATE_WORK_PROFILE, "notSupported")
        .await;
    t.finish(dev::AOSP_USERLESS, "canceled").await;
    t.finish(dev::IOS_ADE, "done").await;
    let summary = t.run().await;
    assert_eq!(
        (summary["completed"].as_u64(), summary["waiting"].as_u64()),
        (Some(5), Some(1)),
        "{summary}"
    );

    let events = t.events().await;
    let got = by_device(&events);
    assert_eq!(got.len(), 5, "{events:#?}");
    for (device, state, ticket) in [
        (dev::AE_DEDICATED, "done", "INC-DONE"),
        (dev::AE_FULLY_MANAGED, "failed", "INC-FAILED"),
        (
            dev::AE_CORPORATE_WORK_PROFILE,
            "notSupported",
            "INC-NOTSUPPORTED",
        ),
        (dev::AOSP_USERLESS, "canceled", "INC-CANCELED"),
        (dev::IOS_ADE, "done", "INC-IOS"),
    ] {
        let event = &got[device];
        assert_eq!(event["detail-type"], "Passcode Action Completed");
        assert_eq!(event["source"], "intune-passcode");
        let detail = &event["detail"];
        assert_eq!(
            (detail["finalState"].as_str(), detail["ticket"].as_str()),
            (Some(state), Some(ticket)),
            "{detail}"
        );
        assert!(
            detail["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{detail}"
        );
        assert!(
            detail["requestId"].is_string() && detail["trackingId"].is_string(),
            "{detail}"
        );
    }
    let failed = &got[dev::AE_FULLY_MANAGED]["detail"];
    assert_eq!(failed["intuneErrorCode"], NO_PASSCODE_POLICY);
    assert!(
        failed["hint"].as_str().unwrap().contains("policy"),
        "{failed}"
    );
    let not_supported = &got[dev::AE_CORPORATE_WORK_PROFILE]["detail"];
    assert!(
        not_supported["hint"]
            .as_str()
            .unwrap()
            .contains("work profile"),
        "{not_supported}"
    );
    let ios = &got[dev::IOS_ADE]["detail"];
    assert_eq!(ios["requestedBy"], "agent@contoso.com");
    assert_eq!(ios["idempotencyKey"], "ios-1");
    assert_eq!(ios["action"], "removePasscode");
    assert!(ios["eventId"].is_string(), "{ios}");

    // Reported actions are closed: a second run finds nothing new.
    t.run().await;
    assert!(t.events().await.is_empty());
    let done = t.status_tracking(dev::AE_DEDICATED).await;
    assert_eq!(
        (done[0]["tracking"].as_str(), done[0]["finalState"].as_str()),
        (Some("final"), Some("done")),
        "{done}"
    );
    let waiting = t.status_tracking(dev::IPADOS_DEVICE_ENROLLMENT).await;
    assert_eq!(waiting[0]["tracking"], "open", "{waiting}");
    assert_eq!(waiting[0]["polls"], 1, "{waiting}");

    // A week later nothing has happened on the iPad: one Expired event.
    t.later(7 * DAY + MINUTE).await;
    let summary = t.run().await;
    assert_eq!(summary["expired"], 1, "{summary}");
    let events = t.events().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["detail-type"], "Passcode Action Expired");
    assert_eq!(events[0]["detail"]["finalState"], "expired");
    assert_eq!(events[0]["detail"]["ticket"], "INC-SILENT");
    t.run().await;
    assert!(
        t.events().await.is_empty(),
        "an expired action is reported once"
    );

    // The Android passcode Intune set is in no event and no log line.
    let results = t
        .world
        .sim()
        .action_results(dev::AE_DEDICATED)
        .await
        .unwrap();
    let passcode = results
        .iter()
        .find_map(|r| r["passcode"].as_str())
        .expect("the simulator set a passcode")
        .to_string();
    let mut seen = serde_json::to_string(&events).unwrap();
    seen.push_str(&t.tracker.logs().join("\n"));
    seen.push_str(&t.world.all_logs().join("\n"));
    assert!(!seen.contains(&passcode), "the passcode leaked");
}

#[tokio::test]
async fn overlapping_runs_and_a_tracker_that_dies_report_each_action_once() {
    let mut t = Tracked::start().await;
    let devices = t.finished_kiosks(12).await;

    // The first run hangs on four device reads (one per worker) and its
    // process is killed: it dies holding four leases.
    t.fault_on_device_reads(FaultRule::delay_ms(30_000).times(4))
        .await;
    let fresh = t.world.stack.spawn_tracker(TRACKER_ENV).await.unwrap();
    let dying = std::mem::replace(&mut t.tracker, fresh);
    tokio::select! {
        ended = dying.invoke(json!({}), TIMEOUT) => panic!("the run should hang: {:?}", ended.outcome),
        () = tokio::time::sleep(Duration::from_secs(3)) => {}
    }
    dying.kill().await;
    t.world.sim().clear_faults().await.unwrap();
    let mut events = t.events().await;

    // Two runs at once take the rest; neither takes a leased record.
    let second = t.world.stack.spawn_tracker(TRACKER_ENV).await.unwrap();
    let third = t.world.stack.spawn_tracker(TRACKER_ENV).await.unwrap();
    let (a, b) = tokio::join!(run_on(&second), run_on(&third));
    let completed = a["completed"].as_u64().unwrap() + b["completed"].as_u64().unwrap();
    events.extend(t.events().await);
    assert_eq!(events.len() as u64, 12 - 4, "{a} {b}");
    assert_eq!(completed, 8, "{a} {b}");
    assert!(
        a["skipped"].as_u64().unwrap() + b["skipped"].as_u64().unwrap() >= 4,
        "{a} {b}"
    );

    // Once the dead run's leases ran out, the next run reports the rest.
    t.later(3 * MINUTE).await;
    let summary = run_on(&second).await;
    assert_eq!(summary["completed"], 4, "{summary}");
    events.extend(t.events().await);
    let got = by_device(&events);
    assert_eq!(got.len(), 12);
    for id in &devices {
        assert_eq!(got[id]["detail"]["finalState"], "done");
    }
    let summary = run_on(&third).await;
    assert_eq!(summary["due"], 0, "{summary}");
    assert!(t.events().await.is_empty());
}

#[tokio::test]
async fn graph_faults_and_throttling_during_a_run_lose_nothing() {
    let mut t = Tracked::start().await;
    t.finished_kiosks(3).await;
    // Graph is down for the whole run: every record is due again, nothing
    // is reported, and the run says so (the function's Errors alarm).
    t.fault_on_device_reads(FaultRule::status(503).times(1000))
        .await;
    let failed = t.tracker.invoke(json!({}), TIMEOUT).await;
    assert!(
        matches!(&failed.outcome, InvokeOutcome::Error { error_type, .. } if error_type == "TrackerPartialFailure"),
        "{:?}",
        failed.outcome
    );
    assert!(t.events().await.is_empty());
    t.world.sim().clear_faults().await.unwrap();

    // Throttled next time: the reads wait out Retry-After and go on.
    t.later(2 * MINUTE).await;
    t.fault_on_device_reads(FaultRule::status_retry_after(429, 1).times(2))
        .await;
    let summary = t.run().await;
    assert_eq!(summary["completed"], 3, "{summary}");
    assert_eq!(by_device(&t.events().await).len(), 3);
    let throttled = t
        .world
        .requests()
        .await
        .iter()
        .filter(|r| r.fault.as_deref().is_some_and(|f| f.contains("429")))
        .count();
    assert_eq!(
        throttled, 2,
        "both throttled reads were answered 429 and retried"
    );
}
