//! The modules of kafka-client use each other one way: no circle among siblings, at any level
//! (the shared checker in tools/module-graph).

/// Circles not cut yet (issue 20). The test fails when one of them no longer exists, so that
/// its entry is removed with the merge that cuts it, and fails on any circle not listed.
const KNOWN_CIRCLES: &[&[&str]] = &[
    // Being cut on the "kafka-client API" branch.
    &["config", "conn", "sasl"],
    // Not assigned yet: sender reads txn's PRODUCE_TXN_V1, txn uses sender's ProducerIdentity.
    &["producer::sender", "producer::txn"],
];

#[test]
fn no_module_circle_but_the_known_ones() {
    module_graph::assert_circles(env!("CARGO_MANIFEST_DIR"), KNOWN_CIRCLES);
}
