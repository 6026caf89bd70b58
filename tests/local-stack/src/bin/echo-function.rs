//! A stand-in Lambda function for the harness's own tests.
//!
//! It answers with the event it got plus what the runtime told it, and obeys
//! these event members: `"log"` (print a line), `"sleepMs"` (wait first),
//! `"exit"` (exit with that code), `"fail"` (return an error with that message),
//! at the top level or, for EventBridge events, inside `detail`.
//! With `ECHO_INIT_ERROR` set it reports an init error instead of starting.

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
