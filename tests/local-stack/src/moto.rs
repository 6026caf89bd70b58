//! moto's standalone server, standing in for AWS Secrets Manager and
//! DynamoDB on loopback.

use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::oneshot;

use crate::paths::workspace_root;
use crate::process::{LogBuffer, echo_logs, guarded_command, pump_lines};

/// moto's server with request handling serialised, so a conditional write
/// is atomic as it is in DynamoDB.
const SERIALISED_SERVER: &str = include_str!("moto_server.py");

/// Generous: the first start after installing compiles moto's bytecode.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A moto server child process; dropping it kills the server.
pub struct Moto {
    endpoint: String,
    client: Client,
    dynamodb: aws_sdk_dynamodb::Client,
    logs: LogBuffer,
    _child: Child,
}

impl Moto {
    /// Starts moto's server with `<repo>/.venv/bin/python` (or `python3`
    /// from `PATH`) on a port the kernel picks, one request at a time (see
    /// `moto_server.py`), and returns once it answers a request.
    pub async fn start() -> anyhow::Result<Moto> {
        let venv_python = workspace_root().join(".venv/bin/python");
        let program = if venv_python.is_file() {
            venv_python.into_os_string()
        } else {
            "python3".into()
        };
        let mut command = guarded_command(&program);
        command
            .args(["-c", SERIALISED_SERVER, "-H", "127.0.0.1", "-p", "0"])
            .env("PYTHONUNBUFFERED", "1");
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {}; run `./dev` once to install moto into .venv",
                program.to_string_lossy()
            )
        })?;

        let logs = LogBuffer::default();
        let echo = echo_logs().then(|| "moto".to_owned());
        if let Some(stdout) = child.stdout.take() {
            pump_lines(stdout, logs.clone(), echo.clone());
        }
        let stderr = child.stderr.take().context("moto stderr not piped")?;
        let port = read_port(stderr, logs.clone(), echo);

        let port = tokio::select! {
            port = port => port.ok(),
            _ = tokio::time::sleep(START_TIMEOUT) => None,
        };
        let Some(port) = port else {
            let _ = child.start_kill();
            anyhow::bail!(
                "moto_server did not report its port; output:\n{}",
                logs.snapshot().join("\n")
            );
        };

        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto {
            client: secrets_client(&endpoint),
            dynamodb: dynamodb_client(&endpoint),
            endpoint,
            logs,
            _child: child,
        };
        moto.wait_until_answering().await?;
        Ok(moto)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A Secrets Manager client pointed at this server (dummy credentials, us-east-1).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The server's output so far (one line per request it served).
    pub fn logs(&self) -> Vec<String> {
        self.logs.snapshot()
    }

    /// Creates the secret, or adds a new current version if it exists; returns its ARN.
    pub async fn put_secret(&self, name: &str, secret_string: &str) -> anyhow::Result<String> {
        let created = self
            .client
            .create_secret()
            .name(name)
            .secret_string(secret_string)
            .send()
            .await;
        match created {
            Ok(out) => out.arn.context("CreateSecret returned no ARN"),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                let out = self
                    .client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(secret_string)
                    .send()
                    .await
                    .with_context(|| format!("PutSecretValue {name}"))?;
                out.arn.context("PutSecretValue returned no ARN")
            }
            Err(err) => Err(anyhow::Error::new(err).context(format!("CreateSecret {name}"))),
        }
    }

    /// A DynamoDB client pointed at this server.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.dynamodb.clone()
    }

    /// Creates an idempotency table as `template.yaml` declares it: string
    /// key `id`, on-demand, TTL on `expiration`.
    pub async fn create_idempotency_table(&self, name: &str) -> anyhow::Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TimeToLiveSpecification,
        };
        self.dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("CreateTable {name}"))?;
        self.dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("expiration")
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("UpdateTimeToLive {name}"))?;
        Ok(())
    }

    /// Creates the action log as `template.yaml` declares it: key
    /// `deviceId` + `actionKey`, the sparse index `open-by-next-poll`
    /// (`openPartition` + numeric `nextPollAtMs`), TTL on `expiration`.
    pub async fn create_actions_table(&self, name: &str) -> anyhow::Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
            Projection, ProjectionType, ScalarAttributeType,
        };
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        self.dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("deviceId", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("actionKey", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("openPartition", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("nextPollAtMs", ScalarAttributeType::N)?)
            .key_schema(key("deviceId", KeyType::Hash)?)
            .key_schema(key("actionKey", KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("open-by-next-poll")
                    .key_schema(key("openPartition", KeyType::Hash)?)
                    .key_schema(key("nextPollAtMs", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("CreateTable {name}"))?;
        Ok(())
    }

    /// Creates the event bus `bus` with a rule that copies every event of
    /// `source` into a new SQS queue, as a deployer's rule would route the
    /// result events; returns the queue's URL.
    pub async fn route_events_to_queue(&self, bus: &str, source: &str) -> anyhow::Result<String> {
        let events = eventbridge_client(&self.endpoint);
        let sqs = sqs_client(&self.endpoint);
        events
            .create_event_bus()
            .name(bus)
            .send()
            .await
            .with_context(|| format!("CreateEventBus {bus}"))?;
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{bus}-results"))
            .send()
            .await
            .context("CreateQueue")?
            .queue_url
            .context("no queue URL")?;
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .context("GetQueueAttributes")?
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .context("no queue ARN")?;
        events
            .put_rule()
            .name(format!("{bus}-results"))
            .event_bus_name(bus)
            .event_pattern(serde_json::json!({ "source": [source] }).to_string())
            .send()
            .await
            .context("PutRule")?;
        events
            .put_targets()
            .rule(format!("{bus}-results"))
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("results")
                    .arn(queue_arn)
                    .build()?,
            )
            .send()
            .await
            .context("PutTargets")?;
        Ok(queue_url)
    }

    /// Every event waiting in `queue_url`, taken off the queue (each
    /// message body is one EventBridge event).
    pub async fn drain_events(&self, queue_url: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let sqs = sqs_client(&self.endpoint);
        let mut events = Vec::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .context("ReceiveMessage")?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(events);
            }
            for message in messages {
                let body = message.body.unwrap_or_default();
                events.push(
                    serde_json::from_str(&body).with_context(|| format!("event body {body}"))?,
                );
                if let Some(handle) = message.receipt_handle {
                    sqs.delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .context("DeleteMessage")?;
                }
            }
        }
    }

    /// Deletes the secret at once, without a recovery window.
    pub async fn delete_secret(&self, name: &str) -> anyhow::Result<()> {
        self.client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await
            .with_context(|| format!("DeleteSecret {name}"))?;
        Ok(())
    }

    /// The port is bound before moto prints it, so one round trip normally
    /// suffices; a few retries cover a slow first request.
    async fn wait_until_answering(&self) -> anyhow::Result<()> {
        let mut last_error = None;
        for attempt in 0..20u32 {
            match self.client.list_secrets().max_results(1).send().await {
                Ok(_) => return Ok(()),
                Err(err) => last_error = Some(err),
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt + 1))).await;
        }
        Err(
            anyhow::Error::new(last_error.expect("at least one attempt"))
                .context(format!("moto at {} does not answer", self.endpoint)),
        )
    }
}

/// Copies moto's stderr into `logs` and resolves with the port from its
/// ` * Running on http://127.0.0.1:PORT` banner.
fn read_port(
    stderr: tokio::process::ChildStderr,
    logs: LogBuffer,
    echo: Option<String>,
) -> oneshot::Receiver<u16> {
    let (port_tx, port_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut port_tx = Some(port_tx);
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(port) = banner_port(&line)
                && let Some(tx) = port_tx.take()
            {
                let _ = tx.send(port);
            }
            if let Some(prefix) = &echo {
                eprintln!("[{prefix}] {line}");
            }
            logs.push(line);
        }
    });
    port_rx
}

fn banner_port(line: &str) -> Option<u16> {
    let rest = line.split("Running on http://127.0.0.1:").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What both clients share: the server's endpoint, dummy credentials, us-east-1.
fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_types::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_types::sdk_config::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "local-stack"),
        ))
        .endpoint_url(endpoint)
        .http_client(http)
        .build()
}

fn secrets_client(endpoint: &str) -> Client {
    Client::new(&sdk_config(endpoint))
}

fn eventbridge_client(endpoint: &str) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&sdk_config(endpoint))
}

fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(endpoint))
}

fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(endpoint))
}

/// SQS queues for the event source mapping stand-in (`crate::sqs_mapping`).
impl Moto {
    /// An SQS client pointed at this server.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        sqs_client(&self.endpoint)
    }

    /// An SQS client for the moto server at `endpoint`.
    pub(crate) fn sqs_client_at(endpoint: &str) -> aws_sdk_sqs::Client {
        sqs_client(endpoint)
    }

    /// Creates the queue `name` and its dead-letter queue `<name>-dlq`, as
    /// `template.yaml` pairs them: a message received `max_receive_count`
    /// times without being deleted moves to the DLQ (moto moves it on the
    /// next receive). Returns `(queue_url, dlq_url)`.
    pub async fn create_queue_with_dlq(
        &self,
        name: &str,
        visibility_timeout_secs: u32,
        max_receive_count: u32,
    ) -> anyhow::Result<(String, String)> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let sqs = self.sqs();
        let dlq_name = format!("{name}-dlq");
        let dlq_url = sqs
            .create_queue()
            .queue_name(&dlq_name)
            .send()
            .await
            .with_context(|| format!("CreateQueue {dlq_name}"))?
            .queue_url
            .context("no DLQ URL")?;
        let dlq_arn = crate::sqs_mapping::queue_arn(&sqs, &dlq_url).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receive_count.to_string(),
        });
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .with_context(|| format!("CreateQueue {name}"))?
            .queue_url
            .context("no queue URL")?;
        Ok((queue_url, dlq_url))
    }
}

#[cfg(test)]
mod tests {
    use super::banner_port;

    #[test]
    fn reads_the_port_from_the_banner() {
        assert_eq!(
            banner_port(" * Running on http://127.0.0.1:35421"),
            Some(35421)
        );
        assert_eq!(banner_port("Press CTRL+C to quit"), None);
    }
}
