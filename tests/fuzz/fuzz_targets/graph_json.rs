//! Everything read from Graph and Entra ID, on the same bytes: a device, a
//! page of a device list, a Graph error body, a token response and an Entra
//! error. Nothing panics; what is read keeps its promises:
//! * a device's `Debug` never shows a passcode, and its summary, newest
//!   reset and eligibility can always be computed;
//! * a next-page link is only "same origin" when scheme, host and port are
//!   Graph's;
//! * an error summary is short, and a token error never repeats Entra's
//!   `error_description`;
//! * a token lifetime is between 1 s and a day, so caching it can't overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passcode_core::Action;
use passcode_core::auth::{MAX_TOKEN_LIFETIME, parse_token_response, token_error_message};
use passcode_core::device::ManagedDevice;
use passcode_core::eligibility;
use passcode_core::graph::{parse_page, same_origin};
use passcode_core::http::error_summary;
use serde_json::Value;
use std::time::{Duration, Instant};

const ROOTS: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "http://127.0.0.1:5000",
];

fn check_device(d: &ManagedDevice) {
    let summary = d.summary();
    assert_eq!(summary.id, d.id);
    if let Some(latest) = d.latest_reset() {
        assert!(latest.is_reset_passcode());
        let _ = latest.in_progress();
    }
    // `Debug` does not depend on the passcodes' values at all.
    let mut blanked = d.clone();
    for r in blanked.device_action_results.iter_mut().flatten() {
        let _ = r.started_at();
        r.passcode = r.passcode.as_ref().map(|_| String::new());
    }
    assert_eq!(
        format!("{d:?}"),
        format!("{blanked:?}"),
        "Debug shows a passcode"
    );
    for action in Action::ALL {
        let _ = eligibility::check(action, d);
    }
}

fn check_link(link: &str) {
    for root in ROOTS {
        if same_origin(link, root) {
            let a = url::Url::parse(link).unwrap();
            let b = url::Url::parse(root).unwrap();
            assert_eq!(a.scheme(), b.scheme(), "{link:?}");
            assert_eq!(a.host_str(), b.host_str(), "{link:?}");
            assert_eq!(
                a.port_or_known_default(),
                b.port_or_known_default(),
                "{link:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // A device, as `get_device` reads it.
    if let Ok(d) = serde_json::from_slice::<ManagedDevice>(data) {
        check_device(&d);
    }
    // A page, as `list_devices` reads it.
    if let Some((devices, next)) = parse_page(data) {
        devices.iter().for_each(check_device);
        if let Some(next) = next {
            check_link(&next);
        }
    }
    // The bytes as a link, too.
    if let Ok(text) = std::str::from_utf8(data) {
        check_link(text);
    }
    // A Graph error body.
    let summary = error_summary(data);
    let code_len = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::len))
        .unwrap_or(0);
    assert!(
        summary.len() <= code_len + 2 + 300 * 4,
        "summary of {} bytes",
        summary.len()
    );
    // A token response.
    if let Some((token, lifetime)) = parse_token_response(data) {
        assert!(lifetime >= Duration::from_secs(1) && lifetime <= MAX_TOKEN_LIFETIME);
        let _refresh_at = Instant::now() + lifetime - (lifetime / 4).min(Duration::from_secs(300));
        assert_eq!(format!("{token:?}"), "Sensitive(***)");
    }
    // An Entra error, at the statuses Entra uses.
    let description = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v["error_description"].as_str().map(str::to_string));
    let error = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    for status in [400, 401, 403, 429, 500, 503] {
        let message = token_error_message(status, data);
        assert!(!message.is_empty());
        if let Some(d) = &description
            && d.len() > 8
            && !error.contains(d.as_str())
            && !message_templates_contain(d)
        {
            assert!(
                !message.contains(d.as_str()),
                "token error repeats error_description: {message:?}"
            );
        }
    }
});

/// Whether `text` could be in a token error message without coming from the
/// description (the fixed texts are long; a description that is part of one
/// is not a leak).
fn message_templates_contain(text: &str) -> bool {
    const FIXED: &str = "the Entra ID token endpoint is unavailable (HTTP ) (AADSTS) \
        Entra ID refused the app credentials: the client secret is wrong (check that the secret's value, not its id, is stored) \
        the client secret has expired: create a new one and update the secret \
        the certificate assertion failed validation: is this certificate uploaded to the app registration, and does the private key match it? \
        the certificate assertion is outside its validity time (check the clock) \
        no app with this clientId exists in the tenant (or the app is registered in another cloud) \
        the app is disabled \
        Entra ID does not know the tenant: check tenantId in the secret and GRAPH_CLOUD \
        Entra ID refused the Graph scope: check GRAPH_CLOUD / GRAPH_ENDPOINT \
        a Conditional Access policy for workload identities blocks this app \
        the credentials were not accepted \
        Entra ID refused the token request (HTTP , no error code)";
    FIXED.contains(text)
}
