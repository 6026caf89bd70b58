//! When to retry a Graph or token call, and how long to wait.
//!
//! [`RetryPolicy::decide`] is pure: the caller passes in the time left and
//! the jitter, so every decision is unit-tested without sleeping. [`run`]
//! (in `run.rs`) is the one loop around it; [`parse_retry_after`] (in
//! `after.rs`) reads the server's hint.
//!
//! Graph asks clients to wait for `Retry-After` on 429/503 and to back off
//! exponentially when the header is absent. Lambda adds a hard deadline: a
//! wait that would not leave time to make the call and still answer is not
//! taken; the error goes back to the caller (with `Retry-After`) instead.

mod after;
mod run;

pub use after::parse_retry_after;
pub use run::{Attempt, Failed, run};

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Time kept back to build and send the answer.
    pub answer_margin: Duration,
    /// Time a retried call is assumed to need, at least.
    pub min_call_time: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(400),
            max_delay: Duration::from_secs(8),
            answer_margin: Duration::from_millis(1000),
            min_call_time: Duration::from_millis(250),
        }
    }
}

impl RetryPolicy {
    /// For Entra ID's token endpoint. Its 5xx answers rarely carry
    /// `Retry-After`, and Microsoft's guidance (MSAL retries a 5xx after a
    /// second; its sample policy waits 0, 3 and 5 s) is to back off in
    /// seconds rather than hammer it: waits of 1–2 s, 2–4 s, 4–8 s.
    pub fn token_endpoint() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_secs(2),
            ..RetryPolicy::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// `attempts_made` counts the calls already sent (≥ 1); `jitter` is a
    /// random number in `[0, 1)`.
    pub fn decide(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        remaining: Duration,
        jitter: f64,
    ) -> Decision {
        if attempts_made >= self.max_attempts {
            return Decision::GiveUp;
        }
        let delay = retry_after.unwrap_or_else(|| self.backoff(attempts_made, jitter));
        // Saturating: `Retry-After` is whatever the server sent, up to u64::MAX seconds.
        let needed = delay
            .saturating_add(self.min_call_time)
            .saturating_add(self.answer_margin);
        if needed > remaining {
            return Decision::GiveUp;
        }
        Decision::RetryAfter(delay)
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so
    /// concurrent functions spread out but never retry instantly.
    fn backoff(&self, attempts_made: u32, jitter: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (attempts_made - 1).min(16))
            .min(self.max_delay);
        exp / 2 + exp.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// The invocation's deadline, from Lambda's `Lambda-Runtime-Deadline-Ms`.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    pub fn after(duration: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + duration,
        }
    }

    /// From Lambda's deadline in epoch milliseconds. A missing (0) deadline
    /// gets 30 s, the functions' configured timeout.
    pub fn from_epoch_ms(deadline_ms: u64) -> Deadline {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if deadline_ms == 0 {
            return Deadline::after(Duration::from_secs(30));
        }
        Deadline::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Timeout for one HTTP call: what is left minus the answer margin,
    /// capped so one hung call can't eat the whole budget.
    pub fn call_timeout(&self, policy: &RetryPolicy) -> Option<Duration> {
        let usable = self.remaining().checked_sub(policy.answer_margin)?;
        (usable >= policy.min_call_time).then(|| usable.min(Duration::from_secs(10)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOTS: Duration = Duration::from_secs(25);

    #[test]
    fn honours_retry_after_when_time_allows() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide(1, Some(Duration::from_secs(2)), LOTS, 0.9),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        // Zero is a valid Retry-After.
        assert_eq!(
            p.decide(1, Some(Duration::ZERO), LOTS, 0.0),
            Decision::RetryAfter(Duration::ZERO)
        );
    }

    #[test]
    fn gives_up_when_retry_after_passes_the_deadline() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide(1, Some(Duration::from_secs(30)), LOTS, 0.5),
            Decision::GiveUp
        );
        // 2 s wait + 0.25 s call + 1 s margin does not fit in 3 s.
        assert_eq!(
            p.decide(1, Some(Duration::from_secs(2)), Duration::from_secs(3), 0.5),
            Decision::GiveUp
        );
        assert_eq!(
            p.decide(
                1,
                Some(Duration::from_secs(2)),
                Duration::from_millis(3300),
                0.5
            ),
            Decision::RetryAfter(Duration::from_secs(2))
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = RetryPolicy::default();
        let at = |n, j| match p.decide(n, None, Duration::from_secs(600), j) {
            Decision::RetryAfter(d) => d,
            Decision::GiveUp => panic!("gave up"),
        };
        assert_eq!(at(1, 0.0), Duration::from_millis(200));
        assert_eq!(at(1, 1.0), Duration::from_millis(400));
        assert_eq!(at(2, 0.0), Duration::from_millis(400));
        assert_eq!(at(3, 0.5), Duration::from_millis(1200));
        let p = RetryPolicy {
            max_attempts: 20,
            ..p
        };
        let capped = match p.decide(12, None, Duration::from_secs(600), 1.0) {
            Decision::RetryAfter(d) => d,
            Decision::GiveUp => panic!(),
        };
        assert_eq!(capped, Duration::from_secs(8));
    }

    #[test]
    fn stops_after_max_attempts() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.decide(5, None, LOTS, 0.1),
            Decision::RetryAfter(_)
        ));
        assert_eq!(p.decide(6, None, LOTS, 0.1), Decision::GiveUp);
    }

    #[test]
    fn the_token_endpoint_is_given_seconds_between_attempts() {
        let p = RetryPolicy::token_endpoint();
        for (attempt, low, high) in [(1, 1000, 2000), (2, 2000, 4000), (3, 4000, 8000)] {
            for jitter in [0.0, 0.5, 0.999] {
                let Decision::RetryAfter(wait) =
                    p.decide(attempt, None, Duration::from_secs(600), jitter)
                else {
                    panic!("gave up at attempt {attempt}");
                };
                assert!(
                    wait >= Duration::from_millis(low) && wait <= Duration::from_millis(high),
                    "attempt {attempt}: {wait:?}"
                );
            }
        }
    }

    #[test]
    fn call_timeout_leaves_the_answer_margin() {
        let p = RetryPolicy::default();
        let t = Deadline::after(Duration::from_secs(5))
            .call_timeout(&p)
            .unwrap();
        assert!(
            t <= Duration::from_secs(4) && t > Duration::from_millis(3900),
            "{t:?}"
        );
        assert_eq!(
            Deadline::after(Duration::from_millis(500)).call_timeout(&p),
            None
        );
        let t = Deadline::after(Duration::from_secs(60))
            .call_timeout(&p)
            .unwrap();
        assert_eq!(t, Duration::from_secs(10));
    }

    /// `Retry-After: 18446744073709551615` made `decide` overflow a
    /// `Duration` addition: a panic, an abort in release builds.
    #[test]
    fn absurd_retry_after_gives_up_without_overflow() {
        let p = RetryPolicy::default();
        let now = std::time::SystemTime::now();
        let huge = parse_retry_after("18446744073709551615", now);
        assert_eq!(huge, Some(Duration::from_secs(u64::MAX)));
        assert_eq!(p.decide(1, huge, LOTS, 0.5), Decision::GiveUp);
        let huge = parse_retry_after("18446744073709551615.5", now);
        assert_eq!(p.decide(1, huge, LOTS, 0.5), Decision::GiveUp);
    }
}
