//! Log set-up that follows Lambda's advanced logging controls.
//!
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`) sets the level of this project's
//! own messages; `AWS_LAMBDA_LOG_FORMAT=JSON` switches to one JSON object per
//! line. Third-party crates (AWS SDK, HTTP stack, TLS) are held at `warn`
//! whatever the level: at debug/trace they print request and response
//! details, which for Secrets Manager and Entra ID means secrets and tokens.
//!
//! Every line written during an invocation carries its Lambda request id:
//! `lambda_runtime` runs each invocation inside a span with a `requestId`
//! field; in JSON that field becomes the line's first member (`requestId`,
//! the name Lambda uses in its own JSON lines), in text the span prefix shows
//! it.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|v| parse_level(&v))
        .unwrap_or(Level::INFO);
    let filter = filter(level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(RequestIdLayer)
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .event_format(json_format()),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .without_time(),
            )
            .try_init()
    };
    let _ = result;
}

fn filter(level: Level) -> Targets {
    Targets::new()
        .with_default(Level::WARN.min(level))
        .with_target("passcode_core", level)
        // Only the per-invocation span (request id, X-Ray trace id); this
        // module of lambda_runtime writes no events.
        .with_target(INVOCATION_SPAN_TARGET, Level::INFO)
}

/// Where `lambda_runtime` opens its per-invocation span.
const INVOCATION_SPAN_TARGET: &str = "lambda_runtime::layers::trace";

/// One flat JSON object per line, led by the request id when there is one.
fn json_format() -> WithRequestId<
    tracing_subscriber::fmt::format::Format<
        tracing_subscriber::fmt::format::Json,
        tracing_subscriber::fmt::time::SystemTime,
    >,
> {
    WithRequestId(
        tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false),
    )
}

/// The request id of an invocation span, kept in the span's extensions.
struct RequestId(String);

/// Remembers the `requestId` field of each new span.
struct RequestIdLayer;

impl<S> tracing_subscriber::Layer<S> for RequestIdLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut found = RequestIdField(None);
        attrs.record(&mut found);
        if let (Some(request_id), Some(span)) = (found.0, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }
}

struct RequestIdField(Option<String>);

impl Visit for RequestIdField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "requestId" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "requestId" {
            // `%value` (Display) records here too, and prints unquoted.
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// Puts `"requestId":"..."` at the front of each JSON line written inside a
/// span that has one.
struct WithRequestId<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let request_id = ctx.event_scope().and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<RequestId>().map(|r| r.0.clone()))
        });
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match (request_id, line.strip_prefix('{')) {
            (Some(request_id), Some(rest)) => {
                let quoted = serde_json::Value::String(request_id).to_string();
                let separator = if rest.starts_with('}') { "" } else { "," };
                write!(writer, "{{\"requestId\":{quoted}{separator}{rest}")
            }
            _ => writer.write_str(&line),
        }
    }
}

fn parse_level(value: &str) -> Option<Level> {
    match value.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" | "warning" => Some(Level::WARN),
        "error" | "fatal" => Some(Level::ERROR),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_in_an_invocation_span_lead_with_its_request_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        // The filter `init` uses: third-party output held at WARN, but the
        // invocation span must still exist.
        let subscriber = tracing_subscriber::registry()
            .with(filter(Level::INFO))
            .with(RequestIdLayer)
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .event_format(json_format())
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "passcode_core::lib", "before");
            // The span lambda_runtime opens around each invocation.
            let invocation = tracing::info_span!(
                target: INVOCATION_SPAN_TARGET,
                "Lambda runtime invoke",
                requestId = &String::from("8f5c-\"quoted\""),
                xrayTraceId = "Root=1-abc"
            );
            let _entered = invocation.enter();
            let inner = tracing::info_span!("lookup");
            let _inner = inner.enter();
            tracing::warn!(target: "passcode_core::handler", code = "x", "inside");
            tracing::info!(target: "hyper::client", "held back");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].get("requestId").is_none());
        assert_eq!(lines[0]["message"], "before");
        assert_eq!(lines[1]["requestId"], "8f5c-\"quoted\"");
        assert_eq!(lines[1]["message"], "inside");
        assert_eq!(lines[1]["code"], "x");
        assert_eq!(lines[1]["level"], "WARN");
        assert!(text.lines().nth(1).unwrap().starts_with("{\"requestId\":"));
    }

    #[test]
    fn lambda_level_names_parse() {
        assert_eq!(parse_level("DEBUG"), Some(Level::DEBUG));
        assert_eq!(parse_level("FATAL"), Some(Level::ERROR));
        assert_eq!(parse_level("verbose"), None);
    }
}
