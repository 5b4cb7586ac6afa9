//! Stream operations in the talk's order: `filter` drops the small purchases, then `group_by`
//! re-partitions the rest by currency through the internal topic
//! `operations-app-totals-currency-repartition`, so one worker sees every purchase of a currency.
//!
//! ```text
//! cargo run --example operations
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::App;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Purchase {
    username: String,
    currency: String,
    amount: u32,
}

fn main() -> ExitCode {
    let app = match App::builder("operations-app")
        .broker("mock://")
        .topic_partitions(3)
        .build()
    {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let purchases = app.topic::<String, Purchase>("purchases");
    let totals = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));

    let sums = totals.clone();
    // Faust: `async for p in purchases.filter(lambda p: p.amount >= 10).group_by(Purchase.currency)`
    app.agent_builder("totals", &purchases)
        .filter(|p: &Purchase| p.amount >= 10)
        .group_by("currency", |p: &Purchase| p.currency.clone())
        .run(move |mut large| {
            let sums = sums.clone();
            async move {
                while let Some(p) = large.next().await {
                    let mut sums = sums.lock().unwrap_or_else(|e| e.into_inner());
                    let total = sums.entry(p.currency.clone()).or_default();
                    *total += p.amount;
                    println!(
                        "large purchase: {} {} {} (total {} {})",
                        p.username, p.amount, p.currency, total, p.currency
                    );
                }
            }
        });

    app.main_with_demo(move |app| async move {
        for (user, currency, amount) in [
            ("alice", "EUR", 30),
            ("bob", "USD", 5),
            ("carol", "EUR", 12),
            ("dave", "USD", 40),
            ("erin", "GBP", 2),
            ("frank", "GBP", 25),
            ("grace", "EUR", 1),
        ] {
            let p = Purchase {
                username: user.into(),
                currency: currency.into(),
                amount,
            };
            purchases.send(user.to_owned(), p).await?;
        }
        app.wait_caught_up(std::time::Duration::from_secs(30))
            .await?;
        for (currency, total) in totals.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            println!("total {currency}: {total}");
        }
        Ok::<(), streams::Error>(())
    })
}
