//! The HTTP side of the Lambda Runtime API, as one function process sees it.
//!
//! The process long-polls `GET .../invocation/next`; `FunctionProcess::invoke`
//! queues an event, the poll hands it out, and the process answers with
//! `.../response` or `.../error`. Nothing here knows about child processes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// One event waiting for the process to ask for it.
pub(crate) struct Queued {
    pub request_id: String,
    pub event: Value,
    pub timeout: Duration,
    pub reply: oneshot::Sender<Reply>,
}

/// What the process said about one event.
pub(crate) struct Reply {
    pub answer: Answer,
    /// When `/next` handed the event out: Lambda's "Duration" starts here.
    pub handed_out: Instant,
}

pub(crate) enum Answer {
    Response(Value),
    Error {
        error_type: String,
        error_message: String,
    },
}

/// Why a process will not answer any more events.
#[derive(Clone, Debug)]
pub(crate) enum Gone {
    InitError {
        error_type: String,
        error_message: String,
    },
    Exited(String),
}

struct InFlight {
    reply: oneshot::Sender<Reply>,
    handed_out: Instant,
}

struct Shared {
    function_arn: String,
    spawned_at: Instant,
    init_duration: OnceLock<Duration>,
    /// Held by the one `/next` poll that is waiting; a poll whose connection
    /// drops releases it without losing the queued event (`recv` is cancel safe).
    queue: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    gone: watch::Sender<Option<Gone>>,
    first_poll: watch::Sender<bool>,
}

/// A running emulator; the server stops when this is dropped.
pub(crate) struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    queue: mpsc::Sender<Queued>,
    server: JoinHandle<()>,
}

impl Emulator {
    pub async fn start(function_name: &str, spawned_at: Instant) -> std::io::Result<Emulator> {
        let (queue_tx, queue_rx) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}"),
            spawned_at,
            init_duration: OnceLock::new(),
            queue: tokio::sync::Mutex::new(queue_rx),
            in_flight: Mutex::new(HashMap::new()),
            gone: watch::Sender::new(None),
            first_poll: watch::Sender::new(false),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            // Serving only ends with an I/O error on the listener; the invoke
            // side then sees no answer and reports a timeout.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Emulator {
            addr,
            shared,
            queue: queue_tx,
            server,
        })
    }

    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn init_duration(&self) -> Option<Duration> {
        self.shared.init_duration.get().copied()
    }

    pub async fn enqueue(&self, queued: Queued) {
        // The receiver lives in `shared`, which we hold: sending cannot fail.
        let _ = self.queue.send(queued).await;
    }

    /// Forgets an event the process never answered.
    pub fn abandon(&self, request_id: &str) {
        self.shared.in_flight.lock().unwrap().remove(request_id);
    }

    /// A handle for whoever watches the process to say it is gone.
    pub fn reporter(&self) -> GoneReporter {
        GoneReporter(self.shared.clone())
    }

    pub fn gone(&self) -> watch::Receiver<Option<Gone>> {
        self.shared.gone.subscribe()
    }

    pub fn first_poll(&self) -> watch::Receiver<bool> {
        self.shared.first_poll.subscribe()
    }
}

#[derive(Clone)]
pub(crate) struct GoneReporter(Arc<Shared>);

impl GoneReporter {
    /// An earlier init error is kept: it says more than the exit that follows.
    pub fn report(&self, gone: Gone) {
        record_gone(&self.0.gone, gone);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    if shared
        .init_duration
        .set(shared.spawned_at.elapsed())
        .is_ok()
    {
        shared.first_poll.send_replace(true);
    }
    let queued = {
        let mut queue = shared.queue.lock().await;
        match queue.recv().await {
            Some(queued) => queued,
            None => return StatusCode::GONE.into_response(),
        }
    };
    let handed_out = Instant::now();
    let deadline_ms = epoch_ms() + queued.timeout.as_millis();
    shared.in_flight.lock().unwrap().insert(
        queued.request_id.clone(),
        InFlight {
            reply: queued.reply,
            handed_out,
        },
    );
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("content-type", "application/json".into());
    put("lambda-runtime-aws-request-id", queued.request_id);
    put("lambda-runtime-deadline-ms", deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        shared.function_arn.clone(),
    );
    put("lambda-runtime-trace-id", trace_id());
    (StatusCode::OK, headers, queued.event.to_string()).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    // Functions may answer with any JSON; keep anything else as a string.
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    settle(&shared, &id, Answer::Response(value))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = parse_error(&headers, &body);
    settle(&shared, &id, answer)
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Answer::Error {
        error_type,
        error_message,
    } = parse_error(&headers, &body)
    {
        let gone = Gone::InitError {
            error_type,
            error_message,
        };
        record_gone(&shared.gone, gone);
    }
    accepted()
}

/// Keeps the first reason only.
fn record_gone(sender: &watch::Sender<Option<Gone>>, gone: Gone) {
    sender.send_if_modified(|current| {
        let first = current.is_none();
        if first {
            *current = Some(gone);
        }
        first
    });
}

fn settle(shared: &Shared, id: &str, answer: Answer) -> Response {
    let Some(in_flight) = shared.in_flight.lock().unwrap().remove(id) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "errorType": "InvalidRequestID",
                "errorMessage": format!("no invocation in flight with id {id}"),
            })),
        )
            .into_response();
    };
    // The invoker may have given up (timeout); nobody is left to tell.
    let _ = in_flight.reply.send(Reply {
        answer,
        handed_out: in_flight.handed_out,
    });
    accepted()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

/// `{"errorType","errorMessage"}`, falling back to the error-type header and
/// the raw body for runtimes that send less.
fn parse_error(headers: &HeaderMap, body: &[u8]) -> Answer {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_owned);
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Answer::Error {
        error_type: field("errorType")
            .or(header_type)
            .unwrap_or_else(|| "Unhandled".into()),
        error_message: field("errorMessage")
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    }
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// An X-Ray header in the shape Lambda sends: `Root=1-<epoch hex>-<24 hex>;...`.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0;Lineage=1:{}:0",
        &random[..24],
        &random[16..32],
        &random[..8]
    )
}
