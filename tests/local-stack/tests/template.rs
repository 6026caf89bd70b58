//! Ties `template.yaml` (repository root) to `passcode_core::action`, the one
//! place where function names, HTTP routes and EventBridge names are defined:
//! the five action functions and the bulk function (`BULK_FUNCTION`,
//! `BULK_ROUTES`, `BULK_DETAIL_TYPE`, `BULK_ROLE`).
//!
//! The template is read as plain YAML. CloudFormation short-form tags (`!Ref`,
//! `!Sub`, `!If`, ...) come through as tagged values; `!If` is followed into
//! both branches wherever a value may be conditional, so a check cannot be
//! dodged by hiding a value in one branch of a condition.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use passcode_core::Action;
use passcode_core::action::{
    BULK_DETAIL_TYPE, BULK_FUNCTION, BULK_ROLE, BULK_ROUTES, EVENT_DETAIL_TYPE,
};
use serde_yaml_ng::Value;

fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

fn load_template() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn resources(template: &Value) -> &serde_yaml_ng::Mapping {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template has a Resources mapping")
}

/// A value as compact YAML, for failure messages.
fn show(value: &Value) -> String {
    serde_yaml_ng::to_string(value)
        .map(|yaml| yaml.trim_end().replace('\n', "\n      "))
        .unwrap_or_else(|_| format!("{value:?}"))
}

fn key_str(key: &Value) -> String {
    key.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{key:?}"))
}

/// Short name of a tag (`!Ref` -> `Ref`).
fn tag_name(tag: &serde_yaml_ng::value::Tag) -> String {
    tag.to_string().trim_start_matches('!').to_owned()
}

/// A tagged value (`!Name value`) or its long form (`{"Fn::Name": value}` /
/// `{"Ref": value}`), as (Name, value).
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((tag_name(&tagged.tag), &tagged.value)),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next()?;
            let key = key.as_str()?;
            if key == "Ref" {
                Some(("Ref".to_owned(), inner))
            } else {
                key.strip_prefix("Fn::")
                    .map(|name| (name.to_owned(), inner))
            }
        }
        _ => None,
    }
}

/// Every value `value` can take: both branches of `!If` (recursively), and
/// nothing for `!Ref AWS::NoValue`.
fn alternatives(value: &Value) -> Vec<&Value> {
    match intrinsic(value) {
        Some((name, inner)) if name == "If" => {
            let branches = inner
                .as_sequence()
                .expect("!If takes [condition, then, else]");
            assert_eq!(
                branches.len(),
                3,
                "!If takes [condition, then, else]: {value:?}"
            );
            branches[1..].iter().flat_map(alternatives).collect()
        }
        Some((name, inner)) if name == "Ref" && inner.as_str() == Some("AWS::NoValue") => vec![],
        _ => vec![value],
    }
}

/// Name of the resource a `!Ref X` / `{"Ref": "X"}` points at.
fn ref_target(value: &Value) -> Option<&str> {
    match intrinsic(value) {
        Some((name, inner)) if name == "Ref" => inner.as_str(),
        _ => None,
    }
}

struct Function<'a> {
    logical_id: String,
    resource: &'a Value,
}

impl Function<'_> {
    fn properties(&self) -> &Value {
        self.resource.get("Properties").unwrap_or(&Value::Null)
    }

    fn events(&self) -> Vec<(String, &Value)> {
        self.properties()
            .get("Events")
            .and_then(Value::as_mapping)
            .map(|events| events.iter().map(|(k, v)| (key_str(k), v)).collect())
            .unwrap_or_default()
    }

    fn events_of_type(&self, kind: &str) -> Vec<(String, &Value)> {
        self.events()
            .into_iter()
            .filter(|(_, event)| event.get("Type").and_then(Value::as_str) == Some(kind))
            .collect()
    }
}

fn functions(template: &Value) -> Vec<Function<'_>> {
    resources(template)
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .map(|(k, r)| Function {
            logical_id: key_str(k),
            resource: r,
        })
        .collect()
}

fn binary_of(function: &Function) -> Option<String> {
    function
        .resource
        .get("Metadata")?
        .get("BuildProperties")?
        .get("Binary")?
        .as_str()
        .map(str::to_owned)
}

/// The function resource built from the Cargo binary `binary`.
fn function_built_from<'a>(template: &'a Value, binary: &str) -> Function<'a> {
    let mut matching: Vec<Function> = functions(template)
        .into_iter()
        .filter(|f| binary_of(f).as_deref() == Some(binary))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "expected exactly one AWS::Serverless::Function with Metadata.BuildProperties.Binary == {binary:?}, found {}",
        matching.len()
    );
    matching.remove(0)
}

/// The function resource for `action`, found by its Cargo binary.
fn function_for<'a>(template: &'a Value, action: Action) -> Function<'a> {
    function_built_from(template, action.function_name())
}

/// The bulk function resource, found by its Cargo binary.
fn bulk_function(template: &Value) -> Function<'_> {
    function_built_from(template, BULK_FUNCTION)
}

/// (METHOD, path) of an HttpApi event.
fn http_route(name: &str, event: &Value) -> (String, String) {
    let props = event
        .get("Properties")
        .unwrap_or_else(|| panic!("HttpApi event {name} has no Properties"));
    let method = props
        .get("Method")
        .and_then(Value::as_str)
        .unwrap_or_else(|| {
            panic!("HttpApi event {name} needs a literal Method (a catch-all route is not allowed)")
        });
    let path = props
        .get("Path")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("HttpApi event {name} needs a literal Path"));
    (method.to_ascii_uppercase(), path.to_owned())
}

fn expected_routes(routes: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    routes
        .iter()
        .map(|(m, p)| (m.to_ascii_uppercase(), (*p).to_owned()))
        .collect()
}

/// Every function that serves requests, with the routes it must have: one
/// per action, and the bulk function.
fn request_functions(template: &Value) -> Vec<(Function<'_>, BTreeSet<(String, String)>)> {
    Action::ALL
        .into_iter()
        .map(|action| {
            (
                function_for(template, action),
                expected_routes(action.routes()),
            )
        })
        .chain([(bulk_function(template), expected_routes(&BULK_ROUTES))])
        .collect()
}

#[test]
fn every_action_has_exactly_one_function_built_from_its_binary() {
    let template = load_template();
    let binaries = Action::ALL
        .iter()
        .map(|a| a.function_name())
        .chain([BULK_FUNCTION]);
    for binary in binaries {
        let function = function_built_from(&template, binary);
        let metadata = function.resource.get("Metadata").unwrap();
        assert_eq!(
            metadata.get("BuildMethod").and_then(Value::as_str),
            Some("rust-cargolambda"),
            "{}: Metadata.BuildMethod",
            function.logical_id
        );
        // The deployed name ends with the action's function name (an optional
        // prefix may come first), so logs and ARNs read like the code.
        if let Some(name) = function.properties().get("FunctionName") {
            let literal = match intrinsic(name) {
                Some((tag, inner)) if tag == "Sub" => inner.as_str(),
                _ => name.as_str(),
            };
            let literal = literal.unwrap_or_else(|| {
                panic!(
                    "{}: FunctionName must be a string or a !Sub string",
                    function.logical_id
                )
            });
            assert!(
                literal.ends_with(binary),
                "{}: FunctionName {literal:?} does not end with {binary:?}",
                function.logical_id,
            );
        }
    }
    let binaries: Vec<String> = functions(&template).iter().filter_map(binary_of).collect();
    let mut known: BTreeSet<&str> = Action::ALL.iter().map(|a| a.function_name()).collect();
    known.insert(passcode_core::action::TRACKER_FUNCTION);
    known.insert(BULK_FUNCTION);
    for binary in &binaries {
        assert!(
            known.contains(binary.as_str()),
            "function built from unknown binary {binary:?}"
        );
    }
}

#[test]
fn http_routes_match_action_routes_exactly() {
    let template = load_template();
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    for (function, expected) in request_functions(&template) {
        let routes: BTreeSet<(String, String)> = function
            .events_of_type("HttpApi")
            .iter()
            .map(|(name, event)| http_route(name, event))
            .collect();
        assert_eq!(
            routes, expected,
            "{}: HttpApi routes in template.yaml differ from shared/src/action.rs",
            function.logical_id
        );
        for route in routes {
            if let Some(other) = seen.insert(route.clone(), function.logical_id.clone()) {
                panic!(
                    "route {route:?} is on both {other} and {}",
                    function.logical_id
                );
            }
        }
    }
}

/// The pattern of a function's one EventBridge rule, as (detail-type,
/// detail.action) lists.
fn rule_pattern<'a>(function: &'a Function<'a>) -> (Vec<&'a str>, Vec<&'a str>) {
    let rules = function.events_of_type("EventBridgeRule");
    assert_eq!(
        rules.len(),
        1,
        "{}: expected exactly one EventBridgeRule event, found {}",
        function.logical_id,
        rules.len()
    );
    let (name, rule) = &rules[0];
    let pattern = rule
        .get("Properties")
        .and_then(|p| p.get("Pattern"))
        .unwrap_or_else(|| panic!("{}.{name}: no Pattern", function.logical_id));
    let strings = |value: Option<&'a Value>| -> Vec<&'a str> {
        value
            .and_then(Value::as_sequence)
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    (
        strings(pattern.get("detail-type")),
        strings(pattern.get("detail").and_then(|d| d.get("action"))),
    )
}

#[test]
fn each_function_has_one_eventbridge_rule_for_its_action() {
    let template = load_template();
    for action in Action::ALL {
        let function = function_for(&template, action);
        if !action.reachable_by_events() {
            assert!(
                function.events_of_type("EventBridgeRule").is_empty(),
                "{}: must have no rule",
                function.logical_id
            );
            continue;
        }
        let (detail_type, detail_action) = rule_pattern(&function);
        assert_eq!(
            detail_type,
            [EVENT_DETAIL_TYPE],
            "{}: Pattern.detail-type",
            function.logical_id
        );
        assert_eq!(
            detail_action,
            [action.event_action()],
            "{}: Pattern.detail.action",
            function.logical_id
        );
    }
}

/// The bulk function's rule takes its own detail-type, for the actions that
/// have a bulk queue; the single-request rules never match a bulk event.
#[test]
fn bulk_function_has_one_eventbridge_rule_for_bulk_events() {
    let template = load_template();
    let function = bulk_function(&template);
    let (detail_type, detail_action) = rule_pattern(&function);
    assert_eq!(detail_type, [BULK_DETAIL_TYPE], "{}", function.logical_id);
    let bulk_actions: Vec<&str> = Action::ALL
        .into_iter()
        .filter(|a| a.bulk_capable())
        .map(Action::event_action)
        .collect();
    assert_eq!(detail_action, bulk_actions, "{}", function.logical_id);
    assert_ne!(BULK_DETAIL_TYPE, EVENT_DETAIL_TYPE);
}

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

/// Paths ("Resources.X.Properties....") of every mapping key named `key`.
fn key_paths(value: &Value, key: &str, at: String, found: &mut Vec<String>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let here = format!("{at}.{}", key_str(k));
                if k.as_str() == Some(key) {
                    found.push(here.clone());
                }
                key_paths(v, key, here, found);
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                key_paths(v, key, format!("{at}[{i}]"), found);
            }
        }
        Value::Tagged(tagged) => key_paths(
            &tagged.value,
            key,
            format!("{at}!{}", tag_name(&tagged.tag)),
            found,
        ),
        _ => {}
    }
}

#[test]
fn every_function_requires_its_own_right_of_jwt_callers() {
    let template = load_template();
    let mut found = Vec::new();
    key_paths(&template, "RETURN_PASSCODE", String::new(), &mut found);
    assert!(
        found.is_empty(),
        "the status never returns a passcode: {found:?}"
    );
    let parameters = template.get("Parameters").unwrap();
    let mut seen = BTreeSet::new();
    let rights = Action::ALL
        .into_iter()
        .map(|action| {
            (
                function_for(&template, action),
                passcode_core::rights::default_role(action),
            )
        })
        .chain([(bulk_function(&template), BULK_ROLE)]);
    for (function, right) in rights {
        let role = function
            .properties()
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.get("REQUIRED_ROLE"))
            .unwrap_or_else(|| panic!("{}: no REQUIRED_ROLE", function.logical_id));
        let parameter = match intrinsic(role) {
            Some((tag, name)) if tag == "Ref" => name.as_str().unwrap().to_string(),
            _ => panic!(
                "{}: REQUIRED_ROLE must be !Ref a parameter",
                function.logical_id
            ),
        };
        assert!(seen.insert(parameter.clone()), "{parameter} used twice");
        let default = parameters
            .get(parameter.as_str())
            .and_then(|p| p.get("Default"))
            .and_then(Value::as_str);
        assert_eq!(
            default,
            Some(right),
            "{parameter}: the default is the documented right"
        );
    }
}

#[test]
fn caller_personas_grant_the_reveal_to_tier_2_only() {
    let template = load_template();
    let resources = template.get("Resources").unwrap();
    let routes_of = |id: &str| -> BTreeSet<String> {
        let policy = resources.get(id).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(
            policy.get("Condition").and_then(Value::as_str),
            Some("CreateCallerPolicies")
        );
        let statement = &policy["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(statement["Action"].as_str(), Some("execute-api:Invoke"));
        statement["Resource"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| {
                let (_, arn) = intrinsic(r).expect("!Sub ARN");
                let arn = arn.as_str().unwrap();
                // .../${PasscodeApi}/*/METHOD/path -> "METHOD /path"
                let tail = arn
                    .split("${PasscodeApi}/*/")
                    .nth(1)
                    .expect("stage wildcard");
                let (method, path) = tail.split_once('/').unwrap();
                format!("{method} /{}", path.replace("/*/", "/{deviceId}/"))
            })
            .collect()
    };
    let routes = |actions: &[Action]| -> BTreeSet<String> {
        actions
            .iter()
            .flat_map(|a| a.routes())
            .map(|(m, p)| format!("{m} {p}"))
            .collect()
    };
    use Action::*;
    assert_eq!(
        routes_of("HelpdeskTier1Policy"),
        routes(&[ResetPasscode, RemovePasscode, Status])
    );
    assert_eq!(
        routes_of("HelpdeskTier2Policy"),
        routes(&[
            ResetPasscode,
            RemovePasscode,
            ResetWindowsPin,
            Status,
            RevealPasscode
        ])
    );
    assert_eq!(
        routes_of("SoarAutomationPolicy"),
        routes(&[ResetPasscode, RemovePasscode])
    );
    assert_eq!(routes_of("ReportingPolicy"), routes(&[Status]));
}

/// Every IAM-style policy statement in the template, with where it sits.
fn statements<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let here = format!("{at}.{}", key_str(k));
                if k.as_str() == Some("Statement") {
                    let list: Vec<&Value> = match v.as_sequence() {
                        Some(items) => items.iter().collect(),
                        None => vec![v],
                    };
                    for (i, item) in list.into_iter().enumerate() {
                        for statement in alternatives(item) {
                            found.push((format!("{here}[{i}]"), statement));
                        }
                    }
                } else {
                    statements(v, here, found);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                statements(v, format!("{at}[{i}]"), found);
            }
        }
        Value::Tagged(tagged) => statements(
            &tagged.value,
            format!("{at}!{}", tag_name(&tagged.tag)),
            found,
        ),
        _ => {}
    }
}

/// True if this Resource value (string, list, !Sub, !If, ...) can be `*`.
fn resource_is_wildcard(value: &Value) -> bool {
    alternatives(value).into_iter().any(|v| match v {
        Value::String(s) => s.trim() == "*",
        Value::Sequence(items) => items.iter().any(resource_is_wildcard),
        _ => match intrinsic(v) {
            Some((name, inner)) if name == "Sub" => {
                let text = inner
                    .as_str()
                    .or_else(|| inner.as_sequence().and_then(|s| s.first()?.as_str()));
                text.is_some_and(|t| t.trim() == "*")
            }
            _ => false,
        },
    })
}

#[test]
fn no_policy_statement_grants_on_every_resource() {
    let template = load_template();
    let mut found = Vec::new();
    statements(&template, String::new(), &mut found);
    assert!(
        !found.is_empty(),
        "no policy statements found; the walk is broken"
    );
    let mut offending = Vec::new();
    for (at, statement) in &found {
        let resource = statement.get("Resource");
        // A role's trust policy names who may assume it, not resources: it
        // must name one service principal, never everyone.
        if at.contains(".AssumeRolePolicyDocument.") {
            let service = statement
                .get("Principal")
                .and_then(|p| p.get("Service"))
                .filter(|s| !resource_is_wildcard(s));
            if service.is_none()
                || statement
                    .get("Principal")
                    .and_then(|p| p.get("AWS"))
                    .is_some()
            {
                offending.push(format!(
                    "{at}: a trust policy must name one service principal\n      {}",
                    show(statement)
                ));
            }
            continue;
        }
        if statement.get("NotResource").is_some() {
            offending.push(format!("{at}: uses NotResource\n      {}", show(statement)));
        } else if resource.is_none() {
            offending.push(format!("{at}: has no Resource\n      {}", show(statement)));
        } else if resource.is_some_and(resource_is_wildcard) {
            offending.push(format!(
                "{at}: Resource is \"*\"\n      {}",
                show(statement)
            ));
        }
    }
    // Function policies must be statements we can see: inline documents or
    // references to policies defined in this template. A named AWS managed
    // policy or a SAM policy template would bring in statements that this
    // check cannot read.
    for function in functions(&template) {
        let policies = function.properties().get("Policies");
        let items: Vec<&Value> = match policies {
            None => vec![],
            Some(Value::Sequence(items)) => items.iter().flat_map(alternatives).collect(),
            Some(other) => alternatives(other),
        };
        for item in items {
            let visible = item.get("Statement").is_some()
                || ref_target(item).is_some_and(|id| {
                    id == "AWS::NoValue" || resources(&template).contains_key(id)
                });
            if !visible {
                offending.push(format!(
                    "{}.Properties.Policies: {} is not an inline document or a policy defined in this template",
                    function.logical_id,
                    show(item)
                ));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "policy statements that are too broad:\n  {}",
        offending.join("\n  ")
    );
}

/// The idempotency table: on-demand with TTL on the attribute the code
/// writes. Its variable reaches the three write functions, the bulk
/// function (its batches) and the tracker (which reports them); its write
/// policy the three write functions only, with item writes on that table
/// alone. The bulk function and the tracker have policies of their own,
/// limited to the bulk items (template_operations.rs).
#[test]
fn idempotency_table_reaches_the_write_functions_only() {
    let template = load_template();
    let table = &resources(&template)["IdempotencyRecords"];
    let props = &table["Properties"];
    assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        props["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("expiration")
    );
    assert_eq!(props["KeySchema"][0]["AttributeName"].as_str(), Some("id"));

    let mut found = Vec::new();
    key_paths(&template, "IDEMPOTENCY_TABLE", String::new(), &mut found);
    let mut expected: Vec<String> = [
        Action::ResetPasscode,
        Action::RemovePasscode,
        Action::ResetWindowsPin,
    ]
    .into_iter()
    .map(|action| function_for(&template, action).logical_id)
    .chain([
        bulk_function(&template).logical_id,
        function_built_from(&template, passcode_core::action::TRACKER_FUNCTION).logical_id,
    ])
    .map(|id| format!(".Resources.{id}.Properties.Environment.Variables.IDEMPOTENCY_TABLE"))
    .collect();
    expected.sort();
    found.sort();
    assert_eq!(found, expected);

    for action in Action::ALL {
        let function = function_for(&template, action);
        let policies = show(function.properties().get("Policies").unwrap());
        assert_eq!(
            policies.contains("IdempotencyRecordsPolicy"),
            action.writes(),
            "{}: {policies}",
            function.logical_id
        );
    }
    let bulk = bulk_function(&template);
    let policies = show(bulk.properties().get("Policies").unwrap());
    assert!(
        !policies.contains("IdempotencyRecordsPolicy"),
        "{}: {policies}",
        bulk.logical_id
    );
    let policy = show(&resources(&template)["IdempotencyRecordsPolicy"]);
    for needed in [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "IdempotencyRecords",
    ] {
        assert!(policy.contains(needed), "{needed} missing: {policy}");
    }
    for broader in ["dynamodb:*", "Scan", "Query", "GetItem", "BatchWriteItem"] {
        assert!(!policy.contains(broader), "{broader} granted: {policy}");
    }
}
