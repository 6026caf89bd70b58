//! Benchmark of the four release function binaries, each run the way Lambda
//! runs it (under the Runtime API emulator) against the local stack: the
//! Graph simulator and moto, with a counting proxy in front of moto.
//!
//! ```text
//! cargo build --release -p reset-passcode -p remove-passcode -p reset-windows-pin -p passcode-status
//! cargo run -p bench --release -- [--quick] [--json PATH]
//! ```
//!
//! Per function it measures init (spawn → first `GET /runtime/invocation/next`)
//! over fresh processes, the first (cold) invocation of each of them, warm
//! invocations by device id and by serial number, CPU time per invocation,
//! the network calls of each phase, peak RSS and the `bootstrap` sizes. It
//! asserts nothing about timings; it fails (exit 1) when an invocation does.

mod proxy;
mod queue;
mod report;
mod size;
mod tracker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use graph_sim::Control;
use graph_sim::seed::devices as dev;
use local_stack::events::{Caller, api_v2};
use local_stack::stack::{SecretForm, Stack};
use local_stack::{FunctionProcess, FunctionSpec, Invocation};
use passcode_core::Action;
use passcode_core::action::TRACKER_FUNCTION;
use serde_json::{Value, json};

use crate::proxy::{CountingProxy, Counts};
use crate::report::{Calls, FunctionReport, Report, Samples, WarmReport};

/// Per invocation; far above anything expected on loopback.
const TIMEOUT: Duration = Duration::from_secs(20);
const CALLER: &str = "arn:aws:iam::123456789012:user/helpdesk-integration";
const REASON: &str = "user locked out (benchmark)";
/// Lambda's default application log level for JSON logs.
const LOG_LEVEL: &str = "INFO";

const USAGE: &str = "\
usage: bench [--quick] [--json PATH] [--init N] [--warm N] [--function NAME]...

  --quick          3 fresh processes and 20 warm invocations per lookup (default 10 and 500)
  --json PATH      where to write the results (default target/bench/latest.json)
  --init N         fresh processes per function (init and cold invocation)
  --warm N         warm invocations per function and lookup form
  --function NAME  only this function (repeatable); `passcode-tracker` is one
                   run over 1,000 open actions (200 with --quick), `queue` is
                   1,000 queued writes paced by the write budget (100 with --quick)

The function binaries are taken from PASSCODE_BIN_DIR, else from the directory
of this (release) executable: build them with
  cargo build --release -p reset-passcode -p remove-passcode -p reset-windows-pin -p passcode-status -p reveal-passcode -p passcode-tracker";

#[derive(Debug)]
pub struct Args {
    pub quick: bool,
    pub json: PathBuf,
    pub init_samples: usize,
    pub warm_invocations: usize,
    pub warmup: usize,
    pub only: Vec<String>,
}

impl Args {
    /// Whether `--function` selected `name` (none given: every part).
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|n| n == name)
    }
}

fn parse_args() -> Result<Args, String> {
    let mut quick = false;
    let mut json = None;
    let mut init = None;
    let mut warm = None;
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    let number = |value: Option<String>, flag: &str| -> Result<usize, String> {
        value
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{flag} needs a positive number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--json" => json = Some(PathBuf::from(args.next().ok_or("--json needs a path")?)),
            "--init" => init = Some(number(args.next(), "--init")?),
            "--warm" => warm = Some(number(args.next(), "--warm")?),
            "--function" => only.push(args.next().ok_or("--function needs a name")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    for name in &only {
        let known = Action::ALL.iter().any(|a| a.function_name() == name)
            || [TRACKER_FUNCTION, "queue"].contains(&name.as_str());
        if !known {
            return Err(format!("no function named {name:?}"));
        }
    }
    Ok(Args {
        quick,
        json: json
            .unwrap_or_else(|| local_stack::workspace_root().join("target/bench/latest.json")),
        init_samples: init.unwrap_or(if quick { 3 } else { 10 }),
        warm_invocations: warm.unwrap_or(if quick { 20 } else { 500 }),
        warmup: if quick { 2 } else { 10 },
        only,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("bench: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print!("{}", report.table());
            if let Some(tracker) = &report.tracker {
                print!("{}", tracker.table());
            }
            if let Some(queue) = &report.queue {
                print!("{}", queue.table());
            }
            match report.write_json(&args.json) {
                Ok(()) => {
                    println!("\nJSON: {}", args.json.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench: writing {}: {e:#}", args.json.display());
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One function and the device it acts on.
#[derive(Clone, Copy)]
struct Target {
    action: Action,
    device_id: &'static str,
    serial: &'static str,
}

const TARGETS: [Target; 4] = [
    Target {
        action: Action::ResetPasscode,
        device_id: dev::AE_DEDICATED,
        serial: "R58N10AE001",
    },
    Target {
        action: Action::RemovePasscode,
        device_id: dev::IOS_ADE,
        serial: "F2LXK0AAAA10",
    },
    Target {
        action: Action::ResetWindowsPin,
        device_id: dev::WINDOWS_10_MOBILE,
        serial: "LUMIA000018",
    },
    Target {
        action: Action::Status,
        device_id: dev::AE_FULLY_MANAGED,
        serial: "R58N10AE002",
    },
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Id,
    Serial,
}

/// What every measurement needs.
struct Bench {
    stack: Stack,
    control: Control,
    proxy: CountingProxy,
    bin_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Bench {
    /// A local stack whose secret has the given form, a counting proxy in
    /// front of its moto, and the function environment pointing at both.
    async fn start(form: SecretForm, bin_dir: PathBuf) -> anyhow::Result<Bench> {
        let mut stack = Stack::start(form)
            .await
            .context("starting the local stack (run `./dev` once to install moto)")?;
        // As deployed by default: writes claim an idempotency record first.
        stack
            .enable_idempotency()
            .await
            .context("creating the idempotency table")?;
        let control = stack.sim.control();
        // Intune's write throttle (200 POSTs / 20 s) would turn the warm run
        // into a test of Retry-After handling.
        control.set_write_limit(None).await?;
        let proxy = CountingProxy::start(stack.moto.endpoint()).await?;
        let mut env = proxied_env(&stack, &proxy, LOG_LEVEL);
        // The request path is measured, not the tenant's write budget:
        // paced writes would measure the budget's waits (and each write
        // takes one more DynamoDB call: README, "Queued requests and the
        // write budget").
        env.push(("WRITE_BUDGET_PER_20S".into(), "0".into()));
        Ok(Bench {
            stack,
            control,
            proxy,
            bin_dir,
            env,
        })
    }
}

/// The functions' environment with every AWS endpoint sent through `proxy`.
fn proxied_env(stack: &Stack, proxy: &CountingProxy, log_level: &str) -> Vec<(String, String)> {
    let mut env = stack.function_env();
    for (key, value) in &mut env {
        if key.starts_with("AWS_ENDPOINT_URL") {
            *value = proxy.url().to_owned();
        }
    }
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), log_level.into()));
    env
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    let bin_dir = release_bin_dir()?;
    eprintln!("==> function binaries: {}", bin_dir.display());
    let (secret, certificate) = tokio::join!(
        Bench::start(SecretForm::ClientSecret, bin_dir.clone()),
        Bench::start(SecretForm::Certificate, bin_dir.clone()),
    );
    let (secret, certificate) = (secret?, certificate?);

    let mut report = Report::new(args, &bin_dir, LOG_LEVEL);
    for target in TARGETS {
        let name = target.action.function_name();
        if !args.wants(name) {
            continue;
        }
        eprintln!("==> {name}");
        let mut function = bench_function(&secret, target, args)
            .await
            .with_context(|| format!("benchmarking {name}"))?;
        function.cold_certificate = cold_runs(&certificate, target, args.init_samples)
            .await
            .with_context(|| format!("benchmarking {name} with a certificate secret"))?;
        report.functions.push(function);
    }
    drop((secret.stack, certificate.stack));
    // The quick run (CI) proves both parts work; the full run measures them.
    let (open_actions, devices) = if args.quick { (200, 100) } else { (1000, 1000) };
    if args.wants(TRACKER_FUNCTION) {
        eprintln!("==> {TRACKER_FUNCTION} ({open_actions} open actions)");
        let run = tracker::run(&bin_dir, open_actions, LOG_LEVEL).await;
        report.tracker = Some(run.context("benchmarking the tracker")?);
    }
    if args.wants("queue") {
        eprintln!("==> queued writes ({devices} devices)");
        let run = queue::run(&bin_dir, devices, LOG_LEVEL).await;
        report.queue = Some(run.context("benchmarking queued writes")?);
    }
    Ok(report)
}

/// `PASSCODE_BIN_DIR`, or the directory of this executable when it is a
/// release build; every function binary must be there.
fn release_bin_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("PASSCODE_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe()?;
            let dir = exe.parent().context("executable has no directory")?;
            if dir.file_name().is_none_or(|n| n != "release") {
                bail!(
                    "{} is not a release directory: run `cargo run -p bench --release` or set PASSCODE_BIN_DIR",
                    dir.display()
                );
            }
            dir.to_path_buf()
        }
    };
    let missing: Vec<&str> = Action::ALL
        .iter()
        .map(|a| a.function_name())
        .chain([TRACKER_FUNCTION])
        .filter(|name| !dir.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} has no {}; build them with `cargo build --release -p {}` or set PASSCODE_BIN_DIR",
            dir.display(),
            missing.join(", "),
            missing.join(" -p ")
        );
    }
    if dir.file_name().is_none_or(|n| n != "release") {
        eprintln!(
            "warning: {} does not look like a release directory; the numbers are only meaningful for release builds",
            dir.display()
        );
    }
    Ok(dir)
}

async fn bench_function(
    bench: &Bench,
    target: Target,
    args: &Args,
) -> anyhow::Result<FunctionReport> {
    let name = target.action.function_name();
    let binary = bench.bin_dir.join(name);
    let mut function = FunctionReport::new(name, &binary);

    // Fresh processes: init, then the first (cold) invocation of each.
    for _ in 0..args.init_samples {
        let sample = fresh_process(bench, target).await?;
        function.init.push(sample.init, sample.init_calls);
        function.cold.push(sample.cold, sample.cold_calls);
    }

    // One execution environment, kept warm.
    let process = spawn(bench, target.action, &binary).await?;
    process.ready().await?;
    for _ in 0..=args.warmup {
        let invocation = process.invoke(event(target, Lookup::Id), TIMEOUT).await;
        check(&invocation, &process, target.action)?;
        settle(bench, target).await?;
    }
    for lookup in [Lookup::Id, Lookup::Serial] {
        let warm = warm_run(bench, &process, target, lookup, args.warm_invocations).await?;
        function.warm.push(warm);
    }
    function.peak_rss_kib = process.peak_rss_kib();
    process.kill().await;

    function.sizes = report::sizes(name, &bench.bin_dir, &binary);
    Ok(function)
}

struct FreshSample {
    init: Duration,
    init_calls: Calls,
    cold: Duration,
    cold_calls: Calls,
}

/// Starts a fresh process, waits for its init, sends it one request by id
/// and stops it.
async fn fresh_process(bench: &Bench, target: Target) -> anyhow::Result<FreshSample> {
    let binary = bench.bin_dir.join(target.action.function_name());
    bench.control.clear_requests().await?;
    let before = bench.proxy.counts();
    let process = spawn(bench, target.action, &binary).await?;
    let init = process.ready().await?;
    let init_calls = calls_since(bench, &before).await?;

    let before = bench.proxy.counts();
    let invocation = process.invoke(event(target, Lookup::Id), TIMEOUT).await;
    check(&invocation, &process, target.action)?;
    let cold_calls = calls_since(bench, &before).await?;
    settle(bench, target).await?;
    process.kill().await;
    Ok(FreshSample {
        init,
        init_calls,
        cold: invocation.duration,
        cold_calls,
    })
}

/// Cold invocations only (the certificate stack).
async fn cold_runs(bench: &Bench, target: Target, samples: usize) -> anyhow::Result<Samples> {
    let mut cold = Samples::default();
    for _ in 0..samples {
        let sample = fresh_process(bench, target).await?;
        cold.push(sample.cold, sample.cold_calls);
    }
    Ok(cold)
}

async fn warm_run(
    bench: &Bench,
    process: &FunctionProcess,
    target: Target,
    lookup: Lookup,
    invocations: usize,
) -> anyhow::Result<WarmReport> {
    bench.control.clear_requests().await?;
    let cpu_before = process
        .cpu_time()
        .context("reading the process's CPU time")?;
    let sched_before = scheduled_time(process.pid());
    let mut latencies = Vec::with_capacity(invocations);
    let mut calls = Vec::with_capacity(invocations);
    for _ in 0..invocations {
        // Everything but `invoke` is outside the function's timed region,
        // and none of it runs in the function's process.
        let event = event(target, lookup);
        let before = bench.proxy.counts();
        let invocation = process.invoke(event, TIMEOUT).await;
        check(&invocation, process, target.action)?;
        latencies.push(invocation.duration);
        calls.push(calls_since(bench, &before).await?);
        settle(bench, target).await?;
    }
    let cpu = process
        .cpu_time()
        .context("reading the process's CPU time")?
        .saturating_sub(cpu_before);
    let sched = scheduled_time(process.pid())
        .zip(sched_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(WarmReport::new(lookup, latencies, cpu, sched, calls))
}

/// Time on CPU of the live threads of `pid`, from `/proc/PID/task/*/schedstat`
/// (nanoseconds, unlike the clock ticks of utime+stime; threads that exit
/// take their share with them).
fn scheduled_time(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

async fn spawn(bench: &Bench, action: Action, binary: &Path) -> anyhow::Result<FunctionProcess> {
    let spec = FunctionSpec {
        name: action.function_name().to_owned(),
        env: bench.env.clone(),
    };
    FunctionProcess::spawn_at(binary, spec).await
}

/// The network calls since `before` (AWS, counted by the proxy)
/// and since the last clear of the simulator's request log (token, Graph);
/// clears that log.
async fn calls_since(bench: &Bench, before: &Counts) -> anyhow::Result<Calls> {
    let log = bench.control.try_requests().await?;
    bench.control.clear_requests().await?;
    let count = |endpoint: &str| log.iter().filter(|r| r.endpoint == endpoint).count() as u64;
    let aws = bench.proxy.counts().since(before);
    Ok(Calls {
        secrets_manager: aws.service("secretsmanager."),
        token: count("token"),
        graph: count("graph"),
        dynamodb: aws.service("DynamoDB_"),
        aws_operations: aws.0,
    })
}

/// A write leaves a pending `resetPasscode` behind; marking it `done` makes
/// the next request a new, accepted reset rather than "already pending".
async fn settle(bench: &Bench, target: Target) -> anyhow::Result<()> {
    if target.action.writes() {
        bench
            .control
            .advance_action(target.device_id, "resetPasscode", "done", None)
            .await
            .context("marking the reset done in the simulator")?;
    }
    Ok(())
}

/// An HTTP API (payload 2.0) request for `target`, naming the device by id
/// (in the path) or by serial number (in the body). Each write is a new
/// request (its own `idempotencyKey`), as in real traffic; without one, the
/// same caller and device within five minutes would be answered as a repeat.
fn event(target: Target, lookup: Lookup) -> Value {
    let caller = Caller::iam(CALLER);
    let action = target.action;
    let write = action.writes();
    let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
    match lookup {
        Lookup::Id => {
            let path = format!(
                "/v1/devices/{}/{}",
                target.device_id,
                action.function_name()
            );
            let param = Some(("deviceId", target.device_id));
            if write {
                api_v2(
                    "POST",
                    &path,
                    param,
                    Some(&json!({"reason": REASON, "idempotencyKey": key})),
                    &caller,
                )
            } else {
                api_v2("GET", &path, param, None, &caller)
            }
        }
        Lookup::Serial => {
            let path = format!("/v1/{}", action.function_name());
            let mut body = json!({"device": {"serialNumber": target.serial}});
            if write {
                body["reason"] = json!(REASON);
                body["idempotencyKey"] = json!(key);
            }
            api_v2("POST", &path, None, Some(&body), &caller)
        }
    }
}

/// The invocation answered, with 202 accepted for a write and 200 for status.
fn check(invocation: &Invocation, process: &FunctionProcess, action: Action) -> anyhow::Result<()> {
    let logs = || process.logs().join("\n");
    let value = invocation
        .response()
        .with_context(|| format!("last output:\n{}", logs()))?;
    let status = value["statusCode"].as_u64();
    let body: Value = value["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let expected = if action.writes() { 202 } else { 200 };
    if status != Some(expected) || (action.writes() && body["outcome"] != "accepted") {
        bail!(
            "{} answered {status:?} (expected {expected}): {body}",
            action.function_name()
        );
    }
    Ok(())
}
