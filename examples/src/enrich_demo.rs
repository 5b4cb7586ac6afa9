//! The enrichment example's app: purchases joined with their user's profile (a stream-table
//! join, Kafka Streams' `purchases.leftJoin(builder.table(profiles))`). The example runs it;
//! its tests run the example as worker processes.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::{App, Table, Topic};

/// A user's profile, keyed by user name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub level: String,
    pub country: String,
}

/// A purchase, keyed by user name (so co-partitioned with the profiles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub id: u64,
    pub item: String,
    pub amount: i64,
}

/// A purchase with what its user's profile said when it was handled (`None`: no profile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enriched {
    pub purchase: Purchase,
    pub profile: Option<Profile>,
}

/// The app and the handles its users need.
pub struct EnrichDemo {
    pub app: App,
    pub profiles: Topic<String, Profile>,
    pub purchases: Topic<String, Purchase>,
    pub enriched: Topic<String, Enriched>,
    pub profile_table: Table<String, Profile>,
}

/// Where and how the app runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The app id; the topics are `<app>-profiles`, `<app>-purchases`, `<app>-enriched`.
    pub app: String,
    pub store: String,
    pub guarantee: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            app: "enrich-app".into(),
            store: "memory://".into(),
            guarantee: "at_least_once".into(),
        }
    }
}

/// Builds the app: table `profiles` holds each user's latest profile (from topic
/// `<app>-profiles`, a tombstone deletes), and agent `enrich` joins each purchase with it,
/// sends the result to `<app>-enriched` and prints it.
pub fn build(config: &Config) -> streams::Result<EnrichDemo> {
    let app = App::builder(&config.app)
        .broker("mock://")
        .store(&config.store)
        .processing_guarantee(&config.guarantee)
        .topic_partitions(3)
        .broker_session_timeout(Duration::from_secs(10))
        .broker_heartbeat_interval(Duration::from_secs(1))
        .build()?;
    let topic = |name: &str| format!("{}-{name}", config.app);
    let profiles = app.topic::<String, Profile>(&topic("profiles"));
    let purchases = app.topic::<String, Purchase>(&topic("purchases"));
    let enriched = app.topic::<String, Enriched>(&topic("enriched"));
    // Kafka Streams: builder.table("profiles")
    let profile_table = app
        .table_builder::<String, Profile>("profiles")
        .from_topic(&profiles)?;

    let out = enriched.clone();
    app.agent_builder("enrich", &purchases)
        .join(&profile_table) // (purchase, Option<profile>), co-partitioned: checked at start
        .run(move |mut purchases| {
            let out = out.clone();
            async move {
                while let Some(event) = purchases.next().await {
                    let user = event.key.clone().unwrap_or_default();
                    let (purchase, profile) = event.into_value();
                    let level = profile.as_ref().map_or("no profile", |p| p.level.as_str());
                    println!(
                        "enriched {user} #{} {} ({level})",
                        purchase.id, purchase.item
                    );
                    out.send(user, Enriched { purchase, profile }).await?;
                }
                Ok::<(), streams::Error>(())
            }
        });
    Ok(EnrichDemo {
        app,
        profiles,
        purchases,
        enriched,
        profile_table,
    })
}

/// A profile of the demo.
pub fn profile(level: &str, country: &str) -> Profile {
    Profile {
        level: level.into(),
        country: country.into(),
    }
}

/// A purchase of the demo.
pub fn purchase(id: u64, item: &str, amount: i64) -> Purchase {
    Purchase {
        id,
        item: item.into(),
        amount,
    }
}
