//! Every function on every row of the support matrix, through the real
//! binaries: eligible devices get exactly one POST and a 202, ineligible
//! ones a 422 and no POST at all.

use crate::common::*;
use passcode_core::Action;
use serde_json::json;

/// Devices each write action may act on (all others must be refused).
fn eligible(action: Action) -> Vec<&'static str> {
    match action {
        Action::ResetPasscode => vec![
            dev::AE_DEDICATED,
            dev::AE_FULLY_MANAGED,
            dev::AE_CORPORATE_WORK_PROFILE,
            dev::AE_PERSONAL_WORK_PROFILE,
            dev::AOSP_USER_ASSOCIATED,
            dev::AOSP_USERLESS,
            dev::ANDROID_DEVICE_ADMIN_6,
            dev::SHARED_SERIAL_A,
            dev::SHARED_SERIAL_B,
            dev::MULTI_USER_ANDROID,
            dev::APOSTROPHE,
        ],
        Action::RemovePasscode => vec![
            dev::IOS_ADE,
            dev::IPADOS_DEVICE_ENROLLMENT,
            dev::VISIONOS,
            dev::MULTI_USER_IPHONE,
        ],
        Action::ResetWindowsPin => vec![dev::WINDOWS_10_MOBILE],
        Action::Status => dev::ROWS
            .iter()
            .copied()
            .chain([dev::FILLER_01])
            .filter(|d| *d != dev::RETIRE_PENDING)
            .collect(),
        Action::RevealPasscode => unreachable!("the reveal has its own tests (rights.rs)"),
    }
}

async fn check_matrix(action: Action) {
    let world = World::start().await;
    let allowed = eligible(action);
    let mut devices: Vec<String> = dev::ROWS.iter().map(|d| d.to_string()).collect();
    devices.push(dev::FILLER_01.to_string());
    for id in &devices {
        let reply = world.act(action, id).await;
        let should = allowed.contains(&id.as_str());
        let expected_status = match (action, should) {
            (Action::Status, true) => 200,
            (_, true) => 202,
            _ => 422,
        };
        assert_eq!(
            reply.status, expected_status,
            "{action} on {id}: {:?}",
            reply.body
        );
        if should {
            assert_eq!(reply.body["device"]["id"], id.as_str());
        } else {
            let expected_code = if id == dev::RETIRE_PENDING {
                "deviceNotManaged"
            } else {
                "unsupportedPlatform"
            };
            assert_eq!(reply.error_code(), expected_code, "{action} on {id}");
            assert!(
                reply.error_message().len() > 60,
                "refusal must explain itself: {:?}",
                reply.body
            );
        }
    }
    for id in &devices {
        let expected = usize::from(action.writes() && allowed.contains(&id.as_str()));
        assert_eq!(
            world.posts(id).await,
            expected,
            "POSTs reaching {id} for {action}"
        );
    }
}

one_test_per_case! {
    check_matrix:
    reset_passcode_on_every_platform_row => Action::ResetPasscode,
    remove_passcode_on_every_platform_row => Action::RemovePasscode,
    reset_windows_pin_on_every_platform_row => Action::ResetWindowsPin,
    passcode_status_on_every_platform_row => Action::Status,
}

#[tokio::test]
async fn refusals_tell_the_agent_what_to_do_instead() {
    let world = World::start().await;
    let cases = [
        // (action, device it refuses, what the refusal says)
        (
            Action::ResetWindowsPin,
            dev::WINDOWS_DESKTOP,
            "I forgot my PIN",
        ),
        (
            Action::RemovePasscode,
            dev::IOS_USER_ENROLLMENT,
            "User Enrollment",
        ),
        (Action::ResetPasscode, dev::IOS_ADE, "remove-passcode"),
        (
            Action::ResetPasscode,
            dev::ANDROID_DEVICE_ADMIN_10,
            "Android 7.0",
        ),
    ];
    for (action, id, advice) in cases {
        world.act(action, id).await.assert_says(advice);
    }
    assert_eq!(world.total_posts().await, 0);
}

/// Graph documents no set of `operatingSystem` values; Entra's records of
/// the same devices use other spellings. Each spelling lands on its row.
#[tokio::test]
async fn operating_system_spellings_classify_by_family() {
    let world = World::start().await;
    let cases = [
        // (device, operatingSystem as the tenant holds it, action allowed)
        (dev::AE_DEDICATED, "android", Action::ResetPasscode),
        (
            dev::AE_FULLY_MANAGED,
            "AndroidEnterprise",
            Action::ResetPasscode,
        ),
        (
            dev::AE_PERSONAL_WORK_PROFILE,
            "AndroidForWork",
            Action::ResetPasscode,
        ),
        (dev::AOSP_USERLESS, "AndroidAOSP", Action::ResetPasscode),
        (dev::IOS_ADE, "iPadOS", Action::RemovePasscode),
        (dev::MULTI_USER_IPHONE, "IOS", Action::RemovePasscode),
        (
            dev::WINDOWS_10_MOBILE,
            "Windows 10 Mobile",
            Action::ResetWindowsPin,
        ),
    ];
    for (id, os, action) in cases {
        patch_device(&world, id, json!({"operatingSystem": os})).await;
        let reply = world.act(action, id).await;
        assert_eq!(reply.status, 202, "{os}: {:?}", reply.body);
        assert_eq!(reply.body["device"]["operatingSystem"], os);
        assert_eq!(world.posts(id).await, 1, "{os}");
    }
    // The family decides which function is right, whatever the spelling.
    patch_device(
        &world,
        dev::AE_CORPORATE_WORK_PROFILE,
        json!({"operatingSystem": "ANDROID"}),
    )
    .await;
    let reply = world
        .act(Action::RemovePasscode, dev::AE_CORPORATE_WORK_PROFILE)
        .await;
    assert_eq!(
        reply.error_code(),
        "unsupportedPlatform",
        "{:?}",
        reply.body
    );
    let msg = reply.error_message();
    assert!(msg.contains("Use reset-passcode instead"), "{msg}");
    assert_eq!(world.total_posts().await, cases.len());
}

/// An `operatingSystem` value nobody recognises is refused, naming it, and
/// nothing is sent, whatever the enrollment fields say.
#[tokio::test]
async fn an_unknown_operating_system_is_refused_naming_it() {
    let world = World::start().await;
    // The enrollment fields of an eligible Android Enterprise device.
    patch_device(
        &world,
        dev::AE_FULLY_MANAGED,
        json!({"operatingSystem": "HarmonyOS"}),
    )
    .await;
    for action in [
        Action::ResetPasscode,
        Action::RemovePasscode,
        Action::ResetWindowsPin,
    ] {
        let reply = world.act(action, dev::AE_FULLY_MANAGED).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (422, "unsupportedPlatform"),
            "{action}: {:?}",
            reply.body
        );
        let msg = reply.error_message();
        assert!(msg.contains("operatingSystem \"HarmonyOS\""), "{msg}");
    }
    let event = world
        .event(
            Action::ResetPasscode,
            json!({"device": {"id": dev::AE_FULLY_MANAGED}, "reason": "r", "requestedBy": "agent@contoso.com"}),
        )
        .await;
    let result = event.response().unwrap();
    assert_eq!(result["outcome"], "rejected");
    assert_eq!(result["error"]["code"], "unsupportedPlatform");
    // Status still works for any managed device.
    let status = world.status(dev::AE_FULLY_MANAGED).await;
    status.assert_status(200);
    assert_eq!(world.total_posts().await, 0);
}

/// `action` on the device, which must be accepted; the answer's message.
async fn accepted_message(world: &World, action: Action, id: &str) -> String {
    let reply = world.act(action, id).await;
    reply.assert_status(202);
    reply.body["message"].as_str().unwrap().to_string()
}

/// Windows 10 Mobile is out of support: accepting says the device may
/// never check in, and a finished reset speaks of a new PIN, not a removed
/// passcode. Android device administrator is legacy, and the answer says so.
#[tokio::test]
async fn legacy_platforms_are_named_in_the_answer() {
    let world = World::start().await;
    let msg = accepted_message(&world, Action::ResetWindowsPin, dev::WINDOWS_10_MOBILE).await;
    assert!(
        msg.contains("out of support") && msg.contains("may never check in again"),
        "{msg}"
    );
    let status = world.status(dev::WINDOWS_10_MOBILE).await;
    let hint = status.body["actions"][0]["hint"].as_str().unwrap();
    assert!(hint.contains("may never check in again"), "{hint}");
    world
        .sim()
        .advance_action(dev::WINDOWS_10_MOBILE, "resetPasscode", "done", None)
        .await
        .unwrap();
    let status = world.status(dev::WINDOWS_10_MOBILE).await;
    let hint = status.body["actions"][0]["hint"].as_str().unwrap();
    assert!(
        hint.contains("new PIN") && !hint.contains("removed"),
        "{hint}"
    );

    let msg = accepted_message(&world, Action::ResetPasscode, dev::ANDROID_DEVICE_ADMIN_6).await;
    assert!(
        msg.contains("legacy") && msg.contains("below Android 7.0"),
        "{msg}"
    );
    let dry = world.reset_dry_run(dev::ANDROID_DEVICE_ADMIN_6).await;
    assert!(
        dry.body["message"].as_str().unwrap().contains("legacy"),
        "{:?}",
        dry.body
    );
    // A current platform carries no such notice.
    let reply = world.act(Action::ResetPasscode, dev::AE_DEDICATED).await;
    let msg = reply.body["message"].as_str().unwrap();
    assert!(
        !msg.contains("legacy") && !msg.contains("out of support"),
        "{msg}"
    );
    assert_eq!(world.total_posts().await, 3);
}
