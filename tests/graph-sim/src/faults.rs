//! Injected failures.
//!
//! Graph documents 429/500/503/504 as retryable and says a POST may have
//! taken effect even when the caller never saw the answer. These rules let a
//! test produce each of those situations on demand, for the next N matching
//! requests, in the order the rules were added. A rule with a `probability`
//! hits each matching request only with that chance (drawn from the rule's
//! own seeded generator, so a given sequence of requests always draws the
//! same way); a request it spares goes on to the next rule.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

/// Which of the two simulated services a request was addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `/{v1.0|beta}/...` (and any other non-control path).
    Graph,
    /// `/{tenant}/oauth2/v2.0/token`.
    Token,
}

impl Endpoint {
    /// Lower-case name used in the request log.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Graph => "graph",
            Endpoint::Token => "token",
        }
    }
}

/// Which requests a rule applies to. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultMatch {
    /// HTTP method, compared case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Substring of the request path (not the query), case-sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    /// Only requests to this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

impl FaultMatch {
    pub(crate) fn matches(&self, endpoint: Endpoint, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
            && self.endpoint.is_none_or(|e| e == endpoint)
    }
}

/// Where a dropped connection is cut relative to the request's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DropPoint {
    /// Close before doing anything: the request had no effect.
    BeforeCommit,
    /// Do the work (e.g. queue the reset), then close without answering:
    /// the ambiguous case the reference warns about for retried POSTs.
    AfterCommit,
}

/// A `Retry-After` in one of the other forms servers send: Graph's
/// throttling page shows fractional seconds (`2.128`), and RFC 9110 allows
/// an HTTP-date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum RetryAfterHeader {
    /// Sent as given, e.g. `"2.128"` or a fixed date.
    Text(String),
    /// An IMF-fixdate (`Mon, 30 Nov 2026 10:00:05 GMT`) this many seconds
    /// after the answer is sent.
    DateIn(u64),
}

impl RetryAfterHeader {
    /// The header's value at `now`.
    pub fn value(&self, now: OffsetDateTime) -> String {
        match self {
            RetryAfterHeader::Text(text) => text.clone(),
            RetryAfterHeader::DateIn(seconds) => {
                let at = now + time::Duration::seconds(i64::try_from(*seconds).unwrap_or(i64::MAX));
                let fmt = format_description!(
                    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
                );
                at.format(&fmt).unwrap_or_default()
            }
        }
    }
}

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fault {
    /// Answer with this status and the service's usual error body.
    /// `retryAfter` (seconds) adds a `Retry-After` header; without it there is
    /// none, as some Intune endpoints answer 429 without one.
    /// `retryAfterHeader` sends one in another form instead.
    Status {
        /// HTTP status, e.g. 429, 500, 503, 504.
        status: u16,
        /// Seconds for the `Retry-After` header.
        #[serde(
            rename = "retryAfter",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        retry_after: Option<u64>,
        /// A fractional or HTTP-date `Retry-After` (wins over `retryAfter`).
        #[serde(
            rename = "retryAfterHeader",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        retry_after_header: Option<RetryAfterHeader>,
    },
    /// Close the connection without any response bytes.
    Drop {
        /// Before or after the request's effect.
        drop: DropPoint,
    },
    /// Wait, then answer normally.
    Delay {
        /// Milliseconds to wait.
        #[serde(rename = "delayMs")]
        delay_ms: u64,
    },
}

impl Fault {
    /// The `Retry-After` value a status fault sends at `now`, if any.
    pub fn retry_after_value(&self, now: OffsetDateTime) -> Option<String> {
        match self {
            Fault::Status {
                retry_after_header: Some(header),
                ..
            } => Some(header.value(now)),
            Fault::Status {
                retry_after: Some(secs),
                ..
            } => Some(secs.to_string()),
            _ => None,
        }
    }

    /// Short label stored in the request log's `fault` field.
    pub fn label(&self) -> String {
        match self {
            Fault::Status { status, .. } => format!("status:{status}"),
            Fault::Drop {
                drop: DropPoint::BeforeCommit,
            } => "drop:beforeCommit".to_string(),
            Fault::Drop {
                drop: DropPoint::AfterCommit,
            } => "drop:afterCommit".to_string(),
            Fault::Delay { delay_ms } => format!("delay:{delay_ms}ms"),
        }
    }
}

fn one() -> u32 {
    1
}

/// One rule as accepted by `POST /_sim/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Which requests are affected (empty = all Graph and token requests).
    #[serde(rename = "match", default)]
    pub matcher: FaultMatch,
    /// How many matching requests are affected (default 1).
    #[serde(default = "one")]
    pub times: u32,
    /// Chance (0 to 1) that a matching request is affected; absent = every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Seed of the generator behind `probability` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// What happens to them.
    pub fault: Fault,
}

impl FaultRule {
    /// A rule hitting the next matching request with `fault`.
    pub fn new(fault: Fault) -> FaultRule {
        FaultRule {
            matcher: FaultMatch::default(),
            times: 1,
            probability: None,
            seed: None,
            fault,
        }
    }

    /// Status fault without `Retry-After`.
    pub fn status(status: u16) -> FaultRule {
        FaultRule::new(Fault::Status {
            status,
            retry_after: None,
            retry_after_header: None,
        })
    }

    /// Status fault with `Retry-After: seconds`.
    pub fn status_retry_after(status: u16, seconds: u64) -> FaultRule {
        FaultRule::new(Fault::Status {
            status,
            retry_after: Some(seconds),
            retry_after_header: None,
        })
    }

    /// Status fault with `Retry-After: <text>` verbatim (e.g. `2.128`).
    pub fn status_retry_after_text(status: u16, text: &str) -> FaultRule {
        FaultRule::new(Fault::Status {
            status,
            retry_after: None,
            retry_after_header: Some(RetryAfterHeader::Text(text.to_string())),
        })
    }

    /// Status fault with an HTTP-date `Retry-After` `seconds` after the answer.
    pub fn status_retry_after_date_in(status: u16, seconds: u64) -> FaultRule {
        FaultRule::new(Fault::Status {
            status,
            retry_after: None,
            retry_after_header: Some(RetryAfterHeader::DateIn(seconds)),
        })
    }

    /// Connection drop at `point`.
    pub fn drop_connection(point: DropPoint) -> FaultRule {
        FaultRule::new(Fault::Drop { drop: point })
    }

    /// Delay before a normal answer.
    pub fn delay_ms(ms: u64) -> FaultRule {
        FaultRule::new(Fault::Delay { delay_ms: ms })
    }

    /// Only requests with this method.
    pub fn method(mut self, method: &str) -> FaultRule {
        self.matcher.method = Some(method.to_string());
        self
    }

    /// Only requests whose path contains `fragment`.
    pub fn path_contains(mut self, fragment: &str) -> FaultRule {
        self.matcher.path_contains = Some(fragment.to_string());
        self
    }

    /// Only requests to `endpoint`.
    pub fn endpoint(mut self, endpoint: Endpoint) -> FaultRule {
        self.matcher.endpoint = Some(endpoint);
        self
    }

    /// Apply to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> FaultRule {
        self.times = n;
        self
    }

    /// Hit each matching request only with chance `p` (0 to 1), drawing
    /// from a generator seeded with `seed`. `times` then counts hits.
    pub fn probability(mut self, p: f64, seed: u64) -> FaultRule {
        self.probability = Some(p);
        self.seed = Some(seed);
        self
    }
}

/// A rule with its remaining uses.
#[derive(Debug, Clone)]
pub(crate) struct ArmedFault {
    pub rule: FaultRule,
    pub remaining: u32,
    /// State of the rule's generator (splitmix64), for `probability`.
    draws: u64,
}

impl ArmedFault {
    pub(crate) fn new(rule: FaultRule) -> ArmedFault {
        ArmedFault {
            remaining: rule.times,
            draws: rule.seed.unwrap_or(0),
            rule,
        }
    }

    /// Whether this matching request is hit: always without a
    /// `probability`, else one draw from the rule's generator.
    fn hits(&mut self) -> bool {
        let Some(p) = self.rule.probability else {
            return true;
        };
        // splitmix64: tiny, and the same sequence for the same seed everywhere.
        self.draws = self.draws.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.draws;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Take one use of the first armed rule that matches, if any.
pub(crate) fn take(
    armed: &mut Vec<ArmedFault>,
    endpoint: Endpoint,
    method: &str,
    path: &str,
) -> Option<Fault> {
    let index = armed.iter_mut().position(|a| {
        a.remaining > 0 && a.rule.matcher.matches(endpoint, method, path) && a.hits()
    })?;
    let slot = &mut armed[index];
    slot.remaining -= 1;
    let fault = slot.rule.fault.clone();
    if slot.remaining == 0 {
        armed.remove(index);
    }
    Some(fault)
}

/// Graph error code for an injected status, following the documented
/// status meanings.
pub(crate) fn graph_code(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "InvalidAuthenticationToken",
        403 => "Forbidden",
        404 => "ResourceNotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "UnknownError",
    }
}

/// Message paired with [`graph_code`].
pub(crate) fn graph_message(status: u16) -> &'static str {
    match status {
        429 => "Too many requests.",
        500 => "An internal server error occurred.",
        502 => "The gateway received an invalid response.",
        503 => "The service is temporarily unavailable. Please retry later.",
        504 => "The operation timed out at the gateway.",
        _ => "An error has occurred.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_documented_shape() {
        let rules = [
            json!({"match":{"method":"POST","pathContains":"resetPasscode"},"times":2,"fault":{"status":429,"retryAfter":2}}),
            json!({"fault":{"status":503}}),
            json!({"match":{"endpoint":"token"},"fault":{"drop":"beforeCommit"}}),
            json!({"fault":{"drop":"afterCommit"}}),
            json!({"fault":{"delayMs":50}}),
        ];
        let parsed: Vec<FaultRule> = rules
            .iter()
            .map(|r| serde_json::from_value(r.clone()).unwrap())
            .collect();
        assert_eq!(parsed[0].times, 2);
        assert_eq!(
            parsed[0].fault,
            Fault::Status {
                status: 429,
                retry_after: Some(2),
                retry_after_header: None,
            }
        );
        assert_eq!(parsed[1].times, 1);
        assert_eq!(parsed[2].matcher.endpoint, Some(Endpoint::Token));
        assert_eq!(
            parsed[3].fault,
            Fault::Drop {
                drop: DropPoint::AfterCommit
            }
        );
        assert_eq!(parsed[4].fault, Fault::Delay { delay_ms: 50 });
        // Round trip through the builder spelling.
        let built = FaultRule::status_retry_after(429, 2)
            .method("POST")
            .path_contains("resetPasscode")
            .times(2);
        assert_eq!(built, parsed[0]);
    }

    #[test]
    fn retry_after_in_every_form() {
        let now = time::macros::datetime!(2026-11-30 10:00:00 UTC);
        let rules = [
            (json!({"fault":{"status":429,"retryAfter":2}}), Some("2")),
            (
                json!({"fault":{"status":429,"retryAfterHeader":{"text":"2.128"}}}),
                Some("2.128"),
            ),
            (
                json!({"fault":{"status":503,"retryAfterHeader":{"dateIn":5}}}),
                Some("Mon, 30 Nov 2026 10:00:05 GMT"),
            ),
            (json!({"fault":{"status":503}}), None),
        ];
        for (rule, expected) in rules {
            let parsed: FaultRule = serde_json::from_value(rule.clone()).unwrap();
            assert_eq!(
                parsed.fault.retry_after_value(now).as_deref(),
                expected,
                "{rule}"
            );
        }
        assert_eq!(
            FaultRule::status_retry_after_text(429, "2.128"),
            serde_json::from_value(
                json!({"fault":{"status":429,"retryAfterHeader":{"text":"2.128"}}})
            )
            .unwrap()
        );
        assert_eq!(
            FaultRule::status_retry_after_date_in(503, 5)
                .fault
                .retry_after_value(now)
                .as_deref(),
            Some("Mon, 30 Nov 2026 10:00:05 GMT")
        );
    }

    #[test]
    fn rules_apply_in_order_and_run_out() {
        let mut armed = vec![
            ArmedFault::new(FaultRule::status(500).path_contains("reset")),
            ArmedFault::new(FaultRule::status(503).times(2)),
        ];
        let t = |a: &mut Vec<ArmedFault>, p: &str| {
            take(a, Endpoint::Graph, "POST", p).map(|f| f.label())
        };
        assert_eq!(t(&mut armed, "/x/list").as_deref(), Some("status:503"));
        assert_eq!(
            t(&mut armed, "/x/resetPasscode").as_deref(),
            Some("status:500")
        );
        assert_eq!(
            t(&mut armed, "/x/resetPasscode").as_deref(),
            Some("status:503")
        );
        assert_eq!(t(&mut armed, "/x/resetPasscode"), None);
        assert!(armed.is_empty());
    }

    #[test]
    fn probable_rules_hit_about_that_often_and_the_same_way_each_time() {
        let run = |seed: u64| {
            let mut armed = vec![
                ArmedFault::new(
                    FaultRule::status(503)
                        .times(u32::MAX)
                        .probability(0.2, seed),
                ),
                ArmedFault::new(FaultRule::delay_ms(5).times(u32::MAX)),
            ];
            (0..5000)
                .map(|_| {
                    take(&mut armed, Endpoint::Graph, "GET", "/x")
                        .unwrap()
                        .label()
                })
                .collect::<Vec<_>>()
        };
        let first = run(7);
        let hits = first.iter().filter(|l| *l == "status:503").count();
        assert!((850..=1150).contains(&hits), "{hits} of 5000");
        // Spared requests fall through to the next rule.
        assert_eq!(
            hits + first.iter().filter(|l| *l == "delay:5ms").count(),
            5000
        );
        assert_eq!(first, run(7), "same seed, same draws");
        assert_ne!(first, run(8));
    }

    #[test]
    fn probability_and_seed_parse_and_default_to_every_request() {
        let rule: FaultRule = serde_json::from_value(
            json!({"times": 10, "probability": 0.25, "seed": 3, "fault": {"status": 503}}),
        )
        .unwrap();
        assert_eq!(rule, FaultRule::status(503).times(10).probability(0.25, 3));
        let plain: FaultRule = serde_json::from_value(json!({"fault": {"status": 503}})).unwrap();
        assert_eq!(plain.probability, None);
        assert!(ArmedFault::new(plain).hits());
    }
}
