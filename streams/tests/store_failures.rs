//! A table's store failing in a running app, on the mock cluster:
//! - a redb store whose disk fails a commit lost batches it had accepted; the app must not read
//!   on from it (older values) nor commit past the failure, and a restart with a working disk
//!   ends with exact totals;
//! - a store ahead of its changelog (the changelog topic was recreated) is wiped and rebuilt
//!   from the changelog, with a warning that says why.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kafka_client::admin::{Admin, OffsetSpec};
use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use stores::testing::FailingDisk;
use stores::{RedbOptions, RedbStore};
use streams::{App, Error, PartitionStatus, Table};
use testkit::MockCluster;

const WAIT: Duration = Duration::from_secs(30);
const PARTITIONS: i32 = 2;
const KEYS: usize = 12;

async fn mock() -> MockCluster {
    MockCluster::builder()
        .default_partitions(PARTITIONS)
        .build()
        .await
        .unwrap()
}

fn amounts(id: &str) -> String {
    format!("{id}-amounts")
}

fn changelog(id: &str) -> String {
    format!("{id}-counts-changelog")
}

/// An app over `mock` keeping its tables in `dir`. Commits only when the test asks (the
/// interval is an hour), so that what is committed when is up to the test.
fn app(mock: &MockCluster, id: &str, dir: &std::path::Path) -> App {
    App::builder(id)
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .store(&format!("redb://{}", dir.display()))
        .topic_partitions(PARTITIONS)
        .broker_commit_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// What the counting agent went through: events taken, and whether it stopped on an error.
#[derive(Default)]
struct Seen {
    events: AtomicUsize,
    failed: AtomicBool,
}

/// `counts` (key -> sum of amounts), updated by an agent over the amounts topic; `store`, if
/// given, is the table's store instead of the one the app's URL opens.
fn counting_app(app: &App, store: Option<RedbStore>) -> (Table<String, i64>, Arc<Seen>) {
    let amounts = app.topic::<String, i64>(&amounts(app.id()));
    let builder = app.table_builder::<String, i64>("counts");
    let builder = match store {
        Some(store) => builder.with_store(Arc::new(store)),
        None => builder,
    };
    let counts = builder.build().unwrap().with_default(i64::default);
    let seen = Arc::new(Seen::default());
    let (table, agent_seen) = (counts.clone(), seen.clone());
    app.agent_builder("count", &amounts)
        .table(&counts)
        .run(move |mut events| {
            let (table, seen) = (table.clone(), agent_seen.clone());
            async move {
                while let Some(e) = events.next().await {
                    seen.events.fetch_add(1, Ordering::SeqCst);
                    let key = e.key.clone().unwrap_or_default();
                    if let Err(err) = table.update(&key, |n| *n += e.value) {
                        seen.failed.store(true, Ordering::SeqCst);
                        return Err(err);
                    }
                }
                Ok::<(), Error>(())
            }
        });
    (counts, seen)
}

/// One sent record: where it landed and what it adds to its key.
#[derive(Debug, Clone)]
struct Sent {
    partition: i32,
    offset: i64,
    key: String,
    amount: i64,
}

/// Sends one record per key with `amount`, keyed, and returns where each landed.
async fn send_round(mock: &MockCluster, topic: &str, amount: i64) -> Vec<Sent> {
    let client = ClientConfig::new(&mock.bootstrap()).unwrap();
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for k in 0..KEYS {
        let key = format!("key-{k}");
        let record = ProducerRecord::new(topic)
            .key(key.clone())
            .value(amount.to_string());
        acks.push((key, producer.send(record).await.unwrap()));
    }
    let mut sent = Vec::new();
    for (key, ack) in acks {
        let meta = ack.await.unwrap();
        sent.push(Sent {
            partition: meta.partition,
            offset: meta.offset,
            key,
            amount,
        });
    }
    producer.close().await.unwrap();
    sent
}

/// Every record of `topic` up to its end, as (partition, key, value).
async fn read_all(mock: &MockCluster, topic: &str) -> Vec<(i32, Bytes, Option<Bytes>)> {
    let client = ClientConfig::new(&mock.bootstrap()).unwrap();
    let admin = Admin::new(client.clone()).await.unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let ends = admin
        .list_offsets(
            tps.iter()
                .map(|tp| (tp.clone(), OffsetSpec::Latest))
                .collect(),
        )
        .await
        .unwrap();
    let mut consumer = Consumer::new(client, ConsumerConfig::default())
        .await
        .unwrap();
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer.seek(tp, Offset::Earliest).await.unwrap();
    }
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tps
        .iter()
        .any(|tp| consumer.position(tp).unwrap_or(0) < ends[tp].offset)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic} not read to its end"
        );
        let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await else {
            continue;
        };
        let r = r.unwrap();
        out.push((r.partition, r.key.unwrap_or_default(), r.value));
    }
    out
}

/// The latest value per key of a changelog (what compaction keeps), decoded as i64.
fn latest(records: &[(i32, Bytes, Option<Bytes>)]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (_, k, v) in records {
        let key = String::from_utf8(k.to_vec()).unwrap();
        match v {
            Some(v) => out.insert(key, serde_json::from_slice(v).unwrap()),
            None => out.remove(&key),
        };
    }
    out
}

fn totals(sent: &[Sent]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for s in sent {
        *out.entry(s.key.clone()).or_default() += s.amount;
    }
    out
}

async fn wait_all_active(app: &App) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let parts = app.table_partitions().unwrap();
        if parts.len() == PARTITIONS as usize
            && parts.iter().all(|p| p.status == PartitionStatus::Active)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "partitions not active: {parts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Warnings and errors logged by this test binary, captured from its first call on.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Capture;
        impl Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .try_init();
        Mutex::new(Vec::new())
    })
}

fn logged_lines(containing: &str) -> Vec<String> {
    String::from_utf8_lossy(&logs().lock().unwrap())
        .lines()
        .filter(|l| l.contains(containing))
        .map(str::to_owned)
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_commit_failed_stops_the_worker_and_a_restart_counts_exactly() {
    let mock = mock().await;
    let id = testkit::unique_name("store-fails");
    let dir = tempfile::tempdir().unwrap();
    // The file the app's redb://DIR opens, here over a disk that fails on demand.
    let path = dir.path().join(format!("{id}-counts.redb"));
    let (disk, faults) = FailingDisk::open(&path).unwrap();
    let store = RedbStore::open_backend(&path, disk, RedbOptions::new()).unwrap();

    let app = app(&mock, &id, dir.path());
    let (counts, seen) = counting_app(&app, Some(store));
    app.start().await.unwrap();
    let mut sent = send_round(&mock, &amounts(&id), 1).await;
    app.wait_caught_up(WAIT).await.unwrap();
    app.commit().await.unwrap(); // changelog, store, offsets, then a durable store commit

    // The disk breaks: the next durable commit fails, after the store accepted the commit's
    // changelog flush into its uncommitted group (a batch that returned Ok).
    faults.fail_syncs_after(0);
    sent.extend(send_round(&mock, &amounts(&id), 2).await);
    // Not `wait_caught_up`, which commits as it goes: one commit only, on request, so that no
    // preparation races the failing durable commit (that race leaves the changelog ahead of
    // the commit: at-least-once, counted again after a restart, not what this test checks).
    let taken = sent.len();
    wait_for("the second round taken", || {
        seen.events.load(Ordering::SeqCst) >= taken
    })
    .await;
    // Commits the second round (its writes reach the changelog), then the store's durable
    // commit fails. The error, if any, is the stop below.
    let _ = app.commit().await;
    let committed_before_third: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| {
            let c = mock.committed_offset(&id, &amounts(&id), p).unwrap_or(0);
            (p, c)
        })
        .collect();
    faults.heal(); // the disk works again; the store must not

    // Events after the failure: reading on would see the counts before the second round.
    let third = send_round(&mock, &amounts(&id), 4).await;
    let third_start: BTreeMap<i32, i64> = third.iter().fold(BTreeMap::new(), |mut m, s| {
        let o = m.entry(s.partition).or_insert(s.offset);
        *o = (*o).min(s.offset);
        m
    });
    sent.extend(third);
    let total = sent.len();
    // The worker may have stopped already (on the failed durable commit); if not, the agent
    // meets the failed store, or (without the fix) counts on from older values.
    tokio::select! {
        _ = app.stopped() => {}
        _ = wait_for("the agent takes the third round or fails", || {
            seen.failed.load(Ordering::SeqCst) || seen.events.load(Ordering::SeqCst) >= total
        }) => {}
    }
    let _ = app.commit().await;
    tokio::time::timeout(WAIT, app.stopped())
        .await
        .expect("the worker stops");
    let err = app
        .shutdown()
        .await
        .expect_err("the worker stops with an error");
    let text = err.to_string();
    assert!(
        text.contains("table counts") && text.contains("partition"),
        "the error names the table and partition: {text}"
    );
    assert!(text.contains("restart"), "says what to do: {text}");

    // Nothing was committed past the events whose writes were lost (the third round's).
    for p in 0..PARTITIONS {
        let committed = mock.committed_offset(&id, &amounts(&id), p).unwrap_or(0);
        if let Some(start) = third_start.get(&p) {
            assert!(
                committed <= *start,
                "partition {p}: committed {committed}, past the third round at {start}"
            );
        }
        assert!(committed >= committed_before_third[&p]);
    }
    // The changelog holds counts of a prefix of each key's events, at least those committed:
    // never a count built on a value the store had lost.
    let logged = latest(&read_all(&mock, &changelog(&id)).await);
    for k in 0..KEYS {
        let key = format!("key-{k}");
        let events: Vec<&Sent> = sent.iter().filter(|s| s.key == key).collect();
        let prefix_sums: Vec<i64> = events
            .iter()
            .scan(0, |sum, s| {
                *sum += s.amount;
                Some(*sum)
            })
            .collect();
        let committed_sum: i64 = events
            .iter()
            .filter(|s| {
                s.offset
                    < mock
                        .committed_offset(&id, &amounts(&id), s.partition)
                        .unwrap_or(0)
            })
            .map(|s| s.amount)
            .sum();
        let value = logged.get(&key).copied().unwrap_or(0);
        assert!(
            prefix_sums.contains(&value) && value >= committed_sum,
            "{key}: changelog holds {value}; counts of its events: {prefix_sums:?}, committed \
             {committed_sum}"
        );
    }
    drop((app, counts));

    // A restart on the same directory and a working disk: the store reopens at its last
    // durable commit, recovers from the changelog, and the events after the commit count once.
    let app = self::app(&mock, &id, dir.path());
    let (counts, _) = counting_app(&app, None);
    app.start().await.unwrap();
    wait_all_active(&app).await;
    app.wait_caught_up(WAIT).await.unwrap();
    let held: BTreeMap<String, i64> = counts.items().unwrap().into_iter().collect();
    assert_eq!(held, totals(&sent), "exact totals after the restart");
    app.commit().await.unwrap();
    assert_eq!(
        latest(&read_all(&mock, &changelog(&id)).await),
        totals(&sent)
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_ahead_of_its_recreated_changelog_is_wiped_and_rebuilt_from_it() {
    logs();
    let mock = mock().await;
    let id = testkit::unique_name("store-ahead");
    let dir = tempfile::tempdir().unwrap();

    // A worker counts two rounds (two flushes per key: the store's applied offsets reach
    // about twice the keys of a partition) and stops cleanly.
    let app = app(&mock, &id, dir.path());
    let (counts, _) = counting_app(&app, None);
    app.start().await.unwrap();
    for round in 1..=2 {
        send_round(&mock, &amounts(&id), round).await;
        app.wait_caught_up(WAIT).await.unwrap();
        app.commit().await.unwrap();
    }
    app.shutdown().await.unwrap();
    drop((app, counts));

    // The changelog is recreated with other, fewer records: every partition's store is now
    // ahead of it.
    mock.delete_topic(&changelog(&id)).unwrap();
    mock.create_topic(&changelog(&id), PARTITIONS, [("cleanup.policy", "compact")])
        .unwrap();
    let client = ClientConfig::new(&mock.bootstrap()).unwrap();
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .unwrap();
    let content = BTreeMap::from([("key-0".to_string(), 100i64), ("fresh".to_string(), 7)]);
    for (key, value) in &content {
        let record = ProducerRecord::new(changelog(&id))
            .key(key.clone())
            .value(value.to_string());
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await.unwrap();

    // A restarted worker holds exactly what the changelog says: no key only its store had.
    let app = self::app(&mock, &id, dir.path());
    let (counts, _) = counting_app(&app, None);
    app.start().await.unwrap();
    wait_all_active(&app).await;
    let held: BTreeMap<String, i64> = counts.items().unwrap().into_iter().collect();
    assert_eq!(held, content, "the table is the changelog's content");
    let parts = app.table_partitions().unwrap();
    for p in &parts {
        assert!(
            p.applied_offset.is_none_or(|o| o <= 1),
            "applied offsets are the new changelog's: {parts:?}"
        );
    }
    // It counts on from there.
    send_round(&mock, &amounts(&id), 3).await;
    app.wait_caught_up(WAIT).await.unwrap();
    let held: BTreeMap<String, i64> = counts.items().unwrap().into_iter().collect();
    assert_eq!(held["key-0"], 103);
    assert_eq!(held["key-1"], 3);
    assert_eq!(held["fresh"], 7);
    app.shutdown().await.unwrap();

    // With a warning that says why, per partition.
    let warned = logged_lines("ahead of its changelog");
    for p in 0..PARTITIONS {
        assert!(
            warned.iter().any(|l| l.contains("WARN")
                && l.contains("table=\"counts\"")
                && l.contains(&format!("partition={p}"))
                && l.contains("wiped and rebuilt from the changelog")),
            "no warning for partition {p}: {warned:#?}"
        );
    }
}
