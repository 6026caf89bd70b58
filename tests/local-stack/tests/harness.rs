//! The harness itself: the Runtime API emulator against a stand-in function,
//! moto, and the shape of the trigger events.

use std::path::Path;
use std::time::Duration;

use local_stack::events::{self, Caller};
use local_stack::{FunctionProcess, FunctionSpec, InvokeOutcome, Moto};
use serde_json::{Value, json};

const ECHO: &str = env!("CARGO_BIN_EXE_echo-function");
const TIMEOUT: Duration = Duration::from_secs(10);

async fn echo(spec: FunctionSpec) -> FunctionProcess {
    FunctionProcess::spawn_at(Path::new(ECHO), spec)
        .await
        .expect("spawn echo-function")
}

fn proc_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry but no longer runs.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

/// Waits, boundedly, for the kernel to report the process gone.
async fn assert_dies(pid: u32) {
    for _ in 0..100 {
        if !proc_alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process {pid} still alive");
}

#[tokio::test]
async fn response_carries_event_and_lambda_context() {
    let function = echo(FunctionSpec::new("echo").with_env("ECHO_EXTRA", "extra")).await;
    let invocation = function.invoke(json!({"hello": "world"}), TIMEOUT).await;
    let InvokeOutcome::Response(body) = &invocation.outcome else {
        panic!("unexpected outcome {:?}", invocation.outcome);
    };
    assert_eq!(body["event"], json!({"hello": "world"}));
    assert_eq!(body["requestId"], invocation.request_id.as_str());
    assert_eq!(
        body["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:echo"
    );
    assert!(body["xrayTraceId"].as_str().unwrap().starts_with("Root=1-"));
    let deadline = body["deadlineMs"].as_u64().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(deadline > now_ms && deadline <= now_ms + 10_000);

    // The Lambda environment, with the spec's additions; nothing leaks from ours.
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_NAME"], "echo");
    assert_eq!(body["env"]["AWS_REGION"], "us-east-1");
    assert_eq!(body["env"]["AWS_LAMBDA_LOG_LEVEL"], "debug");
    assert_eq!(body["env"]["ECHO_EXTRA"], "extra");
    assert_eq!(body["env"]["HOME"], Value::Null);

    assert!(function.init_duration().is_some());
    assert!(function.pid() > 0);
    assert!(function.peak_rss_kib().is_some_and(|kib| kib > 0));
    assert!(function.cpu_time().is_some());
    let logs = function.logs();
    assert!(
        logs.iter().any(|l| l == "echo-function starting"),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l == "echo-function stderr works"),
        "{logs:?}"
    );
}

#[tokio::test]
async fn spec_env_overrides_the_lambda_defaults() {
    let function = echo(FunctionSpec::new("echo").with_env("AWS_LAMBDA_LOG_LEVEL", "info")).await;
    let ready = function.ready().await.unwrap();
    assert_eq!(Some(ready), function.init_duration());
    let invocation = function.invoke(json!({}), TIMEOUT).await;
    assert_eq!(
        invocation.response().unwrap()["env"]["AWS_LAMBDA_LOG_LEVEL"],
        "info"
    );
}

#[tokio::test]
async fn function_error_is_reported_and_process_keeps_serving() {
    let function = echo(FunctionSpec::new("echo")).await;
    let failed = function.invoke(json!({"fail": "boom"}), TIMEOUT).await;
    assert_eq!(
        failed.outcome,
        InvokeOutcome::Error {
            error_type: "EchoError".into(),
            error_message: "boom".into()
        }
    );
    let next = function
        .invoke(json!({"log": "second event"}), TIMEOUT)
        .await;
    assert!(next.response().is_ok(), "{:?}", next.outcome);
    assert!(function.logs().iter().any(|l| l == "second event"));
}

#[tokio::test]
async fn concurrent_invokes_are_served_one_at_a_time() {
    let function = echo(FunctionSpec::new("echo")).await;
    let (a, b, c) = tokio::join!(
        function.invoke(json!({"n": 1, "sleepMs": 50}), TIMEOUT),
        function.invoke(json!({"n": 2, "sleepMs": 50}), TIMEOUT),
        function.invoke(json!({"n": 3, "sleepMs": 50}), TIMEOUT),
    );
    for (n, invocation) in [(1, a), (2, b), (3, c)] {
        let body = invocation.response().unwrap();
        assert_eq!(body["event"]["n"], n);
        assert_eq!(body["requestId"], invocation.request_id.as_str());
    }
}

#[tokio::test]
async fn hung_function_times_out_and_is_killed() {
    let function = echo(FunctionSpec::new("echo")).await;
    let pid = function.pid();
    let invocation = function
        .invoke(json!({"sleepMs": 60_000}), Duration::from_millis(100))
        .await;
    assert_eq!(invocation.outcome, InvokeOutcome::Timeout);
    assert!(invocation.duration >= Duration::from_secs(2));
    assert_dies(pid).await;
    // Like a Lambda sandbox that was torn down: nothing answers any more.
    let after = function.invoke(json!({}), TIMEOUT).await;
    assert!(
        matches!(after.outcome, InvokeOutcome::Crashed(_)),
        "{after:?}"
    );
}

#[tokio::test]
async fn exit_mid_invocation_is_a_crash_with_the_last_output() {
    let function = echo(FunctionSpec::new("echo")).await;
    let invocation = function
        .invoke(json!({"log": "about to exit", "exit": 3}), TIMEOUT)
        .await;
    let InvokeOutcome::Crashed(message) = &invocation.outcome else {
        panic!("unexpected outcome {:?}", invocation.outcome);
    };
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(message.contains("about to exit"), "{message}");
    assert!(function.has_exited());
    assert_eq!(function.peak_rss_kib(), None);
}

#[tokio::test]
async fn init_error_fails_the_invocation() {
    let function = echo(FunctionSpec::new("echo").with_env("ECHO_INIT_ERROR", "no config")).await;
    let invocation = function.invoke(json!({}), TIMEOUT).await;
    assert_eq!(
        invocation.outcome,
        InvokeOutcome::Error {
            error_type: "EchoInitError".into(),
            error_message: "no config".into()
        }
    );
    assert!(function.ready().await.is_err());
}

#[tokio::test]
async fn kill_and_drop_end_the_process() {
    let killed = echo(FunctionSpec::new("echo")).await;
    let pid = killed.pid();
    killed.ready().await.unwrap();
    killed.kill().await;
    assert!(!proc_alive(pid));

    let dropped = echo(FunctionSpec::new("echo")).await;
    let pid = dropped.pid();
    dropped.ready().await.unwrap();
    drop(dropped);
    assert_dies(pid).await;
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let error = FunctionProcess::spawn(FunctionSpec::new("no-such-function"))
        .await
        .err()
        .expect("spawn must fail");
    assert!(error.to_string().contains("no-such-function"), "{error}");
}

#[tokio::test]
async fn moto_stores_and_versions_secrets() {
    let moto = Moto::start().await.expect("moto_server must be installed");
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    let name = format!("harness/{}", uuid::Uuid::new_v4());
    let arn = moto.put_secret(&name, r#"{"v":1}"#).await.unwrap();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:"),
        "{arn}"
    );
    let again = moto.put_secret(&name, r#"{"v":2}"#).await.unwrap();
    assert_eq!(arn, again);

    let client = moto.client();
    let read = client
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(read.secret_string(), Some(r#"{"v":2}"#));

    moto.delete_secret(&name).await.unwrap();
    assert!(
        client
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .is_err()
    );
}

mod event_shapes {
    use super::*;
    use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
    use aws_lambda_events::eventbridge::EventBridgeEvent;

    const DEVICE: &str = "11111111-0000-4000-8000-000000000001";
    const ADMIN: &str = "arn:aws:iam::000000000000:user/local-admin";

    /// `GET /v1/devices/{DEVICE}/passcode-status` in either payload format.
    fn status_of_the_device(api: events::ApiEvent, caller: &Caller) -> Value {
        let path = format!("/v1/devices/{DEVICE}/passcode-status");
        api("GET", &path, Some(("deviceId", DEVICE)), None, caller)
    }

    fn reset_path() -> String {
        format!("/v1/devices/{DEVICE}/reset-passcode")
    }

    #[test]
    fn http_api_v2_with_iam_caller() {
        let body = json!({"reason": "forgot", "ticket": "INC-1"});
        let event = events::api_v2(
            "POST",
            &reset_path(),
            Some(("deviceId", DEVICE)),
            Some(&body),
            &Caller::iam(ADMIN),
        );
        let parsed: ApiGatewayV2httpRequest = serde_json::from_value(event.clone()).unwrap();
        assert_eq!(
            parsed.route_key.as_deref(),
            Some("POST /v1/devices/{deviceId}/reset-passcode")
        );
        assert_eq!(parsed.raw_path.as_deref(), Some(reset_path().as_str()));
        assert_eq!(
            parsed.path_parameters.get("deviceId").map(String::as_str),
            Some(DEVICE)
        );
        assert_eq!(parsed.request_context.http.method.as_str(), "POST");
        assert_eq!(parsed.request_context.stage.as_deref(), Some("$default"));
        let iam = parsed.request_context.authorizer.unwrap().iam.unwrap();
        assert_eq!(iam.user_arn.as_deref(), Some(ADMIN));
        assert!(iam.caller_id.unwrap().starts_with("AIDA"));
        let sent: Value = serde_json::from_str(parsed.body.as_deref().unwrap()).unwrap();
        assert_eq!(sent, body);
        assert!(!parsed.is_base64_encoded);
        assert_eq!(
            event["requestContext"]["timeEpoch"].as_i64().map(|t| t > 0),
            Some(true)
        );
    }

    #[test]
    fn http_api_v2_with_jwt_caller_and_query() {
        let caller = Caller::jwt("abc-sub", Some("helpdesk@contoso.com"));
        let event = events::with_query(
            status_of_the_device(events::api_v2, &caller),
            &[
                ("include", "history"),
                ("include", "passcode"),
                ("q", "a b&c"),
            ],
        );
        let parsed: ApiGatewayV2httpRequest = serde_json::from_value(event.clone()).unwrap();
        assert_eq!(
            parsed.raw_query_string.as_deref(),
            Some("include=history&include=passcode&q=a%20b%26c")
        );
        // API Gateway joins repeated names with commas; the library splits them again.
        assert_eq!(
            event["queryStringParameters"]["include"],
            "history,passcode"
        );
        assert_eq!(
            parsed.query_string_parameters.all("include"),
            Some(vec!["history", "passcode"])
        );
        assert!(parsed.body.is_none());
        let jwt = parsed.request_context.authorizer.unwrap().jwt.unwrap();
        assert_eq!(jwt.claims.get("sub").map(String::as_str), Some("abc-sub"));
        assert_eq!(
            jwt.claims.get("upn").map(String::as_str),
            Some("helpdesk@contoso.com")
        );
    }

    #[test]
    fn http_api_v2_anonymous_and_without_path_parameters() {
        let body = json!({"device": {"serialNumber": "R58N10AE001"}});
        let event = events::api_v2(
            "POST",
            "/v1/reset-passcode",
            None,
            Some(&body),
            &Caller::Anonymous,
        );
        assert!(event["requestContext"].get("authorizer").is_none());
        assert!(event.get("pathParameters").is_none());
        let parsed: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.route_key.as_deref(), Some("POST /v1/reset-passcode"));
    }

    #[test]
    fn rest_api_v1_with_iam_and_jwt_callers() {
        let event = events::api_v1(
            "POST",
            &reset_path(),
            Some(("deviceId", DEVICE)),
            Some(&json!({"dryRun": true})),
            &Caller::iam("arn:aws:sts::000000000000:assumed-role/Helpdesk/alex"),
        );
        let parsed: ApiGatewayProxyRequest = serde_json::from_value(event).unwrap();
        assert_eq!(
            parsed.resource.as_deref(),
            Some("/v1/devices/{deviceId}/reset-passcode")
        );
        assert_eq!(parsed.http_method.as_str(), "POST");
        assert_eq!(
            parsed.path_parameters.get("deviceId").map(String::as_str),
            Some(DEVICE)
        );
        let identity = &parsed.request_context.identity;
        assert_eq!(
            identity.user_arn.as_deref(),
            Some("arn:aws:sts::000000000000:assumed-role/Helpdesk/alex")
        );
        assert!(identity.caller.as_deref().unwrap().ends_with(":alex"));
        assert!(identity.access_key.as_deref().unwrap().starts_with("ASIA"));

        let caller = Caller::jwt("abc-sub", None);
        let event = events::with_query(
            status_of_the_device(events::api_v1, &caller),
            &[("verbose", "1")],
        );
        assert_eq!(
            event["requestContext"]["authorizer"]["claims"]["sub"],
            "abc-sub"
        );
        let parsed: ApiGatewayProxyRequest = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.query_string_parameters.first("verbose"), Some("1"));
        assert!(parsed.body.is_none());
    }

    #[test]
    fn eventbridge_events() {
        let detail =
            json!({"action": "removePasscode", "device": {"serialNumber": "F2LXK0AAAA10"}});
        let event = events::eventbridge(&detail);
        let parsed: EventBridgeEvent<Value> = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.detail_type, "Passcode Action Requested");
        assert_eq!(parsed.source, "com.example.helpdesk");
        assert_eq!(parsed.region.as_deref(), Some("us-east-1"));
        assert_eq!(parsed.detail, detail);

        let custom = events::eventbridge_with("aws.partner/x", "Other", "id-1", &detail);
        let parsed: EventBridgeEvent<Value> = serde_json::from_value(custom).unwrap();
        assert_eq!(parsed.id.as_deref(), Some("id-1"));
        assert_eq!(parsed.source, "aws.partner/x");
    }
}

mod stack_and_front {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    use local_stack::{SecretForm, Stack, serve_api};
    use passcode_core::Action;

    async fn stored_secret(stack: &Stack) -> Value {
        let stored = stack
            .moto
            .client()
            .get_secret_value()
            .secret_id(&stack.secret_id)
            .send()
            .await
            .unwrap();
        serde_json::from_str(stored.secret_string().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn client_secret_stack_is_accepted_by_the_token_endpoint() {
        let stack = Stack::start(SecretForm::ClientSecret).await.unwrap();
        let secret = stored_secret(&stack).await;
        assert_eq!(secret["tenantId"], graph_sim::seed::TENANT_ID);
        assert_eq!(secret["clientId"], graph_sim::seed::CLIENT_ID);
        let client_secret = secret["clientSecret"].as_str().unwrap();
        assert_eq!(stack.secret_values(), vec![client_secret.to_owned()]);

        let env: HashMap<_, _> = stack.function_env().into_iter().collect();
        assert_eq!(env["GRAPH_SECRET_ID"], stack.secret_id);
        assert_eq!(env["GRAPH_ENDPOINT"], stack.sim.base_url());
        assert_eq!(
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"],
            stack.moto.endpoint()
        );

        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
            graph_sim::seed::CLIENT_ID,
            client_secret.replace('~', "%7E"),
        );
        let token = reqwest::Client::new()
            .post(stack.sim.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(token.status(), 200, "{}", token.text().await.unwrap());
    }

    #[tokio::test]
    async fn certificate_stack_stores_a_pkcs8_key_and_registers_the_certificate() {
        let stack = Stack::start(SecretForm::Certificate).await.unwrap();
        let secret = stored_secret(&stack).await;
        let key = secret["privateKey"].as_str().unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        assert!(secret.get("clientSecret").is_none());
        assert_eq!(secret["certificate"].as_str(), stack.certificate_pem());
        let values = stack.secret_values();
        assert!(values.contains(&key.to_owned()));
        assert!(values.len() > 10, "key body lines are listed too");
        let app = stack.sim.control().app().await.unwrap();
        assert!(app["certificateThumbprintSha256"].is_string(), "{app}");
    }

    /// The front in front of the echo function standing in for `passcode-status`.
    async fn front() -> (local_stack::ApiFront, Arc<FunctionProcess>) {
        let function = Arc::new(echo(FunctionSpec::new("passcode-status")).await);
        let functions = HashMap::from([(Action::Status, function.clone())]);
        let front = serve_api(([127, 0, 0, 1], 0).into(), functions)
            .await
            .unwrap();
        (front, function)
    }

    #[tokio::test]
    async fn api_front_routes_http_requests_as_http_api_events() {
        let (front, _function) = front().await;
        let http = reqwest::Client::new();
        let url = format!(
            "{}/v1/devices/dev-1/passcode-status?verbose=1",
            front.base_url()
        );
        let response = http
            .get(&url)
            .header("x-local-caller", "jwt:abc:kim@contoso.com")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("apigw-requestid"));
        let answer: Value = response.json().await.unwrap();
        let event = &answer["event"];
        assert_eq!(
            event["routeKey"],
            "GET /v1/devices/{deviceId}/passcode-status"
        );
        assert_eq!(event["pathParameters"]["deviceId"], "dev-1");
        assert_eq!(event["queryStringParameters"]["verbose"], "1");
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["upn"],
            "kim@contoso.com"
        );
        assert!(event["headers"].get("x-local-caller").is_none());

        let posted = http
            .post(format!("{}/v1/passcode-status", front.base_url()))
            .json(&json!({"device": {"imei": "350000000000001"}}))
            .send()
            .await
            .unwrap();
        let answer: Value = posted.json().await.unwrap();
        let body: Value = serde_json::from_str(answer["event"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["device"]["imei"], "350000000000001");
        assert_eq!(
            answer["event"]["requestContext"]["authorizer"]["iam"]["userArn"],
            "arn:aws:iam::000000000000:user/local-admin"
        );

        // Routes of functions that are not running, and unknown paths, are 404.
        for (method, path) in [("POST", "/v1/reset-passcode"), ("GET", "/nope")] {
            let response = http
                .request(
                    method.parse().unwrap(),
                    format!("{}{path}", front.base_url()),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404);
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                json!({"message": "Not Found"})
            );
        }
    }

    #[tokio::test]
    async fn api_front_delivers_events_and_reports_invocation_errors() {
        let (front, _function) = front().await;
        let http = reqwest::Client::new();
        let url = format!("{}/events", front.base_url());
        let post = async |event: Value| http.post(&url).json(&event).send().await.unwrap();
        let ok: Value = post(json!({"detail-type": "Passcode Action Requested", "source": "test", "detail": {"action": "status"}}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(ok["event"]["source"], "test");
        assert_eq!(ok["event"]["detail"]["action"], "status");

        let failed = post(json!({"detail": {"action": "status", "fail": "transient"}})).await;
        assert_eq!(failed.status(), 502);
        assert_eq!(
            failed.json::<Value>().await.unwrap(),
            json!({"errorType": "EchoError", "errorMessage": "transient"})
        );

        let unknown = post(json!({"detail": {"action": "wipe"}})).await;
        assert_eq!(unknown.status(), 400);
    }
}
