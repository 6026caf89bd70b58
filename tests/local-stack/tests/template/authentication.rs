//! Every route authenticates its caller: SigV4 or a JWT authoriser, in
//! every condition.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;

use crate::functions::functions;
use crate::routes::http_route;
use crate::yaml::{alternatives, key_str, load_template, ref_target, resources};

/// Is this security scheme one that authenticates the caller: SigV4 (IAM) or
/// a JWT authoriser?
fn scheme_authenticates(scheme: &Value) -> bool {
    let kind = scheme.get("type").and_then(Value::as_str);
    let sigv4 = kind == Some("apiKey")
        && scheme
            .get("x-amazon-apigateway-authtype")
            .and_then(Value::as_str)
            == Some("awsSigv4");
    let jwt = kind == Some("oauth2")
        && scheme
            .get("x-amazon-apigateway-authorizer")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
            == Some("jwt");
    sigv4 || jwt
}

/// Why the route (method, path) on the API `api_id` is not authenticated, if it is not.
fn route_auth_problem(template: &Value, api_id: &str, method: &str, path: &str) -> Option<String> {
    let Some(api) = resources(template).get(api_id) else {
        return Some(format!(
            "ApiId points at {api_id}, which is not a resource of this template"
        ));
    };
    if api.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::HttpApi") {
        return Some(format!("{api_id} is not an AWS::Serverless::HttpApi"));
    }
    let props = api.get("Properties").unwrap_or(&Value::Null);
    // Either SAM's Auth block with a real default authoriser ...
    if let Some(default) = props.get("Auth").and_then(|a| a.get("DefaultAuthorizer")) {
        return match default.as_str() {
            Some("NONE") => Some(format!("{api_id}: Auth.DefaultAuthorizer is NONE")),
            Some(_) => None,
            None => Some(format!("{api_id}: Auth.DefaultAuthorizer is not a literal")),
        };
    }
    // ... or an OpenAPI body whose operation requires an authenticating scheme.
    let Some(body) = props.get("DefinitionBody") else {
        return Some(format!(
            "{api_id} has neither Auth.DefaultAuthorizer nor a DefinitionBody: the route would be anonymous"
        ));
    };
    let Some(operation) = body
        .get("paths")
        .and_then(|p| p.get(path))
        .and_then(|p| p.get(method.to_ascii_lowercase().as_str()))
    else {
        return Some(format!(
            "{method} {path} is missing from {api_id}'s DefinitionBody, so SAM would add it without any security"
        ));
    };
    let requirements = operation
        .get("security")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    if requirements.is_empty() {
        return Some(format!(
            "{method} {path} in {api_id}'s DefinitionBody has no security requirement"
        ));
    }
    let schemes = body
        .get("components")
        .and_then(|c| c.get("securitySchemes"));
    for requirement in &requirements {
        let Some(names) = requirement.as_mapping().filter(|m| !m.is_empty()) else {
            return Some(format!(
                "{method} {path}: empty security requirement (anonymous access)"
            ));
        };
        for (name, _) in names {
            let name = key_str(name);
            let Some(scheme) = schemes.and_then(|s| s.get(name.as_str())) else {
                return Some(format!(
                    "{method} {path}: security scheme {name} is not defined"
                ));
            };
            let variants = alternatives(scheme);
            if variants.is_empty() || !variants.into_iter().all(scheme_authenticates) {
                return Some(format!(
                    "{method} {path}: security scheme {name} is not SigV4 or JWT in every condition"
                ));
            }
        }
    }
    None
}

#[test]
fn no_route_is_anonymous() {
    let template = load_template();
    let mut problems = Vec::new();
    // Operations each HttpApi's OpenAPI body declares, to catch routes that
    // exist there but on no function (or the other way round).
    let mut routes_per_api: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for function in functions(&template) {
        for (name, event) in function.events_of_type("HttpApi") {
            let (method, path) = http_route(&name, event);
            let props = event.get("Properties").unwrap();
            if let Some(auth) = props.get("Auth") {
                let authorizer = auth.get("Authorizer");
                if authorizer.and_then(Value::as_str) == Some("NONE") || authorizer.is_none() {
                    problems.push(format!(
                        "{}.{name}: Auth without a real Authorizer (Auth: NONE)",
                        function.logical_id
                    ));
                }
            }
            let Some(api_id) = props.get("ApiId").and_then(ref_target) else {
                problems.push(format!(
                    "{}.{name}: no ApiId, so SAM puts the route on an implicit API without auth",
                    function.logical_id
                ));
                continue;
            };
            if let Some(problem) = route_auth_problem(&template, api_id, &method, &path) {
                problems.push(format!("{}.{name}: {problem}", function.logical_id));
            }
            routes_per_api
                .entry(api_id.to_owned())
                .or_default()
                .insert((method, path));
        }
    }
    for (api_id, routes) in &routes_per_api {
        let Some(paths) = resources(&template)
            .get(api_id.as_str())
            .and_then(|api| api.get("Properties"))
            .and_then(|p| p.get("DefinitionBody"))
            .and_then(|b| b.get("paths"))
            .and_then(Value::as_mapping)
        else {
            continue;
        };
        for (path, operations) in paths {
            for (method, _) in operations.as_mapping().into_iter().flatten() {
                let route = (key_str(method).to_ascii_uppercase(), key_str(path));
                if !routes.contains(&route) {
                    problems.push(format!(
                        "{api_id}: DefinitionBody declares {route:?}, which no function serves"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "unauthenticated or inconsistent routes:\n  {}",
        problems.join("\n  ")
    );
}
