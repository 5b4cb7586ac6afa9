//! A model test of tables in running apps: random writes and deletes (as events an agent
//! applies to a table), commits, graceful restarts, crashes (abort: no commit, no LeaveGroup)
//! and rebalances (a second worker joining, then leaving or crashing), for the memory and redb
//! stores. After every step the workers' tables together must equal a BTreeMap that saw the
//! same operations: nothing lost by a restart, a crash or a partition moving, nothing resurrected.
//! Operations set absolute values, so events redelivered after a crash change nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;
use proptest::prelude::*;
use streams::{App, Error, PartitionStatus, Table};
use testkit::MockCluster;

const WAIT: Duration = Duration::from_secs(30);
const PARTITIONS: i32 = 3;
const KEYS: u8 = 12;

#[derive(Debug, Clone)]
enum Op {
    /// Writes of (key, value), `None` deleting.
    Write(Vec<(u8, Option<u16>)>),
    Commit,
    /// Graceful stop and a new worker with the same store.
    Restart,
    /// Abort and a new worker with the same store.
    Crash,
    /// A second worker joins, takes some partitions, then leaves (`true`: crashes).
    SecondWorker {
        crash: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec((0..KEYS, proptest::option::of(0u16..1000)), 1..20)
            .prop_map(Op::Write),
        1 => Just(Op::Commit),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
        1 => any::<bool>().prop_map(|crash| Op::SecondWorker { crash }),
    ]
}

struct Worker {
    app: App,
    table: Table<String, u16>,
}

struct Harness {
    bootstrap: String,
    id: String,
    topic: String,
    stores: [String; 2],
    producer: Producer,
}

impl Harness {
    async fn worker(&self, store: &str) -> Worker {
        let app = App::builder(&self.id)
            .broker(&format!("kafka://{}", self.bootstrap))
            .store(store)
            .topic_partitions(PARTITIONS)
            .broker_commit_interval(Duration::from_secs(3600))
            .broker_session_timeout(Duration::from_millis(800))
            .broker_heartbeat_interval(Duration::from_millis(150))
            .broker_rebalance_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        // Values are "set:N" or "del".
        let ops = app
            .topic::<String, String>(&self.topic)
            .value_serializer("raw");
        let table = app.table::<String, u16>("model").unwrap();
        let t = table.clone();
        app.agent_builder("apply", &ops)
            .table(&table)
            .run_once(move |mut events| async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    match e.value.strip_prefix("set:") {
                        Some(v) => t.insert(&key, v.parse().unwrap_or(0))?,
                        None => {
                            t.remove(&key)?;
                        }
                    }
                }
                Ok::<(), Error>(())
            });
        app.start().await.unwrap();
        Worker { app, table }
    }

    async fn send(&self, writes: &[(u8, Option<u16>)]) {
        let mut acks = Vec::new();
        for (k, v) in writes {
            let value = match v {
                Some(v) => format!("set:{v}"),
                None => "del".to_owned(),
            };
            let record = ProducerRecord::new(&self.topic)
                .key(format!("k{k}"))
                .value(value);
            acks.push(self.producer.send(record).await.unwrap());
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
}

/// Waits until the workers hold every partition, active, between them, and have processed
/// everything; returns their tables' union.
async fn settled(workers: &[&Worker]) -> BTreeMap<String, u16> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut active = Vec::new();
        for w in workers {
            for p in w.app.table_partitions().unwrap() {
                if p.status == PartitionStatus::Active {
                    active.push(p.partition);
                }
            }
        }
        active.sort_unstable();
        if active == (0..PARTITIONS).collect::<Vec<_>>() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "partitions not settled: {active:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in workers {
        w.app.wait_caught_up(WAIT).await.unwrap();
    }
    let mut union = BTreeMap::new();
    for w in workers {
        union.extend(w.table.items().unwrap());
    }
    union
}

async fn run(ops: Vec<Op>, store_kind: &str) {
    let mock = MockCluster::builder()
        .default_partitions(PARTITIONS)
        .group_min_session_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let id = testkit::unique_name("model");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let store = |i: usize| match store_kind {
        "redb" => format!("redb://{}", dirs[i].path().display()),
        _ => "memory://".to_owned(),
    };
    let h = Harness {
        bootstrap: mock.bootstrap(),
        topic: format!("{id}-ops"),
        id,
        stores: [store(0), store(1)],
        producer: Producer::new(
            ClientConfig::new(&mock.bootstrap()).unwrap(),
            ProducerConfig::default(),
        )
        .await
        .unwrap(),
    };
    let mut model: BTreeMap<String, u16> = BTreeMap::new();
    let mut worker = h.worker(&h.stores[0]).await;
    for op in ops {
        match op {
            Op::Write(writes) => {
                for (k, v) in &writes {
                    match v {
                        Some(v) => model.insert(format!("k{k}"), *v),
                        None => model.remove(&format!("k{k}")),
                    };
                }
                h.send(&writes).await;
            }
            Op::Commit => {
                settled(&[&worker]).await;
                worker.app.commit().await.unwrap();
            }
            Op::Restart => {
                worker.app.shutdown().await.unwrap();
                drop(worker);
                worker = h.worker(&h.stores[0]).await;
            }
            Op::Crash => {
                worker.app.abort().await;
                drop(worker);
                worker = h.worker(&h.stores[0]).await;
            }
            Op::SecondWorker { crash } => {
                let second = h.worker(&h.stores[1]).await;
                let both = settled(&[&worker, &second]).await;
                assert_eq!(both, model, "with a second worker");
                if crash {
                    second.app.abort().await;
                } else {
                    second.app.shutdown().await.unwrap();
                }
            }
        }
        let held = settled(&[&worker]).await;
        assert_eq!(held, model);
    }
    worker.app.shutdown().await.unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn memory_tables_match_the_model(ops in proptest::collection::vec(op(), 1..8)) {
        runtime().block_on(run(ops, "memory"));
    }

    #[test]
    fn redb_tables_match_the_model(ops in proptest::collection::vec(op(), 1..8)) {
        runtime().block_on(run(ops, "redb"));
    }
}
