//! The tumbling example's app (the talk's "Tumbling Windows") in streams' test harness: the
//! demo's purchases at their minutes, and every 5-minute window's total checked against a
//! brute-force count, read from the worker's windowed table. No broker process, no binary.

use std::collections::BTreeMap;

use examples::windows_demo::{tumbling, Purchase, MINUTE, PURCHASES};
use streams::testing::Harness;
use streams::Timestamp;

const SIZE: i64 = 5;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_tumbling_demo_totals_every_five_minute_window() {
    let h = Harness::builder()
        .build(|| tumbling("tumbling-app", "purchases"))
        .await
        .unwrap();
    let purchases = h.worker(0).purchases.clone();
    let mut expected: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for (minute, user, currency, amount) in PURCHASES {
        let p = Purchase {
            username: user.into(),
            currency: currency.into(),
            amount,
        };
        h.send(&purchases, currency.to_owned(), p)
            .at(Timestamp::from_millis(minute * MINUTE))
            .await
            .unwrap();
        *expected
            .entry((currency.to_owned(), minute - minute % SIZE))
            .or_default() += amount;
    }
    h.settle().await.unwrap();
    let table = &h.worker(0).currency_total;
    let mut got = BTreeMap::new();
    for currency in ["EUR", "USD"] {
        for (window, total) in table
            .windows(currency, Timestamp::MIN, Timestamp::MAX)
            .unwrap()
        {
            assert_eq!(window.len().as_millis() as i64, SIZE * MINUTE);
            got.insert(
                (currency.to_owned(), window.start().as_millis() / MINUTE),
                total,
            );
        }
    }
    assert_eq!(got, expected);
    h.shutdown().await.unwrap();
}
