//! What the tumbling and hopping examples share: the purchases they send (with explicit
//! timestamps, so that their output is the same at every run), the agent that totals them in
//! a windowed table (the talk's code), and the final printout of every window.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::{AgentBuilder, App, Timestamp, Topic, WindowedTable};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Purchase {
    pub username: String,
    pub currency: String,
    pub amount: i64,
}

pub const MINUTE: i64 = 60_000;

/// The demo's purchases: (minute, user, currency, amount).
pub const PURCHASES: [(i64, &str, &str, i64); 10] = [
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

/// Prints a closed window, as both examples' `on_window_close` do.
pub fn print_closed(currency: &String, window: streams::Window, total: &i64) {
    println!(
        "closed {currency} minutes {}-{}: {total}",
        window.start().as_millis() / MINUTE,
        window.end().as_millis() / MINUTE
    );
}

/// Runs `agent` with the talk's body: each purchase adds its amount to its currency's
/// windows, then prints the total of the window of its time.
pub fn run_totals(
    agent: AgentBuilder<String, Purchase>,
    currency_total: &WindowedTable<String, i64>,
) {
    let totals = currency_total.clone();
    agent.run(move |mut purchases| {
        let totals = totals.clone();
        async move {
            while let Some(p) = purchases.next().await {
                // Faust: currency_total[p.currency] += p.amount
                let at = totals.at(&p)?;
                at.update(&p.currency, |t| *t += p.amount)?;
                // Faust: currency_total[p.currency].current()
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
}

/// The demo: sends the purchases at their minutes (keyed by currency), waits until they are
/// processed, and prints every window of each currency.
pub async fn send_and_print(
    app: App,
    purchases: Topic<String, Purchase>,
    currency_total: WindowedTable<String, i64>,
) -> streams::Result<()> {
    for (minute, user, currency, amount) in PURCHASES {
        let p = Purchase {
            username: user.into(),
            currency: currency.into(),
            amount,
        };
        purchases
            .send_at(
                currency.to_owned(),
                p,
                Timestamp::from_millis(minute * MINUTE),
            )
            .await?;
    }
    app.wait_caught_up(Duration::from_secs(30)).await?;
    for currency in ["EUR", "USD"] {
        for (window, total) in currency_total.windows(currency, Timestamp::MIN, Timestamp::MAX)? {
            println!(
                "window {currency} minutes {}-{}: {total}",
                window.start().as_millis() / MINUTE,
                window.end().as_millis() / MINUTE
            );
        }
    }
    Ok(())
}

/// The tumbling example's app and the handles its users need.
pub struct TumblingDemo {
    pub app: App,
    pub purchases: Topic<String, Purchase>,
    pub currency_total: WindowedTable<String, i64>,
}

impl AsRef<App> for TumblingDemo {
    fn as_ref(&self) -> &App {
        &self.app
    }
}

/// The tumbling example's app (app `id`, purchases from `topic`): totals per currency in
/// 5-minute windows kept an hour, each closed window printed.
pub fn tumbling(id: &str, topic: &str) -> streams::Result<TumblingDemo> {
    let app = App::builder(id)
        .broker("mock://")
        .topic_partitions(3)
        .build()?;
    // Keyed by currency: each currency's purchases are in the partition of its table entries.
    let purchases = app.topic::<String, Purchase>(topic);
    let currency_total = app
        .table::<String, i64>("currency_total")?
        .with_default(i64::default)
        .tumbling(Duration::from_secs(5 * 60))
        .expires(Duration::from_secs(60 * 60))
        .on_window_close(print_closed)
        .build()?;
    let agent = app
        .agent_builder("totals", &purchases)
        .table(&currency_total);
    // `currency_total[p.currency] += p.amount`.
    run_totals(agent, &currency_total);
    Ok(TumblingDemo {
        app,
        purchases,
        currency_total,
    })
}
