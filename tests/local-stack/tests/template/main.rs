//! Ties `template.yaml` (repository root) to `passcode_core::action`, the one
//! place where function names, HTTP routes and EventBridge names are defined:
//! the five action functions and the bulk function (`BULK_FUNCTION`,
//! `BULK_ROUTES`, `BULK_DETAIL_TYPE`, `BULK_ROLE`).
//!
//! The template is read as plain YAML. CloudFormation short-form tags (`!Ref`,
//! `!Sub`, `!If`, ...) come through as tagged values; `!If` is followed into
//! both branches wherever a value may be conditional, so a check cannot be
//! dodged by hiding a value in one branch of a condition.

mod authentication;
mod caller_rights;
mod event_rules;
mod functions;
mod idempotency_table;
mod policies;
mod routes;
mod yaml;
