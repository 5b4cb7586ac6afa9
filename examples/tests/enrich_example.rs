//! The enrichment example (a stream-table join) run as a user would, on its embedded mock.

mod common;

#[test]
fn enrich_joins_each_purchase_with_the_profile_its_user_has_at_that_moment() {
    let (out, _) = common::run("enrich", &[]);
    let lines = common::lines(&out, "enriched ");
    assert_eq!(lines.len(), 5, "{out}");
    // Users are in different partitions: in order within each phase of the demo only.
    let mut before = lines[..3].to_vec();
    before.sort_unstable();
    assert_eq!(
        before,
        [
            "enriched alice #1 book (gold)",
            "enriched bob #2 pen (silver)",
            "enriched dave #3 cup (no profile)",
        ],
        "{out}"
    );
    let mut after = lines[3..].to_vec();
    after.sort_unstable();
    assert_eq!(
        after,
        [
            "enriched alice #4 lamp (platinum)",
            "enriched carol #5 tea (no profile)",
        ],
        "after an update and a delete: {out}"
    );
    assert!(out.ends_with("done: 5 purchases enriched\n"), "{out}");
}
