//! The "variants" profile over HTTP, and schema violations as recorded.

use graph_sim::{FaultRule, Profile, RunningSim, WriteLimit, seed::devices};
use serde_json::Value;

use crate::common::*;

async fn variants() -> RunningSim {
    graph_sim::start_with("127.0.0.1:0".parse().unwrap(), Profile::Variants)
        .await
        .expect("simulator starts")
}

fn list_path(filter: &str) -> String {
    format!(
        "/beta/deviceManagement/managedDevices?$filter={}&$select=id,imei,operatingSystem",
        filter.replace(' ', "%20").replace('\'', "%27")
    )
}

fn device_path(id: &str) -> String {
    format!("/beta/deviceManagement/managedDevices/{id}?$select=id,imei,operatingSystem")
}

#[tokio::test]
async fn variants_spell_the_same_tenant_as_real_tenants_do() {
    let sim = variants().await;
    assert_eq!(sim.profile(), Profile::Variants);
    let token = token(&sim).await;

    // The iPhone's IMEI is stored with spaces: the digits-only form finds nothing.
    let body = get_json(&sim, &token, &list_path("imei eq '350000000000010'")).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0, "{body}");
    let body = get_json(&sim, &token, &list_path("imei eq '35 000000 000001 0'")).await;
    let found = &body["value"][0];
    assert_eq!(found["id"], devices::IOS_ADE, "{body}");
    assert_eq!(found["@odata.type"], "#microsoft.graph.managedDevice");

    // Android keeps digits only, and says which Android it is.
    let one = get_json(&sim, &token, &device_path(devices::AE_DEDICATED)).await;
    assert_eq!(one["imei"], "350000000000001");
    assert_eq!(one["operatingSystem"], "AndroidEnterprise");

    // The iPad has no IMEI property at all.
    let ipad = get_json(
        &sim,
        &token,
        &device_path(devices::IPADOS_DEVICE_ENROLLMENT),
    )
    .await;
    assert!(ipad.get("imei").is_none(), "{ipad}");
    assert_eq!(ipad["operatingSystem"], "iPadOS");
}

#[tokio::test]
async fn variants_answer_actions_throttling_and_outages_in_other_shapes() {
    let sim = variants().await;
    let token = token(&sim).await;
    sim.control()
        .set_write_limit(Some(WriteLimit {
            max: 1,
            window_seconds: 20,
        }))
        .await
        .unwrap();

    let accepted = post(&sim, &token, &reset_path("v1.0", devices::AE_DEDICATED)).await;
    assert_eq!(accepted.status(), 200);
    let body: Value = accepted.json().await.unwrap();
    assert_eq!(body["@odata.null"], true);

    let throttled = post(&sim, &token, &reset_path("v1.0", devices::AE_DEDICATED)).await;
    assert_eq!(throttled.status(), 429);
    let retry_after = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_string();
    let (whole, fraction) = retry_after.split_once('.').expect("fractional Retry-After");
    assert!(whole.parse::<u64>().unwrap() <= 20, "{retry_after}");
    assert_eq!(fraction, "128");
    let body: Value = throttled.json().await.unwrap();
    assert!(body["error"].get("innerError").is_none(), "{body}");

    sim.control()
        .add_fault(&FaultRule::status_retry_after(503, 5).method("GET"))
        .await
        .unwrap();
    let unavailable = get(&sim, &token, "/beta/deviceManagement/managedDevices").await;
    assert_eq!(unavailable.status(), 503);
    let date = unavailable.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(date.ends_with(" GMT") && date.contains(", "), "{date}");
    let body: Value = unavailable.json().await.unwrap();
    let nested: Value = serde_json::from_str(body["error"]["message"].as_str().unwrap())
        .expect("Intune's JSON-in-a-string message");
    assert!(nested["Message"].as_str().unwrap().contains("Activity ID"));
}

#[tokio::test]
async fn requests_off_the_published_schema_are_recorded() {
    let (sim, token) = sim_with_token().await;
    let ok = get(&sim, &token, &list_path("serialNumber eq 'R58N10AE001'")).await;
    assert_eq!(ok.status(), 200);
    assert!(sim.schema_violations().is_empty());

    // Graph ignores this filter and answers 200: only the check notices.
    let ignored = get(
        &sim,
        &token,
        &list_path("deviceEnrollmentType eq 'userEnrollment'"),
    )
    .await;
    assert_eq!(ignored.status(), 200);
    let v1 = get(
        &sim,
        &token,
        "/v1.0/deviceManagement/managedDevices?$select=id,deviceType",
    )
    .await;
    assert_eq!(v1.status(), 400);

    let violations = sim.control().violations().await.unwrap();
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(violations[0].rule.contains("deviceEnrollmentType"));
    assert!(violations[1].rule.contains("deviceType") && violations[1].rule.contains("v1.0"));
    // A reset of the tenant does not wipe what the test must still see.
    sim.control().reset().await.unwrap();
    assert_eq!(sim.schema_violations().len(), 2);
}
