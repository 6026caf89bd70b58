//! The HTTP routes of each request function, as `shared/src/action.rs`
//! defines them.

use std::collections::{BTreeMap, BTreeSet};

use passcode_core::Action;
use passcode_core::action::BULK_ROUTES;
use serde_yaml_ng::Value;

use crate::functions::{Function, bulk_function, function_for};
use crate::yaml::load_template;

/// (METHOD, path) of an HttpApi event.
pub(crate) fn http_route(name: &str, event: &Value) -> (String, String) {
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
