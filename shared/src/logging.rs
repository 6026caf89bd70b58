//! Log set-up that follows Lambda's advanced logging controls.
//!
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`) sets the level of this project's
//! own messages; `AWS_LAMBDA_LOG_FORMAT=JSON` switches to one JSON object per
//! line. Third-party crates (AWS SDK, HTTP stack, TLS) are held at `warn`
//! whatever the level: at debug/trace they print request and response
//! details, which for Secrets Manager and Entra ID means secrets and tokens.

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|v| parse_level(&v))
        .unwrap_or(Level::INFO);
    let filter = Targets::new()
        .with_default(Level::WARN.min(level))
        .with_target("passcode_core", level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_target(false),
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

    #[test]
    fn lambda_level_names_parse() {
        assert_eq!(parse_level("DEBUG"), Some(Level::DEBUG));
        assert_eq!(parse_level("FATAL"), Some(Level::ERROR));
        assert_eq!(parse_level("verbose"), None);
    }
}
