//! Graph's version and time strings: `parse_version` (OS versions for the
//! support matrix) and `parse_time` (action timestamps for the duplicate
//! check). No panic; a parsed version prints back to the same numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passcode_core::device::parse_time;
use passcode_core::eligibility::parse_version;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(parts) = parse_version(text) {
        assert!(!parts.is_empty());
        let printed: Vec<String> = parts.iter().map(u32::to_string).collect();
        assert_eq!(parse_version(&printed.join(".")), Some(parts));
    }
    if let Some(t) = parse_time(text) {
        // Comparing and subtracting times (the duplicate check does both)
        // never overflows within `time`'s range.
        let now = time::OffsetDateTime::now_utc();
        let _ = now - t;
        let _ = t >= now - time::Duration::minutes(2);
    }
});
