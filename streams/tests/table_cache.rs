//! The tables' write cache (`table_cache_max_bytes`): repeated writes of a key within a commit
//! interval reach the changelog once, at the commit, as their last write (a delete as one
//! tombstone); reads see the cached value; with the cache off every write is a changelog
//! record; a cache over its bound is flushed early, by a commit; a crash before the flush
//! loses nothing (the events are replayed). On the mock cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kafka_client::admin::{Admin, OffsetSpec};
use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use streams::{App, Error, Table};
use testkit::MockCluster;

const WAIT: Duration = Duration::from_secs(30);
const PARTITIONS: i32 = 3;

async fn mock() -> MockCluster {
    MockCluster::builder()
        .default_partitions(PARTITIONS)
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

/// An app that commits only when asked (or when its cache is over `cache` bytes).
fn app(bootstrap: &str, id: &str, cache: u64) -> App {
    builder(bootstrap, id, cache).build().unwrap()
}

fn builder(bootstrap: &str, id: &str, cache: u64) -> streams::AppBuilder {
    App::builder(id)
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(PARTITIONS)
        .broker_commit_interval(Duration::from_secs(3600))
        .broker_commit_every(1_000_000)
        .table_cache_max_bytes(cache)
        .broker_session_timeout(Duration::from_secs(1))
        .broker_heartbeat_interval(Duration::from_millis(100))
}

/// `counts`: key -> sum of amounts; a negative amount deletes the key and counts the delete
/// under key `deleted` (so a test can see that it happened).
fn counting(app: &App) -> Table<String, i64> {
    let amounts = app.topic::<String, i64>(&format!("{}-amounts", app.id()));
    let counts = app
        .table::<String, i64>("counts")
        .unwrap()
        .with_default(i64::default);
    let table = counts.clone();
    app.agent_builder("count", &amounts)
        .table(&counts)
        .run(move |mut events| {
            let table = table.clone();
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    if e.value < 0 {
                        table.remove(&key)?;
                        table.update("deleted", |n| *n += 1)?;
                    } else {
                        table.update(&key, |n| *n += e.value)?;
                    }
                }
                Ok::<(), Error>(())
            }
        });
    counts
}

async fn send(bootstrap: &str, topic: &str, records: &[(&str, i64)]) {
    let client = ClientConfig::new(bootstrap).unwrap();
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for (key, amount) in records {
        let record = ProducerRecord::new(topic)
            .key(key.to_string())
            .value(amount.to_string());
        acks.push(producer.send(record).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// The end offsets of a topic's partitions, summed: records written to it so far.
async fn written(bootstrap: &str, topic: &str) -> i64 {
    let admin = Admin::new(ClientConfig::new(bootstrap).unwrap())
        .await
        .unwrap();
    let specs = (0..PARTITIONS)
        .map(|p| (TopicPartition::new(topic, p), OffsetSpec::Latest))
        .collect();
    match admin.list_offsets(specs).await {
        Ok(ends) => ends.values().map(|e| e.offset).sum(),
        Err(_) => 0, // not created yet
    }
}

/// Every record of `topic`, per key, in order (value `None`: a tombstone).
async fn per_key(bootstrap: &str, topic: &str) -> BTreeMap<String, Vec<Option<i64>>> {
    let end = written(bootstrap, topic).await;
    let client = ClientConfig::new(bootstrap).unwrap();
    let mut consumer = Consumer::new(client, ConsumerConfig::default())
        .await
        .unwrap();
    let tps: Vec<_> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer.seek(tp, Offset::Earliest).await.unwrap();
    }
    let mut out: BTreeMap<String, Vec<Option<i64>>> = BTreeMap::new();
    let mut read = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while read < end {
        assert!(tokio::time::Instant::now() < deadline, "{topic} not read");
        let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await else {
            continue;
        };
        let r = r.unwrap();
        read += 1;
        let key = String::from_utf8(r.key.unwrap_or_default().to_vec()).unwrap();
        let value = r.value.map(|v: Bytes| serde_json::from_slice(&v).unwrap());
        out.entry(key).or_default().push(value);
    }
    out
}

/// Waits until `key` reads `want` in the table (its writes are processed).
async fn wait_value(counts: &Table<String, i64>, key: &str, want: Option<i64>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = counts.get(key).ok().flatten();
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} is {now:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// 50 increments of `hot`, then a put and a delete of `gone`.
fn workload() -> Vec<(&'static str, i64)> {
    let mut records = vec![("hot", 1); 50];
    records.extend([("gone", 5), ("gone", -1)]);
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_n_updates_of_a_key_are_one_changelog_record_at_the_commit() {
    let cluster = mock().await;
    let bootstrap = cluster.bootstrap();
    let app = app(&bootstrap, "cache-on", 1 << 20);
    let counts = counting(&app);
    app.start().await.unwrap();
    send(&bootstrap, "cache-on-amounts", &workload()).await;
    wait_value(&counts, "hot", Some(50)).await;
    wait_value(&counts, "deleted", Some(1)).await;
    assert_eq!(counts.get("gone").unwrap(), None);
    let changelog = "cache-on-counts-changelog";
    assert_eq!(
        written(&bootstrap, changelog).await,
        0,
        "nothing before the commit"
    );

    app.commit().await.unwrap();
    let records = per_key(&bootstrap, changelog).await;
    assert_eq!(records["hot"], vec![Some(50)], "one record, the last write");
    assert_eq!(
        records["gone"],
        vec![None],
        "a put then a delete: one tombstone"
    );
    assert_eq!(records["deleted"], vec![Some(1)]);
    assert_eq!(records.len(), 3);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_off_every_write_is_a_changelog_record() {
    let cluster = mock().await;
    let bootstrap = cluster.bootstrap();
    let app = app(&bootstrap, "cache-off", 0);
    let counts = counting(&app);
    app.start().await.unwrap();
    send(&bootstrap, "cache-off-amounts", &workload()).await;
    wait_value(&counts, "hot", Some(50)).await;
    wait_value(&counts, "deleted", Some(1)).await;
    app.commit().await.unwrap();
    let records = per_key(&bootstrap, "cache-off-counts-changelog").await;
    let expected: Vec<_> = (1..=50).map(Some).collect();
    assert_eq!(records["hot"], expected, "every write, in order");
    assert_eq!(records["gone"], vec![Some(5), None]);
    // The store has the last write all the same.
    assert_eq!(counts.get("hot").unwrap(), Some(50));
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_over_its_bound_is_flushed_before_the_commit_interval() {
    let cluster = mock().await;
    let bootstrap = cluster.bootstrap();
    // 200 keys of about 8 bytes each: well over 256 bytes; the interval is an hour.
    let app = app(&bootstrap, "cache-bound", 256);
    let counts = counting(&app);
    app.start().await.unwrap();
    let keys: Vec<String> = (0..200).map(|k| format!("key-{k:03}")).collect();
    let records: Vec<(&str, i64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    send(&bootstrap, "cache-bound-amounts", &records).await;
    let changelog = "cache-bound-counts-changelog";
    let deadline = tokio::time::Instant::now() + WAIT;
    while written(&bootstrap, changelog).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache over its bound was not flushed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each key once (written once), and the group's offsets follow the flush.
    let records = per_key(&bootstrap, changelog).await;
    assert!(records.values().all(|r| r == &vec![Some(1)]), "{records:?}");
    wait_value(&counts, "key-199", Some(1)).await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_flush_loses_nothing_after_a_restart() {
    let cluster = mock().await;
    let bootstrap = cluster.bootstrap();
    let app1 = app(&bootstrap, "cache-crash", 1 << 20);
    let counts = counting(&app1);
    app1.start().await.unwrap();
    send(&bootstrap, "cache-crash-amounts", &workload()).await;
    wait_value(&counts, "hot", Some(50)).await;
    wait_value(&counts, "deleted", Some(1)).await;
    // The cached writes die with the worker: neither changelog nor offsets have them.
    app1.abort().await;
    drop(counts);
    assert_eq!(written(&bootstrap, "cache-crash-counts-changelog").await, 0);

    let app2 = app(&bootstrap, "cache-crash", 1 << 20);
    let counts = counting(&app2);
    app2.start().await.unwrap();
    // The events are replayed from the last committed offset (none): same result.
    wait_value(&counts, "hot", Some(50)).await;
    wait_value(&counts, "deleted", Some(1)).await;
    assert_eq!(counts.get("gone").unwrap(), None);
    app2.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_exactly_once_an_aborted_interval_leaves_nothing_and_is_replayed() {
    let cluster = mock().await;
    let bootstrap = cluster.bootstrap();
    let eos = |id| {
        builder(&bootstrap, id, 1 << 20)
            .processing_guarantee("exactly_once")
            .broker_commit_interval(Duration::from_secs(600))
            .transaction_timeout(Duration::from_secs(900))
            .build()
            .unwrap()
    };
    let app1 = eos("cache-eos");
    let counts = counting(&app1);
    app1.start().await.unwrap();
    send(&bootstrap, "cache-eos-amounts", &[("hot", 1); 10]).await;
    wait_value(&counts, "hot", Some(10)).await;
    app1.commit().await.unwrap();
    let changelog = "cache-eos-counts-changelog";
    let committed = written(&bootstrap, changelog).await;
    // One record (and the transaction's marker).
    assert!((1..=2).contains(&committed), "{committed}");
    send(&bootstrap, "cache-eos-amounts", &[("hot", 1); 10]).await;
    wait_value(&counts, "hot", Some(20)).await;
    // The second interval dies in its open transaction: nothing of it was produced.
    app1.abort().await;
    drop(counts);
    assert_eq!(written(&bootstrap, changelog).await, committed);

    let app2 = eos("cache-eos");
    let counts = counting(&app2);
    app2.start().await.unwrap();
    wait_value(&counts, "hot", Some(20)).await;
    app2.commit().await.unwrap();
    app2.shutdown().await.unwrap();
}
