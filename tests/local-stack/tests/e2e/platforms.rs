//! Every function on every row of the support matrix, through the real
//! binaries: eligible devices get exactly one POST and a 202, ineligible
//! ones a 422 and no POST at all.

use crate::common::*;
use passcode_core::Action;

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
        let reply = world.api_path(action, id, just_reason()).await;
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
                reply.body["error"]["message"].as_str().unwrap().len() > 60,
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

#[tokio::test]
async fn reset_passcode_on_every_platform_row() {
    check_matrix(Action::ResetPasscode).await;
}

#[tokio::test]
async fn remove_passcode_on_every_platform_row() {
    check_matrix(Action::RemovePasscode).await;
}

#[tokio::test]
async fn reset_windows_pin_on_every_platform_row() {
    check_matrix(Action::ResetWindowsPin).await;
}

#[tokio::test]
async fn passcode_status_on_every_platform_row() {
    check_matrix(Action::Status).await;
}

#[tokio::test]
async fn refusals_tell_the_agent_what_to_do_instead() {
    let world = World::start().await;
    let reply = world
        .api_path(Action::ResetWindowsPin, dev::WINDOWS_DESKTOP, just_reason())
        .await;
    let msg = reply.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("I forgot my PIN"), "{msg}");
    let reply = world
        .api_path(
            Action::RemovePasscode,
            dev::IOS_USER_ENROLLMENT,
            just_reason(),
        )
        .await;
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("User Enrollment")
    );
    let reply = world
        .api_path(Action::ResetPasscode, dev::IOS_ADE, just_reason())
        .await;
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("remove-passcode")
    );
    let reply = world
        .api_path(
            Action::ResetPasscode,
            dev::ANDROID_DEVICE_ADMIN_10,
            just_reason(),
        )
        .await;
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Android 7.0")
    );
    assert_eq!(world.total_posts().await, 0);
}
