//! End-to-end tests: the real function binaries under the Runtime API
//! emulator, against the Graph simulator and moto. One test binary with a
//! module per area, so the harness is linked once.

mod common;

mod actions;
mod aws_events;
mod budget;
mod bulk;
mod credentials;
mod device_lease;
mod faults;
mod idempotency;
mod logs;
mod lookup;
mod platforms;
mod queue;
mod rights;
mod soak;
mod tracking;
