//! The transactional producer: commit and abort as read_committed and read_uncommitted
//! consumers see them, offsets in transactions (and KIP-447 fencing by the group
//! generation), fencing by a newer producer with the same transactional id, the coordinator's
//! timeout, recovery after an abortable error, and the state rules; under both transaction
//! protocol versions (`_v1` tests: a broker formatted with `transaction.version=1`, named by
//! KAFKA_BOOTSTRAP_TXN_V1, from `scripts/kafka start NAME --txn-v1`; the others: the broker of
//! KAFKA_BOOTSTRAP, Kafka 4's default version 2). Java interop both ways at the end.
//!
//! Without those variables each test runs against a mock cluster of its own giving the
//! version it needs: the same suite, unchanged, on the mock and on real Kafka.

mod common;

use std::time::{Duration, Instant};

use common::{java, unique};
use kafka_client::admin::{Admin, NewTopic, OffsetSpec};
use kafka_client::consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, Offset,
};
use kafka_client::error::TxnStateProblem;
use kafka_client::group::{ConsumerGroupMetadata, GroupConfig, GroupConsumer};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, Error, TopicPartition};

/// A broker to run the suite against and the transaction version it should give.
struct Target {
    bootstrap: String,
    version: u8,
    /// The mock cluster serving it, when no real broker was named.
    _mock: Option<testkit::MockCluster>,
}

/// The broker for transaction version `version`: KAFKA_BOOTSTRAP (version 2) or
/// KAFKA_BOOTSTRAP_TXN_V1 (version 1) when set, else a mock cluster of this test giving that
/// version.
async fn target(version: u8) -> Target {
    let var = if version == 1 {
        "KAFKA_BOOTSTRAP_TXN_V1"
    } else {
        "KAFKA_BOOTSTRAP"
    };
    if let Ok(bootstrap) = std::env::var(var) {
        return Target {
            bootstrap,
            version,
            _mock: None,
        };
    }
    let mock = testkit::MockCluster::builder()
        .transaction_version(version as i16)
        .build()
        .await
        .expect("mock cluster");
    Target {
        bootstrap: mock.bootstrap(),
        version,
        _mock: Some(mock),
    }
}

fn client(bootstrap: &str) -> ClientConfig {
    ClientConfig::new(bootstrap)
        .expect("bootstrap")
        .with_client_id("txn-tests")
        .with_request_timeout(Duration::from_secs(15))
}

async fn create_topic(bootstrap: &str, prefix: &str, partitions: i32) -> String {
    let name = unique(prefix);
    Admin::new(client(bootstrap))
        .await
        .expect("admin")
        .create_topics(vec![NewTopic::new(&name, partitions, 1)])
        .await
        .expect("create topic");
    name
}

/// A transactional producer whose transaction version must be `t.version`.
async fn txn_producer(t: &Target, id: &str, config: ProducerConfig) -> Producer {
    let producer = Producer::new(client(&t.bootstrap), config.with_transactional_id(id))
        .await
        .expect("transactional producer");
    assert_eq!(
        producer.transaction_version(),
        Some(t.version),
        "the broker's finalized transaction.version"
    );
    producer
}

fn record(topic: &str, partition: i32, value: &str) -> ProducerRecord {
    ProducerRecord::new(topic)
        .partition(partition)
        .key(value.to_owned())
        .value(value.to_owned())
}

/// Sends `values` to `topic` (round-robin over `partitions`) in the open transaction.
async fn send_all(producer: &Producer, topic: &str, partitions: i32, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        drop(
            producer
                .send(record(topic, i as i32 % partitions, v))
                .await
                .expect("send"),
        );
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

async fn reader(bootstrap: &str, topic: &str, partitions: i32, level: IsolationLevel) -> Consumer {
    let mut consumer = Consumer::new(
        client(bootstrap),
        ConsumerConfig::default()
            .with_isolation_level(level)
            .with_fetch_max_wait(Duration::from_millis(100)),
    )
    .await
    .expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer.seek(tp, Offset::Earliest).await.expect("seek");
    }
    consumer
}

fn text(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.as_deref().unwrap_or_default().to_vec()).expect("utf-8")
}

/// Reads until `last` arrives (on a one-partition topic everything before it has been seen)
/// and returns the values read, `last` included.
async fn read_through(consumer: &mut Consumer, last: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let v = text(&common::recv(consumer).await);
        out.push(v.clone());
        if v == last {
            return out;
        }
    }
}

/// Polls `check` every 50 ms until it returns true, failing after `timeout`.
async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------------ scenarios

/// Three committed transactions in a row over two partitions (under version 2 each EndTxn
/// bumps the epoch, which the producer adopts) are all visible to read_committed.
async fn commit_visible(t: Target) {
    let topic = create_topic(&t.bootstrap, "txn-commit", 2).await;
    let producer = txn_producer(&t, &unique("txn-commit"), ProducerConfig::default()).await;
    let mut expected = Vec::new();
    for round in 0..3 {
        producer.begin_transaction().unwrap();
        let vs = values(&format!("r{round}"), 6);
        send_all(&producer, &topic, 2, &vs).await;
        producer.commit_transaction().await.unwrap();
        expected.extend(vs);
    }
    producer.close().await.unwrap();
    let mut consumer = reader(&t.bootstrap, &topic, 2, IsolationLevel::ReadCommitted).await;
    let mut got: Vec<String> = common::recv_n(&mut consumer, expected.len())
        .await
        .iter()
        .map(text)
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

/// commit, abort, commit: read_committed sees the two committed ones only,
/// read_uncommitted all three.
async fn abort_invisible(t: Target) {
    let topic = create_topic(&t.bootstrap, "txn-abort", 1).await;
    let producer = txn_producer(&t, &unique("txn-abort"), ProducerConfig::default()).await;
    let (c1, aborted, c2) = (values("c1", 3), values("aborted", 3), values("c2", 3));
    for (vs, commit) in [(&c1, true), (&aborted, false), (&c2, true)] {
        producer.begin_transaction().unwrap();
        send_all(&producer, &topic, 1, vs).await;
        if commit {
            producer.commit_transaction().await.unwrap();
        } else {
            producer.flush().await; // the aborted records do reach the log
            producer.abort_transaction().await.unwrap();
        }
    }
    producer.close().await.unwrap();
    let last = c2.last().unwrap().clone();

    let mut committed = reader(&t.bootstrap, &topic, 1, IsolationLevel::ReadCommitted).await;
    let seen = read_through(&mut committed, &last).await;
    assert_eq!(seen, [c1.clone(), c2.clone()].concat());

    let mut uncommitted = reader(&t.bootstrap, &topic, 1, IsolationLevel::ReadUncommitted).await;
    let seen = read_through(&mut uncommitted, &last).await;
    assert_eq!(seen, [c1, aborted, c2].concat());
}

/// Offsets sent in an aborted transaction are not committed; in a committed one they are.
async fn offsets_commit_with_transaction(t: Target) {
    let input = create_topic(&t.bootstrap, "txn-offsets-in", 1).await;
    let output = create_topic(&t.bootstrap, "txn-offsets-out", 1).await;
    common::produce(
        &t.bootstrap,
        (0..5)
            .map(|i| record(&input, 0, &format!("in-{i}")))
            .collect(),
    )
    .await;
    let group = unique("txn-offsets-group");
    let mut consumer = GroupConsumer::new(
        client(&t.bootstrap),
        ConsumerConfig::default().with_auto_offset_reset(AutoOffsetReset::Earliest),
        GroupConfig::new(&group).with_auto_commit(false),
    )
    .await
    .unwrap();
    consumer.subscribe([input.as_str()]);
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("records within 30 s")
            .unwrap();
    }
    let tp = TopicPartition::new(&input, 0);
    let metadata = consumer.group_metadata();
    assert_eq!(metadata.group_id, group);
    assert!(metadata.generation_id > 0 && !metadata.member_id.is_empty());

    let producer = txn_producer(&t, &unique("txn-offsets"), ProducerConfig::default()).await;
    producer.begin_transaction().unwrap();
    send_all(&producer, &output, 1, &values("out-aborted", 2)).await;
    producer
        .send_offsets_to_transaction(vec![(tp.clone(), 5)], &metadata)
        .await
        .unwrap();
    producer.abort_transaction().await.unwrap();
    assert_eq!(
        consumer.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp],
        None
    );

    producer.begin_transaction().unwrap();
    send_all(&producer, &output, 1, &values("out", 2)).await;
    producer
        .send_offsets_to_transaction(vec![(tp.clone(), 3)], &consumer.group_metadata())
        .await
        .unwrap();
    producer.commit_transaction().await.unwrap();
    assert_eq!(
        consumer.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp],
        Some(3)
    );
    producer.close().await.unwrap();
    consumer.close().await.unwrap();
}

/// A second producer with the same transactional id fences the first and aborts its open
/// transaction; the first can do nothing more.
async fn newer_producer_fences(t: Target) {
    let topic = create_topic(&t.bootstrap, "txn-fence", 1).await;
    let id = unique("txn-fence");
    let first = txn_producer(&t, &id, ProducerConfig::default()).await;
    first.begin_transaction().unwrap();
    first
        .send(record(&topic, 0, "zombie-1"))
        .await
        .unwrap()
        .await
        .expect("delivered before the fence");

    let second = txn_producer(&t, &id, ProducerConfig::default()).await;

    // The first's transaction was aborted; its next send fails (the partition refuses the
    // old epoch: abortable, as in Java since KIP-588), its commit fails, and the abort
    // learns from the coordinator that it was fenced.
    let delivery = first.send(record(&topic, 0, "zombie-2")).await.unwrap();
    let sent = delivery.await;
    assert!(sent.is_err(), "send of a fenced producer: {sent:?}");
    let commit = first.commit_transaction().await;
    assert!(
        commit
            .as_ref()
            .is_err_and(|e| e.is_transaction_abortable() || e.is_fenced()),
        "commit of a fenced producer: {commit:?}"
    );
    let abort = first.abort_transaction().await;
    assert!(
        matches!(&abort, Err(Error::ProducerFenced { transactional_id }) if *transactional_id == id),
        "abort of a fenced producer: {abort:?}"
    );
    let again = first.begin_transaction();
    assert!(
        matches!(again, Err(Error::ProducerFenced { .. })),
        "{again:?}"
    );

    second.begin_transaction().unwrap();
    drop(second.send(record(&topic, 0, "new-1")).await.unwrap());
    second.commit_transaction().await.unwrap();
    second.close().await.unwrap();

    let mut consumer = reader(&t.bootstrap, &topic, 1, IsolationLevel::ReadCommitted).await;
    assert_eq!(read_through(&mut consumer, "new-1").await, ["new-1"]);
}

/// KIP-447: offsets sent with the group metadata of a generation the group has left are
/// refused (the transaction must abort); with the current generation they commit.
async fn stale_generation_refused(t: Target) {
    let input = create_topic(&t.bootstrap, "txn-kip447", 2).await;
    common::produce(
        &t.bootstrap,
        (0..2)
            .map(|p| record(&input, p, &format!("in-{p}")))
            .collect(),
    )
    .await;
    let group = unique("txn-kip447-group");
    let member = |name: &str| {
        let config = GroupConfig::new(&group)
            .with_auto_commit(false)
            .with_session_timeout(Duration::from_secs(10))
            .with_heartbeat_interval(Duration::from_millis(300))
            .with_rebalance_timeout(Duration::from_secs(10));
        let _ = name;
        GroupConsumer::new(
            client(&t.bootstrap),
            ConsumerConfig::default()
                .with_auto_offset_reset(AutoOffsetReset::Earliest)
                .with_fetch_max_wait(Duration::from_millis(100)),
            config,
        )
    };
    let mut first = member("first").await.unwrap();
    first.subscribe([input.as_str()]);
    tokio::time::timeout(Duration::from_secs(30), first.recv())
        .await
        .expect("a record within 30 s")
        .unwrap();
    let stale = first.group_metadata();
    assert!(stale.generation_id > 0);

    // A second member joins: the group moves to a new generation, with the first in it.
    let mut second = member("second").await.unwrap();
    second.subscribe([input.as_str()]);
    let second_task = tokio::spawn(async move {
        loop {
            second.group_work().await.unwrap();
            let _ = tokio::time::timeout(Duration::from_millis(100), second.poll_record()).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.generation() <= stale.generation_id {
        assert!(Instant::now() < deadline, "no new generation within 30 s");
        first.group_work().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_millis(100), first.poll_record()).await;
    }

    let producer = txn_producer(&t, &unique("txn-kip447"), ProducerConfig::default()).await;
    let tp = TopicPartition::new(&input, 0);
    producer.begin_transaction().unwrap();
    let refused = producer
        .send_offsets_to_transaction(vec![(tp.clone(), 1)], &stale)
        .await;
    match &refused {
        Err(e @ Error::TransactionAbortable { source, .. }) => {
            assert!(e.is_transaction_abortable());
            assert!(
                matches!(
                    &**source,
                    Error::Rebalancing {
                        operation: "TxnOffsetCommit",
                        ..
                    }
                ),
                "{source:?}"
            );
        }
        other => panic!("offsets of a stale generation: {other:?}"),
    }
    // Abortable: commit refuses, abort works, and a new transaction goes through.
    assert!(producer
        .commit_transaction()
        .await
        .unwrap_err()
        .is_transaction_abortable());
    producer.abort_transaction().await.unwrap();
    producer.begin_transaction().unwrap();
    producer
        .send_offsets_to_transaction(vec![(tp.clone(), 1)], &first.group_metadata())
        .await
        .unwrap();
    producer.commit_transaction().await.unwrap();
    producer.close().await.unwrap();
    second_task.abort();
    first.close().await.unwrap();
}

/// A transaction left open past `transaction_timeout` is aborted by the coordinator (the
/// abort marker appears in the log); the producer's commit then fails, fenced or abortable
/// as the broker answers, and nothing of the transaction is visible to read_committed.
async fn coordinator_times_out(t: Target) {
    let topic = create_topic(&t.bootstrap, "txn-timeout", 1).await;
    let id = unique("txn-timeout");
    let config = ProducerConfig::default().with_transaction_timeout(Duration::from_secs(1));
    let producer = txn_producer(&t, &id, config.clone()).await;
    producer.begin_transaction().unwrap();
    producer
        .send(record(&topic, 0, "timed-out"))
        .await
        .unwrap()
        .await
        .expect("delivered");
    // The record at offset 0, the coordinator's abort marker at 1.
    let admin = Admin::new(client(&t.bootstrap)).await.unwrap();
    let tp = TopicPartition::new(&topic, 0);
    eventually(
        Duration::from_secs(30),
        "the coordinator's abort marker",
        || {
            let (admin, tp) = (&admin, tp.clone());
            async move {
                admin
                    .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
                    .await
                    .is_ok_and(|o| o[&tp].offset >= 2)
            }
        },
    )
    .await;
    let commit = producer.commit_transaction().await;
    let error = commit.expect_err("commit after the coordinator aborted");
    println!(
        "v{}: commit after the coordinator's abort: {error}",
        t.version
    );
    assert!(
        error.is_fenced() || error.is_transaction_abortable(),
        "commit after a timeout: {error:?}"
    );
    // Either way the transactional id goes on: abort and continue, or a new producer.
    let producer = if error.is_transaction_abortable() {
        producer.abort_transaction().await.unwrap();
        producer
    } else {
        drop(producer);
        txn_producer(&t, &id, config).await
    };
    producer.begin_transaction().unwrap();
    drop(producer.send(record(&topic, 0, "after")).await.unwrap());
    producer.commit_transaction().await.unwrap();
    producer.close().await.unwrap();
    let mut consumer = reader(&t.bootstrap, &topic, 1, IsolationLevel::ReadCommitted).await;
    assert_eq!(read_through(&mut consumer, "after").await, ["after"]);
}

/// A record the broker refuses (larger than the topic's max.message.bytes) makes the
/// transaction abortable; after abort_transaction the next one commits.
async fn recovers_after_abortable_error(t: Target) {
    let topic = unique("txn-recover");
    Admin::new(client(&t.bootstrap))
        .await
        .unwrap()
        .create_topics(vec![
            NewTopic::new(&topic, 1, 1).with_config("max.message.bytes", "1024")
        ])
        .await
        .unwrap();
    let producer = txn_producer(&t, &unique("txn-recover"), ProducerConfig::default()).await;
    producer.begin_transaction().unwrap();
    let small = producer.send(record(&topic, 0, "lost")).await.unwrap();
    let big = producer
        .send(record(&topic, 0, &"x".repeat(8 * 1024)))
        .await
        .unwrap();
    let commit = producer.commit_transaction().await;
    let error = commit.expect_err("a commit with an undelivered record");
    assert!(error.is_transaction_abortable(), "{error:?}");
    assert!(big.await.is_err());
    let _ = small.await; // in the same batch as the big one, or aborted with the transaction
                         // Nothing else may happen before the abort.
    assert!(producer
        .begin_transaction()
        .unwrap_err()
        .is_transaction_abortable());
    assert!(producer
        .send(record(&topic, 0, "refused"))
        .await
        .unwrap_err()
        .is_transaction_abortable());
    producer.abort_transaction().await.unwrap();

    producer.begin_transaction().unwrap();
    let delivered = producer.send(record(&topic, 0, "kept")).await.unwrap();
    producer.commit_transaction().await.unwrap();
    delivered
        .await
        .expect("delivered in the committed transaction");
    producer.close().await.unwrap();
    let mut consumer = reader(&t.bootstrap, &topic, 1, IsolationLevel::ReadCommitted).await;
    assert_eq!(read_through(&mut consumer, "kept").await, ["kept"]);
}

/// The local state rules: no send, commit or abort without a transaction, no second begin,
/// and records not yet sent fail with TransactionAborted on abort.
async fn state_rules(t: Target) {
    let topic = create_topic(&t.bootstrap, "txn-rules", 1).await;
    let producer = txn_producer(&t, &unique("txn-rules"), ProducerConfig::default()).await;
    let not_open = |result: Result<_, Error>, operation: &str| match result {
        Err(Error::TransactionState {
            problem: TxnStateProblem::NotOpen { operation: op },
            ..
        }) => assert_eq!(op, operation),
        other => panic!("{operation}: {:?}", other.map(|_| ())),
    };
    not_open(
        producer
            .send(record(&topic, 0, "outside"))
            .await
            .map(|_| ()),
        "send",
    );
    not_open(producer.commit_transaction().await, "commit_transaction");
    not_open(producer.abort_transaction().await, "abort_transaction");
    producer.begin_transaction().unwrap();
    assert!(matches!(
        producer.begin_transaction(),
        Err(Error::TransactionState {
            problem: TxnStateProblem::AlreadyOpen,
            ..
        })
    ));
    // Aborted before it lingers out: never sent.
    let lingering = Producer::new(
        client(&t.bootstrap),
        ProducerConfig::default()
            .with_linger(Duration::from_secs(30))
            .with_transactional_id(unique("txn-rules-linger")),
    )
    .await
    .unwrap();
    lingering.begin_transaction().unwrap();
    let pending = lingering.send(record(&topic, 0, "never")).await.unwrap();
    lingering.abort_transaction().await.unwrap();
    let outcome = pending.await;
    assert!(
        matches!(&outcome, Err(Error::Delivery { source, .. }) if matches!(**source, Error::TransactionAborted { .. })),
        "{outcome:?}"
    );
    producer.abort_transaction().await.unwrap();

    // A plain producer has no transactions.
    let plain = Producer::new(client(&t.bootstrap), ProducerConfig::default())
        .await
        .unwrap();
    assert_eq!(plain.transaction_version(), None);
    assert!(matches!(
        plain.begin_transaction(),
        Err(Error::NotTransactional { .. })
    ));
    let group = ConsumerGroupMetadata::group_only("g");
    assert!(matches!(
        plain.send_offsets_to_transaction(vec![], &group).await,
        Err(Error::NotTransactional { .. })
    ));
}

macro_rules! both_versions {
    ($($scenario:ident),* $(,)?) => {
        mod v2 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::target(2).await).await;
                }
            )*
        }
        mod v1 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::target(1).await).await;
                }
            )*
        }
    };
}

both_versions!(
    commit_visible,
    abort_invisible,
    offsets_commit_with_transaction,
    newer_producer_fences,
    stale_generation_refused,
    coordinator_times_out,
    recovers_after_abortable_error,
    state_rules,
);

// ------------------------------------------------------------------ Java interop

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP) and Java; .ci/run runs it with --include-ignored"]
async fn java_read_committed_sees_our_committed_transactions_only() {
    let t = target(2).await;
    let topic = create_topic(&t.bootstrap, "txn-to-java", 2).await;
    let producer = txn_producer(&t, &unique("txn-to-java"), ProducerConfig::default()).await;
    let mut expected = Vec::new();
    for (prefix, commit) in [("c1", true), ("aborted", false), ("c2", true)] {
        producer.begin_transaction().unwrap();
        let vs = values(prefix, 10);
        send_all(&producer, &topic, 2, &vs).await;
        if commit {
            producer.commit_transaction().await.unwrap();
            expected.extend(vs);
        } else {
            producer.flush().await;
            producer.abort_transaction().await.unwrap();
        }
    }
    producer.close().await.unwrap();
    let (b, tp) = (t.bootstrap.clone(), topic.clone());
    let dumped = tokio::task::spawn_blocking(move || {
        java(
            "DumpTopic.java",
            &[&b, &tp, "20", "--read-committed", "--timeout-ms", "60000"],
            "",
        )
    })
    .await
    .unwrap();
    // PARTITION OFFSET KEY VALUE
    let mut seen: Vec<String> = dumped
        .lines()
        .map(|l| l.split('\t').nth(3).expect("a value column").to_owned())
        .collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP) and Java; .ci/run runs it with --include-ignored"]
async fn we_read_committed_the_java_transactional_producer() {
    let t = target(2).await;
    let topic = create_topic(&t.bootstrap, "txn-from-java", 1).await;
    let (b, tp) = (t.bootstrap.clone(), topic.clone());
    let id = unique("java-txn");
    tokio::task::spawn_blocking(move || {
        java("ProduceTransactional.java", &[&b, &tp, &id, "10"], "")
    })
    .await
    .unwrap();
    // Java wrote c1-* (committed), aborted-* (aborted), c2-* (committed), in that order.
    let expected = [values("c1", 10), values("c2", 10)].concat();
    let mut committed = reader(&t.bootstrap, &topic, 1, IsolationLevel::ReadCommitted).await;
    assert_eq!(read_through(&mut committed, "c2-9").await, expected);
    let mut uncommitted = reader(&t.bootstrap, &topic, 1, IsolationLevel::ReadUncommitted).await;
    assert_eq!(
        read_through(&mut uncommitted, "c2-9").await,
        [values("c1", 10), values("aborted", 10), values("c2", 10)].concat()
    );
}
