//! `serve`: the API Gateway stand-in on loopback until Ctrl-C.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use graph_sim::seed::devices;
use passcode_core::Action;
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};

pub async fn run(port: u16) -> anyhow::Result<()> {
    // Listen before anything is printed: a signal that arrives between
    // "Serving" and the first poll must not be lost.
    let stop = StopSignals::new()?;
    println!("Starting the Graph simulator, moto and the four functions…");
    let (stack, functions) = crate::start_everything().await?;
    let functions: HashMap<Action, Arc<_>> = functions
        .into_iter()
        .map(|(action, function)| (action, Arc::new(function)))
        .collect();
    let front = local_stack::serve_api(SocketAddr::from(([127, 0, 0, 1], port)), functions).await?;
    let base = front.base_url();
    let sim = stack.sim.base_url();

    println!("\nAPI (HTTP API payload 2.0, caller IAM user local-admin): {base}");
    println!(
        "Graph simulator control API: {sim}/_sim/  (secret {} in moto at {})",
        stack.secret_name,
        stack.moto.endpoint()
    );
    println!("\nTry:");
    for action in Action::ALL {
        for (method, template) in action.routes() {
            let (path, body) = example(action, template);
            println!("{}", curl(&base, method, &path, body.as_ref()));
        }
    }
    let event = json!({
        "detail-type": passcode_core::action::EVENT_DETAIL_TYPE,
        "source": "com.example.helpdesk",
        "detail": {
            "action": Action::RemovePasscode.event_action(),
            "device": {"serialNumber": "F2LXK0AAAA10"},
            "reason": "User forgot passcode",
            "ticket": "INC-2001",
            "requestedBy": "helpdesk@contoso.com",
        },
    });
    println!("\n# EventBridge (one PutEvents entry, routed by detail.action):");
    println!("{}", curl(&base, "POST", "/events", Some(&event)));
    println!(
        "\n# Simulator: finish the kiosk's reset with a passcode, then list what Graph received:"
    );
    println!(
        "{}",
        curl(
            sim,
            "POST",
            &format!(
                "/_sim/devices/{}/actions/resetPasscode",
                devices::AE_DEDICATED
            ),
            Some(&json!({"state": "done", "passcode": "493817"})),
        )
    );
    println!("curl -s {sim}/_sim/requests");
    println!(
        "\n# Other callers: add -H 'X-Local-Caller: jwt:<sub>:<upn>' (or an IAM ARN, or 'anonymous')."
    );
    println!("\nServing; Ctrl-C stops everything.");

    stop.wait().await;
    println!("\nStopping.");
    drop(front);
    Ok(())
}

/// A concrete path and body for one route, on a device the route suits.
fn example(action: Action, template: &str) -> (String, Option<Value>) {
    let (device, lookup) = match action {
        Action::ResetPasscode => (
            devices::AE_DEDICATED,
            json!({"serialNumber": "R58N10AE002"}),
        ),
        Action::RemovePasscode => (
            devices::IOS_ADE,
            json!({"userPrincipalName": "pat@contoso.com", "deviceName": "IPHONE-PAT"}),
        ),
        Action::ResetWindowsPin => (
            devices::WINDOWS_10_MOBILE,
            json!({"serialNumber": "LUMIA000018"}),
        ),
        Action::Status | Action::RevealPasscode => {
            (devices::AE_DEDICATED, json!({"imei": "350000000000001"}))
        }
    };
    let in_path = template.contains("{deviceId}");
    let path = template.replace("{deviceId}", device);
    let body = match (action, in_path) {
        (Action::Status, true) => None,
        (Action::Status, false) => Some(json!({"device": lookup})),
        (Action::RevealPasscode, true) => {
            return (
                format!("{path}?reason=User%20at%20the%20desk&ticket=INC-2000"),
                None,
            );
        }
        (_, true) => Some(json!({"reason": "User locked out", "ticket": "INC-2000"})),
        (_, false) => {
            Some(json!({"device": lookup, "reason": "User locked out", "ticket": "INC-2000"}))
        }
    };
    (path, body)
}

fn curl(base: &str, method: &str, path: &str, body: Option<&Value>) -> String {
    match body {
        None if method == "GET" => format!("curl -s {base}{path}"),
        None => format!("curl -s -X {method} {base}{path}"),
        Some(body) => format!(
            "curl -s -X {method} {base}{path} -H 'content-type: application/json' -d '{}'",
            body.to_string().replace('\'', r"'\''")
        ),
    }
}

/// Ctrl-C, or SIGTERM from a process manager.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn new() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
