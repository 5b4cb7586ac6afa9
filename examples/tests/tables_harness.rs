//! The tables example's app (the talk's "Tables in Action") in streams' test harness: the
//! same app the example runs, fed the demo's purchases over three workers, with no broker
//! process and no example binary.

use std::collections::BTreeMap;
use std::time::Instant;

use examples::tables_demo::{self, purchase, Config, PURCHASES};
use streams::testing::Harness;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_tables_demo_totals_every_purchase_by_currency() {
    let started = Instant::now();
    let h = Harness::builder()
        .workers(3)
        .build(|| tables_demo::build(&Config::default()))
        .await
        .unwrap();
    let purchases = h.worker(0).purchases.clone();
    for (user, currency, amount) in PURCHASES {
        h.send(
            &purchases,
            user.to_owned(),
            purchase(user, currency, amount),
        )
        .await
        .unwrap();
    }
    h.settle().await.unwrap();
    let totals = h.table(&h.worker(0).currency_total).unwrap();
    let expected: BTreeMap<String, i64> = [("EUR", 43), ("GBP", 27), ("USD", 45)]
        .into_iter()
        .map(|(c, t)| (c.to_owned(), t))
        .collect();
    assert_eq!(totals, expected);
    // Each purchase changed its currency's total once: one changelog write each (the
    // repartitioned stream is keyed by currency, so a currency's writes share a partition).
    let changes: usize = (0..3)
        .map(|p| {
            h.cluster()
                .committed_log("tables-app-currency_total-changelog", p)
                .len()
        })
        .sum();
    assert!(
        (3..=PURCHASES.len()).contains(&changes),
        "{changes} changelog records"
    );
    eprintln!(
        "tables demo in the harness: {:?} wall time",
        started.elapsed()
    );
}
