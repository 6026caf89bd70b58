//! The Microsoft Graph client: the three calls this project makes, with
//! Graph's throttling rules, error format and request ids handled in one place.
//!
//! * Reads go to **beta** (`deviceManagement/managedDevices`): v1.0 lacks the
//!   Android Enterprise / AOSP enrollment types the eligibility rules need.
//! * The action goes to **v1.0** (`.../{id}/resetPasscode`), the documented,
//!   stable endpoint.
//! * 429 and 503 are retried honouring `Retry-After` (backoff with jitter
//!   when it is absent) within the invocation deadline.
//! * A POST whose outcome is unknown (timeout, dropped connection, 500/502/504)
//!   is never re-sent here: the caller re-reads `deviceActionResults` first.
//! * One 401 re-reads the secret and fetches a new token (rotation), then
//!   gives up with `configurationError`.

use crate::auth::{AuthError, TokenProvider, error_kind, read_body};
use crate::config::Config;
use crate::device::{DEVICE_FIELDS, ManagedDevice};
use crate::error::{ErrorCode, ServiceError};
use crate::retry::{Deadline, Decision, RetryPolicy, parse_retry_after};
use crate::secrets::SecretStore;
use crate::sensitive::Sensitive;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use std::time::Duration;

/// Most pages a lookup will follow. A filter Graph silently ignores returns
/// the whole tenant; rather than scan it, the lookup stops and refuses.
pub const MAX_LOOKUP_PAGES: usize = 10;

/// Most bytes read from one Graph response. A full page of devices with
/// the selected fields is well under 2 MB; anything larger is not Graph.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Query-string encoding: everything but unreserved characters.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    /// Safe to repeat.
    Read,
    /// Not idempotent: an ambiguous failure must not be retried blindly.
    Action,
}

/// A Graph answer the caller interprets (2xx, 400, 404, ...).
struct Reply {
    status: u16,
    body: bytes::Bytes,
    request_id: Option<String>,
}

/// Result of the POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostResult {
    Accepted {
        graph_request_id: Option<String>,
    },
    /// The request may or may not have reached Intune.
    Unknown {
        why: String,
    },
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<ManagedDevice>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

pub struct Graph {
    http: reqwest::Client,
    config: Config,
    secrets: SecretStore,
    tokens: TokenProvider,
    pub policy: RetryPolicy,
}

impl Graph {
    pub fn new(http: reqwest::Client, config: Config, secrets: SecretStore) -> Graph {
        let tokens = TokenProvider::new(http.clone(), &config);
        Graph {
            http,
            config,
            secrets,
            tokens,
            policy: RetryPolicy::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `GET beta/deviceManagement/managedDevices/{id}` with the fields the
    /// eligibility rules and the duplicate check need. `None` on 404.
    pub async fn get_device(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Option<ManagedDevice>, ServiceError> {
        let url = format!(
            "{}/beta/deviceManagement/managedDevices/{}?$select={},deviceActionResults",
            self.config.graph_root,
            utf8_percent_encode(id, QUERY),
            DEVICE_FIELDS
        );
        let reply = self
            .call(reqwest::Method::GET, &url, CallKind::Read, deadline)
            .await?;
        match reply.status {
            200 => parse_json(&reply).map(Some),
            404 => Ok(None),
            _ => Err(unexpected(&reply, "reading the device")),
        }
    }

    /// Every device the `$filter` returns, following `@odata.nextLink`.
    /// Graph may ignore the filter: callers must re-check each device.
    pub async fn list_devices(
        &self,
        filter: &str,
        deadline: &Deadline,
    ) -> Result<Vec<ManagedDevice>, ServiceError> {
        let mut url = format!(
            "{}/beta/deviceManagement/managedDevices?$filter={}&$select={}",
            self.config.graph_root,
            utf8_percent_encode(filter, QUERY),
            DEVICE_FIELDS
        );
        let mut devices = Vec::new();
        for _ in 0..MAX_LOOKUP_PAGES {
            let reply = self
                .call(reqwest::Method::GET, &url, CallKind::Read, deadline)
                .await?;
            if reply.status != 200 {
                return Err(unexpected(&reply, "looking the device up"));
            }
            let page: Page = parse_json(&reply)?;
            devices.extend(page.value);
            match page.next_link {
                None => return Ok(devices),
                Some(next) => {
                    // The token goes wherever the link points: only follow it
                    // to the Graph host we were configured with.
                    if !same_origin(&next, &self.config.graph_root) {
                        return Err(ServiceError::new(
                            ErrorCode::GraphError,
                            "Graph returned a next-page link to another host; the lookup was stopped",
                        )
                        .with_graph_request_id(reply.request_id));
                    }
                    url = next;
                }
            }
        }
        Err(ServiceError::new(
            ErrorCode::GraphError,
            format!(
                "the lookup returned more than {MAX_LOOKUP_PAGES} pages of devices, which means Graph ignored the filter; no device was chosen. Use the device id instead"
            ),
        ))
    }

    /// `POST v1.0/deviceManagement/managedDevices/{id}/resetPasscode`.
    pub async fn reset_passcode(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<PostResult, ServiceError> {
        let url = format!(
            "{}/v1.0/deviceManagement/managedDevices/{}/resetPasscode",
            self.config.graph_root,
            utf8_percent_encode(id, QUERY)
        );
        let reply = match self
            .call(reqwest::Method::POST, &url, CallKind::Action, deadline)
            .await
        {
            Ok(reply) => reply,
            Err(CallFailure::Unknown(why)) => return Ok(PostResult::Unknown { why }),
            Err(CallFailure::Failed(e)) => return Err(e),
        };
        match reply.status {
            200..=299 => Ok(PostResult::Accepted {
                graph_request_id: reply.request_id,
            }),
            404 => Err(ServiceError::new(
                ErrorCode::DeviceNotFound,
                "the device disappeared from Intune before the action could be sent",
            )
            .with_graph_request_id(reply.request_id)),
            _ => Err(unexpected(&reply, "sending resetPasscode")),
        }
    }

    /// Token for Graph, reading the secret first when needed. If Entra
    /// refuses the credentials, the secret is read again once (it may have
    /// been rotated) before giving up.
    async fn bearer(&self, deadline: &Deadline) -> Result<Sensitive, ServiceError> {
        let credentials = self.secrets.get(false).await?;
        match self
            .tokens
            .token(&self.config, &credentials, deadline, &self.policy)
            .await
        {
            Ok(token) => Ok(token),
            Err(AuthError::Other(e)) => Err(e),
            Err(AuthError::CredentialsRefused(_)) => {
                tracing::info!("Entra ID refused the cached credentials; reading the secret again");
                let fresh = self.secrets.get(true).await?;
                self.tokens
                    .token(&self.config, &fresh, deadline, &self.policy)
                    .await
                    .map_err(AuthError::into_service_error)
            }
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        kind: CallKind,
        deadline: &Deadline,
    ) -> Result<Reply, CallFailure> {
        let mut attempts = 0;
        let mut reauthenticated = false;
        loop {
            attempts += 1;
            let token = self.bearer(deadline).await?;
            let timeout = deadline.call_timeout(&self.policy).ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::GraphUnavailable,
                    "ran out of time before Graph could be called; retry later",
                )
            })?;
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token.expose())
                .header("client-request-id", &client_request_id)
                .header("accept", "application/json")
                .timeout(timeout);
            if kind == CallKind::Action {
                // Graph lists 411 Length Required for body-less POSTs.
                request = request.header("content-length", "0").body("");
            }
            let started = std::time::Instant::now();
            crate::metrics::graph_call_sent();
            let sent = request.send().await;

            let (status, retry_after, request_id, failure) = match sent {
                Err(e) => {
                    tracing::warn!(%method, client_request_id, error = error_kind(&e), "Graph call failed");
                    // Only a failed connect proves nothing reached Graph.
                    if kind == CallKind::Action && !e.is_connect() {
                        return Err(CallFailure::Unknown(format!("the POST {}", error_kind(&e))));
                    }
                    let err = ServiceError::new(
                        ErrorCode::GraphUnavailable,
                        format!(
                            "Graph could not be reached ({}); retry later",
                            error_kind(&e)
                        ),
                    );
                    (None, None, None, err)
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let request_id = header("request-id");
                    let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
                    let body = match read_body(resp, MAX_RESPONSE_BYTES).await {
                        Ok(body) => body,
                        Err(why) if kind == CallKind::Action && (200..300).contains(&status) => {
                            tracing::debug!(
                                error = why,
                                "POST body unreadable after success status"
                            );
                            bytes::Bytes::new()
                        }
                        Err(why) if kind == CallKind::Action => {
                            return Err(CallFailure::Unknown(format!("the POST answer: {why}")));
                        }
                        Err(why) => {
                            tracing::warn!(error = why, "Graph response unreadable");
                            bytes::Bytes::new()
                        }
                    };
                    tracing::debug!(
                        %method,
                        status,
                        client_request_id,
                        request_id = request_id.as_deref().unwrap_or(""),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "Graph call"
                    );
                    let reply = Reply {
                        status,
                        body,
                        request_id: request_id.clone(),
                    };
                    match status {
                        401 if !reauthenticated => {
                            reauthenticated = true;
                            attempts -= 1;
                            self.tokens.invalidate().await;
                            // Re-read the secret too: the app may have been rotated.
                            let _ = self.secrets.get(true).await?;
                            continue;
                        }
                        401 => {
                            return Err(ServiceError::config(format!(
                                "Graph rejects the app's token ({}) even after reading the secret again; check the app registration",
                                graph_error_summary(&reply)
                            ))
                            .with_graph_request_id(request_id)
                            .into());
                        }
                        403 => {
                            let needed = match kind {
                                CallKind::Read => "DeviceManagementManagedDevices.Read.All",
                                CallKind::Action => {
                                    "DeviceManagementManagedDevices.PrivilegedOperations.All"
                                }
                            };
                            return Err(ServiceError::config(format!(
                                "Graph refused the call: the app needs the application permission {needed} with admin consent (and the tenant an Intune licence). Graph said: {}",
                                graph_error_summary(&reply)
                            ))
                            .with_graph_request_id(request_id)
                            .into());
                        }
                        429 => {
                            let err = ServiceError::new(
                                ErrorCode::Throttled,
                                "Graph is throttling this app's requests (Intune allows 200 writes and 2,000 requests per 20 seconds per app); retry after the indicated time",
                            );
                            (Some(status), retry_after, request_id, err)
                        }
                        503 => {
                            let err = ServiceError::new(
                                ErrorCode::GraphUnavailable,
                                format!(
                                    "Graph is unavailable ({}); retry later",
                                    graph_error_summary(&reply)
                                ),
                            );
                            (Some(status), retry_after, request_id, err)
                        }
                        500 | 502 | 504 if kind == CallKind::Action => {
                            return Err(CallFailure::Unknown(format!("Graph answered {status}")));
                        }
                        500 | 502 | 504 => {
                            let err = ServiceError::new(
                                ErrorCode::GraphUnavailable,
                                format!(
                                    "Graph failed ({}); retry later",
                                    graph_error_summary(&reply)
                                ),
                            );
                            (Some(status), retry_after, request_id, err)
                        }
                        _ => return Ok(reply),
                    }
                }
            };

            match self
                .policy
                .decide(attempts, retry_after, deadline.remaining(), fastrand::f64())
            {
                Decision::RetryAfter(wait) => {
                    crate::metrics::graph_retry(status == Some(429));
                    tracing::info!(
                        status = status.unwrap_or(0),
                        attempt = attempts,
                        wait_ms = wait.as_millis() as u64,
                        "Graph call will be retried"
                    );
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp => {
                    let mut failure = failure.with_graph_request_id(request_id);
                    // Tell the caller when to come back: Graph's hint, or a
                    // small default for throttling without one.
                    failure.retry_after = retry_after
                        .or((failure.code == ErrorCode::Throttled)
                            .then_some(Duration::from_secs(20)));
                    return Err(failure.into());
                }
            }
        }
    }
}

enum CallFailure {
    Failed(ServiceError),
    /// Only for actions: the request may have been applied.
    Unknown(String),
}

impl From<ServiceError> for CallFailure {
    fn from(e: ServiceError) -> CallFailure {
        CallFailure::Failed(e)
    }
}

// Reads never produce `Unknown`; this keeps `?` usable in the read methods.
impl From<CallFailure> for ServiceError {
    fn from(f: CallFailure) -> ServiceError {
        match f {
            CallFailure::Failed(e) => e,
            CallFailure::Unknown(why) => ServiceError::new(
                ErrorCode::GraphUnavailable,
                format!("Graph did not answer clearly ({why}); retry later"),
            ),
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, ServiceError> {
    serde_json::from_slice(&reply.body).map_err(|_| {
        ServiceError::new(
            ErrorCode::GraphError,
            "Graph returned a response that could not be read",
        )
        .with_graph_request_id(reply.request_id.clone())
    })
}

/// A Graph error that retrying won't fix.
fn unexpected(reply: &Reply, doing: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::GraphError,
        format!(
            "Graph refused {doing} (HTTP {}: {})",
            reply.status,
            graph_error_summary(reply)
        ),
    )
    .with_graph_request_id(reply.request_id.clone())
}

fn graph_error_summary(reply: &Reply) -> String {
    error_summary(&reply.body)
}

/// `code: message` from Graph's error body. Intune nests a JSON document in
/// `message`; its inner `Message` is what a person wants to read. Public for
/// the fuzz tests.
pub fn error_summary(body: &[u8]) -> String {
    let Ok(body) = serde_json::from_slice::<ErrorBody>(body) else {
        return "no error details".to_string();
    };
    let mut message = body.error.message;
    if let Ok(serde_json::Value::Object(inner)) =
        serde_json::from_str::<serde_json::Value>(&message)
        && let Some(serde_json::Value::String(m)) = inner.get("Message")
    {
        message = m.clone();
    }
    let message: String = message.chars().take(300).collect();
    format!("{}: {}", body.error.code, message)
}

/// One page of a device list as `list_devices` reads it: the devices and
/// the `@odata.nextLink`. Public for the fuzz tests.
pub fn parse_page(body: &[u8]) -> Option<(Vec<ManagedDevice>, Option<String>)> {
    let page: Page = serde_json::from_slice(body).ok()?;
    Some((page.value, page.next_link))
}

/// Whether a next-page link points at the configured Graph origin (scheme,
/// host and port); only then does the token go with it.
pub fn same_origin(link: &str, root: &str) -> bool {
    match (url::Url::parse(link), url::Url::parse(root)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: bytes::Bytes::from(body.to_string()),
            request_id: Some("rid".into()),
        }
    }

    #[test]
    fn error_summary_unwraps_intune_nested_message() {
        let r = reply(
            400,
            r#"{"error":{"code":"BadRequest","message":"{\"_version\": 3, \"Message\": \"An error has occurred - Operation ID: 1\", \"RetryAfter\": null}","innerError":{"request-id":"x"}}}"#,
        );
        assert_eq!(
            graph_error_summary(&r),
            "BadRequest: An error has occurred - Operation ID: 1"
        );
        let r = reply(
            403,
            r#"{"error":{"code":"Forbidden","message":"Application is not authorized"}}"#,
        );
        assert_eq!(
            graph_error_summary(&r),
            "Forbidden: Application is not authorized"
        );
        assert_eq!(
            graph_error_summary(&reply(500, "<html>")),
            "no error details"
        );
    }

    #[test]
    fn next_links_must_stay_on_the_graph_host() {
        assert!(same_origin(
            "https://graph.microsoft.com/beta/deviceManagement/managedDevices?$skiptoken=x",
            "https://graph.microsoft.com"
        ));
        assert!(!same_origin(
            "https://evil.example/beta?x",
            "https://graph.microsoft.com"
        ));
        assert!(!same_origin(
            "http://graph.microsoft.com/beta",
            "https://graph.microsoft.com"
        ));
        assert!(same_origin(
            "http://127.0.0.1:5000/beta/x",
            "http://127.0.0.1:5000"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:5001/beta/x",
            "http://127.0.0.1:5000"
        ));
    }

    #[test]
    fn query_encoding_keeps_filters_intact() {
        let f = "userPrincipalName eq 'o''brien@contoso.com' and deviceName eq 'A&B #1+2'";
        let encoded = utf8_percent_encode(f, QUERY).to_string();
        assert!(
            !encoded.contains(' ')
                && !encoded.contains('&')
                && !encoded.contains('#')
                && !encoded.contains('+')
        );
        let decoded = percent_encoding::percent_decode_str(&encoded)
            .decode_utf8()
            .unwrap();
        assert_eq!(decoded, f);
    }
}
