//! Typed client for the `/_sim/...` control API, for tests written in Rust.

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::faults::FaultRule;
use crate::log::LoggedRequest;
use crate::state::{Settings, WriteLimit};

/// A control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The simulator could not be reached or the body could not be read.
    #[error("control request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The simulator answered with a non-2xx status.
    #[error("control endpoint answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body (the simulator's `{"error": ...}` text).
        body: String,
    },
    /// The answer was not the expected JSON.
    #[error("unexpected control response: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Body of `PUT /_sim/app`. Absent fields keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppCredentials {
    /// Accepted client secrets (replaces the list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
    /// Registered certificate: `Some(None)` removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<Option<String>>,
    /// Application permissions granted to the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// Handle on a running simulator's control API.
#[derive(Debug, Clone)]
pub struct Control {
    base_url: String,
    http: reqwest::Client,
}

impl Control {
    /// Control client for the simulator at `base_url` (no trailing slash needed).
    pub fn new(base_url: &str) -> Control {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Control {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// Base URL of the simulator.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ControlError> {
        let mut request = self
            .http
            .request(method, format!("{}/_sim/{path}", self.base_url));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(ControlError::Status {
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// [`Control::call`] for endpoints whose answer carries nothing the
    /// caller needs.
    async fn call_unit(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(), ControlError> {
        self.call::<Value>(method, path, body).await.map(|_| ())
    }

    /// `GET /_sim/health`.
    pub async fn health(&self) -> Result<(), ControlError> {
        self.call_unit(Method::GET, "health", None).await
    }

    /// `POST /_sim/reset`: reseed devices, forget tokens, credentials,
    /// faults, the request log and settings.
    pub async fn reset(&self) -> Result<(), ControlError> {
        self.call_unit(Method::POST, "reset", None).await
    }

    /// `PUT /_sim/app`. Returns the app summary (no secrets).
    pub async fn set_app(&self, app: &AppCredentials) -> Result<Value, ControlError> {
        self.call(Method::PUT, "app", Some(&serde_json::to_value(app)?))
            .await
    }

    /// Accept exactly these client secrets (rotation replaces the list).
    pub async fn set_secrets(&self, secrets: &[&str]) -> Result<Value, ControlError> {
        self.call(Method::PUT, "app", Some(&json!({ "secrets": secrets })))
            .await
    }

    /// Register a certificate (PEM), or remove it with `None`.
    pub async fn set_certificate(&self, pem: Option<&str>) -> Result<Value, ControlError> {
        self.call(Method::PUT, "app", Some(&json!({ "certificatePem": pem })))
            .await
    }

    /// Replace the app's granted application permissions. Tokens issued
    /// earlier keep the roles they were issued with.
    pub async fn set_roles(&self, roles: &[&str]) -> Result<Value, ControlError> {
        self.call(Method::PUT, "app", Some(&json!({ "roles": roles })))
            .await
    }

    /// `GET /_sim/app`.
    pub async fn app(&self) -> Result<Value, ControlError> {
        self.call(Method::GET, "app", None).await
    }

    /// `POST /_sim/tokens/expire`: every issued token now reads as expired.
    pub async fn expire_tokens(&self) -> Result<(), ControlError> {
        self.call_unit(Method::POST, "tokens/expire", None).await
    }

    /// `GET /_sim/tokens`: every access token issued since the last reset,
    /// for log-leak assertions.
    pub async fn issued_tokens(&self) -> Result<Vec<String>, ControlError> {
        self.call(Method::GET, "tokens", None).await
    }

    /// `GET /_sim/settings`.
    pub async fn settings(&self) -> Result<Settings, ControlError> {
        self.call(Method::GET, "settings", None).await
    }

    /// `PUT /_sim/settings` with any subset of the settings fields.
    pub async fn update_settings(&self, patch: &Value) -> Result<Settings, ControlError> {
        self.call(Method::PUT, "settings", Some(patch)).await
    }

    /// Set the device list page size.
    pub async fn set_page_size(&self, n: usize) -> Result<Settings, ControlError> {
        self.update_settings(&json!({ "pageSize": n })).await
    }

    /// Ignore (or honour again) every `$filter`.
    pub async fn set_silent_filter_mode(&self, on: bool) -> Result<Settings, ControlError> {
        self.update_settings(&json!({ "silentFilterMode": on }))
            .await
    }

    /// `expires_in` of tokens issued from now on.
    pub async fn set_token_lifetime_seconds(&self, secs: u64) -> Result<Settings, ControlError> {
        self.update_settings(&json!({ "tokenLifetimeSeconds": secs }))
            .await
    }

    /// Leave actions accepted in the last `secs` seconds out of
    /// `deviceActionResults` (0: list them at once).
    pub async fn set_action_listing_delay_seconds(
        &self,
        secs: u64,
    ) -> Result<Settings, ControlError> {
        self.update_settings(&json!({ "actionListingDelaySeconds": secs }))
            .await
    }

    /// Change or disable (`None`) the per-app write throttle.
    pub async fn set_write_limit(
        &self,
        limit: Option<WriteLimit>,
    ) -> Result<Settings, ControlError> {
        self.update_settings(&json!({ "writeLimit": limit })).await
    }

    /// `GET /_sim/devices`: every device, full beta shape with action results.
    pub async fn devices(&self) -> Result<Vec<Value>, ControlError> {
        self.call(Method::GET, "devices", None).await
    }

    /// `GET /_sim/devices/{id}`.
    pub async fn device(&self, id: &str) -> Result<Value, ControlError> {
        self.call(Method::GET, &format!("devices/{id}"), None).await
    }

    /// `POST /_sim/devices`: add or replace a device (needs `id`; other
    /// properties default).
    pub async fn put_device(&self, device: &Value) -> Result<Value, ControlError> {
        self.call(Method::POST, "devices", Some(device)).await
    }

    /// `deviceActionResults` of a device.
    pub async fn action_results(&self, id: &str) -> Result<Vec<Value>, ControlError> {
        let device = self.device(id).await?;
        // Absent and null (the variants profile) both mean "no results yet".
        Ok(serde_json::from_value(
            device
                .get("deviceActionResults")
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or_else(|| json!([])),
        )?)
    }

    /// `PUT /_sim/clock`: run the tenant's clock `seconds` ahead of real
    /// time (new actions start then; updates are stamped then).
    pub async fn set_clock_offset(&self, seconds: i64) -> Result<(), ControlError> {
        self.call_unit(
            Method::PUT,
            "clock",
            Some(&json!({ "offsetSeconds": seconds })),
        )
        .await
    }

    /// `POST /_sim/devices/{id}/actions/{action}`: move the latest entry of
    /// `action` to `state` (`done`, `failed`, `notSupported`, `active`,
    /// `canceled`, ...). Returns the updated entry.
    pub async fn advance_action(
        &self,
        id: &str,
        action: &str,
        state: &str,
        passcode: Option<&str>,
    ) -> Result<Value, ControlError> {
        let mut body = json!({ "state": state });
        if let Some(p) = passcode {
            body["passcode"] = json!(p);
        }
        self.post_action(id, action, &body).await
    }

    /// Like [`Control::advance_action`], for a final state with Intune's
    /// `errorCode` (a failed or refused action).
    pub async fn finish_action_with_error(
        &self,
        id: &str,
        action: &str,
        state: &str,
        error_code: i64,
    ) -> Result<Value, ControlError> {
        let body = json!({ "state": state, "errorCode": error_code });
        self.post_action(id, action, &body).await
    }

    /// `POST /_sim/devices/{id}/actions/{action}` with `body`.
    async fn post_action(
        &self,
        id: &str,
        action: &str,
        body: &Value,
    ) -> Result<Value, ControlError> {
        self.call(
            Method::POST,
            &format!("devices/{id}/actions/{action}"),
            Some(body),
        )
        .await
    }

    /// `GET /_sim/violations`: requests that broke Graph's published schema.
    pub async fn violations(&self) -> Result<Vec<crate::Violation>, ControlError> {
        let value = self.call(Method::GET, "violations", None).await?;
        Ok(serde_json::from_value(value)?)
    }

    /// `POST /_sim/faults`.
    pub async fn add_fault(&self, rule: &FaultRule) -> Result<(), ControlError> {
        self.call_unit(Method::POST, "faults", Some(&serde_json::to_value(rule)?))
            .await
    }

    /// `GET /_sim/faults`: armed rules with their `remaining` count.
    pub async fn faults(&self) -> Result<Vec<Value>, ControlError> {
        self.call(Method::GET, "faults", None).await
    }

    /// `DELETE /_sim/faults`.
    pub async fn clear_faults(&self) -> Result<(), ControlError> {
        self.call_unit(Method::DELETE, "faults", None).await
    }

    /// `GET /_sim/requests`.
    pub async fn try_requests(&self) -> Result<Vec<LoggedRequest>, ControlError> {
        self.call(Method::GET, "requests", None).await
    }

    /// `GET /_sim/requests`, panicking if the simulator cannot be asked
    /// (a test helper: a missing simulator is a broken test).
    pub async fn requests(&self) -> Vec<LoggedRequest> {
        match self.try_requests().await {
            Ok(log) => log,
            Err(e) => panic!("graph-sim request log unavailable: {e}"),
        }
    }

    /// `DELETE /_sim/requests`.
    pub async fn clear_requests(&self) -> Result<(), ControlError> {
        self.call_unit(Method::DELETE, "requests", None).await
    }

    /// How many `action` POSTs for `device_id` reached the device: past
    /// authentication, permission, throttling and request validation, and
    /// not stopped by an injected fault before commit (whatever the device
    /// then answered, including 400 for an unsupported platform).
    pub async fn action_count(&self, device_id: &str, action: &str) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|r| {
                r.method == "POST"
                    && r.reached_device
                    && r.action.as_deref() == Some(action)
                    && r.device_id
                        .as_deref()
                        .is_some_and(|d| d.eq_ignore_ascii_case(device_id))
            })
            .count()
    }

    /// [`Control::action_count`] for `resetPasscode`.
    pub async fn post_count(&self, device_id: &str) -> usize {
        self.action_count(device_id, "resetPasscode").await
    }
}
