//! Core of the Intune passcode functions. Each function binary calls
//! [`run`] with its [`Action`]; everything else lives here, one concern per
//! module, in the order a request flows through them:
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | environment → [`config::Config`] (cloud hosts, secret id, flags) |
//! | [`trigger`] | API Gateway v1/v2, EventBridge or direct event → request + caller |
//! | [`request`] | request fields, identifier validation, OData escaping |
//! | [`secrets`] | Graph app credentials from Secrets Manager, cached |
//! | [`auth`] | Entra ID tokens (client secret or certificate assertion) |
//! | [`graph`] | the Graph calls, retries, Graph errors |
//! | [`lookup`] | identifier → exactly one managed device |
//! | [`eligibility`] | the platform support matrix (pure) |
//! | [`handler`] | one invocation: duplicate check, the POST, unknown outcomes |
//! | [`response`] | answers per trigger |
//! | [`audit`] | the per-invocation audit record |

pub mod action;
pub mod audit;
pub mod auth;
pub mod config;
pub mod device;
pub mod eligibility;
pub mod error;
pub mod graph;
pub mod handler;
pub mod logging;
pub mod lookup;
pub mod request;
pub mod response;
pub mod retry;
pub mod secrets;
pub mod sensitive;
pub mod trigger;

pub use action::Action;

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sets up logging, configuration and clients once for this execution
/// environment, then serves invocations until Lambda stops the process.
pub async fn run(action: Action) -> Result<(), BoxError> {
    logging::init();
    let config = match config::Config::from_env() {
        Ok(config) => config,
        Err(line) => {
            // One clear line, then exit: Lambda reports the init failure.
            tracing::error!("configuration error: {line}");
            std::process::exit(2);
        }
    };
    let app = handler::App {
        action,
        graph: build_graph(config).await?,
    };
    let app = &app;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        handler::handle(app, event)
    }))
    .await
}

/// Clients are built here, once; nothing is fetched over the network until
/// the first request needs it.
async fn build_graph(config: config::Config) -> Result<graph::Graph, BoxError> {
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!(
            "intune-passcode-functions/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()?;
    let secrets = secrets::SecretStore::new(
        secrets_client(),
        config.secret_id.clone(),
        config.secret_ttl,
    );
    Ok(graph::Graph::new(http, config, secrets))
}

/// The Secrets Manager client, configured from what Lambda puts in the
/// environment: the region, the execution role's credentials and, for tests
/// and local stacks, `AWS_ENDPOINT_URL[_SECRETS_MANAGER]`. No provider chain
/// (`aws-config`) is needed for that: it would only add an STS client, its
/// endpoint rules and ~0.4 MB to the binary.
fn secrets_client() -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::retry::RetryConfig;
    use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let flag = |name: &str| env(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut builder = aws_sdk_secretsmanager::Config::builder()
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
            builder = builder.credentials_provider(credentials);
        }
        _ => tracing::warn!(
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set: Secrets Manager cannot be called"
        ),
    }
    if !flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        && let Some(url) =
            env("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| env("AWS_ENDPOINT_URL"))
    {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_secretsmanager::Client::from_conf(builder.build())
}
