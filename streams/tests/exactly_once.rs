//! Exactly-once (`processing_guarantee("exactly_once")`): an event's sends, table writes and
//! source offset are committed in one transaction. Read committed, the output holds every
//! event once, after an aborted transaction and after a crash mid-transaction; an aborted
//! transaction rolls the tables back without replaying their changelogs. On the mock (with
//! intercepts) and, for the tests without intercepts, on real Kafka when KAFKA_BOOTSTRAP is
//! set.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{broker, mock, on_mock, wait_until, Broker, WAIT};
use futures::StreamExt;
use kafka_client::admin::{Admin, OffsetSpec};
use kafka_client::consumer::{Consumer, ConsumerConfig, IsolationLevel, Offset};
use kafka_client::TopicPartition;
use streams::{App, Error, Table, Topic};
use testkit::{ApiKey, Intercept, KafkaCode};

const EVENTS: usize = 300;
const KEYS: usize = 7;

/// A counting pipeline: each event `(key, n)` is sent on to `<id>-out` as `n * 2` and counted
/// per key in table `counts`.
struct Pipeline {
    app: App,
    input: Topic<String, i64>,
    counts: Table<String, i64>,
    processed: Arc<AtomicUsize>,
}

fn pipeline(id: &str, broker: &Broker, instance: &str) -> Pipeline {
    let app = broker
        .app(id)
        .processing_guarantee("exactly_once")
        .worker_instance_id(instance)
        .broker_commit_interval(Duration::from_millis(100))
        .broker_rebalance_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>(&format!("{id}-in"));
    let output = app.topic::<String, i64>(&format!("{id}-out"));
    let counts = app
        .table::<String, i64>("counts")
        .unwrap()
        .with_default(|| 0);
    let processed = Arc::new(AtomicUsize::new(0));
    let (table, out, done) = (counts.clone(), output.clone(), processed.clone());
    app.agent_builder("count", &input)
        .table(&counts)
        .run(move |mut events| {
            let (table, out, done) = (table.clone(), out.clone(), done.clone());
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    table.update(&key, |n| *n += 1)?;
                    out.send(key, e.value * 2).await?;
                    done.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
    Pipeline {
        app,
        input,
        counts,
        processed,
    }
}

async fn send_events(input: &Topic<String, i64>, from: usize, to: usize) {
    for i in from..to {
        input
            .send(format!("k{}", i % KEYS), i as i64)
            .await
            .unwrap();
    }
}

/// Every record of `topic`/0 a read_committed consumer sees, as (key, value) text, read to
/// the partition's end.
async fn read_committed(broker: &Broker, topic: &str) -> Vec<(String, Option<String>)> {
    let client = kafka_client::ClientConfig::new(&broker.bootstrap).unwrap();
    let tp = TopicPartition::new(topic, 0);
    let admin = Admin::new(client.clone()).await.unwrap();
    let end = admin
        .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
        .await
        .unwrap()[&tp]
        .offset;
    let config = ConsumerConfig::default().with_isolation_level(IsolationLevel::ReadCommitted);
    let mut consumer = Consumer::new(client, config).await.unwrap();
    consumer.assign(vec![tp.clone()]);
    consumer.seek(&tp, Offset::Earliest).await.unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while consumer.position(&tp).unwrap_or(0) < end {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{tp} not read to its end ({end}) by a read_committed consumer: an open transaction?"
        );
        let Ok(record) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
        else {
            continue;
        };
        let record = record.unwrap();
        let text = |b: Option<bytes::Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
        out.push((text(record.key).unwrap_or_default(), text(record.value)));
    }
    out
}

/// What the output must hold: each event once, `n * 2` under its key.
fn expected_output(events: usize) -> BTreeMap<String, Vec<i64>> {
    let mut want: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for i in 0..events {
        want.entry(format!("k{}", i % KEYS))
            .or_default()
            .push(i as i64 * 2);
    }
    want
}

fn as_output(records: Vec<(String, Option<String>)>) -> BTreeMap<String, Vec<i64>> {
    let mut got: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (k, v) in records {
        got.entry(k)
            .or_default()
            .push(v.and_then(|v| v.parse().ok()).unwrap_or(-1));
    }
    got.values_mut().for_each(|v| v.sort());
    got
}

/// The last committed count per key in the changelog.
async fn changelog_counts(broker: &Broker, id: &str) -> BTreeMap<String, i64> {
    read_committed(broker, &format!("{id}-counts-changelog"))
        .await
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?.parse().ok()?)))
        .collect()
}

fn expected_counts(events: usize) -> BTreeMap<String, i64> {
    let mut want = BTreeMap::new();
    for i in 0..events {
        *want.entry(format!("k{}", i % KEYS)).or_insert(0) += 1;
    }
    want
}

#[tokio::test]
async fn sends_table_writes_and_offsets_commit_together() {
    let broker = broker().await;
    let id = testkit::unique_name("eos-together");
    let p = pipeline(&id, &broker, "w1");
    p.app.start().await.unwrap();
    send_events(&p.input, 0, EVENTS).await;
    p.app.wait_caught_up(WAIT).await.unwrap();
    p.app.shutdown().await.unwrap();

    assert_eq!(
        as_output(read_committed(&broker, &format!("{id}-out")).await),
        expected_output(EVENTS)
    );
    assert_eq!(
        changelog_counts(&broker, &id).await,
        expected_counts(EVENTS)
    );
    let committed = broker.committed(&id, &format!("{id}-in")).await;
    assert!(
        committed.is_some_and(|c| c >= EVENTS as i64),
        "committed {committed:?}"
    );
}

#[tokio::test]
async fn an_aborted_transaction_leaves_nothing_visible_and_rolls_the_tables_back() {
    let broker = on_mock(mock().await);
    let id = testkit::unique_name("eos-abort");
    let p = pipeline(&id, &broker, "w1");
    p.app.start().await.unwrap();
    send_events(&p.input, 0, 100).await;
    p.app.wait_caught_up(WAIT).await.unwrap();
    // The group refuses the next transaction's offsets as if it had moved on (KIP-447): the
    // transaction aborts and the worker starts again from the last committed one.
    broker.mock().intercept(
        ApiKey::TxnOffsetCommit,
        Intercept::error(KafkaCode::IllegalGeneration).times(1),
    );
    let before = p.processed.load(Ordering::SeqCst);
    send_events(&p.input, 100, 200).await;
    wait_until("the aborted events processed again", || {
        p.processed.load(Ordering::SeqCst) > before + 100
    })
    .await;
    p.app.wait_caught_up(WAIT).await.unwrap();
    let replayed: u64 = p
        .app
        .table_partitions()
        .unwrap()
        .iter()
        .map(|t| t.replayed)
        .sum();
    assert_eq!(
        p.counts.get("k0").unwrap(),
        Some(expected_counts(200)["k0"]),
        "the table counts each event once after the abort"
    );
    p.app.shutdown().await.unwrap();

    // The store kept only committed writes: the restarted worker replayed no committed record
    // (the aborted ones are skipped by its read_committed consumer).
    assert_eq!(
        replayed, 0,
        "records replayed into the tables after the abort"
    );
    assert_eq!(
        as_output(read_committed(&broker, &format!("{id}-out")).await),
        expected_output(200)
    );
    assert_eq!(changelog_counts(&broker, &id).await, expected_counts(200));
    let raw = broker.mock().records(&format!("{id}-out"), 0).len();
    assert!(
        raw > 200,
        "the aborted transaction's records are in the log ({raw} records), invisible to read_committed"
    );
}

#[tokio::test]
async fn a_worker_crashed_mid_transaction_is_replaced_without_duplicates() {
    let broker = broker().await;
    let id = testkit::unique_name("eos-crash");
    let first = pipeline(&id, &broker, "w1");
    first.app.start().await.unwrap();
    send_events(&first.input, 0, 150).await;
    first.app.wait_caught_up(WAIT).await.unwrap();
    // More events, processed into the open transaction, then a crash: no commit, no abort.
    send_events(&first.input, 150, 250).await;
    wait_until("events processed into the open transaction", || {
        first.processed.load(Ordering::SeqCst) > 150
    })
    .await;
    first.app.abort().await;

    // The same worker restarted: its producer fences the old one and aborts its transaction.
    let second = pipeline(&id, &broker, "w1");
    second.app.start().await.unwrap();
    second.app.wait_caught_up(WAIT).await.unwrap();
    second.app.shutdown().await.unwrap();

    assert_eq!(
        as_output(read_committed(&broker, &format!("{id}-out")).await),
        expected_output(250)
    );
    assert_eq!(changelog_counts(&broker, &id).await, expected_counts(250));
}

#[tokio::test]
async fn a_second_worker_with_the_same_instance_id_fences_the_first() {
    let broker = broker().await;
    let id = testkit::unique_name("eos-fenced");
    let first = pipeline(&id, &broker, "same");
    first.app.start().await.unwrap();
    send_events(&first.input, 0, 20).await;
    first.app.wait_caught_up(WAIT).await.unwrap();

    // Only its transactional producer is needed to take the id over.
    let client = kafka_client::ClientConfig::new(&broker.bootstrap).unwrap();
    let config = kafka_client::producer::ProducerConfig::default()
        .with_transactional_id(format!("{id}-same"));
    let _usurper = kafka_client::producer::Producer::new(client, config)
        .await
        .unwrap();
    send_events(&first.input, 20, 40).await;
    let stopped = common::stopped_by_itself(&first.app).await;
    match stopped {
        Err(Error::Fenced {
            transactional_id, ..
        }) => assert_eq!(transactional_id, format!("{id}-same")),
        other => panic!("expected the worker to stop fenced, got {other:?}"),
    }
    let out = read_committed(&broker, &format!("{id}-out")).await;
    assert!(
        out.len() <= 40,
        "nothing written after the fence is visible"
    );
}
