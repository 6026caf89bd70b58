//! One sender per device: two *different* requests for the same device
//! (other keys, other callers) never both POST, whether they arrive at the
//! same moment in two environments or one after the other while Intune does
//! not list the first action yet.

use crate::common::*;
use graph_sim::FaultRule;
use passcode_core::Action;

#[tokio::test]
async fn two_requests_for_one_device_at_the_same_moment_send_one_post() {
    let world = World::start_idempotent().await;
    let second = world.another_process(Action::ResetPasscode).await;
    // The first POST to reach Graph takes 1.5 s: whichever request holds
    // the device then, the other arrives while it is still sending.
    world
        .fault_on_reset_post(FaultRule::delay_ms(1500).times(1))
        .await;
    let (a, b) = tokio::join!(
        world.function(Action::ResetPasscode).invoke(
            api_body_event(Action::ResetPasscode, &keyed(dev::AE_DEDICATED, "INC-A")),
            TIMEOUT
        ),
        second.invoke(
            api_body_event(Action::ResetPasscode, &keyed(dev::AE_DEDICATED, "INC-B")),
            TIMEOUT
        ),
    );
    let mut replies = [Reply::from(a), Reply::from(b)];
    replies.sort_by_key(|r| r.status);
    let [waited, sent] = &replies;
    sent.assert_outcome(202, "accepted");
    waited.assert_outcome(200, "alreadyPending");
    assert!(waited.body["pendingSince"].is_string(), "{:?}", waited.body);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);
}

#[tokio::test]
async fn a_send_intune_does_not_list_yet_still_blocks_a_second_one() {
    let world = World::start_idempotent().await;
    let sim = world.sim();
    sim.set_action_listing_delay_seconds(600).await.unwrap();

    world
        .reset_keyed(dev::AE_DEDICATED, "INC-1")
        .await
        .assert_outcome(202, "accepted");
    let listed = world.status(dev::AE_DEDICATED).await;
    listed.assert_status(200);
    let resets = listed.body["actions"].as_array().map_or(0, |a| {
        a.iter().filter(|a| a["action"] == "resetPasscode").count()
    });
    assert_eq!(resets, 0, "Graph does not list the action yet: {listed:?}");

    let again = world.reset_keyed(dev::AE_DEDICATED, "INC-2").await;
    again.assert_outcome(200, "alreadyPending");
    assert!(again.body["pendingSince"].is_string(), "{:?}", again.body);
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 1);

    // Once Intune lists the action, its state decides: the device has
    // run it, so a new request is a new reset.
    sim.set_action_listing_delay_seconds(0).await.unwrap();
    sim.advance_action(dev::AE_DEDICATED, "resetPasscode", "done", Some("24681357"))
        .await
        .unwrap();
    world
        .reset_keyed(dev::AE_DEDICATED, "INC-3")
        .await
        .assert_outcome(202, "accepted");
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 2);
}

/// The control for the test above: the same sequence without the table
/// sends twice, as the README says of the pending check alone.
#[tokio::test]
async fn without_the_table_a_send_intune_does_not_list_yet_is_sent_again() {
    let world = World::start().await;
    world
        .sim()
        .set_action_listing_delay_seconds(600)
        .await
        .unwrap();
    for key in ["INC-1", "INC-2"] {
        world
            .reset_keyed(dev::AE_DEDICATED, key)
            .await
            .assert_outcome(202, "accepted");
    }
    assert_eq!(world.posts(dev::AE_DEDICATED).await, 2);
}
