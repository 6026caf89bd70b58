//! The Microsoft Graph surface: `managedDevices` list, get-by-id and the
//! passcode/lock actions, with Graph's authentication, permission, error and
//! throttling behaviour.

use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::device::{self, ApiVersion, DeviceAction, Shape};
use crate::filter::{self, Filter};
use crate::http::{self, Body, GraphError, SimRequest};
use crate::query;
use crate::schema::{self, Violation};
use crate::seed;
use crate::state::{AuthResult, Sim};
use crate::timefmt;

/// What a handler produced plus the facts the request log records.
pub(crate) struct Outcome {
    pub response: Response<Body>,
    pub auth: Option<&'static str>,
    pub credential: Option<&'static str>,
    pub reached_device: bool,
}

impl Outcome {
    pub(crate) fn new(response: Response<Body>) -> Outcome {
        Outcome {
            response,
            auth: None,
            credential: None,
            reached_device: false,
        }
    }
}

/// Where a Graph path points.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    List(ApiVersion),
    Get(ApiVersion, String),
    Action(ApiVersion, String, Result<DeviceAction, String>),
    /// 400 with this message.
    Unknown(String),
}

fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(first) = segments.first() else {
        return Route::Unknown("Invalid version: ".to_string());
    };
    let Some(version) = ApiVersion::parse(first) else {
        return Route::Unknown(format!("Invalid version: {first}"));
    };
    let not_found =
        |seg: &str| Route::Unknown(format!("Resource not found for the segment '{seg}'."));
    match segments.get(1) {
        Some(s) if s.eq_ignore_ascii_case("deviceManagement") => {}
        Some(s) => return not_found(s),
        None => return not_found(first),
    }
    let Some(collection) = segments.get(2) else {
        return not_found("deviceManagement");
    };
    // Both `managedDevices/{id}` and the OData key form `managedDevices('{id}')`.
    let (name, key) = match collection.split_once('(') {
        Some((name, rest)) => {
            let key = rest.strip_suffix(')').unwrap_or(rest);
            (name, Some(key.trim_matches('\'').to_string()))
        }
        None => (*collection, None),
    };
    if !name.eq_ignore_ascii_case("managedDevices") {
        return not_found(name);
    }
    let mut rest = segments[3..].iter();
    let id = match key {
        Some(k) => Some(k),
        None => rest.next().map(|s| s.to_string()),
    };
    let action = rest.next();
    if let Some(extra) = rest.next() {
        return not_found(extra);
    }
    match (id, action) {
        (None, _) => Route::List(version),
        (Some(id), None) => Route::Get(version, id),
        (Some(id), Some(a)) => Route::Action(
            version,
            id,
            DeviceAction::parse(a).ok_or_else(|| a.to_string()),
        ),
    }
}

/// Strict hyphenated GUID check, as the managedDevice key is a GUID string.
fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn bearer(req: &SimRequest) -> Option<&str> {
    let value = req.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Device id (lower-cased) and action named by a Graph path, for the log.
pub(crate) fn path_facts(path: &str) -> (Option<String>, Option<String>) {
    match route(path) {
        Route::Get(_, id) => (Some(id.to_ascii_lowercase()), None),
        Route::Action(_, id, action) => (
            Some(id.to_ascii_lowercase()),
            Some(match action {
                Ok(a) => a.name().to_string(),
                Err(raw) => raw,
            }),
        ),
        _ => (None, None),
    }
}

pub(crate) fn handle(sim: &Sim, req: &SimRequest) -> Outcome {
    let route = route(&req.path);
    check_schema(sim, req, &route);
    let mut out = Outcome::new(http::empty(StatusCode::OK));
    let result = serve(sim, req, route, &mut out);
    let mut response = match result {
        Ok(resp) => resp,
        Err(err) => err.into_response(req, sim.profile),
    };
    http::add_graph_headers(&mut response, req);
    out.response = response;
    out
}

/// Record every way the request breaks Graph's published schema. Graph
/// answers most of them anyway (it ignores unsupported filters), so this is
/// remembered rather than answered; `$select` names Graph does not know are
/// also refused by [`list`] / [`get`], as Graph refuses them.
fn check_schema(sim: &Sim, req: &SimRequest, route: &Route) {
    let Ok(opts) = query::parse_options(req.raw_query.as_deref()) else {
        return;
    };
    let (version, target) = match route {
        Route::List(v) => (*v, schema::Target::List),
        Route::Get(v, _) => (*v, schema::Target::GetOne),
        Route::Action(v, _, Ok(a)) => (*v, schema::Target::Action(a.name())),
        Route::Action(v, _, Err(raw)) => (*v, schema::Target::Action(raw.as_str())),
        Route::Unknown(_) => return,
    };
    for rule in schema::check(
        version,
        target,
        opts.select.as_deref(),
        opts.filter.as_deref(),
    ) {
        sim.record_violation(Violation {
            method: req.method.to_string(),
            path: req.path.clone(),
            query: req.logged_query(),
            rule,
        });
    }
}

fn serve(
    sim: &Sim,
    req: &SimRequest,
    route: Route,
    out: &mut Outcome,
) -> Result<Response<Body>, GraphError> {
    // Graph lists 411 for a body-less write that does not say so; the
    // front end rejects it before looking at anything else.
    let is_write = matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
    if is_write
        && req.header("content-length").is_none()
        && req.header("transfer-encoding").is_none()
    {
        return Err(GraphError::new(
            StatusCode::LENGTH_REQUIRED,
            "LengthRequired",
            "Length Required",
        ));
    }

    let auth = sim.lock().authenticate(bearer(req));
    let (client_id, roles) = match auth {
        AuthResult::Missing => {
            out.auth = Some("missing");
            return Err(unauthenticated("Access token is empty."));
        }
        AuthResult::Invalid => {
            out.auth = Some("invalid");
            return Err(unauthenticated(
                "Access token validation failure. Invalid audience.",
            ));
        }
        AuthResult::Expired => {
            out.auth = Some("expired");
            return Err(unauthenticated(
                "Lifetime validation failed, the token is expired.",
            ));
        }
        AuthResult::Valid { client_id, roles } => {
            out.auth = Some("valid");
            (client_id, roles)
        }
    };

    match route {
        Route::Unknown(message) => Err(GraphError::bad_request(message)),
        Route::List(version) => {
            allow(req, Method::GET)?;
            require_read(&roles, req)?;
            list(sim, req, version)
        }
        Route::Get(version, id) => {
            allow(req, Method::GET)?;
            require_read(&roles, req)?;
            get(sim, req, version, &id)
        }
        Route::Action(_, _, Err(raw)) => Err(GraphError::bad_request(format!(
            "Resource not found for the segment '{raw}'."
        ))),
        Route::Action(_, id, Ok(action)) => {
            allow(req, Method::POST)?;
            require_role(&roles, &[seed::ROLE_PRIVILEGED_OPERATIONS], req)?;
            run_action(sim, req, &client_id, &id, action, out)
        }
    }
}

fn unauthenticated(message: &str) -> GraphError {
    GraphError {
        challenge: true,
        ..GraphError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }
}

fn allow(req: &SimRequest, method: Method) -> Result<(), GraphError> {
    if req.method == method {
        Ok(())
    } else {
        Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "The HTTP method '{}' is not allowed for this resource.",
                req.method
            ),
        ))
    }
}

fn require_read(roles: &[String], req: &SimRequest) -> Result<(), GraphError> {
    require_role(
        roles,
        &[seed::ROLE_READ_ALL, seed::ROLE_READ_WRITE_ALL],
        req,
    )
}

/// 403 unless the token's roles include one of `any_of`, worded as Intune
/// words it.
fn require_role(roles: &[String], any_of: &[&str], req: &SimRequest) -> Result<(), GraphError> {
    if roles.iter().any(|r| any_of.contains(&r.as_str())) {
        return Ok(());
    }
    Err(GraphError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "Application is not authorized to perform this operation. Application must have one of the following scopes: {} - Operation ID (for customer support): {}",
            any_of.join(", "),
            req.request_id
        ),
    ))
}

fn select_error(name: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Could not find a property named '{name}' on type 'microsoft.graph.managedDevice'."
    ))
}

fn context_url(sim: &Sim, version: ApiVersion, select: Option<&[&str]>, entity: bool) -> String {
    let mut url = format!(
        "{}/{}/$metadata#deviceManagement/managedDevices",
        sim.base_url,
        version.as_str()
    );
    if let Some(names) = select {
        url.push_str(&format!("({})", names.join(",")));
    }
    if entity {
        url.push_str("/$entity");
    }
    url
}

fn list(sim: &Sim, req: &SimRequest, version: ApiVersion) -> Result<Response<Body>, GraphError> {
    let opts = query::parse_options(req.raw_query.as_deref()).map_err(GraphError::bad_request)?;
    let select = match &opts.select {
        Some(text) => Some(query::parse_select(text, version).map_err(|n| select_error(&n))?),
        None => None,
    };
    let filter = match &opts.filter {
        Some(text) => filter::parse(text)
            .map_err(|e| GraphError::bad_request(format!("Invalid filter clause: {e}")))?,
        None => Filter::Ignored,
    };
    let top = match &opts.top {
        Some(t) => Some(query::parse_top(t).map_err(GraphError::bad_request)?),
        None => None,
    };
    let after = match &opts.skiptoken {
        Some(t) => Some(
            query::decode_skiptoken(t)
                .ok_or_else(|| GraphError::bad_request("The $skiptoken value is not valid."))?,
        ),
        None => None,
    };

    let state = sim.lock();
    let filter = if state.settings.silent_filter_mode {
        Filter::Ignored
    } else {
        filter
    };
    let size = top.unwrap_or(usize::MAX).min(state.settings.page_size);
    let (page, next) = query::paginate(
        state.devices.values().filter(|d| filter.matches(d)),
        after.as_deref(),
        size,
    );
    let shape = || match &select {
        Some(names) => Shape::Selected(names),
        None => Shape::Full,
    };
    let value: Vec<Value> = page
        .into_iter()
        .map(|d| device::view(d, version, shape(), true, sim.profile))
        .collect();
    let mut body = json!({
        "@odata.context": context_url(sim, version, select.as_deref(), false),
        "value": value,
    });
    if let Some(after) = next {
        body["@odata.nextLink"] = json!(query::next_link(&sim.base_url, version, &opts, &after));
    }
    Ok(http::graph_json(StatusCode::OK, &body))
}

/// 404 the way Intune words it: `ResourceNotFound` with a nested message.
fn not_found(req: &SimRequest, resource: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        http::intune_message(&req.request_id, resource),
    )
}

fn intune_bad_request(req: &SimRequest, resource: &str) -> GraphError {
    GraphError::bad_request(http::intune_message(&req.request_id, resource))
}

fn device_resource(id: &str) -> String {
    format!("deviceManagement/managedDevices('{id}')")
}

fn get(
    sim: &Sim,
    req: &SimRequest,
    version: ApiVersion,
    id: &str,
) -> Result<Response<Body>, GraphError> {
    let opts = query::parse_options(req.raw_query.as_deref()).map_err(GraphError::bad_request)?;
    let select = match &opts.select {
        Some(text) => Some(query::parse_select(text, version).map_err(|n| select_error(&n))?),
        None => None,
    };
    if !is_guid(id) {
        return Err(intune_bad_request(req, &device_resource(id)));
    }
    let state = sim.lock();
    let device = state
        .devices
        .get(&id.to_ascii_lowercase())
        .ok_or_else(|| not_found(req, &device_resource(id)))?;
    let shape = match &select {
        Some(names) => Shape::Selected(names),
        None => Shape::Full,
    };
    let delay = state.settings.action_listing_delay_seconds;
    let listed = device::without_fresh_actions(device, delay, sim.now());
    let mut body = device::view(&listed, version, shape, false, sim.profile);
    if let Value::Object(map) = &mut body {
        map.insert(
            "@odata.context".to_string(),
            json!(context_url(sim, version, select.as_deref(), true)),
        );
    }
    Ok(http::graph_json(StatusCode::OK, &body))
}

fn run_action(
    sim: &Sim,
    req: &SimRequest,
    client_id: &str,
    id: &str,
    action: DeviceAction,
    out: &mut Outcome,
) -> Result<Response<Body>, GraphError> {
    let mut state = sim.lock();
    if let Err(wait) = state.admit_write(client_id) {
        return Err(GraphError {
            retry_after: Some(wait),
            ..GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests.",
            )
        });
    }
    // The actions take no parameters; Graph's docs say not to send a body.
    if !req.body.is_empty() {
        return Err(GraphError::bad_request(format!(
            "The request body must be empty: '{}' takes no parameters.",
            action.name()
        )));
    }
    let resource = format!(
        "{}/microsoft.management.services.api.{}",
        device_resource(id),
        action.name()
    );
    if !is_guid(id) {
        return Err(intune_bad_request(req, &resource));
    }
    let device = state
        .devices
        .get_mut(&id.to_ascii_lowercase())
        .ok_or_else(|| not_found(req, &resource))?;
    out.reached_device = true;
    // Retire/wipe/delete take precedence over every other action, and an
    // action on a device that is not plainly managed is refused.
    if device::str_prop(device, "managementState") != "managed" || action.unsupported_on(device) {
        return Err(intune_bad_request(req, &resource));
    }
    let now = timefmt::graph_timestamp(sim.now());
    device::record_action(device, action.pending_entry(&now));
    Ok(match sim.profile.action_accepted() {
        (status, None) => http::empty(status),
        (status, Some(body)) => http::graph_json(status, &body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/v1.0/deviceManagement/managedDevices"),
            Route::List(ApiVersion::V1)
        );
        assert_eq!(
            route("/beta/devicemanagement/manageddevices/"),
            Route::List(ApiVersion::Beta)
        );
        assert_eq!(
            route("/beta/deviceManagement/managedDevices/abc"),
            Route::Get(ApiVersion::Beta, "abc".into())
        );
        assert_eq!(
            route("/beta/deviceManagement/managedDevices('abc')/resetPasscode"),
            Route::Action(
                ApiVersion::Beta,
                "abc".into(),
                Ok(DeviceAction::ResetPasscode)
            )
        );
        assert_eq!(
            route("/v1.0/deviceManagement/managedDevices/abc/microsoft.graph.remoteLock"),
            Route::Action(ApiVersion::V1, "abc".into(), Ok(DeviceAction::RemoteLock))
        );
        assert!(matches!(route("/v2.0/me"), Route::Unknown(_)));
        assert!(matches!(route("/v1.0/me"), Route::Unknown(_)));
        assert!(matches!(
            route("/v1.0/deviceManagement/managedDevices/a/b/c"),
            Route::Unknown(_)
        ));
    }

    #[test]
    fn guid_check() {
        assert!(is_guid(seed::devices::AE_DEDICATED));
        assert!(!is_guid("11111111000040008000000000000001"));
        assert!(!is_guid("not-a-guid"));
    }
}
