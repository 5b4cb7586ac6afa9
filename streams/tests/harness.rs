//! The whole-app test harness (`streams::testing`): an app with a count-by-key table run as
//! simulated workers over one mock cluster, fed, settled and read back; workers killed,
//! restarted and rebalanced from a seeded scenario; a standby promoted; a failing changelog
//! write reported with nothing committed past it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use streams::testing::Harness;
use streams::{App, Error, Table, Topic};
use testkit::{ApiKey, Intercept, KafkaCode};

const PARTITIONS: i32 = 3;

/// The app under test: events keyed by a word, counted per key into a table.
struct Counts {
    app: App,
    events: Topic<String, String>,
    counts: Table<String, u64>,
}

impl AsRef<App> for Counts {
    fn as_ref(&self) -> &App {
        &self.app
    }
}

/// The app's builder, with `standbys` standby replicas per table partition.
fn counts_app(standbys: u32) -> impl Fn() -> streams::Result<Counts> {
    move || {
        let app = App::builder("counts")
            .topic_partitions(PARTITIONS)
            .table_standby_replicas(standbys)
            .producer_linger(Duration::from_millis(1))
            .broker_session_timeout(Duration::from_millis(1500))
            .broker_heartbeat_interval(Duration::from_millis(300))
            .build()?;
        let events = app.topic::<String, String>("events");
        let counts = app.table::<String, u64>("counts")?.with_default(u64::default);
        let table = counts.clone();
        app.agent_builder("count", &events)
            .table(&counts)
            .run(move |mut events| {
                let table = table.clone();
                async move {
                    while let Some(event) = events.next().await {
                        let key = event.key.clone().unwrap_or_default();
                        table.update(&key, |n| *n += 1)?;
                    }
                    Ok::<(), Error>(())
                }
            });
        Ok(Counts {
            app,
            events,
            counts,
        })
    }
}

#[tokio::test]
async fn three_workers_count_every_event_and_commit_to_the_end() {
    let h = Harness::builder()
        .workers(3)
        .build(counts_app(0))
        .await
        .unwrap();
    let events = h.worker(0).events.clone();
    let mut truth = BTreeMap::new();
    for i in 0..30u64 {
        let key = format!("k{}", i % 7);
        *truth.entry(key.clone()).or_insert(0u64) += 1;
        h.send(&events, key, "x".to_owned()).await.unwrap();
    }
    h.settle().await.unwrap();
    assert_eq!(h.table(&h.worker(0).counts).unwrap(), truth);
    let mut committed = 0;
    for p in 0..PARTITIONS {
        let end = h.cluster().high_watermark("events", p).unwrap();
        assert_eq!(h.committed("events", p).unwrap_or(0), end, "events/{p}");
        committed += end;
    }
    assert_eq!(committed, 30);
    // Every partition has one running owner.
    for p in 0..PARTITIONS {
        assert!(h.owner("events", p).is_some(), "events/{p} has no owner");
        assert_eq!(h.owner("events", p), h.table_owner("counts", p));
    }
}
