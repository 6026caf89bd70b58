//! The invariants of the module comment, checked after the run against every
//! answer and the simulator's request log. Each breach is one line of text.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use graph_sim::LoggedRequest;
use passcode_core::Action;

use super::SoakConfig;
use super::answer::Answer;
use super::devices::SoakDevice;
use super::plan::{Expect, Plan};
use super::run::Record;

/// Every breach of invariants 1–4, answers first, then the request log.
pub(super) fn violations(
    config: &SoakConfig,
    pool: &[SoakDevice],
    plans: &[Arc<Plan>],
    records: &[Record],
    log: &[LoggedRequest],
) -> Vec<String> {
    let mut found = answers_fit(config, plans, records);
    let (asked_for, committed_per_device) = posts_were_asked_for(pool, plans, log);
    found.extend(asked_for);
    found.extend(one_post_per_device(&committed_per_device));
    found.extend(accepts_are_committed(plans, records, &committed_per_device));
    found
}

/// Whether a logged request is a POST that queued an action: a 2xx, or a
/// connection dropped after the simulator recorded the action.
pub(super) fn committed(r: &LoggedRequest) -> bool {
    r.reached_device
        && (r.status.is_some_and(|s| (200..300).contains(&s))
            || r.fault.as_deref() == Some("drop:afterCommit"))
}

/// Invariants 1 and 4: every answer fits its request and came before the
/// deadline, and a logical request is accepted fresh at most once.
fn answers_fit(config: &SoakConfig, plans: &[Arc<Plan>], records: &[Record]) -> Vec<String> {
    let mut found = Vec::new();
    let mut fresh_accepts: HashMap<usize, usize> = HashMap::new();
    for r in records {
        let plan = &plans[r.plan];
        if let Some(why) = misfit(plan, &r.answer, config.idempotency) {
            found.push(format!(
                "{}{}: {} — {why}",
                plan.describe(),
                if r.retry { " retry" } else { "" },
                r.answer.kind()
            ));
        }
        if r.latency >= config.deadline() {
            found.push(format!(
                "{}: answered after {} ms, deadline {} ms",
                plan.describe(),
                r.latency.as_millis(),
                config.deadline_ms
            ));
        }
        if let Answer::Outcome {
            name,
            replayed: false,
            ..
        } = &r.answer
            && name == "accepted"
        {
            *fresh_accepts.entry(r.plan).or_insert(0) += 1;
        }
    }
    for (&n, &accepts) in &fresh_accepts {
        if accepts > 1 {
            found.push(format!(
                "{}: accepted {accepts} times (not as replays)",
                plans[n].describe()
            ));
        }
    }
    found
}

/// Whether `answer` fits what the request asked for (invariant 1). `None` if it does.
fn misfit(plan: &Plan, answer: &Answer, idempotency: bool) -> Option<String> {
    let outcome = |names: &[&str]| match answer {
        Answer::Outcome { name, device, .. } if names.contains(&name.as_str()) => {
            (device.as_deref() != plan.device_id.as_deref())
                .then(|| format!("answer names device {device:?}"))
        }
        _ => Some("wrong kind of answer".into()),
    };
    let rejected = |codes: &[&str]| match answer {
        Answer::Rejected(code) if codes.contains(&code.as_str()) => None,
        _ => Some("wrong kind of answer".into()),
    };
    match (plan.expect, answer) {
        (_, Answer::Undefined(why)) => Some(why.clone()),
        (Expect::Invalid, _) => rejected(&["invalidRequest"]),
        (_, Answer::Transient(code)) => match code.as_str() {
            "requestInProgress" if !idempotency => Some("requestInProgress without a table".into()),
            // Nothing injected explains a setup error.
            "configurationError" => Some("configurationError under transient faults".into()),
            _ => None,
        },
        (Expect::Send, _) => outcome(&["accepted", "alreadyPending"]),
        (Expect::Refuse, _) => rejected(&["unsupportedPlatform", "deviceNotManaged"]),
        (Expect::Status, _) => outcome(&["status"]),
        (Expect::DryRun, _) => outcome(&["dryRun"]),
        (Expect::NotFound, _) => rejected(&["deviceNotFound"]),
        (Expect::Ambiguous, _) => rejected(&["ambiguousDevice"]),
    }
}

/// Invariant 3, first half: every POST went to a device that a valid request
/// for that action named, and no device refused one. Also counts the
/// committed POSTs per device, for the other checks.
fn posts_were_asked_for(
    pool: &[SoakDevice],
    plans: &[Arc<Plan>],
    log: &[LoggedRequest],
) -> (Vec<String>, BTreeMap<String, usize>) {
    let allowed: BTreeSet<(String, &str)> = plans
        .iter()
        .filter(|p| p.expect == Expect::Send)
        .filter_map(|p| p.device_id.clone().map(|d| (d, p.action.function_name())))
        .collect();
    let takes: HashMap<&str, Option<Action>> =
        pool.iter().map(|d| (d.id.as_str(), d.takes)).collect();
    let mut found = Vec::new();
    let mut committed_per_device: BTreeMap<String, usize> = BTreeMap::new();
    for entry in log {
        let Some(device) = posted_to(entry) else {
            continue;
        };
        // All three write actions are the same Graph call; the device decides.
        let asked = takes
            .get(device)
            .copied()
            .flatten()
            .is_some_and(|a| allowed.contains(&(device.to_owned(), a.function_name())));
        if !asked {
            found.push(format!(
                "POST #{} reached device {device}, which no valid request for its action named",
                entry.seq
            ));
        }
        if entry.reached_device && entry.status == Some(400) {
            found.push(format!(
                "POST #{} was refused by device {device}: it can't take the action",
                entry.seq
            ));
        }
        if committed(entry) {
            *committed_per_device.entry(device.to_owned()).or_insert(0) += 1;
        }
    }
    (found, committed_per_device)
}

/// The device of a logged device-action POST; `None` for any other request.
pub(super) fn posted_to(entry: &LoggedRequest) -> Option<&str> {
    match (&entry.device_id, &entry.action) {
        (Some(device), Some(_)) if entry.method == "POST" => Some(device),
        _ => None,
    }
}

/// Invariant 2: no device got more than one committed POST.
fn one_post_per_device(committed_per_device: &BTreeMap<String, usize>) -> Vec<String> {
    committed_per_device
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(device, n)| {
            format!("device {device} got {n} committed POSTs (sent twice: one logical request, or two at once)")
        })
        .collect()
}

/// Invariant 3, second half: every `accepted` answer is backed by a committed POST.
fn accepts_are_committed(
    plans: &[Arc<Plan>],
    records: &[Record],
    committed_per_device: &BTreeMap<String, usize>,
) -> Vec<String> {
    let mut found = Vec::new();
    for r in records {
        if let Answer::Outcome {
            name,
            device: Some(device),
            ..
        } = &r.answer
            && name == "accepted"
            && !committed_per_device.contains_key(device)
        {
            found.push(format!(
                "{}: accepted, but no POST on {device} was committed",
                plans[r.plan].describe()
            ));
        }
    }
    found
}
