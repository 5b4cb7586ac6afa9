//! The talk's "Tables in Action": purchases grouped by currency into a table of totals
//! (`currency_total`), printed as they change. The table lives in a store (memory by default,
//! `TABLES_STORE=redb://DIR` for redb) and every change goes to the compacted changelog
//! `tables-app-currency_total-changelog`, from which a restarted or new worker recovers it.
//!
//! ```text
//! cargo run --example tables                      # the demo, on an embedded mock broker
//! TABLES_STORE=redb://data cargo run --example tables -- --broker kafka://localhost:9092 worker
//! cargo run --example tables -- --broker kafka://localhost:9092 tables   # what the store holds
//! ```
//!
//! `TABLES_APP` and `TABLES_TOPIC` change the app id and the purchases topic (the crash tests
//! use them to keep their runs apart on a shared broker). `TABLES_GUARANTEE=exactly_once`
//! makes each commit interval's changelog writes and source offsets one Kafka transaction, so
//! a worker killed mid-interval counts nothing twice (the default is `at_least_once`).
//!
//! Faust:
//! ```python
//! currency_total = app.Table("currency_total", default=int)
//! @app.agent(purchases)
//! async def totals(purchases):
//!     async for p in purchases.group_by(Purchase.currency):
//!         currency_total[p.currency] += p.amount
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

fn main() -> ExitCode {
    match build() {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> streams::Result<ExitCode> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let store = env("TABLES_STORE", "memory://");
    let app = App::builder(&env("TABLES_APP", "tables-app"))
        .broker("mock://")
        .store(&store)
        .processing_guarantee(&env("TABLES_GUARANTEE", "at_least_once"))
        .topic_partitions(3)
        // A worker that dies hands its partitions over after 10 s (Faust's default is 60 s).
        .broker_session_timeout(Duration::from_secs(10))
        .broker_heartbeat_interval(Duration::from_secs(1))
        .build()?;
    let purchases = app.topic::<String, Purchase>(&env("TABLES_TOPIC", "purchases"));
    let currency_total = app
        .table::<String, i64>("currency_total")?
        .with_default(i64::default);

    let totals = currency_total.clone();
    app.agent_builder("totals", &purchases)
        .group_by("currency", |p: &Purchase| p.currency.clone())
        .table(&currency_total)
        .run(move |mut purchases| {
            let totals = totals.clone();
            async move {
                while let Some(p) = purchases.next().await {
                    // Faust: currency_total[p.currency] += p.amount
                    let total = totals.update(&p.currency, |t| *t += p.amount)?;
                    println!("{} total: {total}", p.currency);
                }
                Ok::<(), streams::Error>(())
            }
        });

    Ok(app.main_with_demo(move |app| async move {
        let sent = [
            ("alice", "EUR", 30),
            ("bob", "USD", 5),
            ("carol", "EUR", 12),
            ("dave", "USD", 40),
            ("erin", "GBP", 2),
            ("frank", "GBP", 25),
            ("grace", "EUR", 1),
        ];
        for (user, currency, amount) in sent {
            let p = Purchase {
                username: user.into(),
                currency: currency.into(),
                amount,
            };
            purchases.send(user.to_owned(), p).await?;
        }
        app.wait_caught_up(Duration::from_secs(30)).await?;
        for (currency, total) in currency_total.items()? {
            println!("final {currency}: {total}");
        }
        Ok::<(), streams::Error>(())
    }))
}
