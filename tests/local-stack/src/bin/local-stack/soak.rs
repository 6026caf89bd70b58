//! `local-stack soak`: the long concurrency and fault soak of
//! `local_stack::soak`, with the figures on stdout and as JSON.

use std::path::PathBuf;

use anyhow::Context as _;
use local_stack::soak::{self, SoakConfig};

pub const USAGE: &str = "soak options:
  --requests N       logical requests (default 2000)
  --processes N      execution environments per function (default 3)
  --seed S           seed of the request stream and the fault draws
  --no-idempotency   run the functions without an idempotency table
  --fault-rate F     chance that a Graph request fails (default 0.1)
  --duplicates F     share of requests sent to several processes at once (default 0.3)
  --rivals F         with the table: share of single-copy writes sent together with
                     another request for the same device (default 0.1)
  --devices N        devices added for the run (default: one per three requests)
  --deadline-ms N    deadline of every invocation (default 8000)
  --short            the settings of the test in `cargo test`
  --json PATH        where to write the report (default target/soak/latest.json)";

pub struct Args {
    config: SoakConfig,
    json: Option<PathBuf>,
}

pub fn parse(args: &[&str]) -> Result<Args, String> {
    let mut config = SoakConfig::long();
    if args.contains(&"--short") {
        config = SoakConfig::short();
    }
    let mut json = None;
    let mut rest = args.iter();
    while let Some(&flag) = rest.next() {
        let mut value = || {
            rest.next()
                .copied()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
            text.parse()
                .map_err(|_| format!("{flag}: not a valid number: {text}"))
        }
        match flag {
            "--short" => {}
            "--no-idempotency" => config.idempotency = false,
            "--requests" => config.requests = number(flag, value()?)?,
            "--processes" => config.processes = number(flag, value()?)?,
            "--seed" => config.seed = number(flag, value()?)?,
            "--fault-rate" => config.fault_rate = number(flag, value()?)?,
            "--duplicates" => config.duplicate_fraction = number(flag, value()?)?,
            "--rivals" => config.rival_fraction = number(flag, value()?)?,
            "--devices" => config.devices = number(flag, value()?)?,
            "--deadline-ms" => config.deadline_ms = number(flag, value()?)?,
            "--json" => json = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown soak option {other}\n\n{USAGE}")),
        }
    }
    if config.processes == 0 || config.requests == 0 {
        return Err("--requests and --processes must be at least 1".into());
    }
    Ok(Args { config, json })
}

/// Runs the soak; `Ok(false)` when an invariant was broken.
pub async fn run(args: Args) -> anyhow::Result<bool> {
    let c = &args.config;
    println!(
        "Soak: {} logical requests, {} processes per function, idempotency {}, seed {}…",
        c.requests,
        c.processes,
        if c.idempotency { "on" } else { "off" },
        c.seed
    );
    let report = soak::run(c).await?;
    print!("{}", report.table());
    let path = args.json.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| local_stack::workspace_root().join("target"));
        target.join("soak/latest.json")
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("  report                       {}", path.display());
    Ok(report.violations.is_empty())
}
