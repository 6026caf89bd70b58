//! Core of the Intune passcode functions. Each function binary calls
//! [`run`] with its [`Action`]; everything else lives here, one concern per
//! module, in the order a request flows through them:
//!
//! | module | concern |
//! |---|---|
//! | [`action`] | the five actions and their names: functions, routes, EventBridge |
//! | [`logging`] | log level and format from Lambda's advanced logging controls |
//! | [`config`] | environment → [`config::Config`] (cloud hosts, secret id, flags) |
//! | [`aws`] | AWS SDK clients from Lambda's environment (no provider chain) |
//! | [`trigger`] | API Gateway v1/v2, EventBridge, SQS or direct event → request + caller |
//! | [`origin`] | where a request came from and who asked (plain types) |
//! | [`request`] | request fields, identifier validation, OData escaping |
//! | [`error`] | the one error type callers see: stable codes and HTTP statuses |
//! | [`sensitive`] | strings that never reach a log line (secrets, tokens, passcodes) |
//! | [`credentials`] | the secret's contents: client secret or certificate (thumbprint, key, expiry) |
//! | [`secrets`] | Graph app credentials from Secrets Manager, cached; certificate expiry warning |
//! | [`auth`] | Entra ID tokens (client secret or certificate assertion) |
//! | [`retry`] | the one retry loop, its policy, the deadline, `Retry-After` |
//! | [`http`] | capped bodies, transport errors, Graph's error format |
//! | [`graph`] | the Graph calls and what their answers mean |
//! | [`device`] | the parts of Graph's `managedDevice` read here (from beta) |
//! | [`lookup`] | identifier → exactly one managed device |
//! | [`eligibility`] | the platform support matrix (pure) |
//! | [`idempotency`] | one DynamoDB record per logical request, across environments |
//! | [`device_lease`] | one sender per device at a time, across environments |
//! | [`rights`] | the right each action needs of JWT callers |
//! | [`reveal`] | which Android passcode may be handed out (pure) |
//! | [`handler`] | one invocation: idempotency claim, lookup, device lease, its [`handler::Policy`]; `handler::send`: pending check, POST, unknown outcomes |
//! | [`batch`] | a batch of queued (SQS) requests, each through the handler's path |
//! | [`bulk`] | many devices in one request: plan, brake, batch record, fan-out to SQS |
//! | [`budget`] | the tenant-wide write budget every POST takes from |
//! | [`stop`] | the brake on queued writes |
//! | [`outcome`] | how a request ended (plain types) and what it tells the agent |
//! | [`response`] | answers per trigger |
//! | [`audit`] | the per-invocation audit record (with its metrics) |
//! | [`metrics`] | per-invocation Graph call counts for the audit record |
//! | [`tracking`] | the action log, the tracker's runs and its result events |
//! | [`clock`] | wall-clock time compared with Intune's dates (movable in tests) |
//! | [`dynamo`] | DynamoDB attribute helpers |

// Other crates need only the actions and their rights (the local stack,
// the benchmark); everything else is private. The fuzz targets reach the
// parsers through the `fuzzing` feature, so the public API does not grow
// with what they test.
pub mod action;
pub mod rights;

macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {
        $(
            #[cfg(feature = "fuzzing")]
            pub mod $name;
            #[cfg(not(feature = "fuzzing"))]
            mod $name;
        )*
    };
}

internal_modules!(
    audit,
    auth,
    aws,
    batch,
    budget,
    bulk,
    clock,
    config,
    credentials,
    device,
    device_lease,
    dynamo,
    eligibility,
    error,
    graph,
    handler,
    http,
    idempotency,
    logging,
    lookup,
    metrics,
    origin,
    outcome,
    request,
    response,
    retry,
    reveal,
    secrets,
    sensitive,
    stop,
    tracking,
    trigger,
);

pub use action::Action;

use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sets up logging, configuration and clients once for this execution
/// environment, then serves invocations until Lambda stops the process.
pub async fn run(action: Action) -> Result<(), BoxError> {
    logging::init();
    let config = or_exit(config::Config::from_env());
    let right = or_exit(rights::RequiredRight::from_env(
        action,
        config::env_var("REQUIRED_ROLE").as_deref(),
    ));
    let app = build_app(action, config, right)?;
    let app = &app;
    // lambda_runtime runs each invocation inside a span carrying its
    // request id, which `logging` adds to every line.
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        metrics::counting(handler::handle(app, event))
    }))
    .await
}

/// The completion tracker (`passcode-tracker`): the same start-up, then
/// one tracker run per scheduled invocation.
#[cfg(feature = "tracker")]
pub async fn run_tracker() -> Result<(), BoxError> {
    logging::init();
    let config = or_exit(config::Config::from_env());
    let settings = or_exit(tracking::settings::TrackerSettings::from_lookup(
        config::env_var,
    ));
    let aws = aws::sdk_config();
    let secrets = secret_store(&config, &aws);
    let dynamodb = aws::dynamodb(&aws);
    let tracker = tracking::tracker::Tracker {
        batches: config
            .idempotency_table
            .clone()
            .map(|t| bulk::settle::BatchSettler::new(dynamodb.clone(), t)),
        log: tracking::ActionLog::new(dynamodb, settings.actions_table.clone()),
        events: tracking::events::EventPublisher::new(
            aws::eventbridge(&aws),
            settings.event_bus.clone(),
            settings.event_source.clone(),
        ),
        graph: graph::Graph::new(http_client()?, config, secrets),
        settings,
    };
    let tracker = &tracker;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        metrics::counting(tracking::tracker::handle(tracker, event))
    }))
    .await
}

/// The bulk function (`bulk-passcode`): the same start-up, then one bulk
/// request (a new batch, its preview, or its progress) per invocation.
#[cfg(feature = "bulk")]
pub async fn run_bulk() -> Result<(), BoxError> {
    logging::init();
    let config = or_exit(config::Config::from_env());
    let settings = or_exit(bulk::BulkSettings::from_lookup(config::env_var));
    let right = or_exit(rights::RequiredRight::named(
        action::BULK_ROLE,
        config::env_var("REQUIRED_ROLE").as_deref(),
    ));
    let table = or_exit(config.idempotency_table.clone().ok_or_else(|| {
        "IDEMPOTENCY_TABLE is required: batches, the hourly cap and the stop switch live there"
            .to_string()
    }));
    let aws = aws::sdk_config();
    let dynamodb = aws::dynamodb(&aws);
    let app = bulk::BulkApp {
        actions: config
            .actions_table
            .clone()
            .map(|t| tracking::ActionLog::new(dynamodb.clone(), t)),
        store: bulk::store::BatchStore::new(dynamodb.clone(), table.clone()),
        stop: stop::StopSwitch::new(dynamodb, table, config.stop_check),
        queues: bulk::BulkQueues::new(
            aws::sqs(&aws),
            settings.reset_queue_url.clone(),
            settings.remove_queue_url.clone(),
        ),
        pending_window: config.pending_window,
        graph: graph::Graph::new(http_client()?, config.clone(), secret_store(&config, &aws)),
        settings,
        right,
    };
    let app = &app;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        metrics::counting(bulk::handle(app, event))
    }))
    .await
}

/// A configuration error is one clear line, then exit: Lambda reports the
/// init failure.
fn or_exit<T>(result: Result<T, String>) -> T {
    match result {
        Ok(value) => value,
        Err(line) => {
            tracing::error!("configuration error: {line}");
            std::process::exit(2);
        }
    }
}

/// One HTTP client for Graph and Entra ID per execution environment.
fn http_client() -> Result<reqwest::Client, BoxError> {
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!(
            "intune-passcode-functions/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()?)
}

fn secret_store(config: &config::Config, aws: &aws_types::SdkConfig) -> secrets::SecretStore {
    secrets::SecretStore::new(
        aws::secrets_manager(aws),
        config.secret_id.clone(),
        config.secret_ttl,
        config.metrics_namespace.clone(),
    )
}

/// Clients are built here, once; nothing is fetched over the network until
/// the first request needs it.
fn build_app(
    action: Action,
    config: config::Config,
    right: rights::RequiredRight,
) -> Result<handler::App, BoxError> {
    let aws = aws::sdk_config();
    let secrets = secret_store(&config, &aws);
    // One DynamoDB client for both tables, built only when one is used.
    let dynamodb = (config.idempotency_table.is_some() || config.actions_table.is_some())
        .then(|| aws::dynamodb(&aws));
    let idempotency =
        config
            .idempotency_table
            .clone()
            .zip(dynamodb.clone())
            .map(|(table, client)| {
                idempotency::IdempotencyStore::new(
                    client,
                    table,
                    config.idempotency_ttl,
                    config.idempotency_window,
                )
            });
    let actions = config
        .actions_table
        .clone()
        .zip(dynamodb.clone())
        .map(|(table, client)| tracking::ActionLog::new(client, table));
    // The budget and the brake live in the idempotency table: every write
    // function already reads and writes it.
    let shared_table = config.idempotency_table.clone().zip(dynamodb);
    let budget = shared_table.clone().and_then(|(table, client)| {
        budget::WriteBudget::new(client, table, config.write_budget_per_20s)
    });
    let stop = shared_table
        .clone()
        .map(|(table, client)| stop::StopSwitch::new(client, table, config.stop_check));
    let leases = shared_table.clone().map(|(table, client)| {
        device_lease::DeviceLeases::new(client, table, config.pending_window)
    });
    let batches =
        shared_table.map(|(table, client)| bulk::settle::BatchSettler::new(client, table));
    let policy = handler::Policy::from_config(&config);
    Ok(handler::App {
        action,
        graph: graph::Graph::new(http_client()?, config, secrets),
        idempotency,
        leases,
        actions,
        policy,
        right,
        budget,
        stop,
        batches,
    })
}
