//! Trigger payloads in the exact shapes API Gateway and EventBridge deliver
//! them, with every field they send and realistic values.
//!
//! Query strings: [`api_v2`] and [`api_v1`] send none; [`with_query`] adds
//! one to either.

use base64::Engine as _;
use passcode_core::Action;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

const ACCOUNT_ID: &str = "000000000000";
const API_ID: &str = "p4ssc0de1a";
const REST_API_ID: &str = "r3stap1x9z";
const SOURCE_IP: &str = "198.51.100.23";
const USER_AGENT: &str = "local-stack/0.1 (helpdesk console)";
const JWT_ISSUER: &str =
    "https://login.microsoftonline.com/7f3c2b1a-0000-4000-8000-00000000c0de/v2.0";
const JWT_AUDIENCE: &str = "api://passcode-actions";

/// Who API Gateway says made the request, as an authorizer would report it.
#[derive(Clone, Debug, PartialEq)]
pub enum Caller {
    /// IAM (SigV4) authorization.
    Iam { user_arn: String },
    /// A JWT authorizer (HTTP API) or Cognito user pool authorizer (REST API).
    Jwt { sub: String, upn: Option<String> },
    /// No authorizer on the route.
    Anonymous,
}

impl Caller {
    pub fn iam(user_arn: impl Into<String>) -> Caller {
        Caller::Iam {
            user_arn: user_arn.into(),
        }
    }

    pub fn jwt(sub: impl Into<String>, upn: Option<&str>) -> Caller {
        Caller::Jwt {
            sub: sub.into(),
            upn: upn.map(str::to_owned),
        }
    }
}

/// [`api_v2`] or [`api_v1`]: an API Gateway event of either payload format.
pub type ApiEvent = fn(&str, &str, Option<(&str, &str)>, Option<&Value>, &Caller) -> Value;

/// HTTP API (payload format 2.0) event. `path_params`, if given, names the
/// path segment that matched a `{name}` in the route: `("deviceId", id)`.
pub fn api_v2(
    method: &str,
    path: &str,
    path_params: Option<(&str, &str)>,
    body: Option<&Value>,
    caller: &Caller,
) -> Value {
    let now = OffsetDateTime::now_utc();
    let route_key = format!("{method} {}", route_template(path, path_params));
    let body = body.map(Value::to_string);
    let domain = format!("{API_ID}.execute-api.us-east-1.amazonaws.com");

    let mut headers = common_headers(&domain, body.as_deref());
    headers.insert("x-forwarded-port".into(), "443".into());
    headers.insert("x-forwarded-proto".into(), "https".into());

    let mut request_context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain,
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": SOURCE_IP,
            "userAgent": USER_AGENT,
        },
        "requestId": short_request_id(),
        "routeKey": route_key,
        "stage": "$default",
        "time": apigw_time(now),
        "timeEpoch": epoch_ms(now),
    });
    if let Some(authorizer) = v2_authorizer(caller, now) {
        request_context["authorizer"] = authorizer;
    }

    // HTTP APIs leave out the optional members rather than sending null.
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": false,
    });
    if let Some((name, value)) = path_params {
        event["pathParameters"] = json!({ name: value });
    }
    if let Some(body) = body {
        event["body"] = body.into();
    }
    event
}

/// REST API (payload format 1.0, Lambda proxy integration) event, stage `prod`.
pub fn api_v1(
    method: &str,
    path: &str,
    path_params: Option<(&str, &str)>,
    body: Option<&Value>,
    caller: &Caller,
) -> Value {
    let now = OffsetDateTime::now_utc();
    let resource = route_template(path, path_params);
    let body = body.map(Value::to_string);
    let domain = format!("{REST_API_ID}.execute-api.us-east-1.amazonaws.com");

    let mut headers = common_headers(&domain, body.as_deref());
    headers.insert("X-Forwarded-Port".into(), "443".into());
    headers.insert("X-Forwarded-Proto".into(), "https".into());
    headers.insert("CloudFront-Forwarded-Proto".into(), "https".into());
    headers.insert("CloudFront-Viewer-Country".into(), "US".into());
    headers.insert(
        "Via".into(),
        "1.1 0f3c1a2b3c4d5e6f7a8b9c0d1e2f3a4b.cloudfront.net (CloudFront)".into(),
    );
    let multi_headers: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();

    let mut request_context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": REST_API_ID,
        "domainName": domain,
        "domainPrefix": REST_API_ID,
        "extendedRequestId": short_request_id(),
        "httpMethod": method,
        "identity": v1_identity(caller),
        "path": format!("/prod{path}"),
        "protocol": "HTTP/1.1",
        "requestId": Uuid::new_v4().to_string(),
        "requestTime": apigw_time(now),
        "requestTimeEpoch": epoch_ms(now),
        "resourceId": "a1b2c3",
        "resourcePath": resource,
        "stage": "prod",
    });
    if let Caller::Jwt { .. } = caller {
        request_context["authorizer"] = json!({ "claims": jwt_claims(caller, now) });
    }

    json!({
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": path_params.map(|(name, value)| json!({ name: value })),
        "stageVariables": null,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": false,
    })
}

/// `event` (from [`api_v2`] or [`api_v1`]) with a query string: `(name,
/// value)` pairs in order, repeated names allowed, in the fields each
/// payload format carries them in.
pub fn with_query(mut event: Value, query: &[(&str, &str)]) -> Value {
    if query.is_empty() {
        return event;
    }
    if event["version"] == "2.0" {
        // Repeated names arrive comma-joined.
        let mut params = Map::new();
        for (name, value) in query {
            match params.get_mut(*name) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(value);
                }
                _ => {
                    params.insert((*name).into(), (*value).into());
                }
            }
        }
        event["rawQueryString"] = raw_query(query).into();
        event["queryStringParameters"] = Value::Object(params);
    } else {
        // The single-valued map keeps the last value of a repeated name.
        let mut single = Map::new();
        let mut multi = Map::new();
        for (name, value) in query {
            single.insert((*name).into(), (*value).into());
            match multi.get_mut(*name) {
                Some(Value::Array(values)) => values.push((*value).into()),
                _ => {
                    multi.insert((*name).into(), json!([value]));
                }
            }
        }
        event["queryStringParameters"] = Value::Object(single);
        event["multiValueQueryStringParameters"] = Value::Object(multi);
    }
    event
}

/// An EventBridge event as a rule target receives it, from the helpdesk tool.
pub fn eventbridge(detail: &Value) -> Value {
    eventbridge_with(
        "com.example.helpdesk",
        passcode_core::action::EVENT_DETAIL_TYPE,
        &Uuid::new_v4().to_string(),
        detail,
    )
}

/// An EventBridge event with the given source, detail-type and id.
pub fn eventbridge_with(source: &str, detail_type: &str, id: &str, detail: &Value) -> Value {
    let now = OffsetDateTime::now_utc();
    json!({
        "version": "0",
        "id": id,
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT_ID,
        "time": now
            .format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
            .unwrap_or_default(),
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

/// `/v1/devices/abc/x` with `("deviceId", "abc")` → `/v1/devices/{deviceId}/x`.
fn route_template(path: &str, path_params: Option<(&str, &str)>) -> String {
    let Some((name, value)) = path_params else {
        return path.to_owned();
    };
    let mut replaced = false;
    path.split('/')
        .map(|segment| {
            if !replaced && segment == value {
                replaced = true;
                format!("{{{name}}}")
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn common_headers(domain: &str, body: Option<&str>) -> Map<String, Value> {
    let mut headers = Map::new();
    headers.insert("accept".into(), "application/json".into());
    headers.insert("host".into(), domain.into());
    headers.insert("user-agent".into(), USER_AGENT.into());
    headers.insert("x-amzn-trace-id".into(), trace_header().into());
    headers.insert("x-forwarded-for".into(), SOURCE_IP.into());
    if let Some(body) = body {
        headers.insert("content-length".into(), body.len().to_string().into());
        headers.insert("content-type".into(), "application/json".into());
    }
    headers
}

fn v2_authorizer(caller: &Caller, now: OffsetDateTime) -> Option<Value> {
    match caller {
        Caller::Iam { user_arn } => {
            let ids = IamIds::from_arn(user_arn);
            Some(json!({
                "iam": {
                    "accessKey": ids.access_key,
                    "accountId": ids.account_id,
                    "callerId": ids.caller_id,
                    "cognitoIdentity": null,
                    "principalOrgId": null,
                    "userArn": user_arn,
                    "userId": ids.caller_id,
                }
            }))
        }
        Caller::Jwt { .. } => Some(json!({
            "jwt": { "claims": jwt_claims(caller, now), "scopes": null }
        })),
        Caller::Anonymous => None,
    }
}

fn v1_identity(caller: &Caller) -> Value {
    let mut identity = json!({
        "accessKey": null,
        "accountId": null,
        "apiKey": null,
        "apiKeyId": null,
        "caller": null,
        "cognitoAuthenticationProvider": null,
        "cognitoAuthenticationType": null,
        "cognitoIdentityId": null,
        "cognitoIdentityPoolId": null,
        "principalOrgId": null,
        "sourceIp": SOURCE_IP,
        "user": null,
        "userAgent": USER_AGENT,
        "userArn": null,
        "clientCert": null,
    });
    if let Caller::Iam { user_arn } = caller {
        let ids = IamIds::from_arn(user_arn);
        identity["accessKey"] = ids.access_key.into();
        identity["accountId"] = ids.account_id.into();
        identity["caller"] = ids.caller_id.clone().into();
        identity["user"] = ids.caller_id.into();
        identity["userArn"] = user_arn.as_str().into();
    }
    identity
}

/// Authorizers hand every claim over as a string.
fn all_rights() -> String {
    let rights: Vec<&str> = Action::ALL
        .into_iter()
        .map(passcode_core::rights::default_role)
        .collect();
    format!("[{}]", rights.join(" "))
}

fn jwt_claims(caller: &Caller, now: OffsetDateTime) -> Value {
    let Caller::Jwt { sub, upn } = caller else {
        return Value::Null;
    };
    let issued = now.unix_timestamp();
    let mut claims = json!({
        "aud": JWT_AUDIENCE,
        "exp": (issued + 3600).to_string(),
        "iat": (issued - 60).to_string(),
        "iss": JWT_ISSUER,
        "sub": sub,
        // Every action's right, as API Gateway hands an array claim on: a
        // caller the tests mean to be allowed. Tests of the rights build
        // their own claims.
        "roles": all_rights(),
    });
    if let Some(upn) = upn {
        claims["upn"] = upn.as_str().into();
    }
    claims
}

/// The identifiers IAM reports next to a principal's ARN.
struct IamIds {
    account_id: String,
    caller_id: String,
    access_key: String,
}

impl IamIds {
    fn from_arn(arn: &str) -> IamIds {
        let account_id = arn.split(':').nth(4).unwrap_or(ACCOUNT_ID).to_owned();
        // Users have AIDA… ids and long-term AKIA… keys; assumed roles have
        // AROA…:session ids and temporary ASIA… keys.
        let (caller_id, access_key) = match arn.split_once(":assumed-role/") {
            Some((_, rest)) => {
                let session = rest.rsplit('/').next().unwrap_or("session");
                (
                    format!("AROA{}:{session}", id_suffix(arn)),
                    format!("ASIA{}", id_suffix(arn)),
                )
            }
            None => (
                format!("AIDA{}", id_suffix(arn)),
                format!("AKIA{}", id_suffix(arn)),
            ),
        };
        IamIds {
            account_id,
            caller_id,
            access_key,
        }
    }
}

/// 16 upper-case characters, stable per ARN, in IAM's id alphabet.
fn id_suffix(arn: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in arn.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..16)
        .map(|i| ALPHABET[((hash >> ((i * 4) % 60)) as usize + i) % 32] as char)
        .collect()
}

/// API Gateway's short request ids look like `JKJaXmPLvHcESHA=`.
fn short_request_id() -> String {
    let bytes = Uuid::new_v4().into_bytes();
    base64::engine::general_purpose::STANDARD.encode(&bytes[..11])
}

fn trace_header() -> String {
    let secs = OffsetDateTime::now_utc().unix_timestamp();
    let random = Uuid::new_v4().simple().to_string();
    format!("Root=1-{secs:08x}-{}", &random[..24])
}

fn apigw_time(now: OffsetDateTime) -> String {
    now.format(format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    ))
    .unwrap_or_default()
}

fn epoch_ms(now: OffsetDateTime) -> i64 {
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

fn raw_query(query: &[(&str, &str)]) -> String {
    query
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Everything but RFC 3986's unreserved characters, as browsers and SDKs send it.
const QUERY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, QUERY_ESCAPES).to_string()
}

/// One of AWS's own sample events, as published (see
/// `tests/fixtures/aws-events/README.md`).
pub fn aws_sample(name: &str) -> Value {
    let path = crate::paths::workspace_root()
        .join("tests/fixtures/aws-events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What sits in front of the API's routes in the URL a client called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front<'a> {
    /// The API's own URL on the `$default` stage.
    DefaultStage,
    /// The API's own URL on a named stage: an HTTP API puts `/<stage>`
    /// in front of the path; a REST API only in `requestContext.path`.
    NamedStage(&'a str),
    /// A custom domain whose API mapping key (HTTP API) or base path
    /// (REST API) is `key`, mapped to stage `prod`.
    Mapping(&'a str),
}

impl Front<'_> {
    fn stage(self) -> String {
        match self {
            Front::DefaultStage => "$default".into(),
            Front::NamedStage(stage) => stage.into(),
            Front::Mapping(_) => "prod".into(),
        }
    }

    fn prefix(self) -> String {
        match self {
            Front::DefaultStage => String::new(),
            Front::NamedStage(stage) => format!("/{stage}"),
            Front::Mapping(key) => format!("/{key}"),
        }
    }
}

/// A payload 2.0 sample retargeted at one of our routes, the way API
/// Gateway fills it in: route key = the template, `rawPath` = the URL's
/// path (stage or mapping key included), `pathParameters`, method, body.
/// Everything else (authorizer, headers, cookies, query) stays the sample's.
pub fn retarget_v2(
    mut sample: Value,
    method: &str,
    path: &str,
    path_params: Option<(&str, &str)>,
    front: Front<'_>,
    body: Option<&Value>,
) -> Value {
    let route_key = format!("{method} {}", route_template(path, path_params));
    let raw_path = format!("{}{path}", front.prefix());
    sample["routeKey"] = json!(route_key);
    sample["rawPath"] = json!(raw_path);
    sample["pathParameters"] = match path_params {
        Some((name, value)) => json!({ name: value }),
        None => json!({}),
    };
    sample["requestContext"]["routeKey"] = json!(route_key);
    sample["requestContext"]["stage"] = json!(front.stage());
    sample["requestContext"]["http"]["method"] = json!(method);
    sample["requestContext"]["http"]["path"] = json!(raw_path);
    sample["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    sample["isBase64Encoded"] = json!(false);
    sample
}

/// A payload 1.0 sample retargeted at one of our routes: `resource` = the
/// template, `path` = the path below the stage (a base path mapping stays in
/// it), `requestContext.path` with the stage or mapping, `pathParameters`.
pub fn retarget_v1(
    mut sample: Value,
    method: &str,
    path: &str,
    path_params: Option<(&str, &str)>,
    front: Front<'_>,
    body: Option<&Value>,
) -> Value {
    let resource = route_template(path, path_params);
    let (raw_path, context_path) = match front {
        Front::Mapping(key) => (format!("/{key}{path}"), format!("/{key}{path}")),
        _ => (path.to_owned(), format!("/{}{path}", front.stage())),
    };
    sample["resource"] = json!(resource);
    sample["path"] = json!(raw_path);
    sample["httpMethod"] = json!(method);
    sample["pathParameters"] =
        path_params.map_or(Value::Null, |(name, value)| json!({ name: value }));
    sample["requestContext"]["resourcePath"] = json!(resource);
    sample["requestContext"]["path"] = json!(context_path);
    sample["requestContext"]["httpMethod"] = json!(method);
    sample["requestContext"]["stage"] = json!(front.stage());
    sample["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    sample["isBase64Encoded"] = json!(false);
    sample
}
