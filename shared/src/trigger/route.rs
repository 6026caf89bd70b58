//! Which of this function's routes an API call came in on, read from what
//! API Gateway resolved rather than from the path the client sent.
//!
//! The raw path carries whatever sits in front of the API: an HTTP API's
//! named stage (`/prod/v1/...`), a custom domain's API mapping key
//! (`/intune/v1/...`), a REST API's base path mapping. API Gateway strips
//! all of that to pick a route, and says which route it picked: the
//! template in `routeKey` (payload 2.0) or `resource` /
//! `requestContext.resourcePath` (payload 1.0), with the values of its
//! `{parameters}` in `pathParameters`. That is what is matched here; the
//! raw path is only echoed in the error message.

use crate::error::ServiceError;
use crate::request::clip;
use std::collections::HashMap;

/// What an API event says about its route.
pub(super) struct ApiRoute<'a> {
    /// The request's HTTP method (a route may be `ANY`).
    pub method: &'a str,
    /// The route template API Gateway matched, e.g.
    /// `/v1/devices/{deviceId}/reset-passcode` or `/{proxy+}`. `None` for
    /// an HTTP API `$default` route, or an event that names no route.
    pub template: Option<&'a str>,
    pub params: &'a HashMap<String, String>,
    /// The path as the client sent it, stage and mapping included.
    pub raw_path: &'a str,
    /// The HTTP API stage, for the `$default` route only.
    pub stage: Option<&'a str>,
}

/// A function's routes: (method, path template) pairs, e.g.
/// `("POST", "/v1/devices/{deviceId}/reset-passcode")`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routes {
    pub function: &'static str,
    pub routes: &'static [(&'static str, &'static str)],
}

/// The values of the matched route's `{parameters}`, by the names our
/// templates give them (API Gateway's may differ).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RouteParams(Vec<(&'static str, String)>);

impl RouteParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Checks that the call came in on one of the function's routes and
/// returns the route's parameters.
pub(super) fn resolve(routes: Routes, route: &ApiRoute<'_>) -> Result<RouteParams, ServiceError> {
    let matched = match route.template {
        Some(template) if template.contains("+}") => {
            // A greedy proxy route (`/{proxy+}`, `ANY /{proxy+}`): the
            // template with its values filled in is the path below the
            // stage and mapping.
            fill(template, route.params).and_then(|path| match_path(routes, route.method, &path))
        }
        Some(template) => match_template(routes, route, template)?,
        None => default_route_paths(route.raw_path, route.stage)
            .into_iter()
            .find_map(|path| match_path(routes, route.method, path)),
    };
    matched.ok_or_else(|| not_a_route(routes, route))
}

/// The paths a `$default` route's call may mean. The `$default` route
/// carries no template, so the raw path is all there is. On the API's own
/// URL a named stage is its first segment: it is removed. Through a custom
/// domain mapped at the root there is no stage segment: the path is read as
/// is. Through a mapping *key*, the key is the first segment(s), and nothing
/// in the event tells a key from a wrong path; rather than guess (any
/// prefix would then reach the action), such a call is refused and the
/// message says to declare the routes, as `template.yaml` does. The two
/// readings never both match: no route starts with `/v1/v1/`.
fn default_route_paths<'p>(raw_path: &'p str, stage: Option<&str>) -> Vec<&'p str> {
    let mut paths = Vec::with_capacity(2);
    if let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default")
        && let Some(rest) = raw_path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
    {
        paths.push(rest);
    }
    paths.push(raw_path);
    paths
}

/// `/v1/devices/{id}/reset-passcode` matches ours whatever the parameter is
/// called; the value comes from `pathParameters`.
fn match_template(
    routes: Routes,
    route: &ApiRoute<'_>,
    template: &str,
) -> Result<Option<RouteParams>, ServiceError> {
    let theirs: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    for (method, ours) in routes.routes {
        if !method.eq_ignore_ascii_case(route.method) {
            continue;
        }
        let ours: Vec<&str> = ours.split('/').collect();
        if ours.len() != theirs.len() {
            continue;
        }
        // (our name, theirs) of each parameter.
        let mut names = Vec::new();
        let same = ours
            .iter()
            .zip(&theirs)
            .all(|(o, t)| match (placeholder(o), placeholder(t)) {
                (Some(our_name), Some(their_name)) => {
                    names.push((our_name, their_name));
                    true
                }
                (None, None) => o == t,
                _ => false,
            });
        if !same {
            continue;
        }
        let mut params = Vec::with_capacity(names.len());
        for (our_name, their_name) in names {
            match route.params.get(their_name) {
                Some(value) => params.push((our_name, value.clone())),
                None => {
                    return Err(ServiceError::invalid(format!(
                        "API Gateway matched route {} but sent no {{{}}} in pathParameters",
                        clip(template),
                        clip(their_name)
                    )));
                }
            }
        }
        return Ok(Some(RouteParams(params)));
    }
    Ok(None)
}

/// `deviceId` of `{deviceId}`; `None` for a literal segment or a greedy one.
fn placeholder(segment: &str) -> Option<&str> {
    segment
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .filter(|name| !name.ends_with('+'))
}

/// The template with each `{name}` / `{name+}` replaced by its value.
fn fill(template: &str, params: &HashMap<String, String>) -> Option<String> {
    let segments: Option<Vec<&str>> = template
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => params.get(name.trim_end_matches('+')).map(String::as_str),
                None => Some(segment),
            },
        )
        .collect();
    segments.map(|s| s.join("/"))
}

/// A concrete path (below stage and mapping) against the function's
/// routes; parameter segments are percent-decoded.
fn match_path(routes: Routes, method: &str, path: &str) -> Option<RouteParams> {
    let path = path.trim_end_matches('/');
    routes
        .routes
        .iter()
        .filter(|(m, _)| m.eq_ignore_ascii_case(method))
        .find_map(|(_, template)| path_params(template, path))
}

/// `/v1/devices/{deviceId}/x` matches `/v1/devices/<one segment>/x`, and
/// gives that segment as `deviceId`.
fn path_params(template: &'static str, path: &str) -> Option<RouteParams> {
    let t: Vec<&'static str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    for (t, p) in t.into_iter().zip(p) {
        match placeholder(t) {
            Some(_) if p.is_empty() => return None,
            Some(name) => params.push((name, decode(p)?)),
            None if t != p => return None,
            None => {}
        }
    }
    Some(RouteParams(params))
}

fn decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn not_a_route(routes: Routes, route: &ApiRoute<'_>) -> ServiceError {
    let function = routes.function;
    let routes: Vec<String> = routes
        .routes
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let why = match route.template {
        Some(template) => format!(" (API Gateway route {})", clip(template)),
        None if route.stage.is_some() => " (a $default route is read without its stage; \
             behind a custom-domain mapping key, declare the routes on the API)"
            .to_string(),
        None => String::new(),
    };
    ServiceError::invalid(format!(
        "{} {} is not a route of {}{why}; use {}",
        clip(route.method),
        clip(route.raw_path),
        function,
        routes.join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "11111111-0000-4000-8000-000000000001";

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve_with(
        method: &str,
        template: Option<&str>,
        params: &HashMap<String, String>,
        raw_path: &str,
        stage: Option<&str>,
    ) -> Result<Option<String>, ServiceError> {
        let route = ApiRoute {
            method,
            template,
            params,
            raw_path,
            stage,
        };
        let routes = crate::action::Action::ResetPasscode.route_table();
        resolve(routes, &route).map(|p| p.get("deviceId").map(str::to_string))
    }

    #[test]
    fn templates_match_whatever_sits_in_front_of_the_api() {
        let p = params(&[("deviceId", ID)]);
        let template = Some("/v1/devices/{deviceId}/reset-passcode");
        for raw in [
            format!("/v1/devices/{ID}/reset-passcode"),
            format!("/prod/v1/devices/{ID}/reset-passcode"),
            format!("/intune/helpdesk/v1/devices/{ID}/reset-passcode"),
        ] {
            let found = resolve_with("POST", template, &p, &raw, Some("prod"));
            assert_eq!(found.unwrap().as_deref(), Some(ID), "{raw}");
        }
        // The parameter may have another name; its value is used.
        let p = params(&[("id", ID)]);
        let found = resolve_with(
            "POST",
            Some("/v1/devices/{id}/reset-passcode/"),
            &p,
            "/x",
            None,
        );
        assert_eq!(found.unwrap().as_deref(), Some(ID));
        // The body route has no device id.
        let found = resolve_with(
            "post",
            Some("/v1/reset-passcode"),
            &p,
            "/api/v1/reset-passcode",
            None,
        );
        assert_eq!(found.unwrap(), None);
    }

    #[test]
    fn other_templates_and_methods_are_refused_with_the_raw_path() {
        let p = params(&[("deviceId", ID)]);
        for (method, template) in [
            ("POST", "/v1/devices/{deviceId}/remove-passcode"),
            ("GET", "/v1/devices/{deviceId}/reset-passcode"),
            ("POST", "/v1/devices/abc/reset-passcode"),
            ("POST", "/v1/{x}/{deviceId}/reset-passcode"),
            ("POST", "/v2/reset-passcode"),
        ] {
            let err = resolve_with(method, Some(template), &p, "/prod/raw/path", None).unwrap_err();
            assert!(
                err.message.contains(&format!("{method} /prod/raw/path is not a route of reset-passcode (API Gateway route {template})")),
                "{}",
                err.message
            );
        }
        let err = resolve_with(
            "POST",
            Some("/v1/devices/{deviceId}/reset-passcode"),
            &params(&[]),
            "/p",
            None,
        )
        .unwrap_err();
        assert!(
            err.message.contains("sent no {deviceId} in pathParameters"),
            "{}",
            err.message
        );
    }

    #[test]
    fn greedy_proxy_routes_read_the_filled_in_template() {
        let p = params(&[("proxy", &format!("v1/devices/{ID}/reset-passcode"))]);
        let found = resolve_with("POST", Some("/{proxy+}"), &p, "/stage/anything", None);
        assert_eq!(found.unwrap().as_deref(), Some(ID));
        let p = params(&[("proxy", "reset-passcode")]);
        assert_eq!(
            resolve_with("POST", Some("/v1/{proxy+}"), &p, "/x", None).unwrap(),
            None
        );
        let err = resolve_with(
            "POST",
            Some("/api/{proxy+}"),
            &p,
            "/api/reset-passcode",
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("not a route"), "{}", err.message);
        // A proxy route without its value is not a route.
        assert!(resolve_with("POST", Some("/{proxy+}"), &params(&[]), "/x", None).is_err());
    }

    #[test]
    fn the_default_route_reads_the_path_without_a_named_stage() {
        let none = params(&[]);
        let path = format!("/v1/devices/{ID}/reset-passcode");
        for (raw, stage) in [
            (path.clone(), Some("$default")),
            (format!("/prod{path}"), Some("prod")),
            // A custom domain mapped at the root: no stage segment.
            (path.clone(), Some("prod")),
            // A stage that looks like a route segment.
            (format!("/v1{path}"), Some("v1")),
            (path.clone(), Some("v1")),
            (path.clone(), None),
        ] {
            let found = resolve_with("POST", None, &none, &raw, stage);
            assert_eq!(found.unwrap().as_deref(), Some(ID), "{raw} {stage:?}");
        }
        // A mapping key in front of a $default route is not guessed.
        let err = resolve_with(
            "POST",
            None,
            &none,
            &format!("/intune{path}"),
            Some("$default"),
        )
        .unwrap_err();
        assert!(
            err.message.contains("/intune/v1/devices/"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("declare the routes"),
            "{}",
            err.message
        );
        // Only a whole first segment is a stage.
        assert!(resolve_with("POST", None, &none, &format!("/prodx{path}"), Some("prod")).is_err());
    }

    #[test]
    fn paths_match_templates_segment_by_segment() {
        let template = "/v1/devices/{deviceId}/reset-passcode";
        let found = path_params(template, "/v1/devices/abc/reset-passcode").unwrap();
        assert_eq!(found.get("deviceId"), Some("abc"));
        assert!(path_params(template, "/v1/devices//reset-passcode").is_none());
        assert!(path_params(template, "/v1/devices/a/b/reset-passcode").is_none());
        let found = path_params(template, "/v1/devices/a%2Db/reset-passcode").unwrap();
        assert_eq!(found.get("deviceId"), Some("a-b"));
        let found = path_params("/v1/bulk/{action}/{batchId}", "/v1/bulk/reset-passcode/b1").unwrap();
        assert_eq!((found.get("action"), found.get("batchId")), (Some("reset-passcode"), Some("b1")));
    }
}
