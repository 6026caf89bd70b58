//! `Retry-After` as Graph or Entra might send it: `parse_retry_after` reads
//! exactly the delta-seconds form, and no value, at any attempt and any time
//! left, makes the retry decision panic or wait past the deadline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passcode_core::retry::{Decision, RetryPolicy, parse_retry_after};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, text) = data.split_at(8);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let parsed = parse_retry_after(text);
    assert_eq!(
        parsed.map(|d| d.as_secs()),
        text.trim().parse::<u64>().ok(),
        "{text:?}"
    );
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
