//! The customer_orders example (a table-table join and a foreign-key join) run as a user
//! would, on its embedded mock.

mod common;

#[test]
fn customer_orders_prints_both_join_results_before_and_after_changes_of_either_side() {
    let (out, _) = common::run("customer_orders", &[]);
    let rounds: Vec<&str> = out.split("-- ").skip(1).collect();
    assert_eq!(rounds.len(), 2, "{out}");
    let lines = |round: &str| -> Vec<String> {
        round
            .lines()
            .skip(1)
            .filter(|l| l.starts_with("status ") || l.starts_with("order "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        lines(rounds[0]),
        [
            "status c1: ann (gold)",
            "status c2: bob (silver)",
            "status c3: cy (no tier)",
            "order o1: book x1 for ann in Paris",
            "order o2: pen x3 for bob in Berlin",
        ],
        "o3's customer c4 does not exist yet: {out}"
    );
    assert_eq!(
        lines(rounds[1]),
        [
            "status c1: ann (platinum)",
            "status c2: bob (no tier)",
            "status c4: dan (no tier)",
            "order o2: pen x3 for ann in Paris",
            "order o3: cup x2 for dan in Oslo",
        ],
        "after updates, deletes and a change of customer: {out}"
    );
    assert!(out.ends_with("done\n"), "{out}");
}
