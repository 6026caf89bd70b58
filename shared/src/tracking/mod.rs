//! Completion tracking: following every accepted passcode action until
//! Intune reports how it ended, then telling the automation that asked.
//!
//! Intune runs an action when the device next checks in and pushes nothing
//! (managed devices have no Graph change notifications), so:
//!
//! 1. a write function records every action Intune accepted in the action
//!    log (`record`, `store`; `ACTIONS_TABLE`);
//! 2. `passcode-tracker`, started on a schedule, reads the open actions that
//!    are due, polls each device's `deviceActionResults` within a share of
//!    Intune's read budget (`tracker`), and decides (`verdict`, pure);
//! 3. a final state becomes one `Passcode Action Completed` or `Passcode
//!    Action Expired` event on the project's bus (`events`), then the record
//!    is closed; `passcode-status` shows where tracking stands.

// Every binary that records actions compiles this module, but only
// `passcode-tracker` (feature `tracker`) calls its second half (leases,
// verdicts, result events, the tracker's settings). The linker drops that
// half elsewhere; warning about it in those builds would only be noise.
#![cfg_attr(not(feature = "tracker"), allow(dead_code))]

pub mod events;
pub mod record;
pub mod settings;
pub mod store;
#[cfg(feature = "tracker")]
pub mod tracker;
pub mod verdict;

pub use record::{ActionRecord, TrackedAction, action_key};
pub use store::ActionLog;

/// The first poll of a new action: soon enough to report a device that was
/// online, late enough that it had a chance to check in.
pub const FIRST_POLL_MS: i64 = 60_000;
