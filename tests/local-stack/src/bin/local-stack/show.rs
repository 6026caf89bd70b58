//! Printing requests and results for a reader.

use local_stack::{Invocation, InvokeOutcome};
use serde_json::Value;

/// How one invocation ended, for the exit code.
pub enum Verdict {
    Answered,
    Broken,
}

pub fn heading(number: usize, text: &str) {
    println!("\n{number}. {text}");
}

pub fn request(line: &str, body: Option<&Value>) {
    println!("   → {line}");
    if let Some(body) = body {
        indented(body);
    }
}

/// Prints what came back. API answers show their status and decoded body;
/// everything else is printed as it arrived.
pub fn result(invocation: &Invocation) -> Verdict {
    match &invocation.outcome {
        InvokeOutcome::Response(answer) => {
            match (answer.get("statusCode"), answer.get("body")) {
                (Some(status), Some(Value::String(body))) => {
                    println!("   ← HTTP {status}");
                    match serde_json::from_str::<Value>(body) {
                        Ok(json) => indented(&json),
                        Err(_) => println!("     {body}"),
                    }
                }
                _ => {
                    println!("   ← result");
                    indented(answer);
                }
            }
            Verdict::Answered
        }
        InvokeOutcome::Error {
            error_type,
            error_message,
        } => {
            println!("   ← invocation error {error_type}: {error_message}");
            println!("     (EventBridge would retry, then send it to the failure destination)");
            Verdict::Answered
        }
        InvokeOutcome::Timeout => {
            println!("   ← TIMED OUT (the process was killed)");
            Verdict::Broken
        }
        InvokeOutcome::Crashed(message) => {
            println!("   ← CRASHED: {message}");
            Verdict::Broken
        }
    }
}

pub fn indented(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    for line in text.lines() {
        println!("     {line}");
    }
}
