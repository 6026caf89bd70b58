//! The tenant-wide write budget: Intune allows 200 writes per 20 s per app
//! and tenant (400 across all apps), and every execution environment of
//! every write function sends on the same app registration. Each one takes
//! a token here before its POST, so together they stay under the budget
//! instead of meeting Intune's 429.
//!
//! The budget is counted in fixed two-second windows, one item per window
//! in the idempotency table (`budget#writes#<window start ms>`): an
//! atomic ADD on condition that the window is not full. Ten windows of
//! `WRITE_BUDGET_PER_20S / 10` keep any 20 s span within the budget plus
//! one window, far below Intune's limit with the default of 100 (half of
//! Intune's per-app 200). When the window is full the write waits for the
//! next one while its deadline allows; otherwise it ends `throttled` with
//! the wait as `Retry-After` (a queued message comes back later).
//!
//! The budget paces; it is not what keeps a device from getting two
//! passcodes (the idempotency record and the pending check do that). So if
//! the table cannot be reached, the write goes ahead (logged) and Graph's
//! own throttling, handled by the retry loop, is the fallback.

use crate::dynamo::{conditional, n, s};
use crate::error::{ErrorCode, ServiceError};
use crate::retry::Deadline;
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(2);
const WINDOWS_PER_20S: u32 = 10;
/// A write never starts with less than this left before its deadline.
const KEEP_FOR_THE_POST: Duration = Duration::from_secs(5);

pub struct WriteBudget {
    client: aws_sdk_dynamodb::Client,
    table: String,
    per_window: u32,
}

impl WriteBudget {
    /// `per_20s` writes per 20 seconds across every environment; `None`
    /// for 0 (no budget).
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, per_20s: u32) -> Option<WriteBudget> {
        (per_20s > 0).then(|| WriteBudget {
            client,
            table,
            per_window: per_20s.div_ceil(WINDOWS_PER_20S),
        })
    }

    /// Takes one write from the budget, waiting for a window with room
    /// while the deadline allows.
    pub async fn take(&self, deadline: &Deadline) -> Result<(), ServiceError> {
        loop {
            // Real time: windows must agree between environments.
            let now_ms = crate::clock::real_now_ms();
            let window_ms = WINDOW.as_millis() as i64;
            let start = now_ms - now_ms.rem_euclid(window_ms);
            match self.take_in(start).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(
                        table = %self.table,
                        "the write budget could not be read ({e}); sending without it"
                    );
                    return Ok(());
                }
            }
            // Full: the next window, a little spread so waiting writers
            // do not all arrive at its first millisecond.
            let wait = Duration::from_millis((start + window_ms - now_ms) as u64 + fastrand::u64(0..50));
            if deadline.remaining() < wait + KEEP_FOR_THE_POST {
                let mut e = ServiceError::new(
                    ErrorCode::Throttled,
                    "The tenant's write budget for Intune is spent for now (WRITE_BUDGET_PER_20S, shared by every request and batch). Nothing was sent; retry after the Retry-After time.",
                );
                e.retry_after = Some(Duration::from_secs(wait.as_secs().max(1) + 1));
                return Err(e);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One conditional ADD on the window's item. `Ok(false)`: it is full.
    async fn take_in(&self, window_start_ms: i64) -> Result<bool, String> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(&format!("budget#writes#{window_start_ms}")))
            .update_expression("SET #exp = :exp ADD #n :one")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "writes")
            .expression_attribute_names("#exp", "expiration")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(self.per_window as i64))
            // DynamoDB's TTL removes the window's item a minute later.
            .expression_attribute_values(":exp", n(window_start_ms / 1000 + 60))
            .send()
            .await;
        conditional(result)
    }
}
