//! The short soak: several processes per function, a mixed stream with
//! simultaneous duplicates and rivals (two requests for one device at the
//! same instant), random Graph faults and a scaled-down write
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
        report.rival_pairs > 0,
        "no two requests for one device at once"
    );
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

/// The same short soak without the idempotency table: simultaneous
/// duplicates in different processes both pass Intune's pending check, and
/// the soak must notice. Proves the invariants can fail, and why the table
/// exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_table_the_soak_catches_duplicate_posts() {
    let config = SoakConfig {
        idempotency: false,
        ..SoakConfig::short()
    };
    let report = soak::run(&config).await.expect("the soak runs");
    let doubled: Vec<&String> = report
        .violations
        .iter()
        .filter(|v| v.contains("committed POSTs"))
        .collect();
    println!(
        "{} violations, {} doubled devices",
        report.violations.len(),
        doubled.len()
    );
    assert!(
        !doubled.is_empty(),
        "no device got a second POST without the table; the soak no longer provokes the race: {:?}",
        report.violations
    );
}
