//! The bulk function's own settings, read once per execution environment.

use crate::config::whole_number;

/// Hard ceiling of `BULK_MAX_DEVICES`: a plan of this many references
/// still fits one DynamoDB item and API Gateway's 29 seconds.
pub const MAX_DEVICES_CEILING: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSettings {
    /// `BULK_MAX_DEVICES`: references per request (default 500).
    pub max_devices: usize,
    /// `BULK_MAX_DEVICES_PER_HOUR`: devices queued per hour by all
    /// batches together (default 2,000).
    pub max_per_hour: u32,
    /// `BULK_EXPECTED_COUNT_ABOVE`: above this many devices to send, the
    /// request must carry `expectedCount` (default 20).
    pub expected_count_above: u32,
    pub reset_queue_url: Option<String>,
    pub remove_queue_url: Option<String>,
}

impl BulkSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<BulkSettings, String> {
        let number = |name: &str, default: u64, min: u64, max: u64| whole_number(get(name), name, default, min..=max);
        Ok(BulkSettings {
            max_devices: number("BULK_MAX_DEVICES", 500, 1, MAX_DEVICES_CEILING as u64)? as usize,
            max_per_hour: number("BULK_MAX_DEVICES_PER_HOUR", 2000, 1, 1_000_000)? as u32,
            expected_count_above: number("BULK_EXPECTED_COUNT_ABOVE", 20, 0, MAX_DEVICES_CEILING as u64)? as u32,
            reset_queue_url: get("BULK_RESET_QUEUE_URL"),
            remove_queue_url: get("BULK_REMOVE_QUEUE_URL"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let s = BulkSettings::from_lookup(|_| None).unwrap();
        assert_eq!((s.max_devices, s.max_per_hour, s.expected_count_above), (500, 2000, 20));
        let e = BulkSettings::from_lookup(|n| (n == "BULK_MAX_DEVICES").then(|| "5000".into())).unwrap_err();
        assert!(e.contains("from 1 to 1000"), "{e}");
        let s = BulkSettings::from_lookup(|n| (n == "BULK_EXPECTED_COUNT_ABOVE").then(|| "0".into())).unwrap();
        assert_eq!(s.expected_count_above, 0);
    }
}
