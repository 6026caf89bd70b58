//! Device list/get: filters, the silent-filter trap, paging, $select and
//! the v1.0/beta views.

use graph_sim::seed::{self, devices};
use serde_json::Value;

use crate::common::*;

async fn list_all(sim: &graph_sim::RunningSim, token: &str, first: &str) -> (Vec<Value>, usize) {
    let mut page = url(sim, first);
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let resp = client().get(&page).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{page}");
        let body: Value = resp.json().await.unwrap();
        pages += 1;
        all.extend(body["value"].as_array().unwrap().iter().cloned());
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(sim.base_url()), "{next}");
                page = next.to_string();
            }
            None => break,
        }
    }
    (all, pages)
}

/// The device list of `version` filtered by `filter` (sent as written).
fn filter_path(version: &str, filter: &str) -> String {
    format!("/{version}/deviceManagement/managedDevices?$filter={filter}")
}

/// Every device the list of `version` answers with `filter`, all pages.
async fn list_filtered(
    sim: &graph_sim::RunningSim,
    token: &str,
    version: &str,
    filter: &str,
) -> Vec<Value> {
    list_all(sim, token, &filter_path(version, filter)).await.0
}

/// GET `path`, assert Graph's 400 `BadRequest` and return the error body.
async fn get_bad_request(sim: &graph_sim::RunningSim, token: &str, path: &str) -> Value {
    assert_graph_error(get(sim, token, path).await, 400, "BadRequest").await
}

fn ids(devices: &[Value]) -> Vec<&str> {
    devices.iter().map(|d| d["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn list_shape_and_headers() {
    let (sim, token) = sim_with_token().await;
    let resp = client()
        .get(url(&sim, "/v1.0/deviceManagement/managedDevices"))
        .bearer_auth(&token)
        .header("client-request-id", "6f1b3a52-1111-4222-8333-944445555666")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["client-request-id"],
        "6f1b3a52-1111-4222-8333-944445555666"
    );
    assert_eq!(resp.headers()["request-id"].len(), 36);
    assert!(resp.headers().contains_key("date"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#deviceManagement/managedDevices",
            sim.base_url()
        )
    );
    let value = body["value"].as_array().unwrap();
    assert_eq!(value.len(), devices::TOTAL);
    assert!(body.get("@odata.nextLink").is_none());
    // Lists never carry action results.
    assert!(
        value
            .iter()
            .all(|d| d["deviceActionResults"] == serde_json::json!([]))
    );
}

#[tokio::test]
async fn filter_matches_exactly_and_pages_via_next_link() {
    let (sim, token) = sim_with_token().await;
    sim.control().set_page_size(1).await.unwrap();
    let (found, pages) = list_all(
        &sim,
        &token,
        "/v1.0/deviceManagement/managedDevices?$filter=serialNumber%20eq%20'DUPSERIAL01'&$select=id,serialNumber",
    )
    .await;
    assert_eq!(
        ids(&found),
        vec![devices::SHARED_SERIAL_A, devices::SHARED_SERIAL_B]
    );
    assert_eq!(pages, 2);
    assert_eq!(found[0].as_object().unwrap().len(), 2, "{}", found[0]);

    for (case, path, expected) in [
        // Case-insensitive, exact: the near-miss fillers never match.
        (
            "device name in another case",
            "/v1.0/deviceManagement/managedDevices?$filter=deviceName+eq+'kiosk-LOBBY-01'",
            devices::AE_DEDICATED,
        ),
        (
            "serial number",
            "/v1.0/deviceManagement/managedDevices?$filter=serialNumber eq 'R58N10AE001'",
            devices::AE_DEDICATED,
        ),
        (
            "escaped quote and a conjunction",
            "/beta/deviceManagement/managedDevices?$filter=deviceName eq 'Kim''s Pixel' and userPrincipalName eq 'O''BRIEN@contoso.com'",
            devices::APOSTROPHE,
        ),
    ] {
        let (found, _) = list_all(&sim, &token, path).await;
        assert_eq!(ids(&found), vec![expected], "{case}");
    }
}

#[tokio::test]
async fn paging_with_top_walks_everything() {
    let (sim, token) = sim_with_token().await;
    let (all, pages) = list_all(
        &sim,
        &token,
        "/beta/deviceManagement/managedDevices?$top=10",
    )
    .await;
    assert_eq!(all.len(), devices::TOTAL);
    assert_eq!(pages, devices::TOTAL.div_ceil(10));
    let mut unique = ids(&all);
    unique.dedup();
    assert_eq!(unique.len(), devices::TOTAL);
}

#[tokio::test]
async fn unsupported_filters_are_silently_ignored() {
    let (sim, token) = sim_with_token().await;
    for filter in [
        "deviceEnrollmentType eq 'androidEnterpriseDedicatedDevice'",
        "userId eq '33333333-0000-4000-8000-000000000001'",
        "serialNumber ne 'R58N10AE001'",
        "startswith(deviceName,'KIOSK')",
        // `or` across properties; the schema asks for `and` there.
        "serialNumber eq 'R58N10AE001' or imei eq '350000000000002'",
        // `or` on a property documented with `eq` only.
        "deviceName eq 'KIOSK-LOBBY-01' or deviceName eq 'COBO-ALEX'",
    ] {
        let found = list_filtered(&sim, &token, "v1.0", filter).await;
        assert_eq!(found.len(), devices::TOTAL, "{filter}");
    }
}

#[tokio::test]
async fn or_on_one_property_that_documents_it_is_honoured() {
    let (sim, token) = sim_with_token().await;
    for (filter, expected) in [
        (
            "serialNumber eq 'R58N10AE001' or serialNumber eq 'r58n10ae002'",
            vec![devices::AE_DEDICATED, devices::AE_FULLY_MANAGED],
        ),
        (
            "imei eq '350000000000001' or imei eq '35 000000 000000 1'",
            vec![devices::AE_DEDICATED],
        ),
    ] {
        let found = list_filtered(&sim, &token, "beta", filter).await;
        assert_eq!(ids(&found), expected, "{filter}");
    }
}

#[tokio::test]
async fn silent_filter_mode_returns_everything() {
    let (sim, token) = sim_with_token().await;
    sim.control().set_silent_filter_mode(true).await.unwrap();
    let found = list_filtered(&sim, &token, "v1.0", "serialNumber eq 'R58N10AE001'").await;
    assert_eq!(found.len(), devices::TOTAL);
}

#[tokio::test]
async fn broken_filter_is_400() {
    let (sim, token) = sim_with_token().await;
    for filter in [
        "serialNumber eq 'R58",
        "serialNumber eq 'x' and",
        "serialNumber = 'x'",
    ] {
        let body = get_bad_request(&sim, &token, &filter_path("v1.0", filter)).await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid filter clause")
        );
    }
}

#[tokio::test]
async fn select_rules() {
    let (sim, token) = sim_with_token().await;
    let path = format!(
        "/beta/deviceManagement/managedDevices/{}?$select=deviceType,JOINTYPE",
        devices::WINDOWS_DESKTOP
    );
    let body = get_json(&sim, &token, &path).await;
    assert_eq!(body["id"], devices::WINDOWS_DESKTOP);
    assert_eq!(body["deviceType"], "desktop");
    assert_eq!(body["joinType"], "azureADJoined");
    assert!(body.get("deviceName").is_none());
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("managedDevices(deviceType,joinType)/$entity")
    );

    let body = get_bad_request(
        &sim,
        &token,
        &format!(
            "/v1.0/deviceManagement/managedDevices/{}?$select=deviceType",
            devices::WINDOWS_DESKTOP
        ),
    )
    .await;
    assert_eq!(
        body["error"]["message"],
        "Could not find a property named 'deviceType' on type 'microsoft.graph.managedDevice'."
    );
    get_bad_request(
        &sim,
        &token,
        "/beta/deviceManagement/managedDevices?$select=id,bogus",
    )
    .await;
}

#[tokio::test]
async fn v1_lacks_beta_enrollment_types() {
    let (sim, token) = sim_with_token().await;
    let device = async |version: &str, id: &str| {
        get_json(
            &sim,
            &token,
            &format!("/{version}/deviceManagement/managedDevices/{id}"),
        )
        .await
    };
    let v1 = device("v1.0", devices::AE_DEDICATED).await;
    let beta = device("beta", devices::AE_DEDICATED).await;
    assert_eq!(v1["deviceEnrollmentType"], "unknown");
    assert_eq!(
        beta["deviceEnrollmentType"],
        "androidEnterpriseDedicatedDevice"
    );
    assert!(v1.get("deviceType").is_none() && v1.get("ownerType").is_none());
    assert_eq!(beta["deviceType"], "androidEnterprise");
    assert_eq!(beta["ownerType"], "company");

    let aosp = device("v1.0", devices::AOSP_USERLESS).await;
    assert_eq!(aosp["managementAgent"], "unknown");
    assert_eq!(aosp["deviceEnrollmentType"], "unknown");
    let adue = device("v1.0", devices::IOS_ACCOUNT_DRIVEN_USER_ENROLLMENT).await;
    assert_eq!(adue["deviceEnrollmentType"], "unknown");
    let ue = device("v1.0", devices::IOS_USER_ENROLLMENT).await;
    assert_eq!(ue["deviceEnrollmentType"], "appleUserEnrollment");
}

#[tokio::test]
async fn get_by_id_errors() {
    let (sim, token) = sim_with_token().await;
    let resp = get(
        &sim,
        &token,
        "/v1.0/deviceManagement/managedDevices/11111111-0000-4000-8000-999999999999",
    )
    .await;
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_string();
    let body = assert_graph_error(resp, 404, "ResourceNotFound").await;
    // Intune nests a JSON document in `message`.
    let nested: Value = serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(nested["_version"], 3);
    let text = nested["Message"].as_str().unwrap();
    assert!(
        text.contains(&format!("Activity ID: {request_id}")),
        "{text}"
    );
    assert!(
        text.contains("Operation ID (for customer support)"),
        "{text}"
    );
    assert_eq!(
        body["error"]["innerError"]["request-id"],
        request_id.as_str()
    );

    get_bad_request(
        &sim,
        &token,
        "/v1.0/deviceManagement/managedDevices/KIOSK-LOBBY-01",
    )
    .await;

    // Key syntax and upper-case ids resolve to the same device.
    let upper = devices::AE_DEDICATED.to_uppercase();
    let body = get_json(
        &sim,
        &token,
        &format!("/v1.0/deviceManagement/managedDevices('{upper}')"),
    )
    .await;
    assert_eq!(body["id"], devices::AE_DEDICATED);
    assert_eq!(body["serialNumber"], "R58N10AE001");
    assert_eq!(
        body["azureADDeviceId"],
        "22222222-0000-4000-8000-000000000001"
    );
    assert_eq!(body["imei"], "350000000000001");

    get_bad_request(&sim, &token, "/v1.0/me").await;
}

#[tokio::test]
async fn control_can_add_devices() {
    let (sim, token) = sim_with_token().await;
    let id = "11111111-0000-4000-8000-00000000aaaa";
    sim.control()
        .put_device(&serde_json::json!({"id": id, "deviceName": "EXTRA", "operatingSystem": "Android", "serialNumber": "EXTRA01"}))
        .await
        .unwrap();
    let found = list_filtered(&sim, &token, "v1.0", "serialNumber eq 'extra01'").await;
    assert_eq!(ids(&found), vec![id]);
    assert_eq!(found[0]["managementState"], "managed");
    assert_eq!(
        sim.control().devices().await.unwrap().len(),
        devices::TOTAL + 1
    );
    assert_eq!(seed::devices::ROWS.len(), 27);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = sim().await;
    let control = sim.control();
    control.health().await.unwrap();
    sim.shutdown().await;
    assert!(control.health().await.is_err());
}
