//! Reserved concurrency and the API's route throttles: none by default,
//! derived from the reservations when there are some.

use serde_json::json;

use crate::deployed::{Deployed, translate};
use crate::{BULK_FUNCTION_ID, BULK_ROUTE_KEYS, FUNCTIONS, TRACKER};

/// The read functions share the status reservation.
fn reads(id: &str) -> bool {
    matches!(id, "PasscodeStatusFunction" | "RevealPasscodeFunction")
}

/// A new account may have a concurrency limit of 10, of which Lambda keeps 10
/// unreserved: the defaults must not reserve anything.
#[test]
fn defaults_reserve_no_concurrency_and_keep_platform_logs() {
    let stack = Deployed::with(&[]);
    let functions = stack.exactly(
        "AWS::Lambda::Function",
        FUNCTIONS.len() + 2,
        "and the tracker and the bulk function",
    );
    for (id, function) in functions {
        let p = &function["Properties"];
        assert!(
            p.get("ReservedConcurrentExecutions").is_none(),
            "{id} reserves concurrency by default: {}",
            p["ReservedConcurrentExecutions"]
        );
        assert_eq!(p["TracingConfig"]["Mode"], "Active", "{id}: X-Ray");
        assert_eq!(
            p["LoggingConfig"]["SystemLogLevel"], "INFO",
            "{id}: START/REPORT lines kept"
        );
        assert_eq!(p["LoggingConfig"]["LogFormat"], "JSON");
        assert_eq!(
            p["Environment"]["Variables"]["METRICS_NAMESPACE"],
            json!({"Fn::Sub": "${NamePrefix}IntunePasscode"}),
            "{id}"
        );
    }
    // Without reservations the routes use the two ApiThrottle parameters.
    let stage = stack.props("PasscodeApiApiGatewayDefaultStage");
    let routes = stage["RouteSettings"].as_object().unwrap();
    assert_eq!(
        routes.len(),
        2 * FUNCTIONS.len() + BULK_ROUTE_KEYS.len(),
        "one setting per route"
    );
    for (route, limits) in routes {
        assert_eq!(limits["ThrottlingBurstLimit"], "10", "{route}");
        assert_eq!(limits["ThrottlingRateLimit"], "5", "{route}");
    }
}

/// With reservations, each route's limits come from its function's
/// reservation, so that the two routes of a function together cannot start
/// more executions at once than it has reserved.
#[test]
fn reservations_derive_the_route_limits() {
    let stack = Deployed::with(&[
        ("ReservedConcurrency", "4"),
        ("StatusReservedConcurrency", "7"),
    ]);
    for id in FUNCTIONS {
        let expected = if reads(id) { "7" } else { "4" };
        assert_eq!(stack.props(id)["ReservedConcurrentExecutions"], expected);
    }
    // Overlapping tracker runs are safe (leases): it reserves nothing. Nor
    // does the bulk function, which only reads and queues.
    for id in [TRACKER, BULK_FUNCTION_ID] {
        assert!(
            stack
                .props(id)
                .get("ReservedConcurrentExecutions")
                .is_none(),
            "{id}"
        );
    }
    let stage = stack.props("PasscodeApiApiGatewayDefaultStage");
    let routes = stage["RouteSettings"].as_object().unwrap();
    for (route, limits) in routes {
        if BULK_ROUTE_KEYS.contains(&route.as_str()) {
            // No reservation: the ApiThrottle parameters' defaults.
            assert_eq!(limits["ThrottlingBurstLimit"], "10", "{route}");
            assert_eq!(limits["ThrottlingRateLimit"], "5", "{route}");
            continue;
        }
        let read_route = route.ends_with("/passcode-status")
            || route.ends_with("/passcode")
            || route.ends_with("/reveal-passcode");
        let (burst, rate) = if read_route { (3, 1.75) } else { (2, 1.0) };
        assert_eq!(limits["ThrottlingBurstLimit"], burst, "{route}");
        assert_eq!(
            limits["ThrottlingRateLimit"].as_f64(),
            Some(rate),
            "{route}"
        );
    }
    // Every reservation the parameter allows: two routes' bursts fit in it
    // (1 cannot be split; each route still gets 1), and two routes at their
    // steady rate keep at most half of it busy with invocations of 2 s.
    let template = translate(&[]);
    let table = template["Mappings"]["RouteThrottle"].as_object().unwrap();
    let max = template["Parameters"]["ReservedConcurrency"]["MaxValue"]
        .as_u64()
        .unwrap();
    assert_eq!(table.len() as u64, max + 1, "a row per allowed value");
    for reserved in 1..=max {
        let row = &table[&reserved.to_string()];
        let burst = row["Burst"].as_u64().unwrap();
        let rate = row["Rate"].as_f64().unwrap();
        assert!(burst >= 1 && rate > 0.0);
        assert!(2 * burst <= reserved.max(2), "C={reserved}: burst {burst}");
        assert!(
            2.0 * rate * 2.0 <= reserved as f64,
            "C={reserved}: rate {rate}"
        );
    }
}
