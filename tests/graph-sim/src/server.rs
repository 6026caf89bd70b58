//! Connection handling and the per-request pipeline: control API, fault
//! injection, Graph/token dispatch and the request log.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::control;
use crate::faults::{self, DropPoint, Endpoint, Fault};
use crate::graph;
use crate::http::{self, Body, EntraError, GraphError, SimRequest};
use crate::log::LoggedRequest;
use crate::state::Sim;
use crate::timefmt;
use crate::token;

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// Returned by the service to make hyper close the connection without
/// writing a response: the "connection dropped" faults.
#[derive(Debug)]
pub(crate) struct ConnectionDropped;

impl fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for ConnectionDropped {}

/// Accept connections until `stop` fires (or its sender is dropped).
pub(crate) async fn serve(listener: TcpListener, sim: Arc<Sim>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors and the like: back off briefly.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let sim = sim.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(sim.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(text.to_string())));
    *resp.status_mut() = status;
    resp
}

async fn handle(
    sim: Arc<Sim>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ConnectionDropped> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
    };
    let path = parts.uri.path().to_string();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return Ok(control::handle(&sim, &parts.method, &path, &body));
    }

    let tenant = token::tenant_of(&path).map(str::to_string);
    let endpoint = if tenant.is_some() {
        Endpoint::Token
    } else {
        Endpoint::Graph
    };
    let client_request_id = parts
        .headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map_or_else(http::new_guid, str::to_string);
    let req = SimRequest {
        method: parts.method,
        path,
        raw_query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        request_id: http::new_guid(),
        client_request_id,
        received: timefmt::now(),
    };

    let (seq, fault) = {
        let mut state = sim.lock();
        let seq = state.next_seq();
        let fault = faults::take(&mut state.faults, endpoint, req.method.as_str(), &req.path);
        (seq, fault)
    };
    let (device_id, action) = match endpoint {
        Endpoint::Graph => graph::path_facts(&req.path),
        Endpoint::Token => (None, None),
    };
    let mut entry = LoggedRequest {
        seq,
        at: timefmt::graph_timestamp(req.received),
        endpoint: endpoint.as_str().to_string(),
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.logged_query(),
        status: None,
        device_id,
        action,
        client_request_id: req.client_request_id.clone(),
        request_id: req.request_id.clone(),
        auth: None,
        credential: None,
        fault: fault.as_ref().map(Fault::label),
        reached_device: false,
    };

    let mut drop_after = false;
    match fault {
        Some(ref fault @ Fault::Status { status, .. }) => {
            let resp = fault_response(&sim, &req, endpoint, status, fault);
            entry.status = Some(resp.status().as_u16());
            sim.lock().log.push(entry);
            return Ok(resp);
        }
        Some(Fault::Drop {
            drop: DropPoint::BeforeCommit,
        }) => {
            sim.lock().log.push(entry);
            return Err(ConnectionDropped);
        }
        Some(Fault::Drop {
            drop: DropPoint::AfterCommit,
        }) => drop_after = true,
        Some(Fault::Delay { delay_ms }) => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        None => {}
    }

    let outcome = match tenant {
        Some(tenant) => token::handle(&sim, &req, &tenant),
        None => graph::handle(&sim, &req),
    };
    entry.auth = outcome.auth.map(str::to_string);
    entry.credential = outcome.credential.map(str::to_string);
    entry.reached_device = outcome.reached_device;
    if drop_after {
        sim.lock().log.push(entry);
        return Err(ConnectionDropped);
    }
    entry.status = Some(outcome.response.status().as_u16());
    sim.lock().log.push(entry);
    Ok(outcome.response)
}

/// The error a real front end would send for an injected status, in the
/// addressed service's own error shape.
fn fault_response(
    sim: &Sim,
    req: &SimRequest,
    endpoint: Endpoint,
    status: u16,
    fault: &Fault,
) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = match endpoint {
        Endpoint::Graph => GraphError::new(
            status,
            faults::graph_code(status.as_u16()),
            faults::graph_message(status.as_u16()),
        )
        .into_response(req, sim.profile),
        Endpoint::Token => EntraError::new(
            status,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        )
        .into_response(&sim.base_url, req),
    };
    // A rule that spells its Retry-After gets exactly that spelling; a
    // plain number of seconds is spelled the way the profile's tenant does.
    match fault {
        Fault::Status {
            retry_after_header: Some(header),
            ..
        } => {
            if let Ok(value) = HeaderValue::from_str(&header.value(req.received)) {
                resp.headers_mut().insert(RETRY_AFTER, value);
            }
        }
        Fault::Status {
            retry_after: Some(secs),
            ..
        } => http::set_retry_after(&mut resp, sim.profile, *secs, req.received),
        _ => {}
    }
    resp
}
