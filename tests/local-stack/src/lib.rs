//! Runs the real function binaries the way Lambda does — each under its own
//! Runtime API emulator — next to moto (Secrets Manager) and the Graph
//! simulator, for the end-to-end tests, benchmarks and the quick start.
//!
//! Every child process started here dies with its owner: dropping a handle
//! kills it, and the kernel kills it if this process dies first.

pub mod api;
pub mod events;
pub mod moto;
mod paths;
mod process;
pub mod runtime;
pub mod soak;
pub mod sqs_mapping;
pub mod stack;

pub use api::{ApiFront, serve_api};
pub use events::Caller;
pub use moto::Moto;
pub use paths::{bin_dir, workspace_root};
pub use runtime::{FunctionProcess, FunctionSpec, Invocation, InvokeOutcome};
pub use sqs_mapping::{SqsMapping, SqsMappingOptions, SqsMappingStats};
pub use stack::{SecretForm, Stack};
