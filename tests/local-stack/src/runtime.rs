//! A compiled function binary running as a child process against its own
//! Lambda Runtime API emulator, invoked one event at a time like a Lambda
//! execution environment.

mod emulator;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::paths::bin_dir;
use crate::process::{LogBuffer, echo_logs, guarded_command, pump_lines};
use emulator::{Answer, Emulator, Gone, Queued};

/// How long past the function's own timeout we wait before calling it hung.
const GRACE: Duration = Duration::from_secs(2);
/// Lines of output quoted when a process dies mid-invocation.
const CRASH_CONTEXT_LINES: usize = 20;

/// Which binary to run and what to add to (or override in) its environment.
#[derive(Clone, Debug, Default)]
pub struct FunctionSpec {
    /// Binary name in [`bin_dir`]; also the Lambda function name.
    pub name: String,
    pub env: Vec<(String, String)>,
}

impl FunctionSpec {
    pub fn new(name: impl Into<String>) -> FunctionSpec {
        FunctionSpec {
            name: name.into(),
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> FunctionSpec {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// The result of one [`FunctionProcess::invoke`].
#[derive(Clone, Debug)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: InvokeOutcome,
    /// From the moment the process received the event to its answer (Lambda's
    /// "Duration"); for a timeout or crash, from the `invoke` call.
    pub duration: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum InvokeOutcome {
    /// The function's return value, as posted to `.../response`.
    Response(Value),
    /// An invocation error (`.../error`) or an init error (`init/error`).
    Error {
        error_type: String,
        error_message: String,
    },
    /// No answer within the timeout plus a grace period; the process was killed.
    Timeout,
    /// The process exited; the message has its exit status and last output lines.
    Crashed(String),
}

impl Invocation {
    /// The response value, or a description of what happened instead.
    pub fn response(&self) -> anyhow::Result<&Value> {
        match &self.outcome {
            InvokeOutcome::Response(value) => Ok(value),
            other => anyhow::bail!("invocation {} did not respond: {other:?}", self.request_id),
        }
    }
}

/// A running function binary. Dropping it kills the process.
pub struct FunctionProcess {
    name: String,
    pid: u32,
    emulator: Emulator,
    logs: LogBuffer,
    exited: Arc<AtomicBool>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    supervisor: Option<JoinHandle<()>>,
    /// Lambda sends one event at a time to an execution environment.
    turn: tokio::sync::Mutex<()>,
}

impl FunctionProcess {
    /// Starts `spec.name` from [`bin_dir`].
    pub async fn spawn(spec: FunctionSpec) -> anyhow::Result<FunctionProcess> {
        let binary = bin_dir().join(&spec.name);
        if !binary.is_file() {
            anyhow::bail!(
                "function binary {} not found; build it first (`cargo build -p {}`) or set PASSCODE_BIN_DIR",
                binary.display(),
                spec.name
            );
        }
        FunctionProcess::spawn_at(&binary, spec).await
    }

    /// Starts the binary at `binary`, named `spec.name` towards Lambda.
    pub async fn spawn_at(binary: &Path, spec: FunctionSpec) -> anyhow::Result<FunctionProcess> {
        let spawned_at = Instant::now();
        let emulator = Emulator::start(&spec.name, spawned_at)
            .await
            .context("starting the Runtime API emulator")?;

        let mut command = guarded_command(binary);
        command.env_clear();
        command.envs(lambda_env(&spec.name, &emulator.addr().to_string()));
        command.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let pid = child.id().context("child has no pid")?;

        let logs = LogBuffer::default();
        let echo = echo_logs().then(|| spec.name.clone());
        let pumps = [
            child
                .stdout
                .take()
                .map(|s| pump_lines(s, logs.clone(), echo.clone())),
            child
                .stderr
                .take()
                .map(|s| pump_lines(s, logs.clone(), echo.clone())),
        ];

        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let exited = Arc::new(AtomicBool::new(false));
        let reporter = emulator.reporter();
        let supervisor = tokio::spawn({
            let exited = exited.clone();
            async move {
                let status = tokio::select! {
                    status = child.wait() => status,
                    // A kill request, or the handle was dropped.
                    _ = kill_rx => {
                        let _ = child.start_kill();
                        child.wait().await
                    }
                };
                exited.store(true, Ordering::SeqCst);
                // Let the last lines reach the buffer before anyone quotes them;
                // bounded, since a grandchild could keep the pipes open.
                for pump in pumps.into_iter().flatten() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
                }
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(error) => format!("could not be waited for: {error}"),
                };
                reporter.report(Gone::Exited(status));
            }
        });

        Ok(FunctionProcess {
            name: spec.name,
            pid,
            emulator,
            logs,
            exited,
            kill: Mutex::new(Some(kill_tx)),
            supervisor: Some(supervisor),
            turn: tokio::sync::Mutex::new(()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `event` and waits for the answer, at most `timeout` + 2 s.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Invocation {
        let _turn = self.turn.lock().await;
        let request_id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut gone = self.emulator.gone();
        let (reply_tx, mut reply_rx) = oneshot::channel();
        self.emulator
            .enqueue(Queued {
                request_id: request_id.clone(),
                event,
                timeout,
                reply: reply_tx,
            })
            .await;

        let answered = |reply: emulator::Reply| {
            let outcome = match reply.answer {
                Answer::Response(value) => InvokeOutcome::Response(value),
                Answer::Error {
                    error_type,
                    error_message,
                } => InvokeOutcome::Error {
                    error_type,
                    error_message,
                },
            };
            (outcome, reply.handed_out.elapsed())
        };

        let (outcome, duration) = tokio::select! {
            biased;
            reply = &mut reply_rx => match reply {
                Ok(reply) => answered(reply),
                Err(_) => (
                    InvokeOutcome::Crashed("the emulator dropped the invocation".into()),
                    started.elapsed(),
                ),
            },
            gone = gone.wait_for(Option::is_some) => {
                let gone = gone.ok().and_then(|g| g.clone());
                // An answer posted just before the exit still counts.
                match reply_rx.try_recv() {
                    Ok(reply) => answered(reply),
                    Err(_) => (self.gone_outcome(gone), started.elapsed()),
                }
            }
            () = tokio::time::sleep(timeout + GRACE) => {
                self.start_kill();
                (InvokeOutcome::Timeout, started.elapsed())
            }
        };
        self.emulator.abandon(&request_id);
        Invocation {
            request_id,
            outcome,
            duration,
        }
    }

    fn gone_outcome(&self, gone: Option<Gone>) -> InvokeOutcome {
        match gone {
            Some(Gone::InitError {
                error_type,
                error_message,
            }) => InvokeOutcome::Error {
                error_type,
                error_message,
            },
            Some(Gone::Exited(status)) => InvokeOutcome::Crashed(format!(
                "{} {status}; last output:\n{}",
                self.name,
                self.logs.last(CRASH_CONTEXT_LINES).join("\n")
            )),
            None => InvokeOutcome::Crashed(format!("{} went away", self.name)),
        }
    }

    /// Waits until the process first asks for an event (init done) and
    /// returns the init duration; fails if it dies or reports an init error first.
    pub async fn ready(&self) -> anyhow::Result<Duration> {
        let mut polled = self.emulator.first_poll();
        let mut gone = self.emulator.gone();
        tokio::select! {
            biased;
            _ = polled.wait_for(|p| *p) => {}
            gone = gone.wait_for(Option::is_some) => {
                let gone = gone.ok().and_then(|g| g.clone());
                anyhow::bail!("{} did not start: {:?}", self.name, self.gone_outcome(gone));
            }
        }
        self.init_duration().context("init duration not recorded")
    }

    /// Every line the process printed so far, stdout and stderr interleaved.
    pub fn logs(&self) -> Vec<String> {
        self.logs.snapshot()
    }

    /// From spawn to the first `GET .../invocation/next`.
    pub fn init_duration(&self) -> Option<Duration> {
        self.emulator.init_duration()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Peak resident set size (`VmHWM`) while the process is alive.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = self.read_proc("status")?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// User plus system CPU time while the process is alive.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = self.read_proc("stat")?;
        // Fields after the parenthesised command name start at field 3 (state);
        // utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks <= 0 {
            return None;
        }
        Some(Duration::from_secs_f64(
            (utime + stime) as f64 / ticks as f64,
        ))
    }

    /// True once the process has exited.
    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::SeqCst)
    }

    /// Kills the process and waits until it is reaped.
    pub async fn kill(mut self) {
        self.start_kill();
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.await;
        }
    }

    fn start_kill(&self) {
        if let Some(kill) = self.kill.lock().unwrap().take() {
            let _ = kill.send(());
        }
    }

    /// `/proc/<pid>/<file>`, only while our child holds the pid: once it is
    /// reaped the number may belong to someone else.
    fn read_proc(&self, file: &str) -> Option<String> {
        if self.has_exited() {
            return None;
        }
        std::fs::read_to_string(PathBuf::from(format!("/proc/{}/{file}", self.pid))).ok()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        // The supervisor kills the child when this sender goes away.
        self.start_kill();
    }
}

/// The environment Lambda gives a `provided.al2023` function, pointed at the emulator.
fn lambda_env(name: &str, runtime_api: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "debug"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("_HANDLER", "bootstrap"),
        ("LAMBDA_TASK_ROOT", "/tmp"),
        ("TZ", ":UTC"),
        ("LANG", "en_US.UTF-8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(path) = std::env::var_os("PATH") {
        env.push(("PATH".into(), path.to_string_lossy().into_owned()));
    }
    env
}
