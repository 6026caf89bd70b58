//! DynamoDB attribute values, written and read the same way by the
//! idempotency record and the action log.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A string attribute, if present and a string.
pub fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A number attribute that fits an `i64`.
pub fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// The errors of the calls that take a condition.
pub trait ConditionalError: ProvideErrorMetadata {
    fn is_conditional_check_failed_exception(&self) -> bool;
}

impl ConditionalError for UpdateItemError {
    fn is_conditional_check_failed_exception(&self) -> bool {
        UpdateItemError::is_conditional_check_failed_exception(self)
    }
}

impl ConditionalError for PutItemError {
    fn is_conditional_check_failed_exception(&self) -> bool {
        PutItemError::is_conditional_check_failed_exception(self)
    }
}

/// A conditional write's result: `Ok(false)` when its condition did not
/// hold, the error's text for any other failure.
pub fn conditional<T, E: ConditionalError, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, String> {
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
            Ok(false)
        }
        Err(e) => Err(crate::aws::error_text(&e)),
    }
}
