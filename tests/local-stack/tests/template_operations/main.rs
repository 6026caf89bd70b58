//! What an operator relies on in `template.yaml`: failures land in queues,
//! alarms watch every failure signal, the API throttles before Lambda does,
//! the defaults deploy on a new account, the audit trail outlives the stack,
//! every role takes the permissions boundary, the completion tracker runs
//! on its schedule with no more rights than it needs, queued (bulk)
//! requests reach only their own function, with a dead-letter queue, the
//! write budget and the stop switch, and the bulk function touches only
//! bulk items and the two bulk queues.
//!
//! The template is translated by AWS SAM's own translator
//! (`scripts/sam_translate.py`, samtranslator from `.venv`), then "deployed"
//! here for a set of parameter values: conditions evaluated, `Fn::If`
//! branches chosen, parameters and mappings substituted, conditional
//! resources dropped. The checks run on that result, i.e. on what
//! CloudFormation would create for those parameters.

mod actions_table;
mod alarms;
mod audit_trail;
mod bulk_function;
mod bulk_queues;
mod concurrency;
mod deployed;
mod failure_queue;
mod parameters;
mod roles;
mod tracker;
mod write_budget;

use serde_json::{Value, json};

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ops-alerts";

const FUNCTIONS: [&str; 5] = [
    "ResetPasscodeFunction",
    "RemovePasscodeFunction",
    "ResetWindowsPinFunction",
    "PasscodeStatusFunction",
    "RevealPasscodeFunction",
];

/// The scheduled completion tracker: no route, no rule, no reservation.
const TRACKER: &str = "PasscodeTrackerFunction";

/// The bulk function (`bulk-passcode`): two routes and a rule, no
/// reservation; deployed only with the idempotency table.
const BULK_FUNCTION_ID: &str = "BulkPasscodeFunction";

/// The bulk function's routes (`passcode_core::action::BULK_ROUTES`), as
/// route keys.
const BULK_ROUTE_KEYS: [&str; 2] = ["POST /v1/bulk/{action}", "GET /v1/bulk/{action}/{batchId}"];

/// The functions that record accepted actions in the actions table.
const WRITES: [&str; 3] = [
    "ResetPasscodeFunction",
    "RemovePasscodeFunction",
    "ResetWindowsPinFunction",
];

/// The bulk queues, each with the function that takes its messages and its
/// dead-letter queue.
const BULK: [(&str, &str, &str); 2] = [
    (
        "BulkResetQueue",
        "ResetPasscodeFunction",
        "BulkResetDeadLetterQueue",
    ),
    (
        "BulkRemoveQueue",
        "RemovePasscodeFunction",
        "BulkRemoveDeadLetterQueue",
    ),
];

/// The condition that keeps a statement on the idempotency table to the
/// bulk items (batches, hourly counts, stop switch).
fn bulk_keys_only() -> Value {
    json!({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["bulk#*"]}})
}
