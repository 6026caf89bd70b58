//! Building blocks of structured inputs shared by the targets that build
//! API Gateway events around fuzzed parts.

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

/// A text value: one that passes validation for some field, or any text.
#[derive(Arbitrary, Debug)]
pub enum Text {
    Known(u8),
    Any(String),
}

/// Values that pass validation for some field (or nearly do).
const KNOWN: &[&str] = &[
    "0f8fad5b-d9cb-469f-a165-70867728950e",
    "0F8FAD5B-D9CB-469F-A165-70867728950E",
    "R58N10AE001",
    "350000000000001",
    "35-209900-176148-1",
    "o'brien@contoso.com",
    "Kim's Pixel",
    "locked out",
    "INC0012345",
    "INC1:reset",
    "0F3A-9c2e",
    "reset-passcode",
    "remove-passcode",
    "resetPasscode",
    "removePasscode",
    "",
    " ",
    "x'y",
];

impl Text {
    pub fn get(&self) -> String {
        match self {
            Text::Known(i) => KNOWN[*i as usize % KNOWN.len()].to_string(),
            Text::Any(s) => s.clone(),
        }
    }
}

/// A field name: one of the names the caller passes to `get`, or any text.
#[derive(Arbitrary, Debug)]
pub enum Key {
    Known(u8),
    Any(String),
}

impl Key {
    pub fn get(&self, known: &[&str]) -> String {
        match self {
            Key::Known(i) => known[*i as usize % known.len()].to_string(),
            Key::Any(s) => s.clone(),
        }
    }
}

/// An HTTP API (payload 2.0) call on the `$default` stage by an IAM
/// caller, as API Gateway sends it.
pub struct ApiV2<'a> {
    pub method: &'a str,
    /// The route API Gateway matched, as in `routeKey`.
    pub template: &'a str,
    pub path: &'a str,
    pub params: Value,
    pub query: &'a Map<String, Value>,
    /// The body as sent: base64 when `base64` is set.
    pub body: Option<String>,
    pub base64: bool,
}

impl ApiV2<'_> {
    pub fn event(self) -> Value {
        let route_key = format!("{} {}", self.method, self.template);
        json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "queryStringParameters": self.query,
            "pathParameters": self.params,
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "x", "requestId": "r",
                "routeKey": route_key, "stage": "$default", "time": "26/Nov/2026:05:00:00 +0000", "timeEpoch": 0,
                "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "fuzz"},
                "authorizer": {"iam": {"accessKey": "AKIA", "accountId": "123456789012", "callerId": "AID",
                    "principalOrgId": null, "userArn": "arn:aws:iam::123456789012:user/helpdesk", "userId": "AID"}}
            },
            "body": self.body,
            "isBase64Encoded": self.base64
        })
    }
}
