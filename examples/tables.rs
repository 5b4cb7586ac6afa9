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
//! `TABLES_KEY_SERIALIZER` sets the table's key codec (`raw` by default), and
//! `TABLES_APPLICATION_SERVER=host:port` the web server address the worker advertises to the
//! group, where `status` asks it `/ready` and `tables --key` beside it asks for values:
//!
//! ```text
//! TABLES_STORE=redb://data TABLES_APPLICATION_SERVER=127.0.0.1:6066 \
//!     cargo run --example tables -- --broker kafka://localhost:9092 worker --web-port 6066
//! cargo run --example tables -- --broker kafka://localhost:9092 status
//! TABLES_STORE=redb://data cargo run --example tables -- --broker kafka://localhost:9092 \
//!     tables --table currency_total --key EUR
//! ```
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

use examples::tables_demo::{self, purchase, Config, TablesDemo, PURCHASES};

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
    let env = |name: &str, default: String| std::env::var(name).unwrap_or(default);
    let d = Config::default();
    let config = Config {
        app: env("TABLES_APP", d.app),
        topic: env("TABLES_TOPIC", d.topic),
        store: env("TABLES_STORE", d.store),
        guarantee: env("TABLES_GUARANTEE", d.guarantee),
        key_serializer: env("TABLES_KEY_SERIALIZER", d.key_serializer),
        application_server: std::env::var("TABLES_APPLICATION_SERVER").ok(),
    };
    let TablesDemo {
        app,
        purchases,
        currency_total,
    } = tables_demo::build(&config)?;
    Ok(app.main_with_demo(move |app| async move {
        for (user, currency, amount) in PURCHASES {
            purchases
                .send(user.to_owned(), purchase(user, currency, amount))
                .await?;
        }
        app.wait_caught_up(Duration::from_secs(30)).await?;
        for (currency, total) in currency_total.items()? {
            println!("final {currency}: {total}");
        }
        Ok::<(), streams::Error>(())
    }))
}
