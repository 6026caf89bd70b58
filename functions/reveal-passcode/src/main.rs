//! Lambda function `reveal-passcode`: see the README's API section.
// The runtime, SDK and handler futures nest deeply; release builds need a
// higher limit to compute their layout.
#![recursion_limit = "256"]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), passcode_core::BoxError> {
    passcode_core::run(passcode_core::Action::RevealPasscode).await
}
