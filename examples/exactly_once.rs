//! Exactly-once processing: each event of `eos-events` ({id, key, amount}) is sent on, doubled,
//! to `eos-doubled`, and counted and summed per key in the table `totals`. Under
//! `exactly_once` (the default here) the output records, the table's changelog writes and the
//! source offsets of one commit interval are one Kafka transaction: a worker killed at any
//! moment neither loses an event nor repeats one, for readers that read committed records
//! (and for the table, which recovers from its changelog). Under `at_least_once` a crash
//! repeats the events processed since the last commit: duplicated output, counts too high.
//! examples/tests/exactly_once_crash.rs kills workers of this program to prove both.
//!
//! ```text
//! cargo run --example exactly_once                    # the demo, on an embedded mock broker
//! EOS_INSTANCE=w1 cargo run --example exactly_once -- --broker kafka://localhost:9092 worker
//! cargo run --example exactly_once -- --broker kafka://localhost:9092 send eos-events \
//!     --key k1 '{"id":1,"key":"k1","amount":5}'
//! ```
//!
//! Settings (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `EOS_GUARANTEE` | `exactly_once` | or `at_least_once` |
//! | `EOS_STORE` | `memory://` | or `redb://DIR` (a restarted worker reuses its DIR) |
//! | `EOS_COMMIT_INTERVAL_MS` | `100` | commit (transaction) interval, as Kafka Streams under exactly-once |
//! | `EOS_INSTANCE` | none | the worker's static name (`group.instance.id`): a restarted worker takes its partitions back at once |
//! | `EOS_TRANSACTION_TIMEOUT_MS` | the app's (10 s) | how long the broker keeps a dead worker's transaction open |
//! | `EOS_APP`, `EOS_SOURCE`, `EOS_OUTPUT` | `eos-app`, `eos-events`, `eos-doubled` | app id and topics |
//! | `EOS_PARTITIONS` | `6` | partitions of the topics the app creates (the source's count) |
//!
//! When a worker stops gracefully (Ctrl-C), it prints the totals of the table partitions it
//! holds, one `final <key> count=<n> sum=<s>` line per key.

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::App;

/// An input event; the output is the same shape with the amount doubled.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Event {
    id: u64,
    key: String,
    amount: i64,
}

/// What the table keeps per key.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Totals {
    count: u64,
    sum: i64,
}

fn main() -> ExitCode {
    match build() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

fn env_ms(name: &str) -> streams::Result<Option<Duration>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(ms) => ms
            .parse()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| streams::Error::invalid_setting(name, ms, "milliseconds expected")),
    }
}

fn build() -> streams::Result<ExitCode> {
    let partitions = env("EOS_PARTITIONS", "6");
    let partitions = partitions.parse().map_err(|_| {
        streams::Error::invalid_setting("EOS_PARTITIONS", &partitions, "a number expected")
    })?;
    let mut builder = App::builder(&env("EOS_APP", "eos-app"))
        .broker("mock://")
        .store(&env("EOS_STORE", "memory://"))
        .processing_guarantee(&env("EOS_GUARANTEE", "exactly_once"))
        .broker_commit_interval(
            env_ms("EOS_COMMIT_INTERVAL_MS")?.unwrap_or(Duration::from_millis(100)),
        )
        .topic_partitions(partitions)
        // A worker that dies without coming back hands its partitions over after 10 s.
        .broker_session_timeout(Duration::from_secs(10))
        .broker_heartbeat_interval(Duration::from_secs(1));
    if let Ok(instance) = std::env::var("EOS_INSTANCE") {
        builder = builder.worker_instance_id(&instance);
    }
    if let Some(timeout) = env_ms("EOS_TRANSACTION_TIMEOUT_MS")? {
        builder = builder.transaction_timeout(timeout);
    }
    let app = builder.build()?;

    let events = app.topic::<String, Event>(&env("EOS_SOURCE", "eos-events"));
    let doubled = app.topic::<String, Event>(&env("EOS_OUTPUT", "eos-doubled"));
    let totals = app
        .table::<String, Totals>("totals")?
        .with_default(Totals::default);

    let table = totals.clone();
    app.agent_builder("double", &events)
        .table(&totals)
        .run(move |mut events| {
            let (doubled, totals) = (doubled.clone(), table.clone());
            async move {
                while let Some(event) = events.next().await {
                    let e = &event.value;
                    let out = Event {
                        id: e.id,
                        key: e.key.clone(),
                        amount: e.amount * 2,
                    };
                    // Both effects belong to the event: under exactly-once they commit (or
                    // abort) together with its source offset, once the event is dropped.
                    doubled.send(&e.key, out).await?;
                    totals.update(&e.key, |t| {
                        t.count += 1;
                        t.sum += e.amount;
                    })?;
                }
                // The stream ends when the worker stops gracefully: show what the store holds.
                for (key, t) in totals.items()? {
                    println!("final {key} count={} sum={}", t.count, t.sum);
                }
                Ok::<(), streams::Error>(())
            }
        });

    Ok(app.main_with_demo(move |_app| async move {
        for id in 0..12u64 {
            let key = format!("k{}", id % 3);
            let event = Event {
                id,
                key: key.clone(),
                amount: id as i64,
            };
            events.send(key, event).await?;
        }
        println!("sent 12 events over keys k0, k1, k2");
        Ok::<(), streams::Error>(())
    }))
}
