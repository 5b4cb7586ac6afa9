//! Recovering a table partition while things change under it (issue 18, hazard 9), on the mock
//! cluster: the changelog's log start moves (retention or DeleteRecords) while the worker is
//! away or in the middle of its recovery, a rebalance revokes a partition mid-recovery, the
//! broker restarts during recovery; also a partition that goes back to the worker that had
//! recovered part of it, a standby copy the log start moved past, a changelog recreated during
//! recovery. Each ends with every partition recovered and holding exactly the changelog's
//! content (the latest value per key of the records still in it), with a warning where local
//! state was wiped: never a stall, never a silent skip to the changelog's end.
//!
//! "Mid-recovery" is observed, not timed: the changelog is filled with 30,000 records and its
//! fetches are slowed down, so recovery applies its first 10,000-record batch (the partition's
//! applied offset moves) while the partition is still `Recovering`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;
use streams::{App, Error, PartitionStatus, Table, TablePartition};
use testkit::{ApiKey, Intercept, MockCluster};

const WAIT: Duration = Duration::from_secs(20);
/// Records in a filled changelog partition, and keys they cycle through.
const RECORDS: usize = 30_000;
const KEYS: usize = 1_000;
/// Key padding: a changelog fetch (1 MiB per partition) then holds about 3,000 records.
const PAD: usize = 300;

async fn mock(partitions: i32) -> MockCluster {
    MockCluster::builder()
        .default_partitions(partitions)
        // Compaction would shrink the filled changelogs (and the recoveries) at its own pace.
        .compaction_interval(None)
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

/// A worker of app `id` over `mock`, its tables in `store`. Commits only when the test asks;
/// short sessions, so that a joining worker gets its partitions quickly.
fn app(mock: &MockCluster, id: &str, store: &str, partitions: i32) -> App {
    builder(mock, id, store, partitions).build().unwrap()
}

fn builder(mock: &MockCluster, id: &str, store: &str, partitions: i32) -> streams::AppBuilder {
    App::builder(id)
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .store(store)
        .topic_partitions(partitions)
        .broker_commit_interval(Duration::from_secs(3600))
        .broker_session_timeout(Duration::from_millis(1500))
        .broker_heartbeat_interval(Duration::from_millis(300))
        .broker_rebalance_timeout(Duration::from_secs(3))
}

fn amounts(id: &str) -> String {
    format!("{id}-amounts")
}

fn changelog(id: &str) -> String {
    format!("{id}-counts-changelog")
}

/// `counts` (key -> sum of amounts), updated by an agent over the app's amounts topic.
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

/// Sends `(key, amount)` records to the app's amounts topic, keyed.
async fn send(mock: &MockCluster, id: &str, records: &[(String, i64)]) {
    let client = ClientConfig::new(&mock.bootstrap()).unwrap();
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for (key, amount) in records {
        let record = ProducerRecord::new(amounts(id))
            .key(key.clone())
            .value(amount.to_string());
        acks.push(producer.send(record).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// `n` padded keys of table partition `p`, as the table places them.
fn keys_of(table: &Table<String, i64>, p: i32, n: usize) -> Vec<String> {
    let pad = "x".repeat(PAD);
    (0..)
        .map(|j| format!("key-{j}-{pad}"))
        .filter(|k| table.partition_of(k).unwrap() == p)
        .take(n)
        .collect()
}

/// Creates the app's changelog topic and fills each partition with [`RECORDS`] records cycling
/// through [`KEYS`] keys of that partition, value = the record's number, appended in batches
/// of 1,000 as a producer would.
fn fill_changelog(mock: &MockCluster, id: &str, table: &Table<String, i64>, partitions: i32) {
    mock.create_topic(&changelog(id), partitions, [("cleanup.policy", "compact")])
        .unwrap();
    for p in 0..partitions {
        let keys = keys_of(table, p, KEYS);
        for start in (0..RECORDS).step_by(1_000) {
            let batch: Vec<(String, String)> = (start..(start + 1_000).min(RECORDS))
                .map(|i| (keys[i % KEYS].clone(), i.to_string()))
                .collect();
            let records: Vec<(Option<&str>, Option<&str>)> = batch
                .iter()
                .map(|(k, v)| (Some(k.as_str()), Some(v.as_str())))
                .collect();
            mock.append(&changelog(id), p, &records).unwrap();
        }
    }
}

/// Slows every changelog fetch of partition `p` down by `by`, until the intercepts are cleared.
fn slow_changelog(mock: &MockCluster, id: &str, p: i32, by: Duration) {
    mock.intercept(
        ApiKey::Fetch,
        Intercept::delay(by)
            .always()
            .for_partition(changelog(id), p),
    );
}

/// What the changelog holds now: the latest value per key of the records at or past each
/// partition's log start (a tombstone deletes its key).
fn changelog_content(mock: &MockCluster, id: &str, partitions: i32) -> BTreeMap<String, i64> {
    let topic = changelog(id);
    let mut out = BTreeMap::new();
    for p in 0..partitions {
        let start = mock.log_start_offset(&topic, p).unwrap();
        for (offset, k, v) in mock.records(&topic, p) {
            if offset < start {
                continue; // in a batch that straddles the log start: deleted
            }
            let key = String::from_utf8(k.unwrap().to_vec()).unwrap();
            match v {
                Some(v) => out.insert(key, serde_json::from_slice(&v).unwrap()),
                None => out.remove(&key),
            };
        }
    }
    out
}

/// What the tables of these workers hold, together.
fn held(tables: &[&Table<String, i64>]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for t in tables {
        for (k, v) in t.items().unwrap() {
            assert!(out.insert(k.clone(), v).is_none(), "{k} held twice");
        }
    }
    out
}

/// Fails unless the tables hold exactly the changelog's content, naming the keys that differ
/// (without their padding).
fn assert_exact(held: &BTreeMap<String, i64>, content: &BTreeMap<String, i64>) {
    if held == content {
        return;
    }
    let keys: BTreeSet<&String> = held.keys().chain(content.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| held.get(*k) != content.get(*k))
        .map(|k| {
            let short = k.split("-x").next().unwrap_or(k);
            format!(
                "{short}: table {:?}, changelog {:?}",
                held.get(k),
                content.get(k)
            )
        })
        .collect();
    panic!(
        "the table holds {} keys, the changelog {}; {} differ, the first: {:#?}",
        held.len(),
        content.len(),
        diff.len(),
        &diff[..diff.len().min(6)]
    );
}

/// Waits until `done` holds, polling every 5 ms; fails naming `what` and the workers' table
/// partitions (a stall) after [`WAIT`].
async fn wait_for<T>(what: &str, apps: &[&App], mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(t) = done() {
            return t;
        }
        if tokio::time::Instant::now() >= deadline {
            let parts: Vec<_> = apps.iter().map(|a| a.table_partitions()).collect();
            panic!("timed out after {WAIT:?}: {what}; table partitions: {parts:#?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn partitions(app: &App) -> Vec<TablePartition> {
    app.table_partitions().unwrap_or_default()
}

async fn wait_all_active(app: &App, partitions: i32) {
    wait_for("every partition active", &[app], || {
        let parts = self::partitions(app);
        (parts.len() == partitions as usize
            && parts.iter().all(|p| p.status == PartitionStatus::Active))
        .then_some(())
    })
    .await
}

/// A partition of `app` in the middle of its recovery: still `Recovering`, with a first batch
/// applied.
async fn wait_mid_recovery(app: &App) -> TablePartition {
    wait_for("a partition in the middle of its recovery", &[app], || {
        partitions(app)
            .into_iter()
            .find(|p| p.status == PartitionStatus::Recovering && p.applied_offset.is_some())
    })
    .await
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

/// The warnings of app `id` that its partition `p` was wiped and rebuilt from the changelog
/// because `why`.
fn wipe_warnings(id: &str, p: i32, why: &str) -> Vec<String> {
    String::from_utf8_lossy(&logs().lock().unwrap())
        .lines()
        .filter(|l| {
            l.contains("WARN")
                && l.contains("table=\"counts\"")
                && l.contains(&format!("partition={p} "))
                && l.contains(&format!("changelog=\"{}\"", changelog(id)))
                && l.contains(why)
                && l.contains("wiped and rebuilt from the changelog")
        })
        .map(str::to_owned)
        .collect()
}

const DELETED: &str = "records it had not read yet were deleted (retention, or DeleteRecords)";

/// One round of amounts for `keys`.
fn round(keys: &[String], amount: i64) -> Vec<(String, i64)> {
    keys.iter().map(|k| (k.clone(), amount)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_start_moved_while_the_worker_was_away_is_rebuilt_from_the_changelog() {
    logs();
    const PARTITIONS: i32 = 2;
    let mock = mock(PARTITIONS).await;
    let id = testkit::unique_name("log-start-away");
    let dir = tempfile::tempdir().unwrap();
    let redb = format!("redb://{}", dir.path().display());
    let keys: Vec<String> = (0..12).map(|k| format!("key-{k}")).collect();
    let even: Vec<String> = keys.iter().step_by(2).cloned().collect();

    // Worker A counts a first round on its redb store and stops cleanly.
    let a = app(&mock, &id, &redb, PARTITIONS);
    let counts = counting_app(&a);
    a.start().await.unwrap();
    wait_all_active(&a, PARTITIONS).await;
    send(&mock, &id, &round(&keys, 1)).await;
    a.wait_caught_up(WAIT).await.unwrap();
    a.commit().await.unwrap();
    let applied: BTreeMap<i32, i64> = partitions(&a)
        .iter()
        .map(|p| (p.partition, p.applied_offset.unwrap()))
        .collect();
    a.shutdown().await.unwrap();
    drop((a, counts));

    // Another worker (a memory store: it recovers the first round) counts two more rounds.
    let b = app(&mock, &id, "memory://", PARTITIONS);
    let counts = counting_app(&b);
    b.start().await.unwrap();
    wait_all_active(&b, PARTITIONS).await;
    send(&mock, &id, &round(&keys, 2)).await;
    b.wait_caught_up(WAIT).await.unwrap();
    b.commit().await.unwrap();
    let round_3_starts: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, mock.high_watermark(&changelog(&id), p).unwrap()))
        .collect();
    send(&mock, &id, &round(&even, 4)).await;
    b.wait_caught_up(WAIT).await.unwrap();
    b.commit().await.unwrap();
    b.shutdown().await.unwrap();
    drop((b, counts));

    // Retention (or DeleteRecords) drops the first two rounds: A's next offset is gone.
    for p in 0..PARTITIONS {
        let cut = round_3_starts[&p];
        assert!(cut > applied[&p] + 1, "partition {p}: {cut} {applied:?}");
        assert_eq!(mock.delete_records(&changelog(&id), p, cut).unwrap(), cut);
    }
    let content = changelog_content(&mock, &id, PARTITIONS);
    let expected: BTreeMap<String, i64> = even.iter().map(|k| (k.clone(), 1 + 2 + 4)).collect();
    assert_eq!(content, expected, "what the changelog still holds");

    // A restarts on its store: it holds exactly what the changelog holds (not its stale
    // first-round counts, not keys whose records were deleted).
    let a = app(&mock, &id, &redb, PARTITIONS);
    let counts = counting_app(&a);
    a.start().await.unwrap();
    wait_all_active(&a, PARTITIONS).await;
    assert_exact(&held(&[&counts]), &content);
    for p in 0..PARTITIONS {
        assert!(
            !wipe_warnings(&id, p, DELETED).is_empty(),
            "no warning for partition {p}: {}",
            String::from_utf8_lossy(&logs().lock().unwrap())
        );
    }
    // And counts on from there.
    send(&mock, &id, &round(&keys, 8)).await;
    a.wait_caught_up(WAIT).await.unwrap();
    let held = held(&[&counts]);
    assert_eq!(held["key-0"], 1 + 2 + 4 + 8);
    assert_eq!(held["key-1"], 8);
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_start_moved_during_recovery_restarts_it_from_the_new_start() {
    logs();
    let mock = mock(1).await;
    let id = testkit::unique_name("log-start-during");
    let a = app(&mock, &id, "memory://", 1);
    let counts = counting_app(&a);
    fill_changelog(&mock, &id, &counts, 1);
    slow_changelog(&mock, &id, 0, Duration::from_millis(200));
    a.start().await.unwrap();
    let mid = wait_mid_recovery(&a).await;

    // Retention drops all but the last 100 records, far past what recovery fetched so far.
    let cut = RECORDS as i64 - 100;
    assert!(mid.applied_offset.unwrap() < cut, "{mid:?}");
    assert_eq!(mock.delete_records(&changelog(&id), 0, cut).unwrap(), cut);
    mock.clear_intercepts();

    wait_all_active(&a, 1).await;
    let content = changelog_content(&mock, &id, 1);
    assert_eq!(content.len(), 100);
    assert_exact(&held(&[&counts]), &content);
    assert!(
        !wipe_warnings(&id, 0, DELETED).is_empty(),
        "no warning: {}",
        String::from_utf8_lossy(&logs().lock().unwrap())
    );
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_revoked_mid_recovery_ends_active_and_exact_on_its_new_owner() {
    const PARTITIONS: i32 = 2;
    let mock = mock(PARTITIONS).await;
    let id = testkit::unique_name("revoked-mid-recovery");
    let a = app(&mock, &id, "memory://", PARTITIONS);
    let counts_a = counting_app(&a);
    fill_changelog(&mock, &id, &counts_a, PARTITIONS);
    for p in 0..PARTITIONS {
        slow_changelog(&mock, &id, p, Duration::from_millis(400));
    }
    a.start().await.unwrap();
    wait_mid_recovery(&a).await;

    // A second worker joins while A recovers both partitions: one of them moves to it.
    let b = app(&mock, &id, "memory://", PARTITIONS);
    let counts_b = counting_app(&b);
    // How A last showed each partition, before it let go of it.
    let mut seen_on_a: BTreeMap<i32, TablePartition> = partitions(&a)
        .into_iter()
        .map(|p| (p.partition, p))
        .collect();
    b.start().await.unwrap();
    let moved = wait_for("the second worker takes a partition", &[&a, &b], || {
        let moved = partitions(&b).first().map(|p| p.partition);
        seen_on_a.extend(partitions(&a).into_iter().map(|p| (p.partition, p)));
        moved
    })
    .await;
    mock.clear_intercepts();
    let before = &seen_on_a[&moved];
    assert_eq!(
        before.status,
        PartitionStatus::Recovering,
        "partition {moved} was revoked in the middle of its recovery on A: {seen_on_a:?}"
    );

    // Every partition ends active on one worker, and the tables hold the changelog's content.
    wait_for("every partition active on one worker", &[&a, &b], || {
        let active: Vec<i32> = partitions(&a)
            .into_iter()
            .chain(partitions(&b))
            .filter(|p| p.status == PartitionStatus::Active)
            .map(|p| p.partition)
            .collect();
        let recovering = partitions(&a)
            .into_iter()
            .chain(partitions(&b))
            .any(|p| p.status == PartitionStatus::Recovering);
        (active.len() == PARTITIONS as usize && !recovering).then_some(())
    })
    .await;
    assert_eq!(counts_b.owned_partitions(), vec![moved]);
    assert_exact(
        &held(&[&counts_a, &counts_b]),
        &changelog_content(&mock, &id, PARTITIONS),
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_during_recovery_lets_it_resume_and_end_exact() {
    let mock = mock(1).await;
    let id = testkit::unique_name("broker-restart-recovery");
    let a = app(&mock, &id, "memory://", 1);
    let counts = counting_app(&a);
    fill_changelog(&mock, &id, &counts, 1);
    slow_changelog(&mock, &id, 0, Duration::from_millis(200));
    a.start().await.unwrap();
    let mid = wait_mid_recovery(&a).await;

    // The only broker goes away for a while (the outage's length, not a synchronization),
    // and comes back with its data.
    let broker = mock.brokers()[0].0;
    mock.stop_broker(broker).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    mock.restart_broker(broker).await.unwrap();
    mock.clear_intercepts();

    wait_all_active(&a, 1).await;
    let parts = partitions(&a);
    assert_eq!(
        parts[0].applied_offset,
        Some(RECORDS as i64 - 1),
        "{mid:?} {parts:?}"
    );
    assert_exact(&held(&[&counts]), &changelog_content(&mock, &id, 1));
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_back_on_the_worker_that_recovered_part_of_it_resumes_and_ends_exact() {
    const PARTITIONS: i32 = 2;
    let mock = mock(PARTITIONS).await;
    let id = testkit::unique_name("revoked-and-back");
    let a = app(&mock, &id, "memory://", PARTITIONS);
    let counts_a = counting_app(&a);
    fill_changelog(&mock, &id, &counts_a, PARTITIONS);
    for p in 0..PARTITIONS {
        slow_changelog(&mock, &id, p, Duration::from_millis(400));
    }
    a.start().await.unwrap();
    wait_mid_recovery(&a).await;

    // A second worker takes a partition A is recovering, and leaves again while it recovers
    // it: the partition goes back to A, whose store holds the part it had applied.
    let b = app(&mock, &id, "memory://", PARTITIONS);
    let _counts_b = counting_app(&b);
    b.start().await.unwrap();
    let on_b = wait_for("the second worker takes a partition", &[&a, &b], || {
        partitions(&b).first().cloned()
    })
    .await;
    assert_eq!(on_b.status, PartitionStatus::Recovering, "{on_b:?}");
    b.shutdown().await.unwrap();
    mock.clear_intercepts();

    wait_all_active(&a, PARTITIONS).await;
    assert_exact(
        &held(&[&counts_a]),
        &changelog_content(&mock, &id, PARTITIONS),
    );
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_whose_changelog_log_start_moved_past_it_is_rebuilt_from_the_new_start() {
    logs();
    const PARTITIONS: i32 = 2;
    let mock = mock(PARTITIONS).await;
    let id = testkit::unique_name("standby-log-start");
    let worker = || {
        builder(&mock, &id, "memory://", PARTITIONS)
            .table_standby_replicas(1)
            .build()
            .unwrap()
    };
    let (a, b) = (worker(), worker());
    let (counts_a, _counts_b) = (counting_app(&a), counting_app(&b));
    mock.create_topic(&changelog(&id), PARTITIONS, [("cleanup.policy", "compact")])
        .unwrap();
    a.start().await.unwrap();
    b.start().await.unwrap();
    // Each worker owns a partition and follows the other's as a standby.
    let p = wait_for(
        "one active and one standby partition each",
        &[&a, &b],
        || {
            let (pa, pb) = (partitions(&a), partitions(&b));
            let layout = |ps: &[TablePartition]| {
                let count = |s| ps.iter().filter(|p| p.status == s).count();
                count(PartitionStatus::Active) == 1 && count(PartitionStatus::Standby) == 1
            };
            (layout(&pa) && layout(&pb))
                .then(|| pb.iter().find(|p| p.status == PartitionStatus::Standby))
                .flatten()
                .map(|p| p.partition)
        },
    )
    .await;

    // The owner's changelog partition grows (written as is: no events), and b's standby copy
    // follows it slowly; retention then drops all but its last 100 records.
    slow_changelog(&mock, &id, p, Duration::from_millis(200));
    let keys = keys_of(&counts_a, p, KEYS);
    for start in (0..RECORDS).step_by(1_000) {
        let batch: Vec<(String, String)> = (start..start + 1_000)
            .map(|i| (keys[i % KEYS].clone(), i.to_string()))
            .collect();
        let records: Vec<(Option<&str>, Option<&str>)> = batch
            .iter()
            .map(|(k, v)| (Some(k.as_str()), Some(v.as_str())))
            .collect();
        mock.append(&changelog(&id), p, &records).unwrap();
    }
    let standby = |app: &App| partitions(app).into_iter().find(|s| s.partition == p);
    let mid = wait_for("the standby copy half way", &[&b], || {
        standby(&b).filter(|s| s.applied_offset.is_some_and(|o| o > 0))
    })
    .await;
    let cut = RECORDS as i64 - 100;
    assert!(mid.applied_offset.unwrap() < cut, "{mid:?}");
    mock.delete_records(&changelog(&id), p, cut).unwrap();
    mock.clear_intercepts();

    // The copy ends as the changelog's content: its last 100 records, 100 keys.
    let last = RECORDS as i64 - 1;
    wait_for(
        "the standby copy rebuilt from the new log start",
        &[&b],
        || {
            standby(&b)
                .filter(|s| s.applied_offset == Some(last) && s.entries == 100)
                .map(|_| ())
        },
    )
    .await;
    assert_eq!(standby(&b).unwrap().status, PartitionStatus::Standby);
    assert!(
        !wipe_warnings(&id, p, DELETED).is_empty(),
        "no warning: {}",
        String::from_utf8_lossy(&logs().lock().unwrap())
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_recreated_during_recovery_is_recovered_from_its_new_content() {
    logs();
    let mock = mock(1).await;
    let id = testkit::unique_name("recreated-during");
    let a = app(&mock, &id, "memory://", 1);
    let counts = counting_app(&a);
    fill_changelog(&mock, &id, &counts, 1);
    slow_changelog(&mock, &id, 0, Duration::from_millis(200));
    a.start().await.unwrap();
    wait_mid_recovery(&a).await;

    // The changelog is recreated with two records: recovery's position is past its end.
    mock.delete_topic(&changelog(&id)).unwrap();
    mock.create_topic(&changelog(&id), 1, [("cleanup.policy", "compact")])
        .unwrap();
    mock.append(
        &changelog(&id),
        0,
        &[(Some("key-0"), Some("1")), (Some("fresh"), Some("7"))],
    )
    .unwrap();
    mock.clear_intercepts();

    wait_all_active(&a, 1).await;
    let content = changelog_content(&mock, &id, 1);
    assert_eq!(content.len(), 2);
    assert_exact(&held(&[&counts]), &content);
    let warned = String::from_utf8_lossy(&logs().lock().unwrap())
        .lines()
        .any(|l| l.contains("was the changelog topic recreated?"));
    assert!(
        warned,
        "{}",
        String::from_utf8_lossy(&logs().lock().unwrap())
    );
    a.shutdown().await.unwrap();
}
