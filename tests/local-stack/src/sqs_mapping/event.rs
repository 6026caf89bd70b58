//! The event Lambda's SQS poller builds from received messages, and how it
//! reads the function's answer when `ReportBatchItemFailures` is on.

use std::collections::HashSet;

use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// One record of `{"Records": [...]}`, as Lambda hands a message to the function.
pub(crate) fn record(message: &Message, queue_arn: &str) -> Value {
    // Lambda passes on every system attribute SQS returned (AWSTraceHeader,
    // MessageGroupId, ... included), so do not filter to the usual four.
    let attributes: Map<String, Value> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.clone())))
        .collect();
    let message_attributes: Map<String, Value> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), message_attribute(value)))
        .collect();
    let mut record = json!({
        "messageId": message.message_id().unwrap_or_default(),
        "receiptHandle": message.receipt_handle().unwrap_or_default(),
        "body": message.body().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body().unwrap_or_default(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region_of(queue_arn),
    });
    // SQS (and so Lambda) only has this digest when the message has attributes.
    if let Some(md5) = message.md5_of_message_attributes() {
        record["md5OfMessageAttributes"] = md5.into();
    }
    record
}

/// Lambda's shape: camelCase, binary values base64, empty lists kept.
fn message_attribute(value: &MessageAttributeValue) -> Value {
    let encode = |blob: &aws_sdk_sqs::primitives::Blob| STANDARD.encode(blob.as_ref());
    let mut out = json!({
        "stringListValues": value.string_list_values(),
        "binaryListValues": value.binary_list_values().iter().map(encode).collect::<Vec<_>>(),
        "dataType": value.data_type(),
    });
    if let Some(text) = value.string_value() {
        out["stringValue"] = text.into();
    }
    if let Some(blob) = value.binary_value() {
        out["binaryValue"] = encode(blob).into();
    }
    out
}

/// `arn:aws:sqs:<region>:<account>:<name>`.
pub(crate) fn region_of(queue_arn: &str) -> &str {
    queue_arn.split(':').nth(3).unwrap_or("us-east-1")
}

/// What Lambda makes of a function's answer to a batch.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BatchVerdict {
    /// Delete every message except these (none: the whole batch succeeded).
    Partial(HashSet<String>),
    /// Delete nothing: the whole batch comes back after the visibility timeout.
    WholeBatchFailed(String),
}

/// Applies the success and failure conditions AWS documents for partial
/// batch responses ("Handling errors for an SQS event source in Lambda"):
/// an empty or null `batchItemFailures`, an empty or null response are a
/// complete success; an invalid JSON response, an empty or null
/// `itemIdentifier`, a bad key name, or an identifier that names no message
/// of the batch are a complete failure.
pub(crate) fn read_response(response: &Value, message_ids: &HashSet<String>) -> BatchVerdict {
    let failures = match response {
        Value::Null => return BatchVerdict::Partial(HashSet::new()),
        Value::Object(fields) => match fields.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchVerdict::Partial(HashSet::new()),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return BatchVerdict::WholeBatchFailed(format!(
                    "batchItemFailures is not a list: {other}"
                ));
            }
        },
        // The emulator keeps a body that is not JSON as a string; a bare
        // string, number or list is no EventResponse either.
        other => return BatchVerdict::WholeBatchFailed(format!("not a batch response: {other}")),
    };
    let mut failed = HashSet::new();
    for item in failures {
        let id = item.get("itemIdentifier").and_then(Value::as_str);
        match id {
            Some(id) if message_ids.contains(id) => {
                failed.insert(id.to_owned());
            }
            Some("") | None => {
                return BatchVerdict::WholeBatchFailed(format!(
                    "empty, null or missing itemIdentifier: {item}"
                ));
            }
            Some(id) => {
                return BatchVerdict::WholeBatchFailed(format!(
                    "itemIdentifier {id} names no message of the batch"
                ));
            }
        }
    }
    BatchVerdict::Partial(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;

    fn fixture(name: &str) -> Value {
        let path = crate::workspace_root()
            .join("tests/fixtures/aws-events")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn keys(value: &Value) -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    fn message(with_attributes: bool) -> Message {
        let mut builder = Message::builder()
            .message_id("m-1")
            .receipt_handle("handle-1")
            .body("{\"n\":1}")
            .md5_of_body("0c5d8d4d3c1f7d1a1f1b0c5d8d4d3c1f")
            .attributes(Attr::ApproximateReceiveCount, "1")
            .attributes(Attr::SentTimestamp, "1520621625029")
            .attributes(Attr::SenderId, "AIDAIENQZJOLO23YVJ4VO")
            .attributes(Attr::ApproximateFirstReceiveTimestamp, "1520621634884");
        if with_attributes {
            let binary = MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(Blob::new(b"1100".to_vec()))
                .binary_list_values(Blob::new(b"0".to_vec()))
                .string_list_values("abc")
                .build()
                .unwrap();
            let string = MessageAttributeValue::builder()
                .data_type("String")
                .string_value("AttributeValue1")
                .build()
                .unwrap();
            builder = builder
                .message_attributes("Attribute3", binary)
                .message_attributes("Attribute1", string)
                .md5_of_message_attributes("582c92c5c5b6ac403040a4f3ab3115c9");
        }
        builder.build()
    }

    #[test]
    fn records_have_the_shape_of_aws_sample_event() {
        let sample = fixture("example-sqs-event.json");
        let sample_record = &sample["Records"][0];
        let arn = "arn:aws:sqs:us-east-1:000000000000:bulk-reset";

        let full = record(&message(true), arn);
        assert_eq!(keys(&full), keys(sample_record));
        assert_eq!(
            keys(&full["attributes"]),
            keys(&sample_record["attributes"])
        );
        for (name, value) in full["messageAttributes"].as_object().unwrap() {
            let sample_value = &sample_record["messageAttributes"][name];
            assert_eq!(keys(value), keys(sample_value), "{name}");
        }
        assert_eq!(
            full["messageAttributes"]["Attribute3"]["binaryValue"],
            "MTEwMA=="
        );
        assert_eq!(
            full["messageAttributes"]["Attribute3"]["binaryListValues"],
            json!(["MA=="])
        );
        assert_eq!(full["eventSource"], "aws:sqs");
        assert_eq!(full["eventSourceARN"], arn);
        assert_eq!(full["awsRegion"], "us-east-1");
        assert_eq!(full["body"], "{\"n\":1}");
        assert_eq!(full["attributes"]["ApproximateReceiveCount"], "1");

        // Without message attributes, SQS sends no digest of them and Lambda an empty map.
        let plain = record(&message(false), arn);
        let mut expected = keys(sample_record);
        expected.retain(|k| k != "md5OfMessageAttributes");
        assert_eq!(keys(&plain), expected);
        assert_eq!(plain["messageAttributes"], json!({}));
    }

    #[test]
    fn reads_the_sample_batch_response() {
        let ids: HashSet<String> = ["id1", "id2", "id3", "id4"].map(String::from).into();
        let verdict = read_response(&fixture("example-sqs-batch-response.json"), &ids);
        assert_eq!(
            verdict,
            BatchVerdict::Partial(["id2", "id4"].map(String::from).into())
        );
    }

    #[test]
    fn success_and_failure_conditions() {
        let ids: HashSet<String> = ["a", "b"].map(String::from).into();
        let all_ok = BatchVerdict::Partial(HashSet::new());
        for response in [
            json!(null),
            json!({}),
            json!({"batchItemFailures": []}),
            json!({"batchItemFailures": null}),
            json!({"statusCode": 200}),
        ] {
            assert_eq!(read_response(&response, &ids), all_ok, "{response}");
        }
        for response in [
            json!("not json"),
            json!([{"itemIdentifier": "a"}]),
            json!({"batchItemFailures": "a"}),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"itemIdentifer": "a"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "zzz"}]}),
        ] {
            assert!(
                matches!(
                    read_response(&response, &ids),
                    BatchVerdict::WholeBatchFailed(_)
                ),
                "{response}"
            );
        }
    }
}
