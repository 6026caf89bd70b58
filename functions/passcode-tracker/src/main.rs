//! Lambda function `passcode-tracker`: started on a schedule, follows every
//! accepted passcode action to its end and reports it on the event bus (see
//! the README's "Completion tracking").
// The runtime, SDK and handler futures nest deeply; release builds need a
// higher limit to compute their layout.
#![recursion_limit = "256"]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), passcode_core::BoxError> {
    passcode_core::run_tracker().await
}
