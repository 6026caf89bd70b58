//! API Gateway HTTP API, payload format 2.0.

use super::api::{api_body, api_request};
use crate::origin::Caller;
use super::route::ApiRoute;
use super::{Parsed, RequestReader};
use crate::origin::Source;
use aws_lambda_events::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest};
use serde_json::{Map, Value};

/// `query` is the event's own `queryStringParameters`: payload 2.0 joins a
/// repeated parameter's values with commas, and the typed struct splits
/// every value at its commas again, which would cut a `reason` of
/// "locked out, on the phone" to "locked out". The values are read as API
/// Gateway sent them instead (a repeated parameter stays comma-joined).
pub(super) fn parse<R: RequestReader>(
    reader: &R,
    req: ApiGatewayV2httpRequest,
    query: Option<&Map<String, Value>>,
) -> Parsed<R::Request> {
    let ctx = &req.request_context;
    let raw_path = req
        .raw_path
        .as_deref()
        .or(ctx.http.path.as_deref())
        .unwrap_or_default();
    let route_key = req.route_key.as_deref().or(ctx.route_key.as_deref());
    let route = ApiRoute {
        method: ctx.http.method.as_str(),
        template: route_key.and_then(route_template),
        params: &req.path_parameters,
        raw_path,
        stage: ctx.stage.as_deref(),
    };
    let caller = Caller::from_authorizer(
        ctx.authorizer
            .as_ref()
            .unwrap_or(&ApiGatewayRequestAuthorizer::default()),
        None,
        ctx.http.source_ip.clone(),
    );
    let body = api_body(req.body.as_deref(), req.is_base64_encoded, reader.max_body_bytes(), |k| {
        query
            .and_then(|q| q.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    Parsed {
        source: Source::ApiV2,
        caller,
        request: api_request(reader, &route, body),
    }
}

/// The path template of a route key: `POST /v1/reset-passcode` →
/// `/v1/reset-passcode`. `$default` (the catch-all route) has none.
fn route_template(route_key: &str) -> Option<&str> {
    route_key
        .split_once(' ')
        .map(|(_, template)| template.trim())
        .filter(|t| t.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use crate::action::Action;
    use super::super::parse_event;
    use super::super::test_events::{ID, v2};
    use super::*;
    use crate::error::ErrorCode;
    use crate::request::DeviceRef;
    use serde_json::json;

    #[test]
    fn route_keys_name_a_template_or_none() {
        assert_eq!(
            route_template("POST /v1/devices/{deviceId}/reset-passcode"),
            Some("/v1/devices/{deviceId}/reset-passcode")
        );
        assert_eq!(route_template("ANY /{proxy+}"), Some("/{proxy+}"));
        assert_eq!(route_template("$default"), None);
        assert_eq!(route_template(""), None);
    }

    #[test]
    fn path_form_with_iam_caller() {
        let path = format!("/v1/devices/{ID}/reset-passcode");
        let inc = parse_event(
            Action::ResetPasscode,
            &v2(
                "POST",
                &path,
                Some(ID),
                Some(json!({"reason": "locked out"})),
            ),
        );
        assert_eq!(inc.source, Source::ApiV2);
        assert_eq!(inc.caller.kind, "iam");
        assert_eq!(
            inc.caller.principal.as_deref(),
            Some("arn:aws:iam::123456789012:user/helpdesk")
        );
        assert_eq!(inc.request.unwrap().device, DeviceRef::Id(ID.into()));
    }

    /// The stage and the custom-domain mapping stay in `rawPath`; the route
    /// key and path parameters are what count.
    #[test]
    fn named_stages_and_mapping_keys_route_on_the_route_key() {
        let path = format!("/v1/devices/{ID}/reset-passcode");
        for (raw, stage) in [
            (format!("/prod{path}"), "prod"),
            (format!("/intune{path}"), "$default"),
        ] {
            let mut ev = v2("POST", &path, Some(ID), Some(json!({"reason": "r"})));
            ev["rawPath"] = json!(raw);
            ev["requestContext"]["http"]["path"] = json!(raw);
            ev["requestContext"]["stage"] = json!(stage);
            let req = parse_event(Action::ResetPasscode, &ev).request.unwrap();
            assert_eq!(req.device, DeviceRef::Id(ID.into()), "{raw}");
        }
        // $default route on a named stage: the stage segment is removed.
        let mut ev = v2("POST", &path, None, Some(json!({"reason": "r"})));
        ev["routeKey"] = json!("$default");
        ev["rawPath"] = json!(format!("/prod{path}"));
        ev["requestContext"]["stage"] = json!("prod");
        let req = parse_event(Action::ResetPasscode, &ev).request.unwrap();
        assert_eq!(req.device, DeviceRef::Id(ID.into()));
    }

    #[test]
    fn body_form_and_base64_body() {
        let mut ev = v2("POST", "/v1/remove-passcode", None, None);
        let body =
            json!({"device": {"serialNumber": "F2LXK0AAAA10"}, "reason": "forgot"}).to_string();
        ev["body"] = json!(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            body
        ));
        ev["isBase64Encoded"] = json!(true);
        let inc = parse_event(Action::RemovePasscode, &ev);
        assert_eq!(
            inc.request.unwrap().device,
            DeviceRef::SerialNumber("F2LXK0AAAA10".into())
        );
    }

    #[test]
    fn jwt_caller() {
        let mut ev = v2(
            "POST",
            "/v1/reset-passcode",
            None,
            Some(json!({"device": {"id": ID}, "reason": "r"})),
        );
        ev["requestContext"]["authorizer"] =
            json!({"jwt": {"claims": {"sub": "abc", "upn": "agent@contoso.com"}, "scopes": null}});
        let inc = parse_event(Action::ResetPasscode, &ev);
        assert_eq!(inc.caller.kind, "jwt");
        assert_eq!(inc.caller.user.as_deref(), Some("agent@contoso.com"));
        assert_eq!(inc.caller.principal_type, Some("user"));
    }

    #[test]
    fn status_get_takes_reason_from_the_query() {
        let path = format!("/v1/devices/{ID}/passcode-status");
        let mut ev = v2("GET", &path, Some(ID), None);
        ev["queryStringParameters"] = json!({"reason": "caller on the phone", "ticket": "INC9"});
        let req = parse_event(Action::Status, &ev).request.unwrap();
        assert_eq!(req.reason.as_deref(), Some("caller on the phone"));
        assert_eq!(req.ticket.as_deref(), Some("INC9"));
    }

    #[test]
    fn wrong_route_method_and_bad_bodies_are_invalid() {
        let cases = [
            (
                v2("POST", "/v1/devices/x/remove-passcode", Some("x"), None),
                "not a route of reset-passcode",
            ),
            (v2("GET", "/v1/reset-passcode", None, None), "not a route"),
            (
                v2("POST", "/v1/reset-passcode", None, Some(json!([1]))),
                "JSON object",
            ),
            (
                v2(
                    "POST",
                    "/v1/reset-passcode",
                    None,
                    Some(json!({"device": {"id": ID}, "reason": "r", "action": "status"})),
                ),
                "only used in EventBridge",
            ),
            (
                v2(
                    "POST",
                    "/v1/reset-passcode",
                    None,
                    Some(json!({"device": {"id": ID}, "reason": "r", "requestedBy": "me"})),
                ),
                "only accepted from EventBridge",
            ),
        ];
        for (ev, expected) in cases {
            let err = parse_event(Action::ResetPasscode, &ev).request.unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest);
            assert!(err.message.contains(expected), "{}", err.message);
        }
        let mut ev = v2("POST", "/v1/reset-passcode", None, None);
        ev["body"] = json!("{not json");
        let err = parse_event(Action::ResetPasscode, &ev).request.unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        ev["body"] = json!(format!("{{\"reason\": \"{}\"}}", "x".repeat(40_000)));
        let err = parse_event(Action::ResetPasscode, &ev).request.unwrap_err();
        assert!(err.message.contains("larger than"), "{}", err.message);
    }
}
