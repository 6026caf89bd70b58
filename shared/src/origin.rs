//! Where a request came from and who asked: plain types that the audit
//! record, the idempotency key and the answers read. `trigger` builds them
//! from the event; nothing here knows an event's shape.

use crate::rights::Grants;
use serde::Serialize;

/// What invoked the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ApiV2,
    ApiV1,
    EventBridge,
    Direct,
    /// A message from an SQS queue (event source mapping).
    Sqs,
}

impl Source {
    pub fn is_api(self) -> bool {
        matches!(self, Source::ApiV2 | Source::ApiV1)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::ApiV2 => "apiGateway.http",
            Source::ApiV1 => "apiGateway.rest",
            Source::EventBridge => "eventBridge",
            Source::Direct => "directInvoke",
            Source::Sqs => "sqs",
        }
    }
}

/// Longest value of a caller field kept for the audit record and the
/// idempotency key. Claims and authorizer fields come from outside; an ARN
/// or a UPN is far shorter.
pub const MAX_CALLER_FIELD_CHARS: usize = 256;

/// Who asked, for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// `iam`, `jwt`, `lambdaAuthorizer`, `none`, `eventBridge`, `direct`,
    /// `sqs`, or `unknown` for an event that could not be read.
    pub kind: String,
    /// IAM principal ARN, JWT subject, Lambda authorizer principal,
    /// EventBridge source, or SQS queue ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// For a JWT: `user` when a person signed in (delegated token), `app`
    /// when an application called with its own credentials (client
    /// credentials: no user, no `upn`). Absent when the claims don't tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<&'static str>,
    /// A human name when the credentials carry one (JWT `upn`,
    /// `preferred_username`, `email`, Cognito `username`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The application the token was issued to: Entra `azp` (v2 tokens) or
    /// `appid` (v1 tokens), Cognito `client_id`. For an app caller this is
    /// the name to look up in Entra; for a user, the tool they used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// `requestedBy` of a valid EventBridge / direct request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The bulk batch a queued request belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The rights a JWT grants; `None` for every other kind of caller,
    /// whose rights IAM checked before the function ran.
    #[serde(skip)]
    pub grants: Option<Grants>,
}

