//! The checker holds itself to its own rule.

#[test]
fn no_module_circle() {
    module_graph::assert_circles(env!("CARGO_MANIFEST_DIR"), &[]);
}
