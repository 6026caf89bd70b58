//! What an answer means under the contract: every invocation's result is
//! sorted into an outcome, a refusal, a transient error, or "undefined" (not
//! a definite answer: a timeout, a crash, an unknown code, a status that does
//! not go with its code).

use serde_json::Value;

use crate::runtime::InvokeOutcome;

/// Every error code of the contract: HTTP status, EventBridge `errorType`, transient.
const CODES: [(&str, u16, &str, bool); 12] = [
    ("invalidRequest", 400, "InvalidRequest", false),
    ("deviceNotFound", 404, "DeviceNotFound", false),
    ("ambiguousDevice", 409, "AmbiguousDevice", false),
    ("unsupportedPlatform", 422, "UnsupportedPlatform", false),
    ("deviceNotManaged", 422, "DeviceNotManaged", false),
    ("throttled", 429, "Throttled", true),
    ("graphError", 502, "GraphError", false),
    ("graphUnavailable", 503, "GraphUnavailable", true),
    ("configurationError", 500, "ConfigurationError", true),
    ("requestInProgress", 409, "RequestInProgress", true),
    ("idempotencyKeyReused", 422, "IdempotencyKeyReused", false),
    (
        "idempotencyUnavailable",
        503,
        "IdempotencyUnavailable",
        true,
    ),
];

/// Outcomes of the contract with their HTTP status.
const OUTCOMES: [(&str, u16); 4] = [
    ("accepted", 202),
    ("alreadyPending", 200),
    ("dryRun", 200),
    ("status", 200),
];

/// One invocation's answer, as the checks see it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Answer {
    Outcome {
        name: String,
        replayed: bool,
        device: Option<String>,
    },
    Rejected(String),
    Transient(String),
    /// Not a definite answer; says what came instead.
    Undefined(String),
}

impl Answer {
    /// `accepted`, `replayed:alreadyPending`, `rejected:<code>`,
    /// `transient:<code>` or `undefined`: the report counts answers by this.
    pub fn kind(&self) -> String {
        match self {
            Answer::Outcome {
                name,
                replayed: true,
                ..
            } => format!("replayed:{name}"),
            Answer::Outcome { name, .. } => name.clone(),
            Answer::Rejected(code) => format!("rejected:{code}"),
            Answer::Transient(code) => format!("transient:{code}"),
            Answer::Undefined(_) => "undefined".into(),
        }
    }
}

/// Sorts what the runtime emulator got back into an [`Answer`].
pub(super) fn classify(outcome: &InvokeOutcome) -> Answer {
    let clip = |v: &Value| v.to_string().chars().take(300).collect::<String>();
    match outcome {
        InvokeOutcome::Response(v) if v.get("statusCode").is_some() => {
            let status = v["statusCode"].as_u64().unwrap_or(0) as u16;
            let Some(body) = v["body"]
                .as_str()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
            else {
                return Answer::Undefined(format!("API answer without a JSON body: {}", clip(v)));
            };
            if let Some(code) = body["error"]["code"].as_str() {
                return match CODES.iter().find(|c| c.0 == code) {
                    Some(c) if c.1 != status => {
                        Answer::Undefined(format!("{code} with HTTP {status}, not {}", c.1))
                    }
                    Some(c) if c.3 => Answer::Transient(code.into()),
                    Some(_) => Answer::Rejected(code.into()),
                    None => Answer::Undefined(format!("unknown error code: {}", clip(&body))),
                };
            }
            outcome_answer(&body, Some(status))
        }
        InvokeOutcome::Response(v) if v["outcome"] == "rejected" => {
            let code = v["error"]["code"].as_str().unwrap_or("");
            match CODES.iter().find(|c| c.0 == code) {
                Some(c) if !c.3 => Answer::Rejected(code.into()),
                _ => Answer::Undefined(format!("rejected with an odd code: {}", clip(v))),
            }
        }
        InvokeOutcome::Response(v) => outcome_answer(v, None),
        InvokeOutcome::Error {
            error_type,
            error_message,
        } => match CODES.iter().find(|c| c.2 == error_type) {
            Some(c) if c.3 => Answer::Transient(c.0.into()),
            _ => Answer::Undefined(format!(
                "failed invocation {error_type}: {}",
                error_message.chars().take(200).collect::<String>()
            )),
        },
        InvokeOutcome::Timeout => Answer::Undefined("no answer: timed out".into()),
        InvokeOutcome::Crashed(why) => Answer::Undefined(format!(
            "crashed: {}",
            why.chars().take(300).collect::<String>()
        )),
    }
}

/// A result object (API body or EventBridge result) with an `outcome`.
fn outcome_answer(body: &Value, status: Option<u16>) -> Answer {
    let name = body["outcome"].as_str().unwrap_or("");
    match OUTCOMES.iter().find(|o| o.0 == name) {
        Some(o) if status.is_none_or(|s| s == o.1) => Answer::Outcome {
            name: name.into(),
            replayed: body["replayed"] == true,
            device: body["device"]["id"].as_str().map(str::to_ascii_lowercase),
        },
        _ => Answer::Undefined(format!(
            "no known outcome (HTTP {status:?}): {}",
            body.to_string().chars().take(300).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn answers_are_classified_by_the_contract() {
        let api = |status: u16, body: Value| {
            classify(&InvokeOutcome::Response(
                json!({"statusCode": status, "body": body.to_string()}),
            ))
        };
        assert_eq!(
            api(202, json!({"outcome": "accepted", "device": {"id": "A"}})),
            Answer::Outcome {
                name: "accepted".into(),
                replayed: false,
                device: Some("a".into())
            }
        );
        for (status, body, kind) in [
            (
                409,
                json!({"error": {"code": "requestInProgress"}}),
                "transient:requestInProgress",
            ),
            (
                404,
                json!({"error": {"code": "deviceNotFound"}}),
                "rejected:deviceNotFound",
            ),
            (
                400,
                json!({"error": {"code": "deviceNotFound"}}),
                "undefined",
            ),
            (200, json!({"error": {"code": "teapot"}}), "undefined"),
            (200, json!({"outcome": "accepted"}), "undefined"),
        ] {
            assert_eq!(api(status, body.clone()).kind(), kind, "{status} {body}");
        }
        let eb = classify(&InvokeOutcome::Error {
            error_type: "GraphUnavailable".into(),
            error_message: "x".into(),
        });
        assert_eq!(eb.kind(), "transient:graphUnavailable");
        let eb = classify(&InvokeOutcome::Error {
            error_type: "Runtime.Panic".into(),
            error_message: "x".into(),
        });
        assert_eq!(eb.kind(), "undefined");
        let eb = classify(&InvokeOutcome::Response(
            json!({"outcome": "rejected", "error": {"code": "unsupportedPlatform"}}),
        ));
        assert_eq!(eb.kind(), "rejected:unsupportedPlatform");
        let eb = classify(&InvokeOutcome::Response(
            json!({"outcome": "alreadyPending", "replayed": true, "device": {"id": "a"}}),
        ));
        assert_eq!(eb.kind(), "replayed:alreadyPending");
        assert_eq!(classify(&InvokeOutcome::Timeout).kind(), "undefined");
    }
}
