//! A windowed table through its real changelog: flushed to Kafka (the mock cluster, or real
//! Kafka when `KAFKA_BOOTSTRAP` is set), a worker restarted on its redb store in the middle of
//! open windows, and a new worker recovering the whole table from the changelog.

use super::Millis;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_client::admin::{Admin, OffsetSpec};
use kafka_client::consumer::Consumer;
use kafka_client::producer::{Producer, ProducerConfig};
use kafka_client::{ClientConfig, TopicPartition};
use stores::{MemoryStore, RedbStore, Store};
use testkit::MockCluster;

use super::model::{expected_windows, Ev};
use super::props::{close_map, id_table, IdCloses, Ids};
use crate::codec::CodecRegistry;
use crate::table::{
    changelog_consumer_config, flush_partition, recover_partition, Table, TableSpec,
};
use crate::window::kind::Cut;
use crate::window::WindowedTable;

const KIND: Cut = Cut::Hopping {
    size: 300,
    step: 100,
};
const GRACE: i64 = 20;

struct Broker {
    mock: Option<MockCluster>,
    bootstrap: String,
    admin: Admin,
}

async fn broker() -> Broker {
    let (mock, bootstrap) = match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(bootstrap) => (None, bootstrap),
        Err(_) => {
            let mock = MockCluster::builder()
                .compaction_interval(None)
                .build()
                .await
                .unwrap();
            let bootstrap = mock.bootstrap();
            (Some(mock), bootstrap)
        }
    };
    let admin = Admin::new(ClientConfig::new(&bootstrap).unwrap())
        .await
        .unwrap();
    Broker {
        mock,
        bootstrap,
        admin,
    }
}

impl Broker {
    async fn end(&self, spec: &TableSpec, partition: i32) -> i64 {
        let tp = TopicPartition::new(spec.changelog_topic(), partition);
        let offsets = self
            .admin
            .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
            .await
            .unwrap();
        offsets[&tp].offset
    }

    async fn producer(&self) -> Producer {
        let config = ProducerConfig::default().with_linger(Duration::from_millis(1));
        Producer::new(ClientConfig::new(&self.bootstrap).unwrap(), config)
            .await
            .unwrap()
    }

    async fn consumer(&self) -> Consumer {
        let config = changelog_consumer_config().with_fetch_max_wait(Duration::from_millis(50));
        Consumer::new(ClientConfig::new(&self.bootstrap).unwrap(), config)
            .await
            .unwrap()
    }

    /// A windowed table over `store`, every partition recovered to the changelog's end, then
    /// active; and the records recovery read.
    async fn recovered(
        &self,
        spec: &TableSpec,
        store: Arc<dyn Store>,
    ) -> (WindowedTable<String, Ids>, IdCloses, u64) {
        let table = Table::open(spec.clone(), &CodecRegistry::default(), store).unwrap();
        let (windowed, closes) = id_table(table, KIND, GRACE);
        let core = windowed.table.core().clone();
        let mut consumer = self.consumer().await;
        let mut read = 0;
        for p in 0..spec.partition_count() {
            core.assign(p).unwrap();
            let end = self.end(spec, p).await;
            read += recover_partition(&core, &mut consumer, p, end, None)
                .await
                .unwrap();
            core.set_active(p).unwrap();
        }
        (windowed, closes, read)
    }
}

/// The runtime's commit: flush every partition to the changelog, then make the store durable.
async fn commit(table: &WindowedTable<String, Ids>, producer: &Producer) {
    let core = table.table.core();
    for p in 0..core.spec().partition_count() {
        flush_partition(core, producer, p, std::time::Duration::from_secs(10))
            .await
            .unwrap();
    }
    core.flush_store().unwrap();
}

fn file(table: &WindowedTable<String, Ids>, (key, t, id): &Ev) {
    let filed = table
        .at_ms(*t)
        .update(key.as_str(), |ids| {
            ids.insert(*id);
        })
        .unwrap();
    assert!(filed.is_some(), "event {id} at {t} was late");
}

/// Everything a table holds: each key's windows and each partition's stream time.
fn state(table: &WindowedTable<String, Ids>, keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{k}: {:?}",
                table.windows_ms(k.as_str(), i64::MIN, i64::MAX).unwrap()
            )
        })
        .collect();
    for p in 0..table.table.spec().partition_count() {
        out.push(format!("{p}: {:?}", table.stream_ms(p).unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_on_redb_mid_window_and_a_recovered_one_close_each_window_once() {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let broker = broker().await;
    let app = format!(
        "windows-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let spec = TableSpec::new(app, "ids").partitions(2);
    broker
        .admin
        .create_topics(vec![spec.changelog_new_topic(1)])
        .await
        .unwrap();
    let producer = broker.producer().await;
    let keys: Vec<String> = (0..4).map(|k| format!("k{k}")).collect();
    let evs: Vec<Ev> = (0..80u32)
        .map(|i| {
            let jitter = (i as i64 * 7) % (GRACE + 1);
            (
                keys[(i as usize * 5) % 4].clone(),
                1_000 + i as i64 * 23 - jitter,
                i,
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();

    // The first worker: events, a commit every 7, and a last commit before it stops.
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path(), "ids").unwrap());
    let (first, first_closes, read) = broker.recovered(&spec, store).await;
    assert_eq!(read, 0);
    for (i, ev) in evs[..45].iter().enumerate() {
        file(&first, ev);
        if i % 7 == 6 {
            commit(&first, &producer).await;
        }
    }
    commit(&first, &producer).await;
    let closes = first_closes.lock().unwrap().clone();
    let open = first.windows_ms("k0", i64::MIN, i64::MAX).unwrap();
    assert!(
        !closes.is_empty() && !open.is_empty(),
        "stopped with closed and open windows"
    );
    drop(first);

    // Restarted on its redb file: nothing to read from the changelog, the clock is there.
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path(), "ids").unwrap());
    let (second, second_closes, read) = broker.recovered(&spec, store).await;
    assert_eq!(read, 0, "the store was up to date");
    assert_eq!(second.windows_ms("k0", i64::MIN, i64::MAX).unwrap(), open);
    for (i, ev) in evs[45..].iter().enumerate() {
        file(&second, ev);
        if i % 7 == 6 {
            commit(&second, &producer).await;
        }
    }
    commit(&second, &producer).await;
    let second_before = second_closes.lock().unwrap().len();

    // A new worker rebuilds the table from the changelog alone (compacted, on the mock).
    if let Some(mock) = &broker.mock {
        mock.compact(&spec.changelog_topic()).unwrap();
    }
    let (third, third_closes, read) = broker.recovered(&spec, Arc::new(MemoryStore::new())).await;
    assert!(read > 0);
    assert_eq!(state(&third, &keys), state(&second, &keys));
    assert!(
        third_closes.lock().unwrap().is_empty(),
        "recovery closes nothing by itself"
    );

    // Both go on to the end of time: every window closes once, with all its events, whether
    // the worker went on (second) or took over from the changelog (third).
    for table in [&second, &third] {
        for p in 0..2 {
            table.advance_ms(p, i64::MAX / 2).unwrap();
        }
    }
    let expected = expected_windows(KIND, &evs);
    let mut went_on = closes.clone();
    went_on.extend(second_closes.lock().unwrap().iter().cloned());
    assert_eq!(close_map(&went_on), expected);
    let mut took_over = closes;
    took_over.extend(
        second_closes.lock().unwrap()[..second_before]
            .iter()
            .cloned(),
    );
    took_over.extend(third_closes.lock().unwrap().iter().cloned());
    assert_eq!(close_map(&took_over), expected);
    assert!(second_before > 0 && !third_closes.lock().unwrap().is_empty());
}
