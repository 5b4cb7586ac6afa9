//! Enrichment, the first thing most stream apps need after counting: purchases joined with
//! their user's profile. Table `profiles` holds each user's latest profile from topic
//! `enrich-app-profiles` (Kafka Streams' `builder.table(topic)`; a tombstone deletes), and
//! agent `enrich` joins each purchase with it as the table is at that moment (a left join: a
//! purchase of a user without a profile gets `None`), sending the result to
//! `enrich-app-enriched`.
//!
//! ```text
//! cargo run --example enrich                    # the demo, on an embedded mock broker
//! ENRICH_STORE=redb://data cargo run --example enrich -- --broker kafka://localhost:9092 worker
//! ```
//!
//! `ENRICH_APP` changes the app id (and so the topics' names), `ENRICH_STORE` the store,
//! `ENRICH_GUARANTEE=exactly_once` the processing guarantee (the crash test uses them).
//!
//! Kafka Streams:
//! ```java
//! KTable<String, Profile> profiles = builder.table("profiles");
//! builder.<String, Purchase>stream("purchases")
//!     .leftJoin(profiles, (purchase, profile) -> new Enriched(purchase, profile))
//!     .to("enriched");
//! ```

use std::process::ExitCode;
use std::time::Duration;

use examples::enrich_demo::{self, profile, purchase, Config, EnrichDemo};
use kafka_client::producer::ProducerRecord;

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
        app: env("ENRICH_APP", d.app),
        store: env("ENRICH_STORE", d.store),
        guarantee: env("ENRICH_GUARANTEE", d.guarantee),
    };
    let EnrichDemo {
        app,
        profiles,
        purchases,
        ..
    } = enrich_demo::build(&config)?;
    let caught_up = Duration::from_secs(30);
    Ok(app.main_with_demo(move |app| async move {
        for (user, level, country) in [
            ("alice", "gold", "FR"),
            ("bob", "silver", "DE"),
            ("carol", "bronze", "US"),
        ] {
            profiles
                .send(user.to_owned(), profile(level, country))
                .await?;
        }
        app.wait_caught_up(caught_up).await?; // the table holds the profiles
        purchases
            .send("alice".to_owned(), purchase(1, "book", 12))
            .await?;
        purchases
            .send("bob".to_owned(), purchase(2, "pen", 3))
            .await?;
        purchases
            .send("dave".to_owned(), purchase(3, "cup", 5))
            .await?;
        app.wait_caught_up(caught_up).await?;
        // Between purchases: alice moves up, carol's profile is deleted (a tombstone).
        profiles
            .send("alice".to_owned(), profile("platinum", "FR"))
            .await?;
        profiles
            .send_record(ProducerRecord::new(profiles.name()).key("carol"))
            .await?;
        app.wait_caught_up(caught_up).await?;
        purchases
            .send("alice".to_owned(), purchase(4, "lamp", 40))
            .await?;
        purchases
            .send("carol".to_owned(), purchase(5, "tea", 4))
            .await?;
        app.wait_caught_up(caught_up).await?;
        println!("done: 5 purchases enriched");
        Ok::<(), streams::Error>(())
    }))
}
