//! Changelog replication and recovery against the mock cluster (the real wire protocol), or
//! real Kafka when `KAFKA_BOOTSTRAP` is set.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicU32, Ordering};

use kafka_client::admin::{Admin, OffsetSpec};
use kafka_client::consumer::Consumer;
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use stores::{MemoryStore, RedbStore, Store};
use testkit::MockCluster;

use super::held;
use crate::codec::CodecRegistry;
use crate::error::Error;
use crate::table::{
    changelog_consumer_config, flush_partition, recover_partition, Table, TableSpec,
};

/// The mock cluster, or real Kafka when `KAFKA_BOOTSTRAP` is set (CI runs both).
struct Broker {
    mock: Option<MockCluster>,
    bootstrap: String,
    admin: Admin,
    /// Unique per test and run: real Kafka keeps topics between runs.
    app: String,
}

async fn broker() -> Broker {
    static TESTS: AtomicU32 = AtomicU32::new(0);
    let (mock, bootstrap) = match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(bootstrap) => (None, bootstrap),
        Err(_) => {
            // No background compaction: record counts must be exact.
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
    let app = format!(
        "tables-{}-{}",
        std::process::id(),
        TESTS.fetch_add(1, Ordering::Relaxed)
    );
    Broker {
        mock,
        bootstrap,
        admin,
        app,
    }
}

impl Broker {
    /// A table of this test's app with its changelog topic created.
    async fn table_spec(&self, name: &str, partitions: i32) -> TableSpec {
        let spec = TableSpec::new(self.app.as_str(), name).partitions(partitions);
        self.admin
            .create_topics(vec![spec.changelog_new_topic(1)])
            .await
            .unwrap();
        spec
    }

    /// The changelog partition's high watermark.
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

    /// Writes a record as is (not through a table) and returns its offset.
    async fn produce_raw(&self, spec: &TableSpec, key: &str, value: &str) -> i64 {
        let producer = self.producer().await;
        let record = ProducerRecord::new(spec.changelog_topic())
            .partition(0)
            .key(key.as_bytes().to_vec())
            .value(value.as_bytes().to_vec());
        let offset = producer.send(record).await.unwrap().await.unwrap().offset;
        producer.close().await.unwrap();
        offset
    }
}

async fn flush_all(table: &Table<String, i64>, producer: &Producer) -> usize {
    let mut written = 0;
    for p in 0..table.spec().partition_count() {
        written += flush_partition(
            table.core(),
            producer,
            p,
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    written
}

/// Opens a table over `store`, recovers every partition to the changelog's end and activates
/// them; returns the table and the records read.
async fn recovered(
    spec: &TableSpec,
    store: Arc<dyn Store>,
    broker: &Broker,
) -> crate::Result<(Table<String, i64>, u64)> {
    let table = Table::<String, i64>::open(spec.clone(), &CodecRegistry::default(), store)?;
    let mut consumer = broker.consumer().await;
    let mut read = 0;
    for p in 0..spec.partition_count() {
        table.core().assign(p)?;
        let end = broker.end(spec, p).await;
        read += recover_partition(table.core(), &mut consumer, p, end, None).await?;
        table.core().set_active(p)?;
    }
    Ok((table, read))
}

fn sorted_items(table: &Table<String, i64>) -> Vec<(String, i64)> {
    let mut items = table.items().unwrap();
    items.sort();
    items
}

fn model_items(model: &BTreeMap<String, i64>) -> Vec<(String, i64)> {
    model.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_writes_recover_into_memory_and_redb_tables_equal_to_the_model() {
    let broker = broker().await;
    let spec = broker.table_spec("totals", 3).await;
    let producer = broker.producer().await;
    let writer = held::<i64>(spec.clone(), Arc::new(MemoryStore::new())).with_default(|| 0);

    let mut model = BTreeMap::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut produced = 0;
    for i in 0..400 {
        let key = format!("k{}", rand(25));
        match rand(10) {
            0..=5 => {
                let n = rand(100) as i64;
                writer.update(key.as_str(), |v| *v += n).unwrap();
                *model.entry(key).or_insert(0) += n;
            }
            6..=7 => {
                let v = rand(1000) as i64;
                writer.insert(key.as_str(), v).unwrap();
                model.insert(key, v);
            }
            _ => {
                assert_eq!(writer.remove(key.as_str()).unwrap(), model.remove(&key));
            }
        }
        if i % 30 == 29 {
            produced += flush_all(&writer, &producer).await;
        }
    }
    produced += flush_all(&writer, &producer).await;
    assert_eq!(sorted_items(&writer), model_items(&model));

    let (memory, read) = recovered(&spec, Arc::new(MemoryStore::new()), &broker)
        .await
        .unwrap();
    assert_eq!(read as usize, produced, "a memory table replays everything");
    assert_eq!(sorted_items(&memory), model_items(&model));

    let dir = tempfile::tempdir().unwrap();
    let redb = Arc::new(RedbStore::open(dir.path(), "totals").unwrap());
    let (redb_table, read) = recovered(&spec, redb, &broker).await.unwrap();
    assert_eq!(read as usize, produced);
    assert_eq!(sorted_items(&redb_table), model_items(&model));

    // Compaction drops overwritten records; what is left still rebuilds the same table. (Only
    // the mock compacts on demand; Kafka leaves the active segment alone.)
    let Some(mock) = &broker.mock else { return };
    mock.compact(&spec.changelog_topic()).unwrap();
    let (compacted, read) = recovered(&spec, Arc::new(MemoryStore::new()), &broker)
        .await
        .unwrap();
    assert!(
        read < produced as u64,
        "{read} records after compaction, {produced} before"
    );
    assert_eq!(sorted_items(&compacted), model_items(&model));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_table_reads_only_the_changelog_after_its_applied_offset() {
    let broker = broker().await;
    let spec = broker.table_spec("counts", 1).await;
    let producer = broker.producer().await;
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    {
        let store = Arc::new(RedbStore::open(dir.path(), "counts").unwrap());
        let writer = held::<i64>(spec.clone(), store).with_default(|| 0);
        for i in 0..40 {
            writer.insert(&format!("k{i}"), i).unwrap();
            model.insert(format!("k{i}"), i);
        }
        assert_eq!(flush_all(&writer, &producer).await, 40); // offsets 0..=39
        for i in 0..10 {
            writer.update(&format!("k{i}"), |v| *v += 100).unwrap();
            *model.get_mut(&format!("k{i}")).unwrap() += 100;
        }
        writer.remove("k38").unwrap();
        writer.remove("k39").unwrap();
        model.remove("k38");
        model.remove("k39");
        assert_eq!(flush_all(&writer, &producer).await, 12); // 40..=51
        assert_eq!(writer.core().applied_offset(0).unwrap(), Some(51));
        writer.core().flush_store().unwrap();
    } // the worker stops; its redb file stays

    // Another worker owned the partition meanwhile and wrote 15 more records.
    let other = held::<i64>(spec.clone(), Arc::new(MemoryStore::new()));
    for i in 20..35 {
        other.insert(&format!("k{i}"), -i).unwrap();
        model.insert(format!("k{i}"), -i);
    }
    assert_eq!(flush_all(&other, &producer).await, 15); // 52..=66

    let store = Arc::new(RedbStore::open(dir.path(), "counts").unwrap());
    let (table, read) = recovered(&spec, store, &broker).await.unwrap();
    assert_eq!(read, 15, "only the tail after applied offset 51");
    assert_eq!(table.core().applied_offset(0).unwrap(), Some(66));
    assert_eq!(sorted_items(&table), model_items(&model));

    let (memory, read) = recovered(&spec, Arc::new(MemoryStore::new()), &broker)
        .await
        .unwrap();
    assert_eq!(read, 67, "a memory table reads the whole changelog");
    assert_eq!(sorted_items(&memory), model_items(&model));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_decode_stops_recovery_naming_table_partition_and_offset() {
    let broker = broker().await;
    let spec = broker.table_spec("totals", 1).await;
    let producer = broker.producer().await;
    let writer = held::<i64>(spec.clone(), Arc::new(MemoryStore::new()));
    for i in 0..5 {
        writer.insert(&format!("k{i}"), i).unwrap();
    }
    assert_eq!(flush_all(&writer, &producer).await, 5);
    let bad = broker.produce_raw(&spec, "k9", "not a number").await;
    assert_eq!(bad, 5);
    broker.produce_raw(&spec, "k8", "8").await;

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let err = recovered(&spec, store.clone(), &broker).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::TableDecode {
                partition: 0,
                offset: Some(5),
                part: "value",
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(
            "table totals: cannot decode the value of changelog record at offset 5 in partition 0"
        ),
        "{text}"
    );
    // The good records before it are applied: a rerun after a fix resumes at the bad one.
    assert_eq!(store.applied_offset(0).unwrap(), Some(4));
    assert_eq!(store.get(0, b"k8").unwrap(), None, "nothing after it");

    // A record without a key is refused the same way. Brokers reject keyless records in
    // compacted topics, so only the mock's raw append can put one there.
    let Some(mock) = &broker.mock else { return };
    let spec = broker.table_spec("other", 1).await;
    mock.append(&spec.changelog_topic(), 0, &[(None, Some("1"))])
        .unwrap();
    let err = recovered(&spec, Arc::new(MemoryStore::new()), &broker)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::TableDecode {
                offset: Some(0),
                part: "key",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("has no key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_whose_store_is_ahead_of_its_changelog_is_wiped_and_rebuilt() {
    let broker = broker().await;
    let spec = broker.table_spec("counts", 2).await;
    let producer = broker.producer().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path(), "counts").unwrap());
    let mut model = BTreeMap::new();
    {
        let writer = held::<i64>(spec.clone(), store.clone());
        for i in 0..20 {
            writer.insert(&format!("k{i}"), i).unwrap();
            model.insert(format!("k{i}"), i);
        }
        assert_eq!(flush_all(&writer, &producer).await, 20);
    }
    let in_0 = broker.end(&spec, 0).await;
    assert!(in_0 > 0 && broker.end(&spec, 1).await > 0);
    // Partition 0's store holds a key and an offset its changelog never had (the changelog
    // was recreated since, say); partition 1 agrees with its changelog.
    let mut ahead = stores::WriteBatch::new();
    ahead
        .put(0, b"stale".to_vec(), b"1".to_vec())
        .set_offset(0, in_0 + 100);
    store.apply(ahead).unwrap();

    let (table, read) = recovered(&spec, store.clone(), &broker).await.unwrap();
    assert_eq!(
        read as i64, in_0,
        "partition 0 replayed from its start, 1 not at all"
    );
    assert_eq!(sorted_items(&table), model_items(&model), "no stale key");
    assert_eq!(store.applied_offset(0).unwrap(), Some(in_0 - 1));
}
