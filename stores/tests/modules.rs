//! The modules of stores use each other one way: no circle among siblings, at any level
//! (the shared checker in tools/module-graph).

#[test]
fn no_module_circle() {
    module_graph::assert_circles(env!("CARGO_MANIFEST_DIR"), &[]);
}
