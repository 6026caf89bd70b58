//! The one retry loop. Each call site says what a reply means (a
//! classifier: done, retry after a while, stop, or outcome unknown); this
//! loop alone counts attempts, asks [`RetryPolicy::decide`] how long to wait
//! within the deadline, logs and sleeps. The split follows smithy-rs, whose
//! orchestrator retries on what its `ClassifyRetry` implementations say.

use super::{Deadline, Decision, RetryPolicy};
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// What one attempt came to, as the call site classifies it.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// Finished: an answer the caller interprets (a success or a final
    /// refusal such as 404).
    Done(T),
    /// Transient: worth another attempt, after the server's hint
    /// (`Retry-After`) when there is one, else after a backoff.
    Retry { error: E, hint: Option<Duration> },
    /// Retrying will not help.
    Stop(E),
    /// A request that is not safe to repeat may or may not have taken
    /// effect; the caller must find out before doing anything else.
    OutcomeUnknown(String),
}

/// Why [`run`] ended without an answer.
#[derive(Debug)]
pub enum Failed<E> {
    /// A stop, or the last transient error once no retry fits the attempts
    /// or the deadline; `hint` is the server's last `Retry-After`.
    Error { error: E, hint: Option<Duration> },
    /// See [`Attempt::OutcomeUnknown`].
    OutcomeUnknown(String),
    /// Not even one call fits before the deadline.
    OutOfTime,
}

/// Calls `attempt` with the timeout the next call may take until it is done,
/// stops, or no retry fits; `what` names the call in log lines.
pub async fn run<T, E, F, Fut>(
    what: &'static str,
    policy: &RetryPolicy,
    deadline: &Deadline,
    mut attempt: F,
) -> Result<T, Failed<E>>
where
    E: Display,
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut attempts = 0;
    loop {
        let timeout = deadline.call_timeout(policy).ok_or(Failed::OutOfTime)?;
        attempts += 1;
        let (error, hint) = match attempt(timeout).await {
            Attempt::Done(answer) => return Ok(answer),
            Attempt::Stop(error) => return Err(Failed::Error { error, hint: None }),
            Attempt::OutcomeUnknown(why) => return Err(Failed::OutcomeUnknown(why)),
            Attempt::Retry { error, hint } => (error, hint),
        };
        match policy.decide(attempts, hint, deadline.remaining(), fastrand::f64()) {
            Decision::RetryAfter(wait) => {
                tracing::info!(
                    call = what,
                    attempt = attempts,
                    wait_ms = wait.as_millis() as u64,
                    "{what} will be retried: {error}"
                );
                tokio::time::sleep(wait).await;
            }
            Decision::GiveUp => return Err(Failed::Error { error, hint }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(4),
            answer_margin: Duration::from_millis(10),
            min_call_time: Duration::from_millis(10),
        }
    }

    /// Runs the loop under [`quick`] with `time` left; `reply` is given the
    /// attempt's number (from 1). Returns the result and the attempts made.
    fn run_with<T>(
        time: Duration,
        reply: impl Fn(u32) -> Attempt<T, &'static str>,
    ) -> (Result<T, Failed<&'static str>>, u32) {
        let calls = Cell::new(0);
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(run("test call", &quick(), &Deadline::after(time), |_| {
                calls.set(calls.get() + 1);
                let answer = reply(calls.get());
                async move { answer }
            }));
        (result, calls.get())
    }

    fn busy<T>(hint: Duration) -> Attempt<T, &'static str> {
        Attempt::Retry {
            error: "busy",
            hint: Some(hint),
        }
    }

    const PLENTY: Duration = Duration::from_secs(5);

    #[test]
    fn retries_transient_failures_until_done() {
        let (result, calls) = run_with(PLENTY, |n| {
            if n < 3 {
                busy(Duration::ZERO)
            } else {
                Attempt::Done(n)
            }
        });
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls, 3);
    }

    #[test]
    fn gives_up_after_max_attempts_with_the_last_hint() {
        let (result, calls) = run_with(PLENTY, |_| busy::<()>(Duration::from_millis(1)));
        assert!(matches!(
            result,
            Err(Failed::Error { error: "busy", hint: Some(h) }) if h == Duration::from_millis(1)
        ));
        assert_eq!(calls, 3);
    }

    #[test]
    fn stop_and_unknown_end_at_once() {
        let (stopped, calls) = run_with(PLENTY, |_| Attempt::<(), _>::Stop("refused"));
        assert!(matches!(
            stopped,
            Err(Failed::Error {
                error: "refused",
                hint: None
            })
        ));
        assert_eq!(calls, 1);
        let (unknown, calls) = run_with(PLENTY, |_| {
            Attempt::<(), _>::OutcomeUnknown("timed out".into())
        });
        assert!(matches!(unknown, Err(Failed::OutcomeUnknown(w)) if w == "timed out"));
        assert_eq!(calls, 1);
    }

    #[test]
    fn no_call_without_time_for_one() {
        let (result, calls) = run_with(Duration::from_millis(5), |_| Attempt::Done(()));
        assert!(matches!(result, Err(Failed::OutOfTime)));
        assert_eq!(calls, 0, "called without time left");
    }

    #[test]
    fn a_hint_beyond_the_deadline_is_not_waited_for() {
        let (result, calls) = run_with(PLENTY, |_| busy::<()>(Duration::from_secs(60)));
        assert!(matches!(result, Err(Failed::Error { .. })));
        assert_eq!(calls, 1);
    }
}
