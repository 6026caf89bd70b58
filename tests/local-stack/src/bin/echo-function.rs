//! A stand-in Lambda function for the harness's own tests.
//!
//! It answers with the event it got plus what the runtime told it, and obeys
//! these event members: `"log"` (print a line), `"sleepMs"` (wait first),
//! `"exit"` (exit with that code), `"fail"` (return an error with that message),
//! at the top level or, for EventBridge events, inside `detail`.
//! With `ECHO_INIT_ERROR` set it reports an init error instead of starting.
//!
//! An SQS batch (`{"Records": [...]}` from `aws:sqs`) is answered with a
//! partial batch response instead; each message body (a JSON object) may
//! hold `"n"` (a label for the log), `"sleepMs"`, `"exitTimes": k` (exit
//! with code 1 while the message's receive count is at most k),
//! `"failItemTimes": k` (report the message as a batch item failure while
//! its receive count is at most k), `"failBatchTimes": k` (fail the whole
//! invocation likewise) and `"respond"` (answer with that value verbatim).
//! It logs `sqs-batch start <ms>`, one `sqs-record ...` line per message and
//! `sqs-batch end <ms>`, so tests can see deliveries and overlap.

use std::io::{Read, Write};
use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    if let Ok(message) = std::env::var("ECHO_INIT_ERROR") {
        report_init_error(&message)?;
        std::process::exit(1);
    }
    println!("echo-function starting");
    eprintln!("echo-function stderr works");
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (payload, context) = event.into_parts();
    if let Some(records) = sqs_records(&payload) {
        return handle_sqs(records).await;
    }
    let commands = payload.get("detail").unwrap_or(&payload);
    if let Some(line) = commands.get("log").and_then(Value::as_str) {
        println!("{line}");
    }
    if let Some(ms) = commands.get("sleepMs").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(code) = commands.get("exit").and_then(Value::as_i64) {
        std::process::exit(code as i32);
    }
    if let Some(message) = commands.get("fail").and_then(Value::as_str) {
        return Err(Diagnostic {
            error_type: "EchoError".into(),
            error_message: message.into(),
        });
    }
    let env = |name: &str| std::env::var(name).ok();
    Ok(json!({
        "event": payload,
        "requestId": context.request_id,
        "functionArn": context.invoked_function_arn,
        "deadlineMs": context.deadline,
        "xrayTraceId": context.xray_trace_id,
        "env": {
            "AWS_LAMBDA_FUNCTION_NAME": env("AWS_LAMBDA_FUNCTION_NAME"),
            "AWS_LAMBDA_LOG_LEVEL": env("AWS_LAMBDA_LOG_LEVEL"),
            "AWS_REGION": env("AWS_REGION"),
            "ECHO_EXTRA": env("ECHO_EXTRA"),
            "HOME": env("HOME"),
        },
    }))
}

fn sqs_records(payload: &Value) -> Option<&Vec<Value>> {
    let records = payload.get("Records")?.as_array()?;
    let from_sqs = |r: &Value| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
    (!records.is_empty() && records.iter().all(from_sqs)).then_some(records)
}

async fn handle_sqs(records: &[Value]) -> Result<Value, Diagnostic> {
    println!("sqs-batch start {} size={}", epoch_ms(), records.len());
    let mut failures = Vec::new();
    let mut fail_batch = None;
    let mut respond = None;
    for record in records {
        let id = record["messageId"].as_str().unwrap_or_default();
        let body: Value = record["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        let receive_count: u64 = record["attributes"]["ApproximateReceiveCount"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let within = |name: &str| body[name].as_u64().is_some_and(|k| receive_count <= k);
        if let Some(ms) = body["sleepMs"].as_u64() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if within("exitTimes") {
            std::process::exit(1);
        }
        let item_failed = within("failItemTimes");
        if item_failed {
            failures.push(json!({"itemIdentifier": id}));
        }
        if within("failBatchTimes") {
            fail_batch = Some(id.to_owned());
        }
        if let Some(value) = body.get("respond") {
            respond = Some(value.clone());
        }
        println!(
            "sqs-record id={id} n={} receiveCount={receive_count} {}",
            body["n"],
            if item_failed { "item-failure" } else { "ok" }
        );
    }
    println!("sqs-batch end {}", epoch_ms());
    if let Some(id) = fail_batch {
        return Err(Diagnostic {
            error_type: "EchoBatchError".into(),
            error_message: format!("message {id} fails the batch"),
        });
    }
    Ok(respond.unwrap_or_else(|| json!({"batchItemFailures": failures})))
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// `lambda_runtime` has no call for this, so speak HTTP/1.1 by hand.
fn report_init_error(message: &str) -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    let body = json!({"errorType": "EchoInitError", "errorMessage": message}).to_string();
    let mut stream = std::net::TcpStream::connect(&api)?;
    write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: EchoInitError\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(())
}
