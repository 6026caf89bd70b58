//! Wall-clock time for every date the functions compare with Intune's:
//! the pending window, when an action was accepted, how old a tracked
//! action is and when it expires.
//!
//! Debug builds (the local stack) add an offset read from the file named by
//! `PASSCODE_TEST_CLOCK_FILE`, so a test can move the functions' clock a week
//! ahead in a second, together with the Graph simulator's. Release builds
//! read the system clock and nothing else.

use time::OffsetDateTime;

pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    #[cfg(debug_assertions)]
    let now = now + test_offset();
    now
}

/// Milliseconds since the Unix epoch of [`now`].
pub fn now_ms() -> i64 {
    unix_ms(now())
}

/// Milliseconds since the Unix epoch of the system clock, never moved by a
/// test: for what execution environments share with each other (the write
/// budget's windows, device leases), as opposed to dates compared with
/// Intune's.
pub fn real_now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

pub fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 with milliseconds and `Z`, the form every record and event uses.
pub fn format(at: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

#[cfg(feature = "bulk")]
/// The hour of [`now`] as `YYYY-MM-DDTHH`: the bulk per-hour cap counts
/// devices per such hour.
pub fn hour_key() -> String {
    format(now())[..13].to_string()
}

#[cfg(feature = "bulk")]
/// Time left until the next whole hour of [`now`].
pub fn until_next_hour() -> std::time::Duration {
    let now = now();
    let into_hour = u64::from(now.minute()) * 60 + u64::from(now.second());
    std::time::Duration::from_secs(3600 - into_hour)
}

pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Re-read on every call: the test moves the clock between invocations of
/// a running function. A missing or unreadable file means no offset.
#[cfg(debug_assertions)]
fn test_offset() -> time::Duration {
    let Some(path) = crate::config::env_var("PASSCODE_TEST_CLOCK_FILE") else {
        return time::Duration::ZERO;
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .map(time::Duration::seconds)
        .unwrap_or(time::Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_reads_back_milliseconds() {
        let at = from_unix_ms(1_795_000_000_123);
        assert_eq!(format(at), "2026-11-18T11:06:40.123Z");
        assert_eq!(unix_ms(at), 1_795_000_000_123);
    }
}
