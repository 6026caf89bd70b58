//! Timestamp spellings used by the two services.
//!
//! Graph, Intune and Entra each print time slightly differently, and clients
//! that parse these strings should be exercised against the real shapes.

use time::OffsetDateTime;
use time::macros::format_description;

/// Current wall-clock time in UTC.
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Graph `DateTimeOffset` as Intune writes it for action results:
/// seven fractional digits and a `Z` (`2026-11-26T05:10:11.1234567Z`).
pub(crate) fn graph_timestamp(at: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z");
    at.format(&fmt).unwrap_or_default()
}

/// Whole-second RFC 3339 UTC, as Intune writes `lastSyncDateTime`.
pub(crate) fn rfc3339_seconds(at: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.format(&fmt).unwrap_or_default()
}

/// The `innerError.date` field of a Graph error: no zone suffix, no fraction.
pub(crate) fn inner_error_date(at: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    at.format(&fmt).unwrap_or_default()
}

/// Entra's error `timestamp` spelling (`2026-11-26 05:00:00Z`).
pub(crate) fn entra_timestamp(at: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    at.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn spellings() {
        let at = datetime!(2026-11-26 05:10:11.123456789 UTC);
        assert_eq!(graph_timestamp(at), "2026-11-26T05:10:11.1234567Z");
        assert_eq!(rfc3339_seconds(at), "2026-11-26T05:10:11Z");
        assert_eq!(inner_error_date(at), "2026-11-26T05:10:11");
        assert_eq!(entra_timestamp(at), "2026-11-26 05:10:11Z");
    }
}
