//! Tables in a running app: writes reach the changelog before their events are committed, a
//! new worker recovers a table from its changelog (a redb store only the tail), start-up
//! refuses tables that are not co-partitioned with their sources, and a changelog record that
//! does not decode stops recovery with an error naming it. On the mock cluster, or on real
//! Kafka when KAFKA_BOOTSTRAP is set.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use streams::{App, Error, PartitionStatus, Table};
use testkit::MockCluster;

const WAIT: Duration = Duration::from_secs(30);
const PARTITIONS: i32 = 3;

struct Broker {
    bootstrap: String,
    _mock: Option<MockCluster>,
}

async fn broker() -> Broker {
    if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
        return Broker {
            bootstrap,
            _mock: None,
        };
    }
    let mock = MockCluster::builder()
        .default_partitions(PARTITIONS)
        .build()
        .await
        .unwrap();
    Broker {
        bootstrap: mock.bootstrap(),
        _mock: Some(mock),
    }
}

/// An app id no earlier run used (real Kafka keeps topics and groups between runs).
fn unique(name: &str) -> String {
    testkit::unique_name(name)
}

impl Broker {
    fn app(&self, id: &str, store: &str) -> App {
        App::builder(id)
            .broker(&format!("kafka://{}", self.bootstrap))
            .store(store)
            .topic_partitions(PARTITIONS)
            .broker_commit_interval(Duration::from_millis(200))
            .build()
            .unwrap()
    }

    /// Sends `(key, amount)` records to `topic`, keyed, JSON values.
    async fn send(&self, topic: &str, records: &[(String, i64)]) {
        let client = ClientConfig::new(&self.bootstrap).unwrap();
        let producer = Producer::new(client, ProducerConfig::default())
            .await
            .unwrap();
        let mut acks = Vec::new();
        for (key, amount) in records {
            let record = ProducerRecord::new(topic)
                .key(key.clone())
                .value(amount.to_string());
            acks.push(producer.send(record).await.unwrap());
        }
        for ack in acks {
            ack.await.unwrap();
        }
        producer.close().await.unwrap();
    }

    /// Every record of `topic` (all partitions), as (partition, key, value).
    async fn read_all(&self, topic: &str) -> Vec<(i32, Bytes, Option<Bytes>)> {
        let client = ClientConfig::new(&self.bootstrap).unwrap();
        let admin = kafka_client::admin::Admin::new(client.clone())
            .await
            .unwrap();
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic, p))
            .collect();
        let ends = admin
            .list_offsets(
                tps.iter()
                    .map(|tp| (tp.clone(), kafka_client::admin::OffsetSpec::Latest))
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
        // Read up to each partition's end (compaction may leave gaps in the offsets).
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
            let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
            else {
                continue;
            };
            let r = r.unwrap();
            out.push((r.partition, r.key.unwrap_or_default(), r.value));
        }
        out
    }
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

/// The input topic of app `id` (real Kafka keeps topics between tests and runs).
fn amounts(id: &str) -> String {
    format!("{id}-amounts")
}

/// Declares `counts` (key -> sum of amounts) updated by an agent over the app's amounts topic.
fn counting_app(app: &App) -> Table<String, i64> {
    let amounts = app.topic::<String, i64>(&amounts(app.id()));
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
                    table.update(&key, |n| *n += e.value)?;
                }
                Ok::<(), Error>(())
            }
        });
    counts
}

fn input(keys: usize, per_key: i64) -> (Vec<(String, i64)>, BTreeMap<String, i64>) {
    let mut records = Vec::new();
    let mut expected = BTreeMap::new();
    for round in 0..per_key {
        for k in 0..keys {
            let key = format!("key-{k}");
            records.push((key.clone(), round + 1));
            *expected.entry(key).or_default() += round + 1;
        }
    }
    (records, expected)
}

async fn wait_all_active(app: &App) -> Vec<streams::TablePartition> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let parts = app.table_partitions().unwrap();
        if parts.len() == PARTITIONS as usize
            && parts.iter().all(|p| p.status == PartitionStatus::Active)
        {
            return parts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "partitions not active: {parts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_the_changelog_and_a_new_worker_recovers_them() {
    let broker = broker().await;
    let id = unique("tables-recover");
    let (records, expected) = input(20, 5);

    let app = broker.app(&id, "memory://");
    let counts = counting_app(&app);
    app.start().await.unwrap();
    broker.send(&amounts(&id), &records).await;
    app.wait_caught_up(WAIT).await.unwrap();
    app.commit().await.unwrap();
    let held: BTreeMap<String, i64> = counts.items().unwrap().into_iter().collect();
    assert_eq!(held, expected);
    // Committed events have their table writes in the changelog, one record per key per flush.
    let changelog = broker.read_all(&format!("{id}-counts-changelog")).await;
    assert_eq!(latest(&changelog), expected);
    for (p, k, _) in &changelog {
        assert_eq!(
            *p,
            counts
                .partition_of(&String::from_utf8(k.to_vec()).unwrap())
                .unwrap()
        );
    }
    app.shutdown().await.unwrap();
    drop(counts);

    // A new worker with an empty memory store replays the whole changelog.
    let app = broker.app(&id, "memory://");
    let counts = counting_app(&app);
    app.start().await.unwrap();
    let parts = wait_all_active(&app).await;
    let replayed: u64 = parts.iter().map(|p| p.replayed).sum();
    // Every key's latest record at least (compaction may have removed older ones since).
    assert!(
        replayed >= expected.len() as u64 && replayed <= changelog.len() as u64,
        "replayed {replayed} of {}: {parts:?}",
        changelog.len()
    );
    assert_eq!(
        parts.iter().map(|p| p.entries).sum::<u64>(),
        expected.len() as u64
    );
    // And counts on from the recovered totals.
    broker.send(&amounts(&id), &records).await;
    app.wait_caught_up(WAIT).await.unwrap();
    let doubled: BTreeMap<String, i64> = expected.iter().map(|(k, v)| (k.clone(), v * 2)).collect();
    let held: BTreeMap<String, i64> = counts.items().unwrap().into_iter().collect();
    assert_eq!(held, doubled);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_table_restarted_replays_only_what_its_store_lacks() {
    let broker = broker().await;
    let id = unique("tables-redb");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let (records, expected) = input(30, 3);

    let app = broker.app(&id, &store);
    let counts = counting_app(&app);
    app.start().await.unwrap();
    broker.send(&amounts(&id), &records).await;
    app.wait_caught_up(WAIT).await.unwrap();
    app.shutdown().await.unwrap();
    drop((app, counts));

    let app = broker.app(&id, &store);
    let counts = counting_app(&app);
    app.start().await.unwrap();
    let parts = wait_all_active(&app).await;
    let replayed: u64 = parts.iter().map(|p| p.replayed).sum();
    let entries: u64 = parts.iter().map(|p| p.entries).sum();
    assert_eq!(entries, expected.len() as u64);
    assert_eq!(
        replayed, 0,
        "a cleanly stopped redb table is up to date: {parts:?}"
    );
    let held: BTreeMap<String, i64> = counts.items().unwrap().into_iter().collect();
    assert_eq!(held, expected);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_not_co_partitioned_with_its_source_fails_at_start() {
    let broker = broker().await;
    let id = unique("tables-copart");
    let app = broker.app(&id, "memory://");
    let wide = app
        .topic::<String, i64>(&format!("{id}-wide"))
        .partitions(PARTITIONS + 1);
    let counts = app.table::<String, i64>("counts").unwrap();
    app.agent_builder("count", &wide)
        .table(&counts)
        .run(|mut events| async move { while events.next().await.is_some() {} });
    let err = app.start().await.unwrap_err().to_string();
    assert!(err.contains("table counts"), "{err}");
    assert!(
        err.contains(&format!(
            "topic {id}-wide (read by agent count, which updates it) has 4 partitions but the \
             table has 3"
        )),
        "{err}"
    );
    assert!(err.contains(".partitions(4)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_declared_after_windowing_is_checked_for_co_partitioning() {
    let broker = broker().await;
    let id = unique("tables-copart-windowed");
    let app = broker.app(&id, "memory://");
    let wide = app
        .topic::<String, i64>(&format!("{id}-wide"))
        .partitions(PARTITIONS + 1);
    let totals = app
        .table::<String, i64>("totals")
        .unwrap()
        .tumbling(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    app.agent_builder("total", &wide)
        .table(&totals)
        .run(|mut events| async move { while events.next().await.is_some() {} });
    let err = app.start().await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "table totals: topic {id}-wide (read by agent total, which updates it) has 4 \
             partitions but the table has 3"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_record_that_does_not_decode_stops_recovery_naming_it() {
    let broker = broker().await;
    let id = unique("tables-corrupt");
    let changelog = format!("{id}-counts-changelog");
    {
        // Create the changelog by declaring the table once, then write a bad value to it.
        let app = broker.app(&id, "memory://");
        counting_app(&app);
        app.start().await.unwrap();
        app.shutdown().await.unwrap();
    }
    let client = ClientConfig::new(&broker.bootstrap).unwrap();
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .unwrap();
    let good = ProducerRecord::new(&changelog)
        .partition(1)
        .key("a")
        .value("5");
    let bad = ProducerRecord::new(&changelog)
        .partition(1)
        .key("b")
        .value("not a number");
    producer.send(good).await.unwrap().await.unwrap();
    let at = producer.send(bad).await.unwrap().await.unwrap().offset;
    producer.close().await.unwrap();

    let app = broker.app(&id, "memory://");
    counting_app(&app);
    // The worker fails in recovery: start returns the error if that comes first, otherwise
    // the worker stops by itself and shutdown returns it.
    let err = match app.start().await {
        Err(e) => e,
        Ok(()) => {
            tokio::time::timeout(WAIT, app.stopped())
                .await
                .expect("the worker stops");
            app.shutdown().await.unwrap_err()
        }
    };
    match &err {
        Error::TableDecode {
            table,
            partition,
            offset,
            part,
            ..
        } => {
            assert_eq!(
                (table.as_str(), *partition, *offset, *part),
                ("counts", 1, Some(at), "value")
            );
        }
        other => panic!("expected TableDecode, got {other}"),
    }
}

/// Changelog records per partition of a changelog.
fn per_partition(records: &[(i32, Bytes, Option<Bytes>)]) -> BTreeMap<i32, u64> {
    let mut out = BTreeMap::new();
    for (p, _, _) in records {
        *out.entry(*p).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_promoted_after_its_owner_crashed_replays_only_the_tail() {
    // Short sessions, so that the crashed worker's partitions move quickly.
    let (bootstrap, session, _mock) = match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) => (b, Duration::from_secs(6), None),
        Err(_) => {
            let mock = MockCluster::builder()
                .default_partitions(PARTITIONS)
                .group_min_session_timeout(Duration::from_millis(500))
                .build()
                .await
                .unwrap();
            (mock.bootstrap(), Duration::from_millis(1500), Some(mock))
        }
    };
    let broker = Broker {
        bootstrap,
        _mock: None,
    };
    let id = unique("tables-standby");
    let worker = || {
        App::builder(&id)
            .broker(&format!("kafka://{}", broker.bootstrap))
            .topic_partitions(PARTITIONS)
            .table_standby_replicas(1)
            .broker_commit_interval(Duration::from_millis(200))
            .broker_session_timeout(session)
            .broker_heartbeat_interval(session / 5)
            .broker_rebalance_timeout(session * 2)
            .build()
            .unwrap()
    };
    let (a, b) = (worker(), worker());
    let (counts_a, counts_b) = (counting_app(&a), counting_app(&b));
    a.start().await.unwrap();
    b.start().await.unwrap();
    // Both hold partitions, and each follows the other's as a standby.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (pa, pb) = (a.table_partitions().unwrap(), b.table_partitions().unwrap());
        let active = |ps: &[streams::TablePartition]| {
            ps.iter()
                .filter(|p| p.status == PartitionStatus::Active)
                .count()
        };
        let standby = |ps: &[streams::TablePartition]| {
            ps.iter()
                .filter(|p| p.status == PartitionStatus::Standby)
                .count()
        };
        if active(&pa) + active(&pb) == PARTITIONS as usize
            && active(&pa) > 0
            && active(&pb) > 0
            && standby(&pa) + standby(&pb) == PARTITIONS as usize
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{pa:?}\n{pb:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (records, expected) = input(30, 4);
    broker.send(&amounts(&id), &records).await;
    a.wait_caught_up(WAIT).await.unwrap();
    b.wait_caught_up(WAIT).await.unwrap();
    a.commit().await.unwrap();
    b.commit().await.unwrap();
    let changelog = broker.read_all(&format!("{id}-counts-changelog")).await;
    let written = per_partition(&changelog);
    let owned_by_a: Vec<i32> = counts_a.owned_partitions();
    // b's standby copies of a's partitions catch up with the changelog.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pb = b.table_partitions().unwrap();
        let caught_up = owned_by_a.iter().all(|p| {
            pb.iter().any(|s| {
                s.partition == *p
                    && s.status == PartitionStatus::Standby
                    && s.followed == written.get(p).copied().unwrap_or(0)
            })
        });
        if caught_up {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{pb:?} {written:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // a crashes (no commit, no LeaveGroup); b takes its partitions after the session timeout.
    a.abort().await;
    let parts = wait_all_active(&b).await;
    let promoted_replayed: u64 = parts
        .iter()
        .filter(|p| owned_by_a.contains(&p.partition))
        .map(|p| p.replayed)
        .sum();
    let promoted_written: u64 = owned_by_a.iter().map(|p| written[p]).sum();
    eprintln!(
        "promoted partitions {owned_by_a:?}: replayed {promoted_replayed} of the {promoted_written} changelog records"
    );
    assert_eq!(promoted_replayed, 0, "{parts:?}");
    let held: BTreeMap<String, i64> = counts_b.items().unwrap().into_iter().collect();
    assert_eq!(held, expected);
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_starts_the_app_over_without_counting_twice() {
    let broker = broker().await;
    let id = unique("tables-reset");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let (records, expected) = input(10, 3);
    {
        let app = broker.app(&id, &store);
        let _counts = counting_app(&app);
        app.start().await.unwrap();
        broker.send(&amounts(&id), &records).await;
        app.wait_caught_up(WAIT).await.unwrap();
        app.shutdown().await.unwrap();
    }
    // A running worker of the app refuses the reset, and nothing is deleted.
    let running = broker.app(&id, "memory://");
    let _counts = counting_app(&running);
    running.start().await.unwrap();
    let app = broker.app(&id, &store);
    let counts = counting_app(&app);
    let err = app.reset().await.unwrap_err().to_string();
    assert!(err.contains("stop every worker of the app first"), "{err}");
    running.shutdown().await.unwrap();
    let changelog = format!("{id}-counts-changelog");
    assert!(!broker.read_all(&changelog).await.is_empty());

    let done = app.reset().await.unwrap();
    assert!(
        done.iter()
            .any(|l| l == &format!("deleted changelog topic {changelog}")),
        "{done:?}"
    );
    assert!(app
        .stored_tables()
        .await
        .unwrap()
        .iter()
        .all(|p| p.entries == 0 && p.applied_offset.is_none()));
    app.shutdown().await.unwrap();
    drop((app, counts));
    // Real Kafka deletes topics in the background: wait until it is gone.
    let admin = kafka_client::admin::Admin::new(ClientConfig::new(&broker.bootstrap).unwrap())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while admin.describe_topic(&changelog).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{changelog} not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Started again, the app counts every record once more, from nothing.
    let app = broker.app(&id, &store);
    let counts = counting_app(&app);
    app.start().await.unwrap();
    app.wait_caught_up(WAIT).await.unwrap();
    let held: BTreeMap<String, i64> = counts.items().unwrap().into_iter().collect();
    assert_eq!(held, expected);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_reads_a_global_table_that_any_worker_writes() {
    let broker = broker().await;
    let id = unique("tables-global");
    let worker = || {
        let app = broker.app(&id, "memory://");
        let input = app.topic::<String, i64>(&amounts(&id));
        let seen = app
            .table_builder::<String, i64>("seen")
            .global()
            .build()
            .unwrap();
        let t = seen.clone();
        app.agent_builder("record", &input)
            .table(&seen)
            .run_once(move |mut events| async move {
                while let Some(e) = events.next().await {
                    t.insert(&e.key.clone().unwrap_or_default(), e.value)?;
                }
                Ok::<(), Error>(())
            });
        (app, seen)
    };
    let (a, seen_a) = worker();
    let (b, seen_b) = worker();
    a.start().await.unwrap();
    b.start().await.unwrap();
    // Wait until both hold source partitions, so that both write.
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.table_partitions().unwrap().len() < PARTITIONS as usize
        || b.table_partitions().unwrap().len() < PARTITIONS as usize
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let records: Vec<(String, i64)> = (0..20).map(|k| (format!("key-{k}"), k)).collect();
    broker.send(&amounts(&id), &records).await;
    a.wait_caught_up(WAIT).await.unwrap();
    b.wait_caught_up(WAIT).await.unwrap();
    a.commit().await.unwrap();
    b.commit().await.unwrap();
    let expected: BTreeMap<String, i64> = records.into_iter().collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let on_a: BTreeMap<String, i64> = seen_a.items().unwrap().into_iter().collect();
        let on_b: BTreeMap<String, i64> = seen_b.items().unwrap().into_iter().collect();
        if on_a == expected && on_b == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a: {on_a:?}\nb: {on_b:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn declaring_a_table_opens_nothing_and_start_names_a_store_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let file = dir.path().join("locked-app-counts.redb");
    // Another process's worker holds the file.
    let _held = stores::StoreUrl::parse(&store)
        .unwrap()
        .open("locked-app-counts")
        .unwrap();
    let app = App::builder("locked-app")
        .store(&store)
        .broker("kafka://127.0.0.1:1")
        .build()
        .unwrap();
    // Declaring does no I/O: no error, and a table used before start says so.
    let counts = app.table::<String, i64>("counts").unwrap();
    assert!(matches!(counts.get("k"), Err(Error::NotStarted)));
    // The CLI's `tables` and `reset` refuse, naming the file.
    let err = app.stored_tables().await.unwrap_err();
    assert!(
        matches!(&err, Error::StoreHeld { path } if *path == file),
        "{err}"
    );
    assert!(
        err.to_string().contains("held by a running worker"),
        "{err}"
    );
    let err = app.reset().await.unwrap_err();
    assert!(
        matches!(&err, Error::StoreHeld { path } if *path == file),
        "{err}"
    );
    // Starting fails on the store before connecting (the broker is unreachable).
    let err = app.start().await.unwrap_err().to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("stop the other worker"), "{err}");
}

#[test]
fn a_declared_table_creates_no_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let app = App::builder("lazy-app").store(&store).build().unwrap();
    let _counts = app.table::<String, i64>("counts").unwrap();
    let again = App::builder("lazy-app").store(&store).build().unwrap();
    let _same = again.table::<String, i64>("counts").unwrap();
    assert!(!dir.path().join("lazy-app-counts.redb").exists());
}

/// Mock only: it holds back the changelog fetches of one partition.
/// (Partitions 1 and 2 must be done within the 8 s that partition 0's first fetch is held.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovering_partition_waits_while_the_others_flow() {
    let mock = MockCluster::builder()
        .default_partitions(PARTITIONS)
        .build()
        .await
        .unwrap();
    let broker = Broker {
        bootstrap: mock.bootstrap(),
        _mock: None,
    };
    let id = unique("tables-no-stop-the-world");
    let (records, expected) = input(12, 2);
    {
        let app = broker.app(&id, "memory://");
        let _counts = counting_app(&app);
        app.start().await.unwrap();
        broker.send(&amounts(&id), &records).await;
        app.wait_caught_up(WAIT).await.unwrap();
        app.shutdown().await.unwrap();
    }
    // A new worker (empty memory store) whose changelog fetches of partition 0 are held back
    // for 8 s each, until the intercept is cleared.
    let changelog = format!("{id}-counts-changelog");
    mock.intercept(
        testkit::ApiKey::Fetch,
        testkit::Intercept::delay(Duration::from_secs(8))
            .always()
            .for_partition(changelog.clone(), 0),
    );
    let app = broker.app(&id, "memory://");
    let counts = counting_app(&app);
    app.start().await.unwrap();
    broker.send(&amounts(&id), &records).await;
    // Keys of partitions 1 and 2 are recovered and counted again; partition 0 waits.
    let in_p0 = |k: &String| counts.partition_of(k).unwrap() == 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let done = expected
            .iter()
            .filter(|(k, _)| !in_p0(k))
            .all(|(k, v)| counts.get(k).ok().flatten() == Some(v * 2));
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "partitions 1 and 2 did not flow"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let parts = app.table_partitions().unwrap();
    let p0 = parts.iter().find(|p| p.partition == 0).unwrap();
    assert_eq!(p0.status, PartitionStatus::Recovering, "{parts:?}");
    let key0 = expected.keys().find(|k| in_p0(k)).unwrap();
    assert!(matches!(counts.get(key0), Err(Error::TableNotOwned { .. })));
    // Its changelog answers (the held fetch after its delay, then at once): it recovers, and
    // its events are counted.
    mock.clear_intercepts();
    app.wait_caught_up(WAIT).await.unwrap();
    let held: BTreeMap<String, i64> = counts.items().unwrap().into_iter().collect();
    let doubled: BTreeMap<String, i64> = expected.iter().map(|(k, v)| (k.clone(), v * 2)).collect();
    assert_eq!(held, doubled);
    app.shutdown().await.unwrap();
}
