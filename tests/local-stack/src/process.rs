//! Child processes that cannot outlive the test or quick start that started them,
//! and a shared buffer for the lines they print.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// A command whose child is killed when the `Child` is dropped and, through
/// `PR_SET_PDEATHSIG`, when this process dies without running destructors
/// (a panic that aborts, SIGKILL from a test runner, Ctrl-C).
///
/// The death signal is tied to the spawning *thread*: spawn from a runtime
/// worker or the main thread, never from a short-lived blocking-pool thread.
pub fn guarded_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between
    // fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command
}

/// Every line a process printed, in arrival order (stdout and stderr interleaved).
#[derive(Clone, Default)]
pub struct LogBuffer {
    lines: Arc<Mutex<Vec<String>>>,
}

impl LogBuffer {
    pub fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn last(&self, n: usize) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

/// Copies `stream` line by line into `buffer` until EOF; with `echo` set, also
/// writes each line to our stderr behind `[echo]`.
pub fn pump_lines<R>(stream: R, buffer: LogBuffer, echo: Option<String>) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        // A read error (invalid UTF-8 included) ends the copy: the buffer is for
        // diagnostics, not for exact byte capture.
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(prefix) = &echo {
                eprintln!("[{prefix}] {line}");
            }
            buffer.push(line);
        }
    })
}

/// True when `LOCAL_STACK_ECHO_LOGS=1`: child output is mirrored to stderr.
pub fn echo_logs() -> bool {
    std::env::var("LOCAL_STACK_ECHO_LOGS").is_ok_and(|v| v == "1")
}
