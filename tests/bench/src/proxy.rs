//! A counting HTTP proxy in front of moto: the functions' AWS endpoints
//! (Secrets Manager, DynamoDB) point here, so every request they make is
//! counted as it arrives (by operation, from `X-Amz-Target`), then forwarded
//! unchanged.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Requests seen so far, per operation (`secretsmanager.GetSecretValue`,
/// `DynamoDB_20120810.PutItem`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts(pub BTreeMap<String, u64>);

impl Counts {
    /// Calls to one service, by operation prefix (`secretsmanager.`, `DynamoDB_`).
    pub fn service(&self, prefix: &str) -> u64 {
        self.0
            .iter()
            .filter(|(op, _)| op.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts(
            self.0
                .iter()
                .map(|(op, n)| (op.clone(), n - earlier.0.get(op).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }
}

pub struct CountingProxy {
    url: String,
    counts: Arc<Mutex<Counts>>,
    task: JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> anyhow::Result<CountingProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Mutex::new(Counts::default()));
        let client = reqwest::Client::builder().no_proxy().build()?;
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let task = tokio::spawn({
            let counts = counts.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (counts, client, upstream) =
                        (counts.clone(), client.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            forward(request, client.clone(), upstream.clone(), counts.clone())
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        Ok(CountingProxy { url, counts, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap().clone()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that describe one hop, not the message.
const HOP: [HeaderName; 5] = [
    header::HOST,
    header::CONNECTION,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

async fn forward(
    request: Request<Incoming>,
    client: reqwest::Client,
    upstream: Arc<str>,
    counts: Arc<Mutex<Counts>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no X-Amz-Target)")
        .to_owned();
    *counts.lock().unwrap().0.entry(operation).or_default() += 1;

    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Ok(bad_gateway(format!("reading the request: {e}"))),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = client.request(parts.method, format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if !HOP.contains(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(e) => return Ok(bad_gateway(format!("forwarding to moto: {e}"))),
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !HOP.contains(name) {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    Ok(response
        .body(Full::new(body))
        .unwrap_or_else(|e| bad_gateway(e.to_string())))
}

fn bad_gateway(message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
