//! Lambda function `remove-passcode`: see the README's API section.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), passcode_core::BoxError> {
    passcode_core::run(passcode_core::Action::RemovePasscode).await
}
