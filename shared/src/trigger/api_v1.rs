//! API Gateway REST API, payload format 1.0 (Lambda proxy integration).

use super::api::{api_body, api_request};
use crate::origin::Caller;
use super::route::ApiRoute;
use super::{Parsed, RequestReader};
use crate::origin::Source;
use aws_lambda_events::apigw::ApiGatewayProxyRequest;

/// `resource` is the route template API Gateway matched; `path` carries a
/// custom domain's base path mapping, so it is only echoed in errors. A REST
/// API has no `$default` route (its catch-all is a `{proxy+}` resource), so
/// the stage is never read from the path.
pub(super) fn parse<R: RequestReader>(reader: &R, req: ApiGatewayProxyRequest) -> Parsed<R::Request> {
    let ctx = &req.request_context;
    let raw_path = req
        .path
        .as_deref()
        .or(ctx.path.as_deref())
        .unwrap_or_default();
    let route = ApiRoute {
        method: req.http_method.as_str(),
        template: req.resource.as_deref().or(ctx.resource_path.as_deref()),
        params: &req.path_parameters,
        raw_path,
        stage: None,
    };
    let caller = Caller::from_authorizer(
        &ctx.authorizer,
        ctx.identity.user_arn.clone(),
        ctx.identity.source_ip.clone(),
    );
    let body = api_body(req.body.as_deref(), req.is_base64_encoded, reader.max_body_bytes(), |k| {
        req.query_string_parameters.first(k).map(str::to_string)
    });
    Parsed {
        source: Source::ApiV1,
        caller,
        request: api_request(reader, &route, body),
    }
}

#[cfg(test)]
mod tests {
    use crate::action::Action;
    use super::super::parse_event;
    use super::super::test_events::{ID, v1, v2};
    use super::*;
    use crate::request::DeviceRef;
    use serde_json::json;

    #[test]
    fn path_form() {
        let path = format!("/v1/devices/{ID}/reset-windows-pin");
        let inc = parse_event(
            Action::ResetWindowsPin,
            &v1(
                "POST",
                &path,
                Some(ID),
                Some(json!({"reason": "r", "dryRun": true})),
            ),
        );
        assert_eq!(inc.source, Source::ApiV1);
        assert_eq!(
            inc.caller.principal.as_deref(),
            Some("arn:aws:iam::123456789012:role/snow")
        );
        let req = inc.request.unwrap();
        assert!(req.dry_run);
        assert_eq!(req.device, DeviceRef::Id(ID.into()));
    }

    /// A base path mapping stays in `path`; `resource` is what counts, and
    /// without `resource` the context's `resourcePath`.
    #[test]
    fn base_path_mappings_route_on_the_resource() {
        let path = format!("/v1/devices/{ID}/reset-windows-pin");
        let mut ev = v1("POST", &path, Some(ID), Some(json!({"reason": "r"})));
        ev["path"] = json!(format!("/intune{path}"));
        ev["requestContext"]["path"] = json!(format!("/intune{path}"));
        let req = parse_event(Action::ResetWindowsPin, &ev).request.unwrap();
        assert_eq!(req.device, DeviceRef::Id(ID.into()));
        ev.as_object_mut().unwrap().remove("resource");
        let req = parse_event(Action::ResetWindowsPin, &ev).request.unwrap();
        assert_eq!(req.device, DeviceRef::Id(ID.into()));
        // A catch-all resource reads the filled-in template, not the path.
        let mut ev = v1("POST", "/{proxy+}", None, Some(json!({"reason": "r"})));
        ev["pathParameters"] = json!({"proxy": format!("v1/devices/{ID}/reset-windows-pin")});
        ev["path"] = json!(format!("/intune{path}"));
        let req = parse_event(Action::ResetWindowsPin, &ev).request.unwrap();
        assert_eq!(req.device, DeviceRef::Id(ID.into()));
    }

    #[test]
    fn cognito_claims_name_the_app() {
        let mut ev = v1("POST", "/v1/reset-passcode", None, None);
        ev["requestContext"]["authorizer"] = json!({
            "claims": {"sub": "3k1o", "client_id": "3k1o", "token_use": "access", "scope": "passcode/reset"}
        });
        let caller = parse_event(Action::ResetPasscode, &ev).caller;
        assert_eq!(caller.kind, "jwt");
        assert_eq!(caller.principal_type, Some("app"));
        assert_eq!(caller.app_id.as_deref(), Some("3k1o"));
        let json = serde_json::to_value(&caller).unwrap();
        assert_eq!(json["principalType"], "app");
        assert_eq!(json["appId"], "3k1o");
    }

    /// Found by the `api_body` fuzz target: payload 2.0 lost everything
    /// after the first comma of a query value.
    #[test]
    fn query_values_keep_their_commas() {
        let path = format!("/v1/devices/{ID}/passcode-status");
        let query = json!({"reason": "locked out, on the phone", "ticket": "INC1,INC2"});
        let mut ev = v2("GET", &path, Some(ID), None);
        ev["queryStringParameters"] = query.clone();
        let req = parse_event(Action::Status, &ev).request.unwrap();
        assert_eq!(req.reason.as_deref(), Some("locked out, on the phone"));
        assert_eq!(req.ticket.as_deref(), Some("INC1,INC2"));
        let mut ev = v1("GET", &path, Some(ID), None);
        ev["queryStringParameters"] = query;
        assert_eq!(parse_event(Action::Status, &ev).request.unwrap(), req);
    }
}
