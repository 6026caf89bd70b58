//! Per-invocation counts of Graph calls for the metrics in the audit line.
//!
//! The audit record (see `audit`) carries them as CloudWatch Embedded Metric
//! Format values, so metrics cost no dependency and no network call: Lambda
//! writes the line to CloudWatch Logs, which extracts the metrics.
//!
//! The counts live in a task-local value that [`counting`] sets up around one
//! invocation; the Graph client bumps them where it sends a request and where
//! it decides to retry. Outside [`counting`] (unit tests, set-up) bumping does
//! nothing.

use std::cell::Cell;
use std::future::Future;

/// What one invocation did with Graph.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GraphCounts {
    /// Requests sent to Graph, retries included (token requests to Entra ID
    /// are not Graph calls).
    pub calls: u32,
    /// Requests sent again after a 429, 503 or transient failure.
    pub retries: u32,
    /// Of those retries, the ones that waited because Graph throttled (429).
    pub throttled_waits: u32,
}

tokio::task_local! {
    static COUNTS: Cell<GraphCounts>;
}

/// Runs one invocation with fresh counts.
pub async fn counting<F: Future>(invocation: F) -> F::Output {
    COUNTS
        .scope(Cell::new(GraphCounts::default()), invocation)
        .await
}

/// The counts of the running invocation so far (zero outside [`counting`]).
pub fn graph_counts() -> GraphCounts {
    COUNTS.try_with(Cell::get).unwrap_or_default()
}

fn bump(change: impl FnOnce(&mut GraphCounts)) {
    let _ = COUNTS.try_with(|cell| {
        let mut counts = cell.get();
        change(&mut counts);
        cell.set(counts);
    });
}

/// Called by the Graph client once per request it sends.
pub fn graph_call_sent() {
    bump(|c| c.calls += 1);
}

/// Called by the Graph client when it waits before sending a request again;
/// `throttled` when the reason was a 429.
pub fn graph_retry(throttled: bool) {
    bump(|c| {
        c.retries += 1;
        if throttled {
            c.throttled_waits += 1;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_belong_to_one_invocation() {
        graph_call_sent(); // outside any invocation: ignored
        let inside = counting(async {
            graph_call_sent();
            graph_retry(true);
            graph_call_sent();
            graph_retry(false);
            graph_call_sent();
            graph_counts()
        })
        .await;
        assert_eq!(
            inside,
            GraphCounts {
                calls: 3,
                retries: 2,
                throttled_waits: 1
            }
        );
        let next = counting(async { graph_counts() }).await;
        assert_eq!(
            next,
            GraphCounts::default(),
            "a new invocation starts at zero"
        );
        assert_eq!(graph_counts(), GraphCounts::default());
    }
}
