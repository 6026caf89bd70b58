//! End-to-end tests: start the simulator and drive it over HTTP.

#[path = "integration/common.rs"]
mod common;

#[path = "integration/actions.rs"]
mod actions;
#[path = "integration/auth.rs"]
mod auth;
#[path = "integration/devices.rs"]
mod devices;
#[path = "integration/faults.rs"]
mod faults;
#[path = "integration/log.rs"]
mod log;
#[path = "integration/profiles.rs"]
mod profiles;
