//! Any JSON event, for each of the functions: `parse_event` never panics,
//! a refused request is a 400 `invalidRequest` with a short message, and
//! the answer and the audit record render. The same holds for every
//! message of an SQS batch (`queued_requests`), which names each by its id.
//!
//! Input: bytes read as JSON the way Lambda's runtime reads a payload
//! (serde_json, default recursion limit); anything else never reaches us.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use passcode_core::Action;
use passcode_core::trigger::{parse_event, queued_requests};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for action in Action::ALL {
        let incoming = parse_event(action, &event);
        common::check_incoming(action, &incoming);
        if let Some(batch) = queued_requests(action, &event) {
            let records = event["Records"].as_array().map_or(0, Vec::len);
            assert_eq!(batch.len(), records, "one request per record");
            for queued in &batch {
                assert_eq!(queued.incoming.caller.kind, "sqs");
                common::check_incoming(action, &queued.incoming);
            }
        }
    }
});
