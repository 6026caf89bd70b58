//! The tracker's own settings, read from its environment.

use crate::config::whole_number;
use std::time::Duration;

/// Intune's read limit per app and tenant: 2,000 requests per 20 seconds,
/// shared by every app in the tenant.
pub const INTUNE_READS_PER_WINDOW: f64 = 2000.0;
pub const INTUNE_WINDOW: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq)]
pub struct TrackerSettings {
    pub actions_table: String,
    pub event_bus: String,
    pub event_source: String,
    /// Share of Intune's read budget this tracker may use.
    pub read_fraction: f64,
    /// An action still unfinished this long after acceptance is reported
    /// as expired.
    pub expire_after: Duration,
}

impl TrackerSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<TrackerSettings, String> {
        let actions_table = get("ACTIONS_TABLE")
            .ok_or("ACTIONS_TABLE is not set: give the table of accepted actions the write functions record")?;
        let event_bus = get("EVENT_BUS_NAME")
            .ok_or("EVENT_BUS_NAME is not set: give the name or ARN of the bus the result events go to")?;
        let event_source = get("EVENT_SOURCE").unwrap_or_else(|| "intune-passcode".into());
        if event_source.starts_with("aws.") {
            return Err(format!(
                "EVENT_SOURCE={event_source:?}: sources starting with \"aws.\" are reserved for AWS services"
            ));
        }
        let read_fraction = match get("TRACK_READ_BUDGET_FRACTION") {
            None => 0.1,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0 && *f <= 0.5)
                .ok_or_else(|| format!(
                    "TRACK_READ_BUDGET_FRACTION={v:?} is not a fraction above 0 and at most 0.5 of Intune's read budget (the rest belongs to every other app in the tenant)"
                ))?,
        };
        let expire_hours = whole_number(get("TRACK_EXPIRE_AFTER_HOURS"), "TRACK_EXPIRE_AFTER_HOURS", 168, 1..=720)?;
        Ok(TrackerSettings {
            actions_table,
            event_bus,
            event_source,
            read_fraction,
            expire_after: Duration::from_secs(expire_hours * 3600),
        })
    }

    /// The time between two Graph reads that keeps this tracker within its
    /// share: 0.1 of 2,000 per 20 s is one read every 100 ms.
    pub fn read_interval(&self) -> Duration {
        let reads = (INTUNE_READS_PER_WINDOW * self.read_fraction).floor().max(1.0);
        INTUNE_WINDOW.div_f64(reads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<TrackerSettings, String> {
        let mut all = vec![("ACTIONS_TABLE", "actions"), ("EVENT_BUS_NAME", "bus")];
        all.extend_from_slice(vars);
        TrackerSettings::from_lookup(|name| {
            all.iter()
                .rev()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_take_a_tenth_of_the_read_budget_and_expire_after_a_week() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.read_interval(), Duration::from_millis(100));
        assert_eq!(s.expire_after, Duration::from_secs(7 * 86_400));
        assert_eq!(s.event_source, "intune-passcode");
        let s = settings(&[("TRACK_READ_BUDGET_FRACTION", "0.25")]).unwrap();
        assert_eq!(s.read_interval(), Duration::from_millis(40));
    }

    #[test]
    fn refuses_settings_that_would_eat_other_apps_budget_or_make_no_sense() {
        for (name, value) in [
            ("TRACK_READ_BUDGET_FRACTION", "0"),
            ("TRACK_READ_BUDGET_FRACTION", "0.9"),
            ("TRACK_READ_BUDGET_FRACTION", "ten"),
            ("TRACK_EXPIRE_AFTER_HOURS", "0"),
            ("TRACK_EXPIRE_AFTER_HOURS", "1000"),
            ("EVENT_SOURCE", "aws.intune"),
        ] {
            let e = settings(&[(name, value)]).unwrap_err();
            assert!(e.contains(name), "{e}");
        }
        let e = TrackerSettings::from_lookup(|_| None).unwrap_err();
        assert!(e.contains("ACTIONS_TABLE"), "{e}");
    }
}
