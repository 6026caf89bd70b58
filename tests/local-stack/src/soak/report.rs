//! The figures of one run, as a table for a reader and as JSON: what was
//! sent, what came back, what the simulator saw, latency, and the violations
//! the checks found.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use graph_sim::LoggedRequest;
use serde::Serialize;

use super::SoakConfig;
use super::check::{committed, posted_to};
use super::faults::is_stretch;
use super::plan::Plan;
use super::run::Record;

/// The figures of one run and what it found wrong.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakReport {
    pub config: SoakConfig,
    pub wall_seconds: f64,
    pub logical_requests: usize,
    /// Every invocation: first copies, duplicates and retries.
    pub invocations: usize,
    /// Logical requests sent to several processes at once.
    pub duplicate_groups: usize,
    /// Invocations beyond the first copy of a duplicate group.
    pub duplicate_copies: usize,
    /// Requests sent at the same instant as another request for the same
    /// device (each pair counted once).
    pub rival_pairs: usize,
    /// Resends after a transient answer (same key or event id).
    pub retries: usize,
    /// Answers by kind: an outcome (`accepted`, `replayed:accepted`, ...),
    /// `rejected:<code>`, `transient:<code>` or `undefined`.
    pub outcomes: BTreeMap<String, usize>,
    /// Replays + `requestInProgress` + `alreadyPending`: answers that sent nothing
    /// because the request (or one for the same device) had already run.
    pub duplicates_suppressed: usize,
    pub graph_requests: usize,
    /// POSTs that reached the simulator, whatever happened to them.
    pub post_attempts: usize,
    /// POSTs that queued an action (2xx, or dropped after the commit).
    pub committed_posts: usize,
    /// POSTs refused by the write throttle.
    pub write_limited: usize,
    /// What each POST got: HTTP status, `(fault)` when injected, `dropped (fault)`.
    pub post_results: BTreeMap<String, usize>,
    /// Injected failures (statuses, dropped connections, hung reads); the
    /// short delays that only stretch a request are not counted.
    pub faults_injected: usize,
    /// Hits per fault rule, delays included (`POST status:429 retryAfter=1`, ...).
    pub faults: BTreeMap<String, usize>,
    pub latency_ms: Latency,
    /// The five slowest invocations, with what they answered.
    pub slowest: Vec<String>,
    pub violations: Vec<String>,
}

/// Invocation latency, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl SoakReport {
    /// Answers of one kind (0 when there were none).
    pub fn count(&self, kind: &str) -> usize {
        self.outcomes.get(kind).copied().unwrap_or(0)
    }

    /// Answers whose kind starts with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.outcomes
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// The figures as a table for a reader.
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(out, "  {label:<28} {value}");
        };
        line(
            "run",
            format!(
                "seed {}, {} processes per function, idempotency {}, deadline {} ms",
                c.seed,
                c.processes,
                if c.idempotency { "on" } else { "off" },
                c.deadline_ms
            ),
        );
        line(
            "stress",
            format!(
                "fault rate {:.2}, duplicates {:.2}, rivals {:.2}, write limit {} POSTs / {} s, {} devices",
                c.fault_rate,
                c.duplicate_fraction,
                c.rival_fraction,
                c.write_limit.max,
                c.write_limit.window_seconds,
                c.device_count()
            ),
        );
        line("wall time", format!("{:.1} s", self.wall_seconds));
        line("logical requests", self.logical_requests.to_string());
        line(
            "invocations",
            format!(
                "{} ({} duplicate groups, +{} copies, {} rival pairs, {} retries)",
                self.invocations,
                self.duplicate_groups,
                self.duplicate_copies,
                self.rival_pairs,
                self.retries
            ),
        );
        line("outcomes", String::new());
        for (kind, n) in &self.outcomes {
            line(&format!("  {kind}"), n.to_string());
        }
        line(
            "duplicates suppressed",
            self.duplicates_suppressed.to_string(),
        );
        line("Graph requests", self.graph_requests.to_string());
        line(
            "POSTs",
            format!(
                "{} sent, {} committed, {} write-limited (429)",
                self.post_attempts, self.committed_posts, self.write_limited
            ),
        );
        for (result, n) in &self.post_results {
            line(&format!("  {result}"), n.to_string());
        }
        line("faults injected", self.faults_injected.to_string());
        for (label, n) in &self.faults {
            line(&format!("  {label}"), n.to_string());
        }
        line(
            "latency",
            format!(
                "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                self.latency_ms.p50, self.latency_ms.p99, self.latency_ms.max
            ),
        );
        for slow in &self.slowest {
            line("", slow.clone());
        }
        line("violations", self.violations.len().to_string());
        for v in &self.violations {
            let _ = writeln!(out, "    - {v}");
        }
        out
    }
}

/// The report of a finished run; `violations` are the checks' findings.
pub(super) fn build(
    config: &SoakConfig,
    plans: &[Arc<Plan>],
    records: &[Record],
    log: &[LoggedRequest],
    faults: BTreeMap<String, usize>,
    wall: Duration,
    violations: Vec<String>,
) -> SoakReport {
    let mut outcomes = BTreeMap::new();
    for r in records {
        *outcomes.entry(r.answer.kind()).or_insert(0) += 1;
    }
    let suppressed = outcomes
        .iter()
        .filter(|(k, _)| {
            k.starts_with("replayed:")
                || *k == "transient:requestInProgress"
                || *k == "alreadyPending"
        })
        .map(|(_, n)| n)
        .sum();
    let posts = Posts::tally(log);
    let groups: Vec<&Arc<Plan>> = plans.iter().filter(|p| p.copies.len() > 1).collect();
    SoakReport {
        config: SoakConfig {
            devices: config.device_count(),
            ..config.clone()
        },
        wall_seconds: wall.as_secs_f64(),
        logical_requests: plans.len(),
        invocations: records.len(),
        duplicate_groups: groups.len(),
        duplicate_copies: groups.iter().map(|p| p.copies.len() - 1).sum(),
        rival_pairs: plans.iter().filter(|p| p.rival.is_some()).count(),
        retries: records.iter().filter(|r| r.retry).count(),
        outcomes,
        duplicates_suppressed: suppressed,
        graph_requests: log.iter().filter(|e| e.endpoint == "graph").count(),
        post_attempts: posts.attempts,
        committed_posts: posts.committed,
        write_limited: posts.write_limited,
        post_results: posts.results,
        faults_injected: faults
            .iter()
            .filter(|(label, _)| !is_stretch(label))
            .map(|(_, n)| n)
            .sum(),
        faults,
        latency_ms: latency(records),
        slowest: slowest(plans, records),
        violations,
    }
}

/// What the device-action POSTs in the simulator's log got.
struct Posts {
    attempts: usize,
    committed: usize,
    write_limited: usize,
    results: BTreeMap<String, usize>,
}

impl Posts {
    fn tally(log: &[LoggedRequest]) -> Posts {
        let mut posts = Posts {
            attempts: 0,
            committed: 0,
            write_limited: 0,
            results: BTreeMap::new(),
        };
        for entry in log.iter().filter(|e| posted_to(e).is_some()) {
            posts.attempts += 1;
            let result = match (entry.status, &entry.fault) {
                (Some(status), None) => status.to_string(),
                (Some(status), Some(fault)) => format!("{status} ({fault})"),
                (None, fault) => format!("dropped ({})", fault.as_deref().unwrap_or("?")),
            };
            *posts.results.entry(result).or_insert(0) += 1;
            // The throttle's own 429s, not injected ones (a delay may precede it).
            if entry.status == Some(429)
                && !entry
                    .fault
                    .as_deref()
                    .is_some_and(|f| f.starts_with("status:"))
            {
                posts.write_limited += 1;
            }
            if committed(entry) {
                posts.committed += 1;
            }
        }
        posts
    }
}

fn latency(records: &[Record]) -> Latency {
    let mut latencies: Vec<f64> = records
        .iter()
        .map(|r| r.latency.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1]
    };
    Latency {
        p50: percentile(0.5),
        p99: percentile(0.99),
        max: latencies.last().copied().unwrap_or(0.0),
    }
}

/// The five slowest invocations, with what they answered.
fn slowest(plans: &[Arc<Plan>], records: &[Record]) -> Vec<String> {
    let mut by_latency: Vec<&Record> = records.iter().collect();
    by_latency.sort_by_key(|r| std::cmp::Reverse(r.latency));
    by_latency
        .iter()
        .take(5)
        .map(|r| {
            format!(
                "{} ms: {} → {}",
                r.latency.as_millis(),
                plans[r.plan].describe(),
                r.answer.kind()
            )
        })
        .collect()
}
