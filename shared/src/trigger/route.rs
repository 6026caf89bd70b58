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

use crate::action::Action;
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

/// A route of this function was found.
#[derive(Debug, PartialEq, Eq)]
struct Matched {
    /// The `{deviceId}` of a `/v1/devices/{deviceId}/...` route.
    device_id: Option<String>,
}

/// Checks that the call came in on one of `action`'s routes and returns
/// the route's `{deviceId}`, if it has one.
pub(super) fn resolve(
    action: Action,
    route: &ApiRoute<'_>,
) -> Result<Option<String>, ServiceError> {
    let matched = match route.template {
        Some(template) if template.contains("+}") => {
            // A greedy proxy route (`/{proxy+}`, `ANY /{proxy+}`): the
            // template with its values filled in is the path below the
            // stage and mapping.
            fill(template, route.params).and_then(|path| match_path(action, route.method, &path))
        }
        Some(template) => match_template(action, route, template)?,
        None => default_route_paths(route.raw_path, route.stage)
            .into_iter()
            .find_map(|path| match_path(action, route.method, path)),
    };
    match matched {
        Some(Matched { device_id }) => Ok(device_id),
        None => Err(not_a_route(action, route)),
    }
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
    action: Action,
    route: &ApiRoute<'_>,
    template: &str,
) -> Result<Option<Matched>, ServiceError> {
    let theirs: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    for (method, ours) in action.routes() {
        if !method.eq_ignore_ascii_case(route.method) {
            continue;
        }
        let ours: Vec<&str> = ours.split('/').collect();
        if ours.len() != theirs.len() {
            continue;
        }
        let mut param = None;
        let same = ours
            .iter()
            .zip(&theirs)
            .all(|(o, t)| match (placeholder(o), placeholder(t)) {
                (Some(_), Some(name)) => {
                    param = Some(name);
                    true
                }
                (None, None) => o == t,
                _ => false,
            });
        if !same {
            continue;
        }
        let device_id = match param {
            None => None,
            Some(name) => match route.params.get(name) {
                Some(value) => Some(value.clone()),
                None => {
                    return Err(ServiceError::invalid(format!(
                        "API Gateway matched route {} but sent no {{{}}} in pathParameters",
                        clip(template),
                        clip(name)
                    )));
                }
            },
        };
        return Ok(Some(Matched { device_id }));
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

/// A concrete path (below stage and mapping) against `action`'s routes;
/// the `{deviceId}` segment is percent-decoded.
fn match_path(action: Action, method: &str, path: &str) -> Option<Matched> {
    let path = path.trim_end_matches('/');
    let known = action
        .routes()
        .iter()
        .any(|(m, template)| m.eq_ignore_ascii_case(method) && path_matches(template, path));
    known.then(|| Matched {
        device_id: device_id_from_path(path),
    })
}

/// `/v1/devices/{deviceId}/x` matches `/v1/devices/<one segment>/x`.
fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

/// The `{deviceId}` segment of a `/v1/devices/{deviceId}/...` path.
fn device_id_from_path(path: &str) -> Option<String> {
    let mut parts = path.trim_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some("devices"), Some(id)) => percent_encoding::percent_decode_str(id)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned()),
        _ => None,
    }
}

fn not_a_route(action: Action, route: &ApiRoute<'_>) -> ServiceError {
    let routes: Vec<String> = action
        .routes()
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
        action.function_name(),
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
        resolve(Action::ResetPasscode, &route)
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
        assert!(path_matches(
            "/v1/devices/{deviceId}/reset-passcode",
            "/v1/devices/abc/reset-passcode"
        ));
        assert!(!path_matches(
            "/v1/devices/{deviceId}/reset-passcode",
            "/v1/devices//reset-passcode"
        ));
        assert!(!path_matches(
            "/v1/devices/{deviceId}/reset-passcode",
            "/v1/devices/a/b/reset-passcode"
        ));
        assert_eq!(
            device_id_from_path("/v1/devices/a%2Db/reset-passcode"),
            Some("a-b".into())
        );
    }
}
