//! One error type for everything a caller can see, with stable codes.
//!
//! The `code` strings and HTTP statuses are part of the public contract (README,
//! "Errors"); helpdesk integrations branch on them, so never rename one.

use serde::Serialize;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed or names an invalid identifier. Changes nothing.
    InvalidRequest,
    /// No managed device matches the identifier exactly.
    DeviceNotFound,
    /// More than one managed device matches; the caller must pick one by id.
    AmbiguousDevice,
    /// The device's platform or enrollment type cannot take this action.
    UnsupportedPlatform,
    /// The device is not in the `managed` state (retire/wipe pending, ...).
    DeviceNotManaged,
    /// Graph kept throttling until the invocation ran out of time.
    Throttled,
    /// Graph answered with an error that retrying will not fix.
    GraphError,
    /// Graph, Entra ID's token endpoint, or the outcome of a POST was
    /// unavailable within the deadline.
    GraphUnavailable,
    /// Secrets Manager could not be reached (or failed) to read the app's
    /// credentials; nothing was sent.
    SecretsUnavailable,
    /// The function's own setup is wrong: secret missing or malformed,
    /// credentials refused, Graph permission missing, idempotency table
    /// missing or not writable.
    ConfigurationError,
    /// The same request is being handled by another invocation right now.
    RequestInProgress,
    /// The `idempotencyKey` was already used for a request on another device.
    IdempotencyKeyReused,
    /// The idempotency table could not be read or written; nothing was sent.
    IdempotencyUnavailable,
    Forbidden,
    PasscodeNotReady,
    PasscodeNotAvailable,
    /// A queued (bulk) write arrived while the bulk stop switch is on; it
    /// was not sent.
    BulkStopped,
    /// A bulk request would send a different number of devices than its
    /// `expectedCount`; nothing was queued.
    ExpectedCountMismatch,
    /// The per-hour cap of bulk devices is reached; nothing was queued.
    BulkHourlyLimit,
    /// No batch with this id (or for this action).
    BatchNotFound,
    /// The bulk queue could not take (all) messages.
    QueueUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalidRequest",
            ErrorCode::DeviceNotFound => "deviceNotFound",
            ErrorCode::AmbiguousDevice => "ambiguousDevice",
            ErrorCode::UnsupportedPlatform => "unsupportedPlatform",
            ErrorCode::DeviceNotManaged => "deviceNotManaged",
            ErrorCode::Throttled => "throttled",
            ErrorCode::GraphError => "graphError",
            ErrorCode::GraphUnavailable => "graphUnavailable",
            ErrorCode::SecretsUnavailable => "secretsUnavailable",
            ErrorCode::ConfigurationError => "configurationError",
            ErrorCode::RequestInProgress => "requestInProgress",
            ErrorCode::IdempotencyKeyReused => "idempotencyKeyReused",
            ErrorCode::IdempotencyUnavailable => "idempotencyUnavailable",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::PasscodeNotReady => "passcodeNotReady",
            ErrorCode::PasscodeNotAvailable => "passcodeNotAvailable",
            ErrorCode::BulkStopped => "bulkStopped",
            ErrorCode::ExpectedCountMismatch => "expectedCountMismatch",
            ErrorCode::BulkHourlyLimit => "bulkHourlyLimit",
            ErrorCode::BatchNotFound => "batchNotFound",
            ErrorCode::QueueUnavailable => "queueUnavailable",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Forbidden => 403,
            ErrorCode::DeviceNotFound | ErrorCode::PasscodeNotAvailable | ErrorCode::BatchNotFound => 404,
            ErrorCode::AmbiguousDevice
            | ErrorCode::RequestInProgress
            | ErrorCode::PasscodeNotReady
            | ErrorCode::BulkStopped
            | ErrorCode::ExpectedCountMismatch => 409,
            ErrorCode::UnsupportedPlatform
            | ErrorCode::DeviceNotManaged
            | ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::Throttled | ErrorCode::BulkHourlyLimit => 429,
            ErrorCode::GraphError => 502,
            ErrorCode::GraphUnavailable
            | ErrorCode::SecretsUnavailable
            | ErrorCode::IdempotencyUnavailable
            | ErrorCode::QueueUnavailable => 503,
            ErrorCode::ConfigurationError => 500,
        }
    }

    /// Name used as the Lambda `errorType` when an EventBridge invocation fails.
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::DeviceNotFound => "DeviceNotFound",
            ErrorCode::AmbiguousDevice => "AmbiguousDevice",
            ErrorCode::UnsupportedPlatform => "UnsupportedPlatform",
            ErrorCode::DeviceNotManaged => "DeviceNotManaged",
            ErrorCode::Throttled => "Throttled",
            ErrorCode::GraphError => "GraphError",
            ErrorCode::GraphUnavailable => "GraphUnavailable",
            ErrorCode::SecretsUnavailable => "SecretsUnavailable",
            ErrorCode::ConfigurationError => "ConfigurationError",
            ErrorCode::RequestInProgress => "RequestInProgress",
            ErrorCode::IdempotencyKeyReused => "IdempotencyKeyReused",
            ErrorCode::IdempotencyUnavailable => "IdempotencyUnavailable",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::PasscodeNotReady => "PasscodeNotReady",
            ErrorCode::PasscodeNotAvailable => "PasscodeNotAvailable",
            ErrorCode::BulkStopped => "BulkStopped",
            ErrorCode::ExpectedCountMismatch => "ExpectedCountMismatch",
            ErrorCode::BulkHourlyLimit => "BulkHourlyLimit",
            ErrorCode::BatchNotFound => "BatchNotFound",
            ErrorCode::QueueUnavailable => "QueueUnavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device offered to the caller when an identifier matched several devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub id: String,
    pub device_name: String,
    pub operating_system: String,
    pub serial_number: String,
    pub user_principal_name: String,
}

/// An error the caller sees. `message` is written for a helpdesk agent and
/// never contains a secret, token or passcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    /// Whether a later retry of the same request may succeed. Decides, for
    /// EventBridge, between failing the invocation (Lambda retries) and a
    /// `rejected` result (no retry).
    pub transient: bool,
    pub retry_after: Option<Duration>,
    pub graph_request_id: Option<String>,
    pub candidates: Vec<Candidate>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ServiceError {
        let transient = matches!(
            code,
            ErrorCode::Throttled
                | ErrorCode::GraphUnavailable
                | ErrorCode::SecretsUnavailable
                | ErrorCode::ConfigurationError
                | ErrorCode::RequestInProgress
                | ErrorCode::IdempotencyUnavailable
                | ErrorCode::BulkHourlyLimit
                | ErrorCode::QueueUnavailable
        );
        ServiceError {
            code,
            message: message.into(),
            transient,
            retry_after: None,
            graph_request_id: None,
            candidates: Vec::new(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn config(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorCode::ConfigurationError, message)
    }

    pub fn with_graph_request_id(mut self, id: Option<String>) -> ServiceError {
        self.graph_request_id = id;
        self
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_transience_follow_the_contract() {
        let cases = [
            (ErrorCode::InvalidRequest, 400, false),
            (ErrorCode::DeviceNotFound, 404, false),
            (ErrorCode::AmbiguousDevice, 409, false),
            (ErrorCode::UnsupportedPlatform, 422, false),
            (ErrorCode::DeviceNotManaged, 422, false),
            (ErrorCode::Throttled, 429, true),
            (ErrorCode::GraphError, 502, false),
            (ErrorCode::GraphUnavailable, 503, true),
            (ErrorCode::SecretsUnavailable, 503, true),
            (ErrorCode::ConfigurationError, 500, true),
            (ErrorCode::RequestInProgress, 409, true),
            (ErrorCode::IdempotencyKeyReused, 422, false),
            (ErrorCode::IdempotencyUnavailable, 503, true),
        ];
        for (code, status, transient) in cases {
            let err = ServiceError::new(code, "x");
            assert_eq!(code.http_status(), status, "{code}");
            assert_eq!(err.transient, transient, "{code}");
        }
    }
}
