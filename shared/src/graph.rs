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

use crate::auth::{AuthError, TokenProvider};
use crate::config::Config;
use crate::device::{DEVICE_FIELDS, ManagedDevice};
use crate::error::{ErrorCode, ServiceError};
use crate::http::{self, MAX_GRAPH_RESPONSE_BYTES, Reply, error_summary};
use crate::retry::{self, Attempt, Deadline, Failed, RetryPolicy};
use crate::secrets::SecretStore;
use crate::sensitive::Sensitive;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Most pages a lookup will follow. A filter Graph silently ignores returns
/// the whole tenant; rather than scan it, the lookup stops and refuses.
pub const MAX_LOOKUP_PAGES: usize = 10;

/// What a caller is told to wait when Graph throttled to the end without
/// saying how long.
const THROTTLED_RETRY_HINT: Duration = Duration::from_secs(20);

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

    /// One Graph call through the retry loop: transient failures are
    /// retried within the deadline, an action's unclear outcome is reported,
    /// everything else is the caller's to interpret.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        kind: CallKind,
        deadline: &Deadline,
    ) -> Result<Reply, CallFailure> {
        let reauthenticated = AtomicBool::new(false);
        // Whether the attempt before was a retryable 429, for the metrics:
        // the loop only calls again when it decided to retry.
        let retrying_after_throttle = std::cell::Cell::new(None::<bool>);
        let result = retry::run("Graph call", &self.policy, deadline, |_| {
            if let Some(throttled) = retrying_after_throttle.get() {
                crate::metrics::graph_retry(throttled);
            }
            let attempt = self.attempt(&method, url, kind, deadline, &reauthenticated);
            let retrying_after_throttle = &retrying_after_throttle;
            async move {
                let outcome = attempt.await;
                if let Attempt::Retry { error, .. } = &outcome {
                    retrying_after_throttle.set(Some(error.code == ErrorCode::Throttled));
                }
                outcome
            }
        })
        .await;
        match result {
            Ok(reply) => Ok(reply),
            Err(Failed::OutcomeUnknown(why)) => Err(CallFailure::Unknown(why)),
            Err(Failed::OutOfTime) => Err(out_of_time().into()),
            Err(Failed::Error { mut error, hint }) => {
                // Tell the caller when to come back: Graph's hint in whole
                // seconds, or a small default for throttling without one.
                if let Some(hint) = hint {
                    error.retry_after = Some(http::whole_seconds(hint));
                } else if error.code == ErrorCode::Throttled && error.retry_after.is_none() {
                    error.retry_after = Some(THROTTLED_RETRY_HINT);
                }
                Err(error.into())
            }
        }
    }

    /// One attempt: a token, the request, and its classification. A 401 is
    /// answered once per call, inside the attempt, by forgetting the token
    /// and re-reading the secret (the app may have been rotated).
    async fn attempt(
        &self,
        method: &reqwest::Method,
        url: &str,
        kind: CallKind,
        deadline: &Deadline,
        reauthenticated: &AtomicBool,
    ) -> Attempt<Reply, ServiceError> {
        loop {
            let token = match self.bearer(deadline).await {
                Ok(token) => token,
                Err(e) => return Attempt::Stop(e),
            };
            // Asked after the token: fetching it may have used up time.
            let Some(timeout) = deadline.call_timeout(&self.policy) else {
                return Attempt::Stop(out_of_time());
            };
            let reply = match self.send(method, url, kind, &token, timeout).await {
                Ok(reply) => reply,
                Err(unanswered) => return unanswered,
            };
            if reply.status != 401 {
                return classify(kind, reply);
            }
            if reauthenticated.swap(true, Ordering::Relaxed) {
                return Attempt::Stop(
                    ServiceError::config(format!(
                        "Graph rejects the app's token ({}) even after reading the secret again; check the app registration",
                        error_summary(&reply.body)
                    ))
                    .with_graph_request_id(reply.request_id),
                );
            }
            self.tokens.invalidate().await;
            if let Err(e) = self.secrets.get(true).await {
                return Attempt::Stop(e);
            }
        }
    }

    /// Sends one request and reads its answer (capped). A request that got
    /// no usable answer comes back as the retry loop should see it.
    async fn send(
        &self,
        method: &reqwest::Method,
        url: &str,
        kind: CallKind,
        token: &Sensitive,
        timeout: Duration,
    ) -> Result<Reply, Attempt<Reply, ServiceError>> {
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
        let resp = match request.send().await {
            Ok(resp) => resp,
            Err(e) => {
                let error = http::error_kind(&e);
                tracing::warn!(%method, client_request_id, error, "Graph call failed");
                // Only a failed connect proves nothing reached Graph.
                if kind == CallKind::Action && !e.is_connect() {
                    return Err(Attempt::OutcomeUnknown(format!("the POST {error}")));
                }
                return Err(Attempt::Retry {
                    error: ServiceError::new(
                        ErrorCode::GraphUnavailable,
                        format!("Graph could not be reached ({error}); retry later"),
                    ),
                    hint: None,
                });
            }
        };
        let mut reply = Reply::head(&resp);
        match http::read_body(resp, MAX_GRAPH_RESPONSE_BYTES).await {
            Ok(body) => reply.body = body,
            Err(why) if kind == CallKind::Action && reply.is_success() => {
                tracing::debug!(error = why, "POST body unreadable after success status");
            }
            Err(why) if kind == CallKind::Action => {
                return Err(Attempt::OutcomeUnknown(format!("the POST answer: {why}")));
            }
            Err(why) => tracing::warn!(error = why, "Graph response unreadable"),
        }
        tracing::debug!(
            %method,
            status = reply.status,
            client_request_id,
            request_id = reply.request_id.as_deref().unwrap_or(""),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Graph call"
        );
        Ok(reply)
    }
}

/// What a Graph answer (other than 401) means for the retry loop: 429 and
/// 503 are retried after `Retry-After`; 500/502/504 are retried for reads
/// but leave an action's outcome unknown; 403 is a missing permission;
/// anything else is the caller's to interpret.
fn classify(kind: CallKind, reply: Reply) -> Attempt<Reply, ServiceError> {
    let status = reply.status;
    let error = |code, message: String| {
        ServiceError::new(code, message).with_graph_request_id(reply.request_id.clone())
    };
    match status {
        403 => {
            let needed = match kind {
                CallKind::Read => "DeviceManagementManagedDevices.Read.All",
                CallKind::Action => "DeviceManagementManagedDevices.PrivilegedOperations.All",
            };
            Attempt::Stop(error(
                ErrorCode::ConfigurationError,
                format!(
                    "Graph refused the call: the app needs the application permission {needed} with admin consent (and the tenant an Intune licence). Graph said: {}",
                    error_summary(&reply.body)
                ),
            ))
        }
        429 => Attempt::Retry {
            error: error(
                ErrorCode::Throttled,
                "Graph is throttling this app's requests (Intune allows 200 writes and 2,000 requests per 20 seconds per app); retry after the indicated time".to_string(),
            ),
            hint: reply.retry_after,
        },
        503 => Attempt::Retry {
            error: error(
                ErrorCode::GraphUnavailable,
                format!("Graph is unavailable ({}); retry later", error_summary(&reply.body)),
            ),
            hint: reply.retry_after,
        },
        500 | 502 | 504 if kind == CallKind::Action => {
            Attempt::OutcomeUnknown(format!("Graph answered {status}"))
        }
        500 | 502 | 504 => Attempt::Retry {
            error: error(
                ErrorCode::GraphUnavailable,
                format!("Graph failed ({}); retry later", error_summary(&reply.body)),
            ),
            hint: reply.retry_after,
        },
        _ => Attempt::Done(reply),
    }
}

fn out_of_time() -> ServiceError {
    ServiceError::new(
        ErrorCode::GraphUnavailable,
        "ran out of time before Graph could be called; retry later",
    )
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
            error_summary(&reply.body)
        ),
    )
    .with_graph_request_id(reply.request_id.clone())
}

/// One page of a device list as `list_devices` reads it: the devices and
/// the `@odata.nextLink`. Public for the fuzz tests.
#[cfg(feature = "fuzzing")]
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

    fn reply(status: u16, retry_after: Option<Duration>) -> Reply {
        Reply {
            status,
            request_id: Some("rid".into()),
            retry_after,
            body: bytes::Bytes::from_static(
                br#"{"error":{"code":"TooManyRequests","message":"Too many requests."}}"#,
            ),
        }
    }

    #[test]
    fn replies_are_classified_for_the_retry_loop() {
        let hint = Some(Duration::from_millis(2128));
        for kind in [CallKind::Read, CallKind::Action] {
            match classify(kind, reply(429, hint)) {
                Attempt::Retry { error, hint: h } => {
                    assert_eq!(error.code, ErrorCode::Throttled);
                    assert_eq!(error.graph_request_id.as_deref(), Some("rid"));
                    assert_eq!(h, hint);
                }
                other => panic!("429: {other:?}"),
            }
            assert!(matches!(
                classify(kind, reply(503, None)),
                Attempt::Retry { error, hint: None } if error.code == ErrorCode::GraphUnavailable
            ));
            assert!(matches!(
                classify(kind, reply(403, None)),
                Attempt::Stop(error) if error.code == ErrorCode::ConfigurationError
                    && error.message.contains("TooManyRequests: Too many requests.")
            ));
            for done in [200, 204, 400, 404] {
                assert!(
                    matches!(classify(kind, reply(done, None)), Attempt::Done(r) if r.status == done)
                );
            }
        }
        for status in [500, 502, 504] {
            assert!(matches!(
                classify(CallKind::Read, reply(status, None)),
                Attempt::Retry { .. }
            ));
            assert!(matches!(
                classify(CallKind::Action, reply(status, None)),
                Attempt::OutcomeUnknown(why) if why == format!("Graph answered {status}")
            ));
        }
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
