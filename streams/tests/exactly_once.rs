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
use streams::{App, Error, Table, Timestamp, Topic};
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
    pipeline_on(id, broker, instance, "memory://")
}

/// [`pipeline`] with its table in store `store`.
fn pipeline_on(id: &str, broker: &Broker, instance: &str, store: &str) -> Pipeline {
    let app = broker
        .app(id)
        .store(store)
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
    aborted_transaction_rolls_back("memory://").await;
}

#[tokio::test]
async fn an_aborted_transaction_rolls_a_redb_table_back_without_replaying_it() {
    let dir = tempfile::tempdir().unwrap();
    aborted_transaction_rolls_back(&format!("redb://{}", dir.path().display())).await;
}

async fn aborted_transaction_rolls_back(store: &str) {
    let broker = on_mock(mock().await);
    let id = testkit::unique_name("eos-abort");
    let p = pipeline_on(&id, &broker, "w1", store);
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
async fn two_workers_under_one_name_one_stops_saying_why_and_nothing_is_doubled() {
    let broker = broker().await;
    let id = testkit::unique_name("eos-twice");
    let first = pipeline(&id, &broker, "same");
    first.app.start().await.unwrap();
    send_events(&first.input, 0, 50).await;
    first.app.wait_caught_up(WAIT).await.unwrap();

    // A second worker under the same worker_instance_id: the producers fence each other's
    // transactional id and the group fences the older member (static membership), so one of
    // the two stops, saying why, and the other goes on.
    let second = pipeline(&id, &broker, "same");
    second.app.start().await.unwrap();
    send_events(&second.input, 50, 120).await;
    let (stopped, survivor) = tokio::time::timeout(WAIT, async {
        tokio::select! {
            _ = first.app.stopped() => (&first, &second),
            _ = second.app.stopped() => (&second, &first),
        }
    })
    .await
    .expect("one of the two workers stops by itself");
    let text = stopped
        .app
        .shutdown()
        .await
        .expect_err("stopped on an error")
        .to_string();
    assert!(
        text.contains("static member id") || text.contains("worker_instance_id"),
        "the error says two workers share a name: {text}"
    );
    survivor.app.wait_caught_up(WAIT).await.unwrap();
    survivor.app.shutdown().await.unwrap();
    assert_eq!(
        as_output(read_committed(&broker, &format!("{id}-out")).await),
        expected_output(120)
    );
    assert_eq!(changelog_counts(&broker, &id).await, expected_counts(120));
}

#[tokio::test]
async fn a_worker_fenced_by_a_producer_under_its_id_restarts_and_counts_once() {
    let broker = on_mock(mock().await);
    let id = testkit::unique_name("eos-fenced");
    let p = pipeline(&id, &broker, "w1");
    p.app.start().await.unwrap();
    send_events(&p.input, 0, 40).await;
    p.app.wait_caught_up(WAIT).await.unwrap();
    // A producer takes the worker's transactional id over: the worker's open transaction is
    // aborted and its producer fenced; the worker restarts with a new one (fencing it back).
    let client = kafka_client::ClientConfig::new(&broker.bootstrap).unwrap();
    let config =
        kafka_client::producer::ProducerConfig::default().with_transactional_id(format!("{id}-w1"));
    let usurper = kafka_client::producer::Producer::new(client, config)
        .await
        .unwrap();
    send_events(&p.input, 40, 100).await;
    p.app.wait_caught_up(WAIT).await.unwrap();
    assert!(!p.app.is_stopping(), "the worker restarted by itself");
    p.app.shutdown().await.unwrap();
    usurper.begin_transaction().unwrap();
    let record = kafka_client::producer::ProducerRecord::new(format!("{id}-out"))
        .key("usurper")
        .value("1");
    let sent = usurper.send(record).await;
    let committed = match sent {
        Ok(_) => usurper.commit_transaction().await,
        Err(e) => Err(e),
    };
    // Its produce is refused (abortable, as Kafka's partitions answer); the abort learns it
    // was fenced.
    let err = match committed {
        Err(e) if e.is_transaction_abortable() => usurper.abort_transaction().await.unwrap_err(),
        other => other.expect_err("the usurper was fenced in turn"),
    };
    assert!(err.is_fenced(), "{err}");
    assert_eq!(
        as_output(read_committed(&broker, &format!("{id}-out")).await),
        expected_output(100)
    );
    assert_eq!(changelog_counts(&broker, &id).await, expected_counts(100));
}

#[tokio::test]
async fn a_refused_transactional_id_stops_the_start_naming_the_setting() {
    let broker = on_mock(mock().await);
    let id = testkit::unique_name("eos-refused");
    let p = pipeline(&id, &broker, "w1");
    // The app's own (idempotent) producer is made at connect; the refusal hits the worker's
    // transactional one.
    p.app.connect().await.unwrap();
    broker.mock().intercept(
        ApiKey::InitProducerId,
        Intercept::error(KafkaCode::TransactionalIdAuthorizationFailed).times(1),
    );
    let err = p.app.start().await.expect_err("no transactions, no start");
    assert!(matches!(err, Error::Transactional { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("exactly_once"), "{text}");
    assert!(text.contains(&format!("{id}-w1")), "{text}");
    assert!(
        text.contains("TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
        "{text}"
    );
    // Nothing was processed outside a transaction.
    assert_eq!(p.processed.load(Ordering::SeqCst), 0);
}

#[test]
fn a_transaction_timeout_not_above_the_commit_interval_is_refused() {
    let err = App::builder("eos-config")
        .processing_guarantee("exactly_once")
        .broker_commit_interval(Duration::from_secs(10))
        .transaction_timeout(Duration::from_secs(5))
        .build()
        .expect_err("every transaction would expire");
    let text = err.to_string();
    assert!(text.contains("transaction_timeout"), "{text}");
    assert!(text.contains("broker_commit_interval"), "{text}");
    let err = App::builder("eos-config")
        .processing_guarantee("exactly-once")
        .build()
        .expect_err("a misspelt guarantee");
    assert!(err.to_string().contains("exactly_once"), "{err}");
}

#[tokio::test]
async fn an_expired_transaction_is_aborted_by_the_broker_and_its_events_redone_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_default())
        .with_test_writer()
        .try_init();
    let broker = on_mock(mock().await);
    let id = testkit::unique_name("eos-expired");
    let app = broker
        .app(&id)
        .processing_guarantee("exactly_once")
        .worker_instance_id("w1")
        .broker_commit_interval(Duration::from_millis(100))
        .transaction_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>(&format!("{id}-in"));
    let output = app.topic::<String, i64>(&format!("{id}-out"));
    let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handled = Arc::new(AtomicUsize::new(0));
    let (out, stall, done) = (output.clone(), stalled.clone(), handled.clone());
    app.agent_builder("slow", &input).run(move |mut events| {
        let (out, stall, done) = (out.clone(), stall.clone(), done.clone());
        async move {
            while let Some(e) = events.next().await {
                out.send(e.key.clone().unwrap_or_default(), e.value).await?;
                // The first time event 3 comes, the agent stalls past the transaction
                // timeout while its transaction holds sends: the broker aborts it.
                if e.value == 3 && !stall.swap(true, Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), Error>(())
        }
    });
    app.start().await.unwrap();
    for i in 0..6 {
        input.send(format!("k{i}"), i).await.unwrap();
    }
    wait_until("the stalled transaction redone after the restart", || {
        handled.load(Ordering::SeqCst) > 6
    })
    .await;
    app.wait_caught_up(WAIT).await.unwrap();
    app.shutdown().await.unwrap();
    let out = read_committed(&broker, &format!("{id}-out")).await;
    let mut values: Vec<i64> = out
        .iter()
        .map(|(_, v)| v.as_deref().unwrap_or("").parse().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, vec![0, 1, 2, 3, 4, 5], "each event's send once");
    assert!(
        broker.mock().open_transactions().is_empty(),
        "nothing left open"
    );
}

#[tokio::test]
async fn a_window_closed_in_an_aborted_transaction_emits_its_final_result_once() {
    use streams::WindowResult;
    let broker = on_mock(mock().await);
    let id = testkit::unique_name("eos-finals");
    let app = broker
        .app(&id)
        .processing_guarantee("exactly_once")
        .worker_instance_id("w1")
        .broker_commit_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>(&format!("{id}-clicks"));
    let finals = app.topic::<String, WindowResult<i64>>(&format!("{id}-finals"));
    let table = app
        .table::<String, i64>("clicks")
        .unwrap()
        .with_default(i64::default);
    let windows = table
        .tumbling(Duration::from_millis(10))
        .emit_final_to(&finals)
        .build()
        .unwrap();
    let agent = app.agent_builder("count", &input).table(&windows);
    let processed = Arc::new(AtomicUsize::new(0));
    let count = processed.clone();
    agent.run(move |mut events| {
        let (windows, count) = (windows.clone(), count.clone());
        async move {
            while let Some(e) = events.next().await {
                let key = e.key.clone().unwrap_or_default();
                windows.at(&e)?.update(&key, |n| *n += 1)?;
                count.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), Error>(())
        }
    });
    closes_in_an_aborted_transaction(&app, &broker, &input, &processed).await;

    let mut got: Vec<(String, i64, i64)> = read_committed(&broker, &format!("{id}-finals"))
        .await
        .into_iter()
        .map(|(k, v)| {
            let result: WindowResult<i64> = serde_json::from_str(&v.unwrap()).unwrap();
            (k, result.window.start().as_millis(), result.value)
        })
        .collect();
    got.sort();
    let want = vec![
        ("a".to_owned(), 0, 2),
        ("a".to_owned(), 10, 1),
        ("b".to_owned(), 0, 1),
    ];
    assert_eq!(got, want, "each final result once, read committed");
    let raw = broker.mock().records(&format!("{id}-finals"), 0).len();
    assert!(
        raw > 3,
        "the aborted results are in the log ({raw} records)"
    );
}

#[tokio::test]
async fn an_async_close_callback_sends_inside_the_transaction_and_once_after_an_abort() {
    let broker = on_mock(mock().await);
    let id = testkit::unique_name("eos-close-cb");
    let app = broker
        .app(&id)
        .processing_guarantee("exactly_once")
        .worker_instance_id("w1")
        .broker_commit_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>(&format!("{id}-clicks"));
    let alerts = app.topic::<String, i64>(&format!("{id}-alerts"));
    // The callback sends each closed window's count to `alerts`, keyed "key@start".
    let windows = app
        .table::<String, i64>("clicks")
        .unwrap()
        .with_default(i64::default)
        .tumbling(Duration::from_millis(10))
        .on_window_close_async(move |key, window, count| {
            let alerts = alerts.clone();
            async move {
                let key = format!("{key}@{}", window.start().as_millis());
                alerts.send(key, count).await
            }
        })
        .build()
        .unwrap();
    let processed = Arc::new(AtomicUsize::new(0));
    let count = processed.clone();
    app.agent_builder("count", &input)
        .table(&windows)
        .run(move |mut events| {
            let (windows, count) = (windows.clone(), count.clone());
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    windows.at(&e)?.update_async(&key, |n| *n += 1).await?;
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
    closes_in_an_aborted_transaction(&app, &broker, &input, &processed).await;

    let mut got = read_committed(&broker, &format!("{id}-alerts")).await;
    got.sort();
    let want: Vec<(String, Option<String>)> = [("a@0", "2"), ("a@10", "1"), ("b@0", "1")]
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect();
    assert_eq!(got, want, "each callback's send once, read committed");
    let raw = broker.mock().records(&format!("{id}-alerts"), 0).len();
    assert!(
        raw > 3,
        "the aborted sends are in the log ({raw} records): the callback ran in the transaction"
    );
}

/// Runs the windowed app over events that fill windows 0-10 and 10-20 of "a" and 0-10 of "b",
/// then sends the event that closes them in a transaction the group refuses once: what the
/// closes produced is aborted with it and made again by the replayed event.
async fn closes_in_an_aborted_transaction(
    app: &App,
    broker: &Broker,
    input: &Topic<String, i64>,
    processed: &AtomicUsize,
) {
    app.start().await.unwrap();
    for (key, at) in [("a", 1), ("b", 2), ("a", 5), ("a", 12)] {
        input
            .send_at(key.to_owned(), 1, Timestamp::from_millis(at))
            .await
            .unwrap();
    }
    app.wait_caught_up(WAIT).await.unwrap();
    broker.mock().intercept(
        ApiKey::TxnOffsetCommit,
        Intercept::error(KafkaCode::IllegalGeneration).times(1),
    );
    input
        .send_at("c".to_owned(), 1, Timestamp::from_millis(25))
        .await
        .unwrap();
    wait_until(
        "the closing event processed twice (aborted, then redone)",
        || processed.load(Ordering::SeqCst) >= 6,
    )
    .await;
    app.wait_caught_up(WAIT).await.unwrap();
    app.shutdown().await.unwrap();
}
