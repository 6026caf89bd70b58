//! A few requests at once: the plan's lookups and the fan-out's
//! `SendMessageBatch` calls. Eight workers on the invocation's own task
//! take the next item in turn; results come back in the items' order.

use std::future::Future;
use std::sync::Mutex;

/// Requests in flight at once: well within Intune's read limits, and a
/// 1,000-device plan still fits API Gateway's 30 seconds.
pub const WORKERS: usize = 8;

pub async fn map_all<T, R, F, Fut>(items: Vec<T>, work: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    let count = items.len();
    let next = Mutex::new(items.into_iter().enumerate());
    let done = Mutex::new(Vec::with_capacity(count));
    let worker = || async {
        loop {
            let item = next.lock().ok().and_then(|mut items| items.next());
            let Some((index, item)) = item else {
                break;
            };
            let result = work(item).await;
            if let Ok(mut done) = done.lock() {
                done.push((index, result));
            }
        }
    };
    tokio::join!(
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker()
    );
    debug_assert_eq!(WORKERS, 8, "one worker() above per worker");
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_item_once_in_order_at_most_eight_at_once() {
        let running = std::sync::atomic::AtomicUsize::new(0);
        let peak = std::sync::atomic::AtomicUsize::new(0);
        let out = map_all((0..50u64).collect(), |n| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                // Later items finish first.
                tokio::time::sleep(Duration::from_millis(50 - n)).await;
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                n * 2
            }
        })
        .await;
        assert_eq!(out, (0..50u64).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), WORKERS);
    }
}
