//! The fan-out: one SQS message per device, on the queue of the batch's
//! action, in `SendMessageBatch` calls of ten. The write function that
//! takes a message handles it exactly like a single EventBridge request
//! (see `trigger::sqs`); its idempotency key is made of the batch and the
//! device, so a message sent twice still resets the device once.

use crate::action::Action;
use crate::error::{ErrorCode, ServiceError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use std::time::Duration;

/// SQS takes at most ten messages per call.
const PER_CALL: usize = 10;
/// Attempts per message; SQS reports a failed entry without failing the call.
const ATTEMPTS: u32 = 3;

pub struct BulkQueues {
    client: aws_sdk_sqs::Client,
    reset_url: Option<String>,
    remove_url: Option<String>,
}

impl BulkQueues {
    pub fn new(client: aws_sdk_sqs::Client, reset_url: Option<String>, remove_url: Option<String>) -> BulkQueues {
        BulkQueues {
            client,
            reset_url,
            remove_url,
        }
    }

    fn url(&self, action: Action) -> Result<&str, ServiceError> {
        let (url, variable) = match action {
            Action::RemovePasscode => (&self.remove_url, "BULK_REMOVE_QUEUE_URL"),
            _ => (&self.reset_url, "BULK_RESET_QUEUE_URL"),
        };
        url.as_deref().ok_or_else(|| {
            ServiceError::config(format!("{variable} is not set: this deployment cannot queue bulk {action} requests"))
        })
    }

    /// Sends every message; an error when some could not be queued (the
    /// others are, and a repeat of the request sends them all again).
    pub async fn send(&self, action: Action, bodies: Vec<String>) -> Result<(), ServiceError> {
        let url = self.url(action)?;
        let chunks: Vec<Vec<String>> = bodies.chunks(PER_CALL).map(<[String]>::to_vec).collect();
        let failed: usize = super::pool::map_all(chunks, |chunk| self.send_chunk(url, chunk))
            .await
            .into_iter()
            .sum();
        if failed == 0 {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::QueueUnavailable,
            format!(
                "{failed} of the batch's messages could not be queued (SQS); the others were. Send the same request again with the same idempotencyKey to queue the rest: devices already queued are not reset twice."
            ),
        ))
    }

    /// Sends up to ten messages; returns how many could not be queued.
    async fn send_chunk(&self, url: &str, mut pending: Vec<String>) -> usize {
        for attempt in 1..=ATTEMPTS {
            let entries: Vec<SendMessageBatchRequestEntry> = pending
                .iter()
                .enumerate()
                .filter_map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    let failed: Vec<usize> = out.failed().iter().filter_map(|f| f.id().parse().ok()).collect();
                    pending = pending
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| failed.contains(i))
                        .map(|(_, body)| body)
                        .collect();
                    if pending.is_empty() {
                        return 0;
                    }
                }
                Err(e) => tracing::warn!(attempt, "SendMessageBatch failed: {}", crate::aws::error_text(&e)),
            }
            tokio::time::sleep(Duration::from_millis(100 * attempt as u64)).await;
        }
        pending.len()
    }
}
