//! The tables example's app (the talk's "Tables in Action"): purchases grouped by currency
//! into a table of totals. The example runs it; tests build the same app in a harness.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::{App, Table, Topic};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Purchase {
    pub username: String,
    pub currency: String,
    pub amount: i64,
}

/// The demo's purchases: (user, currency, amount).
pub const PURCHASES: [(&str, &str, i64); 7] = [
    ("alice", "EUR", 30),
    ("bob", "USD", 5),
    ("carol", "EUR", 12),
    ("dave", "USD", 40),
    ("erin", "GBP", 2),
    ("frank", "GBP", 25),
    ("grace", "EUR", 1),
];

/// The app and the handles its users need.
pub struct TablesDemo {
    pub app: App,
    pub purchases: Topic<String, Purchase>,
    pub currency_total: Table<String, i64>,
}

impl AsRef<App> for TablesDemo {
    fn as_ref(&self) -> &App {
        &self.app
    }
}

/// Where and how the app runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub app: String,
    pub topic: String,
    pub store: String,
    pub guarantee: String,
    /// The table's key codec (`raw` by default).
    pub key_serializer: String,
    /// The `host:port` this worker advertises for its web server (none by default).
    pub application_server: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            app: "tables-app".into(),
            topic: "purchases".into(),
            store: "memory://".into(),
            guarantee: "at_least_once".into(),
            key_serializer: "raw".into(),
            application_server: None,
        }
    }
}

/// Builds the app: an agent groups purchases by currency and adds each amount to
/// `currency_total`, printing the new total.
pub fn build(config: &Config) -> streams::Result<TablesDemo> {
    let mut builder = App::builder(&config.app);
    if let Some(server) = &config.application_server {
        builder = builder.application_server(server);
    }
    let app = builder
        .broker("mock://")
        .store(&config.store)
        .processing_guarantee(&config.guarantee)
        .topic_partitions(3)
        // A worker that dies hands its partitions over after 10 s (Faust's default is 60 s).
        .broker_session_timeout(Duration::from_secs(10))
        .broker_heartbeat_interval(Duration::from_secs(1))
        .build()?;
    let purchases = app.topic::<String, Purchase>(&config.topic);
    let currency_total = app
        .table_builder::<String, i64>("currency_total")
        .key_serializer(&config.key_serializer)
        .build()?
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
    Ok(TablesDemo {
        app,
        purchases,
        currency_total,
    })
}

/// A purchase of the demo.
pub fn purchase(user: &str, currency: &str, amount: i64) -> Purchase {
    Purchase {
        username: user.into(),
        currency: currency.into(),
        amount,
    }
}
