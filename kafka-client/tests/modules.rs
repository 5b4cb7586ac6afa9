//! The modules of kafka-client use each other one way: no circle among siblings, at any level
//! (the shared checker in tools/module-graph).

/// Circles not cut yet: none (issue 20 cut `config -> sasl -> conn` and
/// `producer::sender <-> producer::txn`). Any circle fails the test.
const KNOWN_CIRCLES: &[&[&str]] = &[];

#[test]
fn no_module_circle_but_the_known_ones() {
    module_graph::assert_circles(env!("CARGO_MANIFEST_DIR"), KNOWN_CIRCLES);
}
