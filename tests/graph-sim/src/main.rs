//! `graph-sim [--bind 127.0.0.1:0] [--profile standard|variants]`: run the
//! simulator (profile default: `GRAPH_SIM_PROFILE`, else `standard`) until SIGINT/SIGTERM,
//! or until standard input reaches end-of-file when it is a pipe or socket,
//! so that a parent process which dies takes the simulator with it.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use graph_sim::Profile;

const USAGE: &str = "usage: graph-sim [--bind 127.0.0.1:PORT] [--profile standard|variants]";

fn parse_args(args: &[String]) -> Result<(SocketAddr, Profile), String> {
    let mut bind = "127.0.0.1:0".to_string();
    let mut profile = Profile::from_env()?;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(value) = arg.strip_prefix("--bind=") {
            bind = value.to_string();
        } else if arg == "--bind" {
            bind = iter.next().ok_or("--bind needs an address")?.clone();
        } else if let Some(value) = arg.strip_prefix("--profile=") {
            profile = value.parse()?;
        } else if arg == "--profile" {
            profile = iter.next().ok_or("--profile needs a name")?.parse()?;
        } else if arg == "-h" || arg == "--help" {
            return Err(USAGE.to_string());
        } else {
            return Err(format!("unknown argument {arg}\n{USAGE}"));
        }
    }
    let bind = bind
        .parse()
        .map_err(|e| format!("invalid --bind address {bind}: {e}"))?;
    Ok((bind, profile))
}

/// True when stdin is a pipe or socket: its EOF then means the writer (the
/// parent) went away. A terminal or /dev/null says nothing about the parent.
#[cfg(unix)]
fn stdin_tracks_parent() -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata("/dev/stdin")
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn stdin_tracks_parent() -> bool {
    false
}

async fn wait_for_stop(mut stdin_closed: tokio::sync::mpsc::Receiver<()>) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminated = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
        Some(()) = stdin_closed.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bind, profile) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let sim = match graph_sim::start_with(bind, profile).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("graph-sim: cannot listen on {bind}: {e}");
            return ExitCode::from(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "graph-sim listening on {}", sim.base_url());
        let _ = out.flush();
    }

    // stdout's first line is parsed by callers; the profile goes to stderr.
    eprintln!("graph-sim profile: {profile}");

    let (tx, rx) = tokio::sync::mpsc::channel(1);
    if stdin_tracks_parent() {
        // A plain thread: a blocking read must not hold up runtime shutdown.
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            loop {
                match std::io::Read::read(&mut stdin, &mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let _ = tx.blocking_send(());
        });
    } else {
        // A closed channel disables that branch of the select.
        drop(tx);
    }
    wait_for_stop(rx).await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}
