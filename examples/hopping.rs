//! The talk's "Hopping Windows": purchases totalled per currency in 5-minute windows starting
//! every minute, kept an hour: each purchase counts in 5 windows. The purchases carry explicit
//! timestamps (minutes 0 to 12), so the windows and their totals are the same at every run;
//! each window's total is printed when it closes (stream time, the largest timestamp its
//! partition has seen, passes its end).
//!
//! ```text
//! cargo run --example hopping                    # the demo, on an embedded mock broker
//! cargo run --example hopping -- --broker kafka://localhost:9092 worker
//! ```
//!
//! Faust:
//! ```python
//! currency_total = app.Table("currency_total", default=int).hopping(
//!     timedelta(minutes=5), timedelta(minutes=1), expires=timedelta(hours=1))
//! @app.agent(purchases)
//! async def totals(purchases):
//!     async for p in purchases:
//!         currency_total[p.currency] += p.amount
//!         print(p.currency, currency_total[p.currency].current())
//! ```

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::App;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Purchase {
    username: String,
    currency: String,
    amount: i64,
}

const MINUTE: i64 = 60_000;

/// The demo's purchases: (minute, user, currency, amount).
const PURCHASES: [(i64, &str, &str, i64); 10] = [
    (0, "alice", "EUR", 30),
    (1, "bob", "USD", 5),
    (3, "carol", "EUR", 12),
    (4, "dave", "USD", 40),
    (5, "erin", "EUR", 2),
    (6, "frank", "USD", 25),
    (9, "grace", "EUR", 1),
    (10, "heidi", "EUR", 7),
    (11, "ivan", "USD", 3),
    (12, "judy", "EUR", 4),
];

fn main() -> ExitCode {
    match build() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> streams::Result<ExitCode> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let app = App::builder(&env("HOPPING_APP", "hopping-app"))
        .broker("mock://")
        .topic_partitions(3)
        .build()?;
    // Keyed by currency: each currency's purchases are in the partition of its table entries.
    let purchases = app.topic::<String, Purchase>(&env("HOPPING_TOPIC", "purchases"));
    let table = app
        .table::<String, i64>("currency_total")?
        .with_default(i64::default);
    let agent = app.agent_builder("totals", &purchases).table(&table);
    let currency_total = table
        .hopping(Duration::from_secs(5 * 60), Duration::from_secs(60))?
        .expires(Duration::from_secs(60 * 60))?
        .on_window_close(|currency, window, total| {
            println!(
                "closed {currency} minutes {}-{}: {total}",
                window.start / MINUTE,
                window.end / MINUTE
            )
        });

    let totals = currency_total.clone();
    agent.run(move |mut purchases| {
        let totals = totals.clone();
        async move {
            while let Some(p) = purchases.next().await {
                // Faust: currency_total[p.currency] += p.amount
                let at = totals.at(&p)?;
                at.update(&p.currency, |t| *t += p.amount)?;
                // Faust: currency_total[p.currency].current(): the latest window holding it
                let current = at.current(&p.currency)?.unwrap_or_default();
                println!(
                    "{} minute {}: current window total {current}",
                    p.currency,
                    p.timestamp / MINUTE
                );
            }
            Ok::<(), streams::Error>(())
        }
    });

    Ok(app.main_with_demo(move |app| async move {
        for (minute, user, currency, amount) in PURCHASES {
            let p = Purchase {
                username: user.into(),
                currency: currency.into(),
                amount,
            };
            purchases
                .send_at(currency.to_owned(), p, minute * MINUTE)
                .await?;
        }
        app.wait_caught_up(Duration::from_secs(30)).await?;
        for currency in ["EUR", "USD"] {
            for (window, total) in currency_total.windows(currency, i64::MIN, i64::MAX)? {
                println!(
                    "window {currency} minutes {}-{}: {total}",
                    window.start / MINUTE,
                    window.end / MINUTE
                );
            }
        }
        Ok::<(), streams::Error>(())
    }))
}
