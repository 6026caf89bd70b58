//! The scripted tour: requests that show what each function does, and the
//! tracker reporting how one of them ended.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use graph_sim::seed::devices;
use local_stack::events::{self, Caller};
use local_stack::{FunctionProcess, Stack};
use passcode_core::Action;
use serde_json::{Value, json};

use crate::show::{self, Verdict};

mod bulk;

const TIMEOUT: Duration = Duration::from_secs(30);
const ADMIN: &str = "arn:aws:iam::000000000000:user/local-admin";

struct Tour {
    stack: Stack,
    functions: HashMap<Action, FunctionProcess>,
    tracker: FunctionProcess,
    step: usize,
    broken: bool,
}

/// Runs the tour; `Ok(false)` when a function crashed or timed out.
pub async fn run() -> anyhow::Result<bool> {
    println!("Starting the Graph simulator, moto and the functions…");
    let (stack, functions) = crate::start_everything().await?;
    let tracker = stack.spawn_tracker(&[]).await?;
    let init = tracker.ready().await?;
    println!(
        "  {:<18} pid {:<7} ready in {} ms",
        passcode_core::action::TRACKER_FUNCTION,
        tracker.pid(),
        init.as_millis()
    );
    println!("  Graph simulator    {}", stack.sim.base_url());
    println!(
        "  Secrets Manager    {} (moto), secret {}",
        stack.moto.endpoint(),
        stack.secret_name
    );

    let mut tour = Tour {
        stack,
        functions,
        tracker,
        step: 0,
        broken: false,
    };
    tour.story().await?;
    tour.summary().await?;
    Ok(!tour.broken)
}

impl Tour {
    async fn story(&mut self) -> anyhow::Result<()> {
        let kiosk = devices::AE_DEDICATED;
        let reset_path = format!("/v1/devices/{kiosk}/reset-passcode");
        let reset_body = json!({"reason": "Kiosk locked after a PIN change", "ticket": "INC-1001"});

        for title in [
            "Reset the passcode of the lobby kiosk (Android Enterprise dedicated), device id in the path",
            "The same request again (a double-submit): the first answer comes back, nothing new is sent",
        ] {
            self.api(
                title,
                Action::ResetPasscode,
                "POST",
                &reset_path,
                Some(kiosk),
                Some(&reset_body),
            )
            .await;
        }

        self.eventbridge(
            "A workflow asks to reset the same kiosk while Intune has not finished: nothing new is sent",
            Action::ResetPasscode,
            json!({
                "action": Action::ResetPasscode.event_action(),
                "device": {"id": kiosk},
                "reason": "Kiosk PIN rotation",
                "requestedBy": "kiosk-rotation-workflow",
            }),
        )
        .await;

        self.stack
            .sim
            .control()
            .advance_action(kiosk, "resetPasscode", "done", Some("493817"))
            .await?;
        self.tracker_run(
            "The kiosk checked in and Intune finished the reset. Two minutes later the scheduled tracker runs and reports it on the bus (never with the passcode)",
            120,
        )
        .await?;
        self.api(
            "Ask for the kiosk's status: Intune's action results and the tracking (never a passcode)",
            Action::Status,
            "GET",
            &format!("/v1/devices/{kiosk}/passcode-status"),
            Some(kiosk),
            None,
        )
        .await;
        self.api(
            "Reveal the kiosk's new passcode: a right and a route of its own, reason and ticket required",
            Action::RevealPasscode,
            "POST",
            "/v1/reveal-passcode",
            None,
            Some(&json!({
                "device": {"id": kiosk},
                "reason": "Store manager at the kiosk",
                "ticket": "INC-2000",
            })),
        )
        .await;

        self.eventbridge(
            "Remove the passcode of Pat's iPhone (ADE), found by serial number, from an EventBridge event",
            Action::RemovePasscode,
            json!({
                "action": Action::RemovePasscode.event_action(),
                "device": {"serialNumber": "F2LXK0AAAA10"},
                "reason": "User forgot passcode",
                "ticket": "INC-1002",
                "requestedBy": "helpdesk@contoso.com",
            }),
        )
        .await;

        self.api(
            "Windows PIN reset on a Windows 11 desktop: only Windows 10 Mobile supports it",
            Action::ResetWindowsPin,
            "POST",
            &format!("/v1/devices/{}/reset-windows-pin", devices::WINDOWS_DESKTOP),
            Some(devices::WINDOWS_DESKTOP),
            Some(&json!({"reason": "Forgot PIN", "ticket": "INC-1003"})),
        )
        .await;

        self.api(
            "Dry run: which device has IMEI 350000000000002, and would a reset be sent?",
            Action::ResetPasscode,
            "POST",
            "/v1/reset-passcode",
            None,
            Some(&json!({
                "device": {"imei": "350000000000002"},
                "reason": "Checking before calling the user",
                "dryRun": true,
            })),
        )
        .await;

        self.eventbridge(
            "Status of the kiosk through EventBridge: results there never carry a passcode",
            Action::Status,
            json!({"action": Action::Status.event_action(), "device": {"id": kiosk}}),
        )
        .await;
        self.bulk_story().await
    }

    async fn api(
        &mut self,
        title: &str,
        action: Action,
        method: &str,
        path: &str,
        device_id: Option<&str>,
        body: Option<&Value>,
    ) {
        self.step += 1;
        show::heading(self.step, title);
        show::request(
            &format!("{method} {path}   (HTTP API → {})", action.function_name()),
            body,
        );
        let event = events::api_v2(
            method,
            path,
            device_id.map(|id| ("deviceId", id)),
            body,
            &Caller::iam(ADMIN),
        );
        self.invoke(action, event).await;
    }

    async fn eventbridge(&mut self, title: &str, action: Action, detail: Value) {
        self.step += 1;
        show::heading(self.step, title);
        show::request(
            &format!(
                "EventBridge \"{}\" → {}",
                passcode_core::action::EVENT_DETAIL_TYPE,
                action.function_name()
            ),
            Some(&detail),
        );
        self.invoke(action, events::eventbridge(&detail)).await;
    }

    /// Lets `seconds` pass for the functions and the simulated tenant, runs
    /// the tracker as its schedule would, and shows the events it put on
    /// the bus (a rule copies them into a queue, as a deployer's would).
    async fn tracker_run(&mut self, title: &str, seconds: i64) -> anyhow::Result<()> {
        self.step += 1;
        show::heading(self.step, title);
        self.stack.set_clock_offset(seconds).await?;
        show::request(
            &format!(
                "EventBridge Scheduler → {}",
                passcode_core::action::TRACKER_FUNCTION
            ),
            None,
        );
        let invocation = self.tracker.invoke(json!({}), TIMEOUT).await;
        if let Verdict::Broken = show::result(&invocation) {
            self.broken = true;
        }
        for event in self.stack.take_result_events().await? {
            println!(
                "   ⇒ on the bus: \"{}\"",
                event["detail-type"].as_str().unwrap_or("")
            );
            show::indented(&event["detail"]);
        }
        Ok(())
    }

    async fn invoke(&mut self, action: Action, event: Value) {
        let invocation = self.functions[&action].invoke(event, TIMEOUT).await;
        if let Verdict::Broken = show::result(&invocation) {
            self.broken = true;
        }
    }

    /// What reached the simulator: device-action POSTs per device.
    async fn summary(&self) -> anyhow::Result<()> {
        let control = self.stack.sim.control();
        let mut posts: BTreeMap<String, usize> = BTreeMap::new();
        for request in control.try_requests().await? {
            if request.method == "POST"
                && request.reached_device
                && let Some(device) = request.device_id
            {
                *posts.entry(device).or_default() += 1;
            }
        }
        let mut parts = Vec::new();
        for (device, count) in &posts {
            let name = control
                .device(device)
                .await
                .ok()
                .and_then(|d| d["deviceName"].as_str().map(str::to_owned))
                .unwrap_or_else(|| device.clone());
            parts.push(format!("{name} ×{count}"));
        }
        println!(
            "\nThe simulator received {} device-action POST(s): {}",
            posts.values().sum::<usize>(),
            if parts.is_empty() {
                "none".to_owned()
            } else {
                parts.join(", ")
            }
        );
        if self.broken {
            println!(
                "A function crashed or timed out; its output is above (set LOCAL_STACK_ECHO_LOGS=1 for all of it)."
            );
        }
        Ok(())
    }
}
