//! Quick start: the functions, as built, against the Graph simulator and
//! moto, on this machine.
//!
//! `local-stack demo` (default) tells a short story of requests and results;
//! `local-stack serve [--port N]` puts an API Gateway stand-in in front of
//! the functions until Ctrl-C; `local-stack soak [...]` runs the concurrency
//! and fault soak.

mod demo;
mod serve;
mod show;
mod soak;

use std::collections::HashMap;
use std::process::ExitCode;

use local_stack::{FunctionProcess, SecretForm, Stack};
use passcode_core::Action;

const USAGE: &str = "usage: local-stack [demo | serve [--port N] | soak [OPTIONS]]

  demo    run a short scripted tour and exit (default)
  serve   serve the HTTP API on 127.0.0.1 (port N, or any free one) until Ctrl-C
  soak    many processes, duplicates and injected faults; fails on a broken
          invariant (`local-stack soak --help` for its options)

Function binaries come from PASSCODE_BIN_DIR or the cargo target directory;
LOCAL_STACK_ECHO_LOGS=1 mirrors every process's output to stderr.";

enum Mode {
    Demo,
    Serve { port: u16 },
    Soak(soak::Args),
}

fn parse_args() -> Result<Mode, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["demo"] => Ok(Mode::Demo),
        ["serve"] => Ok(Mode::Serve { port: 0 }),
        ["serve", "--port", port] => port
            .parse()
            .map(|port| Mode::Serve { port })
            .map_err(|_| format!("not a port number: {port}")),
        ["soak", rest @ ..] if rest.contains(&"--help") => Err(soak::USAGE.to_owned()),
        ["soak", rest @ ..] => soak::parse(rest).map(Mode::Soak),
        _ => Err(USAGE.to_owned()),
    }
}

fn main() -> ExitCode {
    let mode = match parse_args() {
        Ok(mode) => mode,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("local-stack: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match mode {
            Mode::Demo => demo::run().await,
            Mode::Serve { port } => serve::run(port).await.map(|()| true),
            Mode::Soak(args) => soak::run(args).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("local-stack: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the stack (with an idempotency table) and every function.
async fn start_everything() -> anyhow::Result<(Stack, HashMap<Action, FunctionProcess>)> {
    let mut stack = Stack::start(SecretForm::ClientSecret).await?;
    // As deployed by default: write requests are recorded in an idempotency
    // table, accepted actions in the action log the tracker follows.
    stack.enable_idempotency().await?;
    stack.enable_tracking().await?;
    let mut functions = HashMap::new();
    for action in Action::ALL {
        functions.insert(action, stack.spawn(action, &[]).await?);
    }
    for action in Action::ALL {
        let function = &functions[&action];
        let init = function.ready().await?;
        println!(
            "  {:<18} pid {:<7} ready in {} ms",
            action.function_name(),
            function.pid(),
            init.as_millis()
        );
    }
    Ok((stack, functions))
}
