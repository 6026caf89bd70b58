//! Lambda function `bulk-passcode`: many devices in one request, queued
//! one message per device for reset-passcode or remove-passcode. See the
//! README's bulk section.
// The runtime, SDK and handler futures nest deeply; release builds need a
// higher limit to compute their layout.
#![recursion_limit = "256"]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), passcode_core::BoxError> {
    passcode_core::run_bulk().await
}
