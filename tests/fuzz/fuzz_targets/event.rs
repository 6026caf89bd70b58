//! Any JSON event, for each of the four functions: `parse_event` never
//! panics, a refused request is a 400 `invalidRequest` with a short message,
//! and the answer and the audit record render.
//!
//! Input: bytes read as JSON the way Lambda's runtime reads a payload
//! (serde_json, default recursion limit); anything else never reaches us.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use passcode_core::Action;
use passcode_core::trigger::parse_event;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for action in Action::ALL {
        let incoming = parse_event(action, &event);
        common::check_incoming(action, &incoming);
    }
});
