//! A direct invocation (e.g. a Step Functions `lambda:invoke` task): the
//! payload is the request itself, shaped like an EventBridge `detail`.

use super::{Parsed, RequestReader};
use crate::origin::{Caller, Source};
use serde_json::{Map, Value};

pub(super) fn parse<R: RequestReader>(reader: &R, payload: &Map<String, Value>) -> Parsed<R::Request> {
    Parsed {
        source: Source::Direct,
        caller: Caller::direct(),
        request: reader.read_detail(payload),
    }
}

#[cfg(test)]
mod tests {
    use crate::action::Action;
    use super::super::parse_event;
    use super::*;
    use serde_json::json;

    #[test]
    fn the_payload_is_the_request_itself() {
        let inc = parse_event(
            Action::Status,
            &json!({"action": "status", "device": {"serialNumber": "A1"}, "requestedBy": "sfn"}),
        );
        assert_eq!(inc.source, Source::Direct);
        assert_eq!(inc.caller.kind, "direct");
        assert_eq!(inc.caller.requested_by.as_deref(), Some("sfn"));
        assert!(inc.request.is_ok());
        let inc = parse_event(Action::Status, &json!("hello"));
        assert_eq!(inc.source, Source::Direct);
        assert!(inc.request.is_err());
    }
}
