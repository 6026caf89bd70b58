//! The write itself, once the device is known and eligible: the pending
//! check (Intune's list, and the device lease's record of a send Intune may
//! not list yet), the write budget, the POST, what an unknown outcome
//! means, and the action log entry for the tracker.

use super::{App, Failure, Invocation};
use crate::device::{DeviceSummary, ManagedDevice};
use crate::error::{ErrorCode, ServiceError};
use crate::graph::PostResult;
use crate::origin::Caller;
use crate::outcome::{Outcome, PendingAction, PlatformNotice};
use crate::request::PasscodeRequest;
use crate::retry::Deadline;
use crate::tracking::{self, ActionRecord};
use std::time::Duration;
use time::OffsetDateTime;

/// The pending check, then the POST. `last_sent` is the device lease's
/// record of an earlier send, which Intune may not list yet.
pub(super) async fn send_unless_pending(
    app: &App,
    request: &PasscodeRequest,
    invocation: &Invocation<'_>,
    device: &ManagedDevice,
    notice: Option<PlatformNotice>,
    last_sent: Option<OffsetDateTime>,
) -> Result<Outcome, Failure> {
    let deadline = &invocation.deadline;
    let now = crate::clock::now();
    let pending = pending_reset(device, last_sent, now, app.policy.pending_window);
    // A pending action blocks a new one unless the caller asked to replace it.
    let (replaced, blocked_by) = if request.replace_pending {
        (pending, None)
    } else {
        (None, pending)
    };
    if let Some(pending) = blocked_by {
        return Ok(Outcome::AlreadyPending {
            device: device.summary(),
            pending_since: pending.since,
            notice,
        });
    }

    if let Some(budget) = &app.budget {
        budget.take(deadline).await?;
    }
    let previous_start = device.latest_reset().and_then(|r| r.started_at());
    let (summary, graph_request_id) = match app.graph.reset_passcode(&device.id, deadline).await? {
        PostResult::Accepted { graph_request_id } => (device.summary(), graph_request_id),
        PostResult::Unknown { why } => {
            let reread = confirm_unknown_post(app, device, previous_start, now, &why, deadline)
                .await
                .map_err(|error| Failure {
                    error,
                    post_maybe_sent: true,
                })?;
            (reread, None)
        }
    };
    record_accepted(app, request, invocation, &summary, graph_request_id.as_deref()).await;
    Ok(Outcome::Accepted {
        device: summary,
        graph_request_id,
        replaced,
        notice,
    })
}

/// Puts the accepted action in the action log for the tracker. A failure
/// does not fail the request: the action was sent, and an error would make
/// callers retry into `alreadyPending`. It is logged (and the status shows
/// no tracking for it).
async fn record_accepted(
    app: &App,
    request: &PasscodeRequest,
    invocation: &Invocation<'_>,
    device: &DeviceSummary,
    graph_request_id: Option<&str>,
) {
    let Some(log) = &app.actions else {
        return;
    };
    let caller = invocation.caller;
    let record = ActionRecord {
        device_id: device.id.clone(),
        device_name: Some(device.device_name.clone()).filter(|n| !n.is_empty()),
        action: app.action.event_action().to_string(),
        request_id: invocation.request_id.to_string(),
        graph_request_id: graph_request_id.map(str::to_string),
        accepted_at_ms: crate::clock::now_ms(),
        ticket: request.ticket.clone(),
        reason: request.reason.clone(),
        idempotency_key: request.idempotency_key.clone(),
        // Who asked, without the JWT's grants or the source address.
        caller: Caller {
            grants: None,
            source_ip: None,
            ..caller.clone()
        },
        tracking: Default::default(),
    };
    if let Err(e) = log.put(&record, tracking::FIRST_POLL_MS).await {
        tracing::error!(
            table = log.table(),
            device_id = %device.id,
            "the accepted action could not be recorded for tracking ({e}); no completion event will follow for it"
        );
    }
}

/// Clock difference allowed between Lambda and Intune when their times are
/// compared.
const CLOCK_DIFFERENCE: time::Duration = time::Duration::minutes(2);

/// A `resetPasscode` that is pending/active and started within the window.
/// A pending entry whose time can't be read counts as pending (sending a
/// second passcode is the worse error). So does a send recorded by the
/// device lease within the window (`last_sent`) while Intune lists no
/// entry as new as it: whether Intune lists an action at once is not
/// documented.
pub(crate) fn pending_reset(
    device: &ManagedDevice,
    last_sent: Option<OffsetDateTime>,
    now: OffsetDateTime,
    window: Duration,
) -> Option<PendingAction> {
    let latest = device.latest_reset();
    if let Some(sent) = last_sent.filter(|sent| now - *sent <= window) {
        let listed = latest
            .and_then(|r| r.started_at())
            .is_some_and(|start| start >= sent - CLOCK_DIFFERENCE);
        if !listed {
            return Some(PendingAction {
                since: Some(crate::clock::format(sent)),
            });
        }
    }
    let latest = latest?;
    if !latest.in_progress() {
        return None;
    }
    match latest.started_at() {
        Some(start) if now - start > window => None,
        _ => Some(PendingAction {
            since: latest.start_date_time.clone(),
        }),
    }
}

/// The POST may or may not have reached Intune. Read the device again: a
/// new `resetPasscode` entry means it did (the answer is the device as
/// re-read). Otherwise nothing is re-sent; the caller (or Lambda's retry)
/// can safely try again, and that attempt will see any entry that shows up
/// late through the duplicate check.
async fn confirm_unknown_post(
    app: &App,
    device: &ManagedDevice,
    previous_start: Option<OffsetDateTime>,
    sent_at: OffsetDateTime,
    why: &str,
    deadline: &Deadline,
) -> Result<DeviceSummary, ServiceError> {
    tracing::warn!(device_id = %device.id, "outcome of resetPasscode unknown ({why}); reading the device again");
    let unknown = |detail: &str| {
        ServiceError::new(
            ErrorCode::GraphUnavailable,
            format!(
                "The passcode action may not have reached Intune ({why}) and {detail}. Nothing was sent again; retry the request."
            ),
        )
    };
    let reread = app
        .graph
        .get_device(&device.id, deadline)
        .await
        .map_err(|_| unknown("the device could not be read again to check"))?
        .ok_or_else(|| unknown("the device could not be read again to check"))?;
    let earliest = sent_at - CLOCK_DIFFERENCE;
    let new_entry = reread.latest_reset().filter(|r| {
        r.started_at().is_some_and(|start| {
            start >= earliest && previous_start.is_none_or(|previous| start > previous)
        })
    });
    match new_entry {
        Some(_) => Ok(reread.summary()),
        None => Err(unknown(
            "Intune shows no new passcode action for the device",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::parse_time;
    use crate::handler::tests::with_reset;

    fn at(text: &str) -> OffsetDateTime {
        parse_time(text).unwrap()
    }

    /// The default window: a full Android check-in cycle.
    const WINDOW: Duration = Duration::from_secs(8 * 60 * 60);

    fn since(text: &str) -> Option<PendingAction> {
        Some(PendingAction {
            since: Some(text.into()),
        })
    }

    #[test]
    fn pending_within_the_window_suppresses_a_second_post() {
        let d = with_reset("pending", "2026-11-26T05:00:00Z");
        // A retry 20 minutes or 2 hours later finds the first reset still
        // on its way to the device.
        for later in [
            "2026-11-26T05:20:00Z",
            "2026-11-26T07:00:00Z",
            "2026-11-26T12:59:00Z",
        ] {
            assert_eq!(
                pending_reset(&d, None, at(later), WINDOW),
                since("2026-11-26T05:00:00Z"),
                "{later}"
            );
        }
        assert_eq!(
            pending_reset(&d, None, at("2026-11-26T13:01:00Z"), WINDOW),
            None,
            "stale"
        );
        let short = Duration::from_secs(15 * 60);
        assert_eq!(
            pending_reset(&d, None, at("2026-11-26T05:16:00Z"), short),
            None,
            "configured window"
        );
        let d = with_reset("active", "2026-11-26T05:00:00Z");
        assert!(pending_reset(&d, None, at("2026-11-26T05:01:00Z"), WINDOW).is_some());
        for state in ["done", "failed", "notSupported", "canceled"] {
            let d = with_reset(state, "2026-11-26T05:00:00Z");
            assert_eq!(
                pending_reset(&d, None, at("2026-11-26T05:01:00Z"), WINDOW),
                None,
                "{state}"
            );
        }
        let d = with_reset("pending", "not a time");
        assert_eq!(
            pending_reset(&d, None, at("2026-11-26T05:01:00Z"), WINDOW),
            since("not a time")
        );
    }

    #[test]
    fn a_send_intune_does_not_list_yet_counts_as_pending() {
        let sent = Some(at("2026-11-26T06:00:00Z"));
        let now = at("2026-11-26T06:00:05Z");
        let recorded = since("2026-11-26T06:00:00.000Z");
        // Intune lists nothing for the device, or only an older action that
        // has ended: the recorded send is the pending one.
        let nothing = ManagedDevice {
            device_action_results: None,
            ..with_reset("done", "2026-11-26T05:00:00Z")
        };
        assert_eq!(pending_reset(&nothing, sent, now, WINDOW), recorded);
        let older = with_reset("done", "2026-11-26T05:00:00Z");
        assert_eq!(pending_reset(&older, sent, now, WINDOW), recorded);
        // Once Intune lists an entry as new as the send (allowing for clock
        // difference), Intune's state decides.
        for start in ["2026-11-26T06:00:01Z", "2026-11-26T05:59:00Z"] {
            let done = with_reset("done", start);
            assert_eq!(pending_reset(&done, sent, now, WINDOW), None, "{start}");
            let pending = with_reset("pending", start);
            assert_eq!(pending_reset(&pending, sent, now, WINDOW), since(start));
        }
        // A send older than the window is forgotten.
        let later = at("2026-11-26T14:01:00Z");
        assert_eq!(pending_reset(&older, sent, later, WINDOW), None);
    }
}
