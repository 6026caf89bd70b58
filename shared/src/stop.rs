//! The brake on queued (bulk) writes: one item in the idempotency table,
//! `{"id": "bulk#stop", "stopped": true}`, stops every write that arrives
//! from the queue, in every execution environment, without a redeploy.
//! Single API and EventBridge requests are not affected: a person or a
//! workflow asked for each of them.
//!
//! Each environment reads the item at most once per `BULK_STOP_CHECK_SECONDS`
//! (60 by default), so pulling the brake takes effect within that time. A
//! read that fails says neither: the write is not sent and its message
//! comes back later (sending after the brake was pulled is the worse error).

use crate::dynamo::text;
use crate::error::{ErrorCode, ServiceError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const STOP_ITEM: &str = "bulk#stop";

pub struct StopSwitch {
    client: aws_sdk_dynamodb::Client,
    table: String,
    check_every: Duration,
    last: Mutex<Option<(Instant, bool)>>,
}

impl StopSwitch {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, check_every: Duration) -> StopSwitch {
        StopSwitch {
            client,
            table,
            check_every,
            last: Mutex::new(None),
        }
    }

    /// `Ok` while the brake is off; `bulkStopped` (409) while it is on,
    /// `idempotencyUnavailable` (503, retried) when it could not be read.
    /// The messages say what was not done in each case.
    pub async fn released(&self, when_stopped: &str, when_unreadable: &str) -> Result<(), ServiceError> {
        match self.is_stopped().await {
            Some(false) => Ok(()),
            Some(true) => Err(ServiceError::new(ErrorCode::BulkStopped, when_stopped)),
            None => Err(ServiceError::new(ErrorCode::IdempotencyUnavailable, when_unreadable)),
        }
    }

    /// `Some(true)` when the brake is pulled; `None` when that could not
    /// be read.
    pub async fn is_stopped(&self) -> Option<bool> {
        if let Ok(last) = self.last.lock()
            && let Some((at, stopped)) = *last
            && at.elapsed() < self.check_every
        {
            return Some(stopped);
        }
        let stopped = match self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", crate::dynamo::s(STOP_ITEM))
            .consistent_read(true)
            .send()
            .await
        {
            Ok(out) => out.item().is_some_and(|item| {
                item.get("stopped").and_then(|v| v.as_bool().ok()).copied() == Some(true)
                    || text(item, "stopped").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            }),
            Err(e) => {
                tracing::warn!(
                    table = %self.table,
                    "the bulk stop switch could not be read ({}); queued writes wait",
                    crate::aws::error_text(&e)
                );
                return None;
            }
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), stopped));
        }
        Some(stopped)
    }
}
