//! A windowed stream-stream join: orders paid within an hour. Topics `<app>-orders` and
//! `<app>-payments` (keyed by order id, 3 partitions each) are joined by event time
//! (`within` one hour, a minute's grace); each pair goes to `<app>-paid` as
//! `"order N paid M"`. The buffers of both sides live in a changelogged table, so a restart
//! or a crash loses no pair.
//!
//! ```text
//! cargo run --example paid_orders               # the demo, on an embedded mock broker
//! PAID_STORE=redb://data cargo run --example paid_orders -- --broker kafka://localhost:9092 worker
//! ```
//!
//! `PAID_APP` changes the app id (and so the topics' names), `PAID_STORE` the store,
//! `PAID_GUARANTEE=exactly_once` the processing guarantee (the crash test uses them).
//!
//! Kafka Streams:
//! ```java
//! orders.join(payments, (o, p) -> "order " + o + " paid " + p,
//!     JoinWindows.ofTimeDifferenceAndGrace(Duration.ofHours(1), Duration.ofMinutes(1)))
//!     .to("paid");
//! ```

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;

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
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or(default.to_owned());
    let id = env("PAID_APP", "paid-orders");
    let app = streams::App::builder(&id)
        .broker("mock://")
        .store(&env("PAID_STORE", "memory://"))
        .processing_guarantee(&env("PAID_GUARANTEE", "at_least_once"))
        .topic_partitions(3)
        .build()?;
    let orders = app.topic::<String, u64>(&format!("{id}-orders"));
    let payments = app.topic::<String, u64>(&format!("{id}-payments"));
    let paid = app.topic::<String, String>(&format!("{id}-paid"));
    app.stream_join("paid", &orders, &payments)
        .within(Duration::from_secs(3_600))
        .grace(Duration::from_secs(60))
        .inner()
        .sink(&paid, |order, payment| {
            format!("order {order} paid {payment}")
        })?;
    // Prints each result (`--broker` and the worker run it too).
    app.agent_builder("print", &paid)
        .run(|mut results| async move {
            while let Some(r) = results.next().await {
                println!("paid {}: {}", r.key.as_deref().unwrap_or("?"), r.value);
            }
        });
    Ok(app.main_with_demo(move |app| async move {
        for (order, amount) in [("o1", 12), ("o2", 30)] {
            orders.send(order.to_owned(), amount).await?;
            payments.send(order.to_owned(), amount).await?;
        }
        app.wait_caught_up(Duration::from_secs(30)).await?; // the pairs are sent
        app.wait_caught_up(Duration::from_secs(30)).await?; // and printed
        println!("done: 2 orders paid");
        Ok::<(), streams::Error>(())
    }))
}
