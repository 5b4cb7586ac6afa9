//! The Faust talk's first demo: an agent that reads purchases.
//!
//! ```text
//! cargo run --example hello                                   # embedded mock Kafka, demo data
//! cargo run --example hello -- --broker kafka://localhost:9092 worker   # a real worker
//! cargo run --example hello -- --help
//! ```
//!
//! Python (Faust):
//! ```python
//! app = faust.App("hello-app", broker="kafka://localhost:9092")
//! topic = app.topic("purchases", key_type=str, value_type=Purchase)
//! @app.agent(topic)
//! async def purchase(purchases):
//!     async for purchase in purchases:
//!         print(purchase)
//! ```

use std::process::ExitCode;

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
    let app = match App::builder("hello-app")
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

    app.agent(&purchases, |mut purchases| async move {
        while let Some(p) = purchases.next().await {
            println!(
                "purchase: {} bought {} {}",
                p.username, p.amount, p.currency
            );
        }
    });

    app.main_with_demo(move |_app| async move {
        for (user, currency, amount) in [
            ("alice", "EUR", 3),
            ("bob", "USD", 12),
            ("carol", "EUR", 7),
            ("dave", "GBP", 1),
        ] {
            let p = Purchase {
                username: user.into(),
                currency: currency.into(),
                amount,
            };
            purchases.send(user.to_owned(), p).await?;
        }
        Ok::<(), streams::Error>(())
    })
}
