//! `Retry-After` as servers really send it.
//!
//! RFC 9110 §10.2.3 allows delay-seconds (`120`) or an HTTP-date, and a
//! recipient must accept all three date forms of §5.6.7. Graph's throttling
//! page shows `Retry-After: 2.128`, fractional seconds no RFC allows; read
//! strictly as an integer it used to fall back to a sub-second backoff and
//! burn the attempts. Every form is honoured and rounded *up* to the next
//! millisecond, so a wait is never shorter than the server asked.

use std::time::{Duration, SystemTime};
use time::OffsetDateTime;
use time::macros::format_description;

/// The wait a `Retry-After` value asks for, seen at `now` (dates are
/// relative to it; one in the past means "now", `Duration::ZERO`). `None`
/// for anything else (negative numbers, garbage, impossible dates), which
/// the caller treats as "no hint" and backs off on its own.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        return delay_seconds(value);
    }
    let at = http_date(value)?;
    let now = OffsetDateTime::from(now);
    let wait = at - now;
    if wait.is_negative() {
        return Some(Duration::ZERO);
    }
    Duration::try_from(wait).ok().map(ceil_to_millis)
}

/// `120` or `2.128`: digits, optionally a point and more digits. Whole
/// seconds beyond `u64` are refused; the fraction is rounded up to the
/// millisecond.
fn delay_seconds(value: &str) -> Option<Duration> {
    let (whole, fraction) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    let seconds: u64 = whole.parse().ok()?;
    let Some(fraction) = fraction else {
        return Some(Duration::from_secs(seconds));
    };
    // Milliseconds from the first three digits, one more if anything follows.
    let mut millis = 0u64;
    for (i, b) in fraction.bytes().enumerate() {
        let digit = u64::from(b - b'0');
        if i < 3 {
            millis = millis * 10 + digit;
        } else if digit != 0 {
            millis += 1;
            break;
        }
    }
    for _ in fraction.len()..3 {
        millis *= 10;
    }
    Some(Duration::from_secs(seconds).saturating_add(Duration::from_millis(millis)))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) or asctime (`Sun Nov  6 08:49:37 1994`).
fn http_date(value: &str) -> Option<OffsetDateTime> {
    let imf = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let asctime = format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    time::PrimitiveDateTime::parse(value, imf)
        .or_else(|_| time::PrimitiveDateTime::parse(value, asctime))
        .ok()
        .or_else(|| rfc850(value))
        .map(time::PrimitiveDateTime::assume_utc)
}

/// RFC 850's two-digit year: per RFC 9110, a year that would be more than 50
/// years in the future is in the previous century.
fn rfc850(value: &str) -> Option<time::PrimitiveDateTime> {
    let (_weekday, rest) = value.split_once(", ")?;
    let (date, clock) = rest.split_once(' ')?;
    let mut parts = date.split('-');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 2 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let this_year = OffsetDateTime::now_utc().year();
    let mut full_year = 2000 + year.parse::<i32>().ok()?;
    if full_year > this_year + 50 {
        full_year -= 100;
    }
    let rebuilt = format!("{day} {month} {full_year} {clock}");
    let format =
        format_description!("[day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
    time::PrimitiveDateTime::parse(&rebuilt, format).ok()
}

fn ceil_to_millis(d: Duration) -> Duration {
    let millis = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T10:00:00Z, a Monday.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_032_800)
    }

    fn parse(value: &str) -> Option<Duration> {
        parse_retry_after(value, now())
    }

    #[test]
    fn whole_seconds() {
        assert_eq!(parse(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
    }

    /// Graph's throttling page: `Retry-After: 2.128`.
    #[test]
    fn fractional_seconds_round_up_to_the_millisecond() {
        assert_eq!(parse("2.128"), Some(Duration::from_millis(2128)));
        assert_eq!(parse("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse("0.0001"), Some(Duration::from_millis(1)));
        assert_eq!(parse("1.0000"), Some(Duration::from_secs(1)));
        assert_eq!(parse("1.9999"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse("3.1280000000000000001"),
            Some(Duration::from_millis(3129))
        );
    }

    #[test]
    fn http_dates_in_the_future_count_from_now() {
        for (date, seconds) in [
            ("Mon, 30 Nov 2026 10:00:05 GMT", 5),
            // The same instant in the two obsolete forms RFC 9110 still requires.
            ("Monday, 30-Nov-26 10:00:05 GMT", 5),
            ("Mon Nov 30 10:00:05 2026", 5),
            ("Tue, 01 Dec 2026 10:00:00 GMT", 86_400),
        ] {
            assert_eq!(parse(date), Some(Duration::from_secs(seconds)), "{date}");
        }
    }

    #[test]
    fn http_dates_in_the_past_mean_now() {
        for date in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse(date), Some(Duration::ZERO), "{date}");
        }
    }

    #[test]
    fn garbage_is_no_hint() {
        for bad in [
            "",
            "-1",
            "+5",
            "1e3",
            "2.",
            ".5",
            "2.1.3",
            "1,5",
            "5 s",
            "soon",
            "Mon, 30 Nov 2026 10:00:05",
            "Mon, 31 Nov 2026 10:00:05 GMT",
            "Mon, 30 Nov 2026 25:00:05 GMT",
            "Mon, 30 Nov 2026 10:00:05 CET",
            "Monday, 30-Nov-2026 10:00:05 GMT",
            "٣",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    /// `Retry-After: 18446744073709551615` once overflowed the retry
    /// decision; the parser keeps the value and `decide` saturates.
    #[test]
    fn huge_values_do_not_overflow() {
        assert_eq!(
            parse("18446744073709551615"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse("18446744073709551615.999"),
            Some(Duration::MAX.min(Duration::from_secs(u64::MAX) + Duration::from_millis(999)))
        );
        assert_eq!(parse("18446744073709551616"), None);
        assert_eq!(
            parse("Fri, 31 Dec 9999 23:59:59 GMT")
                .map(|d| d > Duration::from_secs(200 * 365 * 86_400)),
            Some(true)
        );
    }
}
