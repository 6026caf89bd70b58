//! Random failures on Graph (never on the token endpoint or the control API)
//! plus delays, drawn by the simulator from the soak's seed. The delay on the
//! POST is what makes duplicates race: the simulator sleeps before it queues
//! the action, so two processes that both read "nothing pending" are both
//! still inside the read→POST window.

use std::collections::BTreeMap;

use graph_sim::{Control, DropPoint, Endpoint, Fault, FaultRule};

use super::SoakConfig;

/// Delays up to this long only stretch a request; longer ones are timeouts.
const LONGEST_STRETCH_MS: u64 = 1000;

/// Arms every rule of [`fault_rules`] on the simulator.
pub(super) async fn arm(control: &Control, config: &SoakConfig) -> anyhow::Result<()> {
    for rule in fault_rules(config) {
        control.add_fault(&rule).await?;
    }
    Ok(())
}

/// Disarms the rules and says how often each fired, by [`fault_label`].
///
/// Rule counters, not the log: a request hung past its caller's timeout is
/// only logged once the simulator finishes it, if ever.
pub(super) async fn disarm(
    control: &Control,
    config: &SoakConfig,
) -> anyhow::Result<BTreeMap<String, usize>> {
    let armed = control.faults().await?;
    control.clear_faults().await?;
    Ok(fault_rules(config)
        .iter()
        .zip(&armed)
        .map(|(rule, armed)| {
            let remaining = armed["remaining"].as_u64().unwrap_or(u64::from(u32::MAX));
            (
                fault_label(rule),
                (u64::from(u32::MAX) - remaining) as usize,
            )
        })
        .collect())
}

/// Whether a label of [`fault_label`] names a delay that only stretches a
/// request rather than a failure.
pub(super) fn is_stretch(label: &str) -> bool {
    label.contains(" delay:")
}

/// `GET timeout`, `POST status:429 retryAfter=1`, `GET delay:120ms`, ...
fn fault_label(rule: &FaultRule) -> String {
    let method = rule.matcher.method.as_deref().unwrap_or("any");
    match &rule.fault {
        Fault::Delay { delay_ms } if *delay_ms > LONGEST_STRETCH_MS => format!("{method} timeout"),
        Fault::Status {
            retry_after: Some(seconds),
            ..
        } => format!("{method} {} retryAfter={seconds}", rule.fault.label()),
        fault => format!("{method} {}", fault.label()),
    }
}

/// The rules, each with a chance of its own scaled by `fault_rate` (the
/// stretching delays excepted) and a seed derived from the soak's.
fn fault_rules(config: &SoakConfig) -> Vec<FaultRule> {
    let r = config.fault_rate;
    let post = |rule: FaultRule| rule.method("POST").path_contains("resetPasscode");
    let get = |rule: FaultRule| rule.method("GET");
    // Longer than any call may wait: the function's own timeout cuts it off.
    let hang = config.deadline_ms + 1000;
    let rules = [
        (post(FaultRule::status_retry_after(429, 1)), r * 0.25),
        (post(FaultRule::status(429)), r * 0.15),
        (post(FaultRule::status(503)), r * 0.15),
        (post(FaultRule::status(504)), r * 0.1),
        (
            post(FaultRule::drop_connection(DropPoint::BeforeCommit)),
            r * 0.15,
        ),
        (
            post(FaultRule::drop_connection(DropPoint::AfterCommit)),
            r * 0.2,
        ),
        (post(FaultRule::delay_ms(250)), 0.7),
        (get(FaultRule::status_retry_after(429, 1)), r * 0.3),
        (get(FaultRule::status(503)), r * 0.3),
        (
            get(FaultRule::drop_connection(DropPoint::BeforeCommit)),
            r * 0.3,
        ),
        (get(FaultRule::delay_ms(hang)), r * 0.05),
        (get(FaultRule::delay_ms(120)), 0.25),
    ];
    rules
        .into_iter()
        .enumerate()
        .map(|(i, (rule, p))| {
            rule.endpoint(Endpoint::Graph)
                .times(u32::MAX)
                .probability(p, config.seed.wrapping_mul(1000).wrapping_add(i as u64))
        })
        .collect()
}
