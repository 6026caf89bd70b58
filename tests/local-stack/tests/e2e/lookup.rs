//! Finding the device: every identifier form, no match, several matches,
//! Graph ignoring the filter, and hostile identifiers.

use crate::common::*;
use passcode_core::Action;
use serde_json::{Value, json};

/// Asks `action` for the device `device` names (its identifiers) and
/// asserts that exactly `expected` was found and got one POST.
async fn assert_finds(world: &World, action: Action, device: Value, expected: &str) {
    let reply = world.api_device(action, device.clone()).await;
    assert_eq!(
        (reply.status, reply.body["device"]["id"].as_str()),
        (202, Some(expected)),
        "{device}: {:?}",
        reply.body
    );
    assert_eq!(world.posts(expected).await, 1, "{device}");
}

/// A passcode reset of the device `device` names (its identifiers).
async fn reset_by(world: &World, device: Value) -> Reply {
    world.api_device(Action::ResetPasscode, device).await
}

#[tokio::test]
async fn every_identifier_form_finds_exactly_the_device() {
    let world = World::start().await;
    let aad = graph_sim::seed::devices::azure_ad_device_id(dev::AE_FULLY_MANAGED);
    let cases = [
        (json!({"id": dev::AE_DEDICATED}), dev::AE_DEDICATED),
        (
            json!({"serialNumber": "R58N10AE003"}),
            dev::AE_CORPORATE_WORK_PROFILE,
        ),
        (
            json!({"imei": "350000000000004"}),
            dev::AE_PERSONAL_WORK_PROFILE,
        ),
        (json!({"azureAdDeviceId": aad}), dev::AE_FULLY_MANAGED),
        (
            json!({"userPrincipalName": "lee@contoso.com"}),
            dev::AOSP_USER_ASSOCIATED,
        ),
        (
            json!({"userPrincipalName": "morgan@contoso.com", "deviceName": "MORGAN-PIXEL"}),
            dev::MULTI_USER_ANDROID,
        ),
        (
            json!({"userPrincipalName": "o'brien@contoso.com", "deviceName": "Kim's Pixel"}),
            dev::APOSTROPHE,
        ),
    ];
    for (device, expected) in cases {
        assert_finds(&world, Action::ResetPasscode, device, expected).await;
    }
    assert_eq!(world.total_posts().await, 7);
}

/// A helpdesk ticket carries the IMEI as digits; Intune stores an Apple
/// device's IMEI as `35 000000 000001 0` in a real tenant (the variants
/// profile) and as digits in the standard one. Either way the iPhone is found.
#[tokio::test]
async fn an_apple_imei_in_digits_finds_the_iphone() {
    let world = World::start().await;
    let stored = world.sim().device(dev::IOS_ADE).await.unwrap()["imei"].clone();
    let expected_stored = match world.profile() {
        graph_sim::Profile::Standard => "350000000000010",
        graph_sim::Profile::Variants => "35 000000 000001 0",
    };
    assert_eq!(stored, expected_stored);
    let digits = json!({"imei": "350000000000010"});
    assert_finds(&world, Action::RemovePasscode, digits, dev::IOS_ADE).await;
    assert_eq!(world.total_posts().await, 1);
}

#[tokio::test]
async fn path_and_body_forms_and_both_payload_versions() {
    let world = World::start().await;
    world
        .api_path(
            Action::RemovePasscode,
            dev::IOS_ADE,
            json!({"reason": "forgot"}),
        )
        .await
        .assert_status(202);
    // REST API (payload 1.0): the device in the body, then in the path.
    let rest_api = async |path: &str, path_params, body: &Value| {
        let caller = local_stack::events::Caller::iam(HELPDESK);
        let event = local_stack::events::api_v1("POST", path, path_params, Some(body), &caller);
        world.api(Action::RemovePasscode, event).await
    };
    let body = with_device(json!({"serialNumber": "DMPXK0AAAA11"}));
    rest_api("/v1/remove-passcode", None, &body)
        .await
        .assert_device(202, dev::IPADOS_DEVICE_ENROLLMENT);
    let path = format!("/v1/devices/{}/remove-passcode", dev::VISIONOS);
    rest_api(&path, Some(("deviceId", dev::VISIONOS)), &short_reason())
        .await
        .assert_status(202);
    assert_eq!(world.total_posts().await, 3);
}

#[tokio::test]
async fn no_match_is_404_and_several_matches_are_409_with_candidates() {
    let world = World::start().await;
    reset_by(&world, json!({"serialNumber": "NO-SUCH-SERIAL"}))
        .await
        .assert_error(404, "deviceNotFound");

    let reply = reset_by(&world, json!({"serialNumber": "DUPSERIAL01"})).await;
    reply.assert_error(409, "ambiguousDevice");
    let mut ids: Vec<&str> = reply.body["error"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, [dev::SHARED_SERIAL_A, dev::SHARED_SERIAL_B]);

    let reply = reset_by(&world, json!({"userPrincipalName": "morgan@contoso.com"})).await;
    assert_eq!(reply.status, 409);
    assert_eq!(
        reply.body["error"]["candidates"].as_array().unwrap().len(),
        3
    );

    let unknown = "11111111-0000-4000-8000-0000000009ff";
    let reply = world
        .api_path(Action::ResetPasscode, unknown, by_id("x"))
        .await;
    assert_eq!(reply.status, 400, "device twice (path and body)");
    world
        .reset(unknown)
        .await
        .assert_error(404, "deviceNotFound");
    assert_eq!(world.total_posts().await, 0);
}

/// A fresh world whose Graph ignores `$filter` and answers the whole
/// tenant, `page_size` devices a page.
async fn world_where_graph_ignores_the_filter(page_size: usize) -> World {
    let world = World::start().await;
    let sim = world.sim();
    sim.set_silent_filter_mode(true).await.unwrap();
    sim.set_page_size(page_size).await.unwrap();
    world
}

/// R58N10AE001, the lobby kiosk's serial number, is a prefix of a filler's.
fn kiosk_serial() -> Value {
    json!({"serialNumber": "R58N10AE001"})
}

#[tokio::test]
async fn when_graph_ignores_the_filter_only_the_exact_device_is_touched() {
    let world = world_where_graph_ignores_the_filter(7).await;

    // The whole tenant comes back in pages, a filler with a longer serial too.
    reset_by(&world, kiosk_serial())
        .await
        .assert_device(202, dev::AE_DEDICATED);
    let lists = world
        .requests()
        .await
        .iter()
        .filter(|r| r.method == "GET" && r.device_id.is_none() && r.endpoint == "graph")
        .count();
    assert!(lists >= 6, "all pages were read ({lists})");

    // A near miss must not match.
    let near_miss =
        json!({"userPrincipalName": "filler.02@contoso.com", "deviceName": "kiosk-lobby-01"});
    reset_by(&world, near_miss)
        .await
        .assert_error(404, "deviceNotFound");

    world
        .api_device(
            Action::RemovePasscode,
            json!({"userPrincipalName": "pat@contoso.com"}),
        )
        .await
        .assert_device(202, dev::IOS_ADE);

    assert_eq!(
        world.total_posts().await,
        2,
        "only the two exact devices got a POST"
    );
    assert_eq!(world.posts(dev::FILLER_01).await, 0);
}

#[tokio::test]
async fn too_many_pages_means_nothing_is_chosen() {
    let world = world_where_graph_ignores_the_filter(2).await;
    reset_by(&world, kiosk_serial()).await.assert_error_saying(
        502,
        "graphError",
        "ignored the filter",
    );
    assert_eq!(world.total_posts().await, 0);
}

#[tokio::test]
async fn odata_injection_attempts_change_nothing() {
    let world = World::start().await;
    // Refused by validation before Graph is called at all.
    for device in [
        json!({"serialNumber": "X' or serialNumber ne 'Y"}),
        json!({"imei": "35' or imei ne '1"}),
        json!({"userPrincipalName": "x' or userPrincipalName ne '@contoso.com"}),
        json!({"azureAdDeviceId": "' or 1 eq 1 or '"}),
        json!({"id": "11111111-0000-4000-8000-000000000001') or ('1"}),
    ] {
        let reply = reset_by(&world, device.clone()).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (400, "invalidRequest"),
            "{device}"
        );
    }
    assert_eq!(
        world.graph_calls().await,
        0,
        "validation happens before Graph"
    );

    // Free text is escaped: the injection becomes part of a literal that matches nothing.
    let injected = json!({"userPrincipalName": "o'brien@contoso.com", "deviceName": "Kim's Pixel' or deviceName ne 'x"});
    reset_by(&world, injected)
        .await
        .assert_error(404, "deviceNotFound");
    let filters: Vec<String> = world
        .requests()
        .await
        .iter()
        .map(|r| r.query.clone())
        .collect();
    assert!(
        filters
            .iter()
            .any(|q| q.contains("deviceName eq 'Kim''s Pixel'' or deviceName ne ''x'")),
        "escaped literal reached Graph: {filters:?}"
    );
    assert_eq!(world.total_posts().await, 0);
}

/// Apple devices report the IMEI grouped with spaces, Android devices as
/// bare digits; a caller's IMEI in either form finds either device, with one
/// `$filter` that asks for both stored forms.
#[tokio::test]
async fn imeis_in_either_form_find_apple_and_android_devices() {
    let world = World::start().await;
    patch_device(&world, dev::IOS_ADE, json!({"imei": "35 445506 652132 5"})).await;
    patch_device(
        &world,
        dev::MULTI_USER_IPHONE,
        json!({"imei": "35 445506 652133 3"}),
    )
    .await;
    // (caller's IMEI, device): iPhones, stored spaced, by remove-passcode;
    // Android devices by reset-passcode (seeded IMEIs are bare digits).
    let iphones = [
        ("354455066521325", dev::IOS_ADE),
        ("35 445506 652133 3", dev::MULTI_USER_IPHONE),
    ];
    let androids = [
        ("350000000000002", dev::AE_FULLY_MANAGED),
        ("35 000000 000000 3", dev::AE_CORPORATE_WORK_PROFILE),
    ];
    for (action, cases) in [
        (Action::RemovePasscode, iphones),
        (Action::ResetPasscode, androids),
    ] {
        for (imei, expected) in cases {
            assert_finds(&world, action, json!({"imei": imei}), expected).await;
        }
    }
    assert_eq!(world.total_posts().await, 4);
    let filters = list_filters(&world).await;
    assert!(
        filters.contains(&"imei eq '354455066521325' or imei eq '35 445506 652132 5'".to_string()),
        "{filters:?}"
    );
    // A prefix of a stored IMEI is not that IMEI, spaced or not.
    let reply = world
        .api_device(Action::RemovePasscode, json!({"imei": "35445506652132"}))
        .await;
    assert_eq!(reply.error_code(), "deviceNotFound", "{:?}", reply.body);
    assert_eq!(world.total_posts().await, 4);
}

#[tokio::test]
async fn a_lower_case_serial_number_finds_the_device() {
    let world = World::start().await;
    let lower_case = json!({"serialNumber": "r58n10ae002"});
    assert_finds(
        &world,
        Action::ResetPasscode,
        lower_case,
        dev::AE_FULLY_MANAGED,
    )
    .await;
    assert_eq!(world.total_posts().await, 1);
    // Graph is also asked for the serial as printed, in case its `eq` minds case.
    assert_eq!(
        list_filters(&world).await,
        ["serialNumber eq 'r58n10ae002' or serialNumber eq 'R58N10AE002'"]
    );
}
