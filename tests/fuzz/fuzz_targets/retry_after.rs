//! `Retry-After` as Graph or Entra might send it: `parse_retry_after` reads
//! delta-seconds exactly, fractional seconds never shorter than written, and
//! HTTP-dates as a wait from now (never negative); no value, at any attempt
//! and any time left, makes the retry decision panic or wait past the
//! deadline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passcode_core::retry::{Decision, RetryPolicy, parse_retry_after};
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, text) = data.split_at(8);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    // A fixed "now" keeps every run of an input the same.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_032_800);
    let parsed = parse_retry_after(text, now);
    let trimmed = text.trim();
    // RFC 9110 delta-seconds is digits only (Rust's parse would also take
    // a leading '+', which the header does not allow).
    if trimmed.bytes().all(|b| b.is_ascii_digit())
        && let Ok(seconds) = trimmed.parse::<u64>()
    {
        assert_eq!(parsed, Some(Duration::from_secs(seconds)), "{text:?}");
    }
    if let (Some(wait), Some((whole, fraction))) = (parsed, trimmed.split_once('.'))
        && let (Ok(whole), Ok(fraction)) =
            (whole.parse::<u64>(), format!("0.{fraction}").parse::<f64>())
    {
        // Rounded up to the millisecond: at least what was asked, less than 1 ms more.
        let asked = whole as f64 + fraction;
        let got = wait.as_secs_f64();
        assert!(
            got + 1e-6 * asked.max(1.0) >= asked && got < asked + 0.001 + 1e-6 * asked.max(1.0),
            "{text:?}: {wait:?}"
        );
    }
    let policy = RetryPolicy::default();
    // Attempts are counted from 1; the time left is what a Lambda deadline
    // can give (under 15 minutes); jitter is fastrand's [0, 1).
    let attempts = 1 + (head[0] as u32 % 8);
    let remaining =
        Duration::from_millis(u32::from_le_bytes([head[1], head[2], head[3], 0]) as u64);
    let jitter = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as f64 / 4_294_967_296.0;
    for retry_after in [parsed, None] {
        match policy.decide(attempts, retry_after, remaining, jitter) {
            Decision::RetryAfter(wait) => {
                assert!(attempts < policy.max_attempts);
                assert!(wait + policy.min_call_time + policy.answer_margin <= remaining);
                if let Some(ra) = retry_after {
                    assert_eq!(wait, ra);
                } else {
                    assert!(wait <= policy.max_delay);
                }
            }
            Decision::GiveUp => {}
        }
    }
});
