//! The short soak: several processes per function, a mixed stream with
//! simultaneous duplicates, random Graph faults and a scaled-down write
//! throttle, with the idempotency table on. Every invariant of
//! `local_stack::soak` must hold. `./dev soak` runs the long version.

use local_stack::soak::{self, SoakConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_keeps_every_invariant() {
    let config = SoakConfig::short();
    let report = soak::run(&config).await.expect("the soak runs");
    println!("{}", report.table());

    assert!(
        report.violations.is_empty(),
        "{} violations:\n{}",
        report.violations.len(),
        report.violations.join("\n")
    );
    // The stream really exercised what it is meant to.
    assert!(report.duplicate_groups > 0);
    assert!(
        report.count_prefix("replayed:") + report.count("transient:requestInProgress") > 0,
        "no duplicate was stopped by the idempotency record: {:?}",
        report.outcomes
    );
    assert!(report.faults_injected > 0);
    assert!(report.count("accepted") > 0, "{:?}", report.outcomes);
    assert!(
        report.count_prefix("rejected:") > 0,
        "{:?}",
        report.outcomes
    );
    assert!(report.committed_posts > 0);
}
