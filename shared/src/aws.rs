//! AWS SDK clients configured from what Lambda puts in the environment: the
//! region, the execution role's credentials and, for tests and local stacks,
//! `AWS_ENDPOINT_URL[_<SERVICE>]`.
//!
//! No provider chain (`aws-config`) is needed for that: it would only add an
//! STS client, its endpoint rules and ~0.4 MB to each binary. Both clients
//! share one HTTP client (one TLS set-up, one connection pool).

use crate::config::{env_flag as flag, env_var as env};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::sdk_config::{RetryConfig, SharedCredentialsProvider, TimeoutConfig};
use std::time::Duration;

/// The settings every client shares. Short timeouts: both services answer in
/// milliseconds from inside the region, and a hung call must not eat the
/// invocation's deadline.
pub fn sdk_config() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .use_fips(flag("AWS_USE_FIPS_ENDPOINT"))
        .use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"));
    if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        builder = builder.region(Region::new(region));
    }
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => {
            let credentials =
                Credentials::new(key, secret, env("AWS_SESSION_TOKEN"), None, "Environment");
            builder = builder.credentials_provider(SharedCredentialsProvider::new(credentials));
        }
        _ => tracing::warn!(
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set: AWS services cannot be called"
        ),
    }
    builder.build()
}

/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` (the SDK's own rules).
fn endpoint_override(service_variable: &str) -> Option<String> {
    if flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
        return None;
    }
    env(service_variable).or_else(|| env("AWS_ENDPOINT_URL"))
}

pub fn secrets_manager(shared: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    let mut builder = aws_sdk_secretsmanager::config::Builder::from(shared);
    if let Some(url) = endpoint_override("AWS_ENDPOINT_URL_SECRETS_MANAGER") {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_secretsmanager::Client::from_conf(builder.build())
}

pub fn dynamodb(shared: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(shared);
    if let Some(url) = endpoint_override("AWS_ENDPOINT_URL_DYNAMODB") {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// A short description of an SDK error for logs and messages: the service's
/// error code, or the kind of failure. Never a request or response body.
pub fn error_text<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .unwrap_or("unknown service error")
            .to_string(),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "connection failed".into(),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "request could not be built".into(),
        _ => "unknown error".into(),
    }
}

#[cfg(feature = "tracker")]
pub fn eventbridge(shared: &SdkConfig) -> aws_sdk_eventbridge::Client {
    let mut builder = aws_sdk_eventbridge::config::Builder::from(shared);
    if let Some(url) = endpoint_override("AWS_ENDPOINT_URL_EVENTBRIDGE") {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_eventbridge::Client::from_conf(builder.build())
}

#[cfg(feature = "bulk")]
pub fn sqs(shared: &SdkConfig) -> aws_sdk_sqs::Client {
    let mut builder = aws_sdk_sqs::config::Builder::from(shared);
    if let Some(url) = endpoint_override("AWS_ENDPOINT_URL_SQS") {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_sqs::Client::from_conf(builder.build())
}
