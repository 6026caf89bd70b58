//! What the bench measured, the budget it is compared with, the table and the JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::size::{Arch, Size, bootstrap_size};
use crate::{Args, Lookup};

/// The budget, as the README states it. MB are 10^6 bytes.
pub mod budget {
    pub const INIT_MEDIAN_MS: f64 = 15.0;
    pub const WARM_CPU_MS: f64 = 1.0;
    pub const PEAK_RSS_MB: f64 = 12.0;
    pub const ARM64_BOOTSTRAP_MB: f64 = 5.0;
}

/// Network calls of one invocation (or of one init).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Calls {
    pub secrets_manager: u64,
    pub token: u64,
    pub graph: u64,
    /// Idempotency-table calls (PutItem, UpdateItem, DeleteItem).
    pub dynamodb: u64,
    /// AWS calls (Secrets Manager and DynamoDB) by `X-Amz-Target`.
    pub aws_operations: BTreeMap<String, u64>,
}

/// Smallest, largest and mean of a per-invocation count.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CountRange {
    pub min: u64,
    pub max: u64,
    pub mean: f64,
}

impl CountRange {
    fn of(values: impl Iterator<Item = u64>) -> CountRange {
        let values: Vec<u64> = values.collect();
        CountRange {
            min: values.iter().copied().min().unwrap_or(0),
            max: values.iter().copied().max().unwrap_or(0),
            mean: values.iter().sum::<u64>() as f64 / values.len().max(1) as f64,
        }
    }

    fn text(&self) -> String {
        if self.min == self.max {
            self.min.to_string()
        } else {
            format!("{}-{} (mean {:.2})", self.min, self.max, self.mean)
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct CallSummary {
    pub secrets_manager: CountRange,
    pub token: CountRange,
    pub graph: CountRange,
    pub dynamodb: CountRange,
}

impl CallSummary {
    fn of(calls: &[Calls]) -> CallSummary {
        CallSummary {
            secrets_manager: CountRange::of(calls.iter().map(|c| c.secrets_manager)),
            token: CountRange::of(calls.iter().map(|c| c.token)),
            graph: CountRange::of(calls.iter().map(|c| c.graph)),
            dynamodb: CountRange::of(calls.iter().map(|c| c.dynamodb)),
        }
    }

    /// `SM/token/Graph`.
    fn text(&self) -> String {
        format!(
            "{}/{}/{}",
            self.secrets_manager.text(),
            self.token.text(),
            self.graph.text()
        )
    }
}

/// Distribution of durations, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Dist {
    pub samples: usize,
    pub min_ms: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Dist {
    pub fn of(durations: &[Duration]) -> Dist {
        let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        // Nearest rank.
        let rank = |p: f64| -> f64 {
            if ms.is_empty() {
                return 0.0;
            }
            let index = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[index.clamp(1, ms.len()) - 1]
        };
        Dist {
            samples: ms.len(),
            min_ms: ms.first().copied().unwrap_or(0.0),
            median_ms: rank(50.0),
            p95_ms: rank(95.0),
            p99_ms: rank(99.0),
            max_ms: ms.last().copied().unwrap_or(0.0),
            mean_ms: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        }
    }
}

/// utime and stime count clock ticks of 1/USER_HZ s; USER_HZ is 100 on Linux.
const CLOCK_TICK_MS: f64 = 10.0;

#[derive(Debug, Serialize)]
pub struct WarmReport {
    pub lookup: &'static str,
    pub invocations: usize,
    pub latency: Dist,
    /// utime + stime of the process over the run, divided by the invocations
    /// (clock-tick resolution over the whole run).
    pub cpu_ms_per_invocation: f64,
    pub cpu_ms_total: f64,
    /// Resolution of `cpu_ms_per_invocation`: one clock tick / invocations.
    pub cpu_ms_resolution: f64,
    /// The same from the scheduler's nanosecond accounting of the live
    /// threads (`/proc/PID/task/*/schedstat`).
    pub sched_cpu_ms_per_invocation: Option<f64>,
    pub calls_per_invocation: CallSummary,
}

impl WarmReport {
    pub fn new(
        lookup: Lookup,
        latencies: Vec<Duration>,
        cpu: Duration,
        sched: Option<Duration>,
        calls: Vec<Calls>,
    ) -> Self {
        let n = latencies.len();
        WarmReport {
            lookup: match lookup {
                Lookup::Id => "id",
                Lookup::Serial => "serialNumber",
            },
            invocations: n,
            latency: Dist::of(&latencies),
            cpu_ms_per_invocation: cpu.as_secs_f64() * 1e3 / n.max(1) as f64,
            cpu_ms_total: cpu.as_secs_f64() * 1e3,
            cpu_ms_resolution: CLOCK_TICK_MS / n.max(1) as f64,
            sched_cpu_ms_per_invocation: sched.map(|d| d.as_secs_f64() * 1e3 / n.max(1) as f64),
            calls_per_invocation: CallSummary::of(&calls),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Sizes {
    pub arm64: Option<Size>,
    pub x86_64: Option<Size>,
}

/// Durations and the calls made during each, one entry per sample.
#[derive(Debug, Default)]
pub struct Samples {
    pub times: Vec<Duration>,
    pub calls: Vec<Calls>,
}

impl Samples {
    pub fn push(&mut self, time: Duration, calls: Calls) {
        self.times.push(time);
        self.calls.push(calls);
    }

    fn latency(&self) -> Dist {
        Dist::of(&self.times)
    }

    fn call_summary(&self) -> CallSummary {
        CallSummary::of(&self.calls)
    }

    /// The summary next to the raw samples, as the JSON report has it.
    fn json(&self) -> serde_json::Value {
        let ms: Vec<f64> = self.times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        serde_json::json!({
            "latency": self.latency(),
            "samples_ms": ms,
            "calls": self.call_summary(),
        })
    }
}

/// Everything measured for one function. The raw vectors are kept for the
/// JSON; the summaries are computed when the report is written.
#[derive(Debug, Serialize)]
pub struct FunctionReport {
    pub name: String,
    pub binary: PathBuf,
    pub binary_bytes: u64,
    /// Fresh processes: until they ask for their first event.
    #[serde(skip)]
    pub init: Samples,
    /// The first invocation of each fresh process (client-secret secret).
    #[serde(skip)]
    pub cold: Samples,
    /// The same with a certificate secret.
    #[serde(skip)]
    pub cold_certificate: Samples,
    pub warm: Vec<WarmReport>,
    pub peak_rss_kib: Option<u64>,
    pub sizes: Sizes,
}

impl FunctionReport {
    pub fn new(name: &str, binary: &Path) -> FunctionReport {
        FunctionReport {
            name: name.to_owned(),
            binary: binary.to_path_buf(),
            binary_bytes: std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0),
            init: Samples::default(),
            cold: Samples::default(),
            cold_certificate: Samples::default(),
            warm: Vec::new(),
            peak_rss_kib: None,
            sizes: Sizes::default(),
        }
    }

    fn writes(&self) -> bool {
        self.name != "passcode-status"
    }

    fn warm(&self, lookup: &str) -> Option<&WarmReport> {
        self.warm.iter().find(|w| w.lookup == lookup)
    }

    /// Graph calls a warm invocation may make: read (and list, by serial
    /// number), then the POST for the three write functions.
    fn graph_budget(&self, lookup: &str) -> u64 {
        let reads = if lookup == "id" { 1 } else { 2 };
        reads + u64::from(self.writes())
    }

    /// A write claims its idempotency record and stores the outcome: two
    /// calls; `passcode-status` does not use the table.
    fn dynamodb_budget(&self) -> u64 {
        if self.writes() { 2 } else { 0 }
    }

    /// DynamoDB calls per invocation: the cold run, then each warm run.
    fn dynamodb_calls(&self) -> Vec<CountRange> {
        std::iter::once(self.cold.call_summary().dynamodb)
            .chain(self.warm.iter().map(|w| w.calls_per_invocation.dynamodb))
            .collect()
    }

    fn dynamodb_off_budget(&self) -> bool {
        let expected = self.dynamodb_budget();
        self.dynamodb_calls()
            .iter()
            .any(|c| c.min != expected || c.max != expected)
    }

    /// A cold invocation makes one Secrets Manager call, one token call and
    /// no more Graph calls than a warm one by id.
    fn cold_off_budget(&self, cold: &CallSummary) -> bool {
        cold.secrets_manager.max != 1
            || cold.token.max != 1
            || cold.graph.max > self.graph_budget("id")
    }
}

pub fn sizes(function: &str, bin_dir: &Path, host_binary: &Path) -> Sizes {
    let mut target_dirs = Vec::new();
    if let Some(dir) = bin_dir.parent() {
        target_dirs.push(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        target_dirs.push(local_stack::workspace_root().join(dir));
    }
    target_dirs.push(local_stack::workspace_root().join("target"));
    target_dirs.dedup();
    Sizes {
        arm64: bootstrap_size(function, Arch::Arm64, &target_dirs, host_binary),
        x86_64: bootstrap_size(function, Arch::X86_64, &target_dirs, host_binary),
    }
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub arch: &'static str,
    pub cpu: String,
    pub kernel: String,
}

impl Machine {
    fn current() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            arch: std::env::consts::ARCH,
            cpu,
            kernel,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Method {
    pub init_samples: usize,
    pub warm_invocations_per_lookup: usize,
    pub warmup_invocations: usize,
    pub log_level: &'static str,
    pub bin_dir: PathBuf,
    pub description: Vec<&'static str>,
}

const METHOD: [&str; 8] = [
    "Each function binary runs under the Runtime API emulator (local-stack) with the Lambda environment of provided.al2023, against the Graph simulator (in this process) and moto; all on loopback.",
    "init: spawn -> first GET /runtime/invocation/next, one fresh process per sample.",
    "cold: the first invocation of each of those fresh processes, by device id; latency is from the event being handed out to the answer (Lambda's Duration). Twice: with a client-secret secret, and (a second stack) with a certificate secret, whose token request carries a PS256-signed client assertion.",
    "Secrets Manager calls are counted by a proxy in front of moto (AWS_ENDPOINT_URL[_SECRETS_MANAGER] point at it); token and Graph calls from the simulator's request log, read and cleared after every invocation.",
    "warm: one process, after its cold invocation and the warm-up invocations; API Gateway HTTP API (2.0) events, the device in the path (by id) or in the body (by serialNumber).",
    "Every warm write invocation is a real accepted POST: between invocations, outside the timed region, the simulator's control API marks the previous resetPasscode 'done' (POST /_sim/devices/{id}/actions/resetPasscode), so the duplicate check finds nothing pending. Intune's write throttle is switched off in the simulator.",
    "CPU per invocation: utime+stime delta of the function process over the warm run / invocations (clock ticks, so the per-invocation figure is only as fine as tick/invocations).",
    "peak RSS: VmHWM of the warm process after both warm runs. Sizes: cargo-lambda bootstraps when built, else the host release binary (x86_64).",
];

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub mode: &'static str,
    pub machine: Machine,
    pub method: Method,
    pub functions: Vec<FunctionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker: Option<crate::tracker::TrackerReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::queue::QueueReport>,
}

impl Report {
    pub fn new(args: &Args, bin_dir: &Path, log_level: &'static str) -> Report {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Report {
            date,
            mode: if args.quick { "quick" } else { "full" },
            machine: Machine::current(),
            method: Method {
                init_samples: args.init_samples,
                warm_invocations_per_lookup: args.warm_invocations,
                warmup_invocations: args.warmup,
                log_level,
                bin_dir: bin_dir.to_path_buf(),
                description: METHOD.to_vec(),
            },
            functions: Vec::new(),
            tracker: None,
            queue: None,
        }
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut value = serde_json::to_value(self)?;
        // Summaries next to the raw samples.
        for (function, json) in self
            .functions
            .iter()
            .zip(value["functions"].as_array_mut().into_iter().flatten())
        {
            json["init"] = function.init.json();
            let mut cold = function.cold.json();
            cold["lookup"] = "id".into();
            cold["aws_operations"] = serde_json::json!(
                function
                    .cold
                    .calls
                    .iter()
                    .map(|c| &c.aws_operations)
                    .collect::<Vec<_>>()
            );
            json["cold"] = cold;
            let mut cold_certificate = function.cold_certificate.json();
            cold_certificate["lookup"] = "id".into();
            json["cold_certificate_secret"] = cold_certificate;
            json["over_budget"] = serde_json::json!(over_budget(function));
        }
        std::fs::write(path, serde_json::to_string_pretty(&value)? + "\n")?;
        Ok(())
    }

    /// One table: a row per measure, a column per function; `!` marks a
    /// figure over budget.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut row = |label: &str, budget: &str, cell: &dyn Fn(&FunctionReport) -> String| {
            rows.push((
                label.to_owned(),
                budget.to_owned(),
                self.functions.iter().map(cell).collect(),
            ));
        };
        let mark = |text: String, over: bool| if over { format!("{text} !") } else { text };
        row("init median / max (ms)", "<= 15 median", &|f| {
            let d = f.init.latency();
            mark(
                format!("{:.1} / {:.1}", d.median_ms, d.max_ms),
                d.median_ms > budget::INIT_MEDIAN_MS,
            )
        });
        row("init calls SM/token/Graph", "0/0/0", &|f| {
            let c = f.init.call_summary();
            mark(c.text(), total_max(&c) > 0)
        });
        type Pick = fn(&FunctionReport) -> &Samples;
        let cold_forms: [(&str, Pick); 2] = [
            ("client secret", |f| &f.cold),
            ("certificate", |f| &f.cold_certificate),
        ];
        for (form, cold) in cold_forms {
            row(&format!("cold ({form}) median / max (ms)"), "", &|f| {
                let d = cold(f).latency();
                format!("{:.1} / {:.1}", d.median_ms, d.max_ms)
            });
            row(&format!("cold ({form}) SM/token/Graph"), "1/1/warm", &|f| {
                let c = cold(f).call_summary();
                mark(c.text(), f.cold_off_budget(&c))
            });
        }
        for (lookup, title) in [("id", "by id"), ("serialNumber", "by serial")] {
            row(&format!("warm {title} p50/p95/p99 (ms)"), "", &|f| {
                f.warm(lookup).map_or("-".into(), |w| {
                    let d = &w.latency;
                    format!("{:.2}/{:.2}/{:.2}", d.median_ms, d.p95_ms, d.p99_ms)
                })
            });
            row(&format!("warm {title} CPU/invocation (ms)"), "<= 1", &|f| {
                f.warm(lookup).map_or("-".into(), |w| {
                    let mut text = format!("{:.2}", w.cpu_ms_per_invocation);
                    // Too few invocations for the clock tick to resolve.
                    if w.cpu_ms_resolution > 0.05 {
                        let _ = write!(text, " (+-{:.2})", w.cpu_ms_resolution);
                    }
                    mark(text, w.cpu_ms_per_invocation > budget::WARM_CPU_MS)
                })
            });
            let calls_budget = if lookup == "id" {
                "0/0/2 (status 1)"
            } else {
                "0/0/<=3 (status 2)"
            };
            row(
                &format!("warm {title} calls SM/token/Graph"),
                calls_budget,
                &|f| {
                    f.warm(lookup).map_or("-".into(), |w| {
                        let c = &w.calls_per_invocation;
                        let over = c.secrets_manager.max > 0
                            || c.token.max > 0
                            || c.graph.max > f.graph_budget(lookup)
                            || (lookup == "id" && c.graph.min < f.graph_budget(lookup));
                        mark(c.text(), over)
                    })
                },
            );
        }
        row("DynamoDB calls cold / warm", "2 / 2 (status 0)", &|f| {
            let calls: Vec<String> = f.dynamodb_calls().iter().map(CountRange::text).collect();
            let (cold, warm) = calls.split_first().expect("the cold run is always there");
            mark(
                format!("{cold} / {}", warm.join(", ")),
                f.dynamodb_off_budget(),
            )
        });
        row("peak RSS (MB)", "<= 12", &|f| {
            f.peak_rss_kib.map_or("-".into(), |kib| {
                let mb = kib as f64 * 1024.0 / 1e6;
                mark(format!("{mb:.2}"), mb > budget::PEAK_RSS_MB)
            })
        });
        row("bootstrap arm64 (MB)", "<= 5", &|f| {
            size_cell(f.sizes.arm64.as_ref(), Some(budget::ARM64_BOOTSTRAP_MB))
        });
        row("bootstrap x86_64 (MB)", "", &|f| {
            size_cell(f.sizes.x86_64.as_ref(), None)
        });

        let label_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let budget_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6);
        let widths: Vec<usize> = self
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| {
                rows.iter()
                    .map(|r| r.2[i].len())
                    .chain([f.name.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nbench ({} mode, {} fresh processes, {} warm invocations per lookup) — {}, {} x {}, {}",
            self.mode,
            self.method.init_samples,
            self.method.warm_invocations_per_lookup,
            self.date,
            self.machine.nproc,
            self.machine.arch,
            self.machine.cpu
        );
        let mut line = format!("{:label_width$}  {:budget_width$}", "", "budget");
        for (f, w) in self.functions.iter().zip(&widths) {
            let _ = write!(line, "  {:>w$}", f.name);
        }
        let _ = writeln!(out, "{}", line.trim_end());
        for (label, budget, cells) in &rows {
            let mut line = format!("{label:label_width$}  {budget:budget_width$}");
            for (cell, w) in cells.iter().zip(&widths) {
                let _ = write!(line, "  {cell:>w$}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let _ = writeln!(
            out,
            "\n! = over budget. SM = Secrets Manager (counted by a proxy), token/Graph = the simulator's request log."
        );
        let _ = writeln!(
            out,
            "Warm writes are real accepted POSTs: after each one, outside the timed region, the simulator marks the reset 'done'."
        );
        for f in &self.functions {
            for (arch, size) in [("arm64", &f.sizes.arm64), ("x86_64", &f.sizes.x86_64)] {
                if let Some(size) = size
                    && size.older_than_benchmarked_binary
                {
                    let _ = writeln!(
                        out,
                        "note: {} {arch} size is from {} (older than the benchmarked binary)",
                        f.name,
                        size.path.display()
                    );
                }
            }
        }
        if self.functions.iter().any(|f| f.sizes.arm64.is_none()) {
            let _ = writeln!(
                out,
                "arm64 sizes need `./dev release` (cargo lambda build --release --arm64) first."
            );
        }
        out
    }
}

fn total_max(c: &CallSummary) -> u64 {
    c.secrets_manager.max + c.token.max + c.graph.max + c.dynamodb.max
}

fn size_cell(size: Option<&Size>, budget_mb: Option<f64>) -> String {
    match size {
        None => "-".into(),
        Some(size) => {
            let mb = size.bytes as f64 / 1e6;
            let mut text = format!("{mb:.2}");
            if size.source != "cargo-lambda" {
                text.push_str(" (host)");
            }
            if budget_mb.is_some_and(|b| mb > b) {
                text.push_str(" !");
            }
            text
        }
    }
}

/// The budget lines this function misses, in words.
fn over_budget(f: &FunctionReport) -> Vec<String> {
    let mut over = Vec::new();
    let init = f.init.latency();
    if init.median_ms > budget::INIT_MEDIAN_MS {
        over.push(format!(
            "init median {:.1} ms > {} ms",
            init.median_ms,
            budget::INIT_MEDIAN_MS
        ));
    }
    let init_calls = f.init.call_summary();
    if total_max(&init_calls) > 0 {
        over.push(format!("network calls during init: {}", init_calls.text()));
    }
    for (form, samples) in [
        ("client secret", &f.cold),
        ("certificate", &f.cold_certificate),
    ] {
        let cold = samples.call_summary();
        if f.cold_off_budget(&cold) {
            over.push(format!(
                "cold calls ({form}) SM/token/Graph {}",
                cold.text()
            ));
        }
    }
    for w in &f.warm {
        if w.cpu_ms_per_invocation > budget::WARM_CPU_MS {
            over.push(format!(
                "warm by {} CPU {:.2} ms/invocation > {} ms",
                w.lookup,
                w.cpu_ms_per_invocation,
                budget::WARM_CPU_MS
            ));
        }
        let c = &w.calls_per_invocation;
        if c.secrets_manager.max > 0 || c.token.max > 0 || c.graph.max > f.graph_budget(w.lookup) {
            over.push(format!(
                "warm by {} calls SM/token/Graph {}",
                w.lookup,
                c.text()
            ));
        }
    }
    if f.dynamodb_off_budget() {
        let calls: Vec<String> = f.dynamodb_calls().iter().map(CountRange::text).collect();
        over.push(format!(
            "DynamoDB calls per invocation {} (expected {})",
            calls.join(", "),
            f.dynamodb_budget()
        ));
    }
    if let Some(kib) = f.peak_rss_kib {
        let mb = kib as f64 * 1024.0 / 1e6;
        if mb > budget::PEAK_RSS_MB {
            over.push(format!("peak RSS {mb:.2} MB > {} MB", budget::PEAK_RSS_MB));
        }
    }
    if let Some(size) = &f.sizes.arm64 {
        let mb = size.bytes as f64 / 1e6;
        if mb > budget::ARM64_BOOTSTRAP_MB {
            over.push(format!(
                "arm64 bootstrap {mb:.2} MB > {} MB",
                budget::ARM64_BOOTSTRAP_MB
            ));
        }
    }
    over
}
