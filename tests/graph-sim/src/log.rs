//! The request log behind `GET /_sim/requests`.
//!
//! Tests assert on what reached the services (how many POSTs, which API
//! version, which credential type) rather than on what a client claims it did.
//! The log deliberately has no field that could hold a bearer token, secret,
//! client assertion or passcode.

use serde::{Deserialize, Serialize};

/// One Graph or token request as seen by the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    /// Arrival order, starting at 1 after a reset.
    pub seq: u64,
    /// Arrival time, RFC 3339 UTC.
    pub at: String,
    /// `graph` or `token`.
    pub endpoint: String,
    /// HTTP method.
    pub method: String,
    /// Request path, as sent.
    pub path: String,
    /// Percent-decoded query string (`+` read as space); empty if none.
    pub query: String,
    /// Status sent, or `None` when the connection was dropped.
    pub status: Option<u16>,
    /// Device id named in the path, if any.
    pub device_id: Option<String>,
    /// Device action named in the path (`resetPasscode`, ...), if any.
    pub action: Option<String>,
    /// The caller's `client-request-id`, or the one generated for it.
    pub client_request_id: String,
    /// The `request-id` (Graph) or trace id (token endpoint) of the answer.
    pub request_id: String,
    /// Graph only: `valid`, `missing`, `expired` or `invalid`; `None` when
    /// the request was answered before authentication was looked at.
    pub auth: Option<String>,
    /// Token endpoint only: `secret` or `assertion` when one was presented.
    pub credential: Option<String>,
    /// Label of the injected fault that hit this request, if any.
    pub fault: Option<String>,
    /// True when a device action request got past authentication,
    /// permission, throttling and request validation and was evaluated
    /// against an existing device (whatever the outcome).
    pub reached_device: bool,
}
